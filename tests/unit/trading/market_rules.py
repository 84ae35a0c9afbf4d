"""The bundled market policy (services/trading/market_policy.yaml) for domain tests: the CEA rules as the
service loads them, with a market's overrides."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.trading.domain.continuous import ContinuousTradingRules
from services.trading.domain.market_policy import MarketConfig, MarketPolicy

POLICY_FILE = Path(__file__).resolve().parents[3] / "services" / "trading" / "market_policy.yaml"
POLICY = MarketPolicy.from_data(yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8")), str(POLICY_FILE))


def market_config(**overrides) -> MarketConfig:
    return POLICY.configure(overrides)


def cea_rules(**overrides) -> ContinuousTradingRules:
    return POLICY.configure(overrides).rules
