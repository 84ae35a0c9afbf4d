"""The rules of the continuous markets as versioned policy data (services/trading/market_policy.yaml: the CEA
rules of trading-anchors.md §3.4), and what one market's overrides make of them.

The policy is read once at start by the composition root and passed in. A market row's rules JSON holds
only its overrides, with the same keys; everything else is the policy's. A refusal names the rule (its
key) and the policy version, and says when the market set the rule itself (ContinuousTradingRules.refuse).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendar import WorkingDayCalendar
from .continuous import ContinuousTradingRules, Session
from .matching import SelfTradePrevention

# Whole numbers: (smallest, largest) each rule may be.
NUMBERS = {"band_bp": (1, 10_000), "block_band_bp": (1, 10_000), "block_size": (1, 10**12), "tick_fen": (1, 10**8),
           "lot_units": (1, 10**6), "taker_levels": (1, 50), "hold_days": (0, 366)}
RULE_KEYS = frozenset(NUMBERS) | {"timezone", "trading_days", "holidays", "makeup_working_days", "sessions",
                                  "block_sessions", "self_trade_prevention"}
# Markets created before the policy file named a version of their own; the policy's version is the one now.
IGNORED = frozenset({"policy_version"})


class EveryDay(WorkingDayCalendar):
    """A market configured to trade on every calendar day (trading_days: every; the demo, never the CEA)."""

    def is_working_day(self, day: date) -> bool:
        return True


@dataclass(frozen=True)
class MarketConfig:
    """One market's effective rules: the book's, its calendar and clock, and how long order holds last."""

    rules: ContinuousTradingRules
    calendar: WorkingDayCalendar
    timezone: str
    hold_days: int


@dataclass(frozen=True)
class MarketPolicy:
    version: str
    defaults: Mapping[str, Any]

    @classmethod
    def from_data(cls, data: Mapping, where: str = "market policy") -> MarketPolicy:
        version = str((data or {}).get("version") or "")
        if not version:
            raise ValueError(f"{where}: a policy names its version")
        rules = dict((data or {}).get("rules") or {})
        missing = RULE_KEYS - set(rules)
        if missing:
            raise ValueError(f"{where}: rules {sorted(missing)} are missing")
        policy = cls(version, rules)
        policy.configure({}, where)  # every default must make a valid market
        return policy

    def configure(self, overrides: Mapping[str, Any] | None = None, where: str = "market rules") -> MarketConfig:
        """The policy's rules with a market's overrides; ValueError names a malformed or unknown key."""
        overrides = {k: v for k, v in (overrides or {}).items() if k not in IGNORED}
        unknown = set(overrides) - RULE_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown rules {sorted(unknown)} (known: {sorted(RULE_KEYS)})")
        values = {**self.defaults, **overrides}
        for key, (low, high) in NUMBERS.items():
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{where}: {key} must be a whole number from {low} to {high}")
        timezone = str(values["timezone"])
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{where}: unknown timezone {timezone!r}") from None
        try:
            stp = SelfTradePrevention(values["self_trade_prevention"])
        except ValueError:
            raise ValueError(f"{where}: self_trade_prevention is one of "
                             f"{[s.value for s in SelfTradePrevention]}") from None
        rules = ContinuousTradingRules(
            policy_version=self.version, band_bp=values["band_bp"], block_band_bp=values["block_band_bp"],
            block_size=values["block_size"], tick_fen=values["tick_fen"], lot_units=values["lot_units"],
            taker_levels=values["taker_levels"], sessions=_sessions(values["sessions"], "sessions", where),
            block_sessions=_sessions(values["block_sessions"], "block_sessions", where),
            self_trade_prevention=stp, overrides=frozenset(overrides))
        return MarketConfig(rules, _calendar(values, where), timezone, values["hold_days"])


def _time(text: Any, key: str, where: str) -> time:
    if text == "24:00":
        return time.max
    try:
        return time.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{where}: {key} has {text!r}, not a time HH:MM") from None


def _sessions(value: Any, key: str, where: str) -> tuple[Session, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{where}: {key} is a non-empty list of [start, end] times")
    out = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{where}: {key} is a list of [start, end] times")
        start, end = _time(pair[0], key, where), _time(pair[1], key, where)
        if not start < end:
            raise ValueError(f"{where}: {key} has a session that does not start before it ends")
        out.append(Session(start, end))
    return tuple(out)


def _dates(value: Any, key: str, where: str) -> frozenset[date]:
    try:
        return frozenset(date.fromisoformat(str(d)) for d in value or ())
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} is a list of ISO dates") from None


def _calendar(values: Mapping[str, Any], where: str) -> WorkingDayCalendar:
    if values["trading_days"] == "every":
        return EveryDay()
    if values["trading_days"] != "working":
        raise ValueError(f"{where}: trading_days is working or every")
    return WorkingDayCalendar(holidays=_dates(values["holidays"], "holidays", where),
                              makeup_working_days=_dates(values["makeup_working_days"], "makeup_working_days",
                                                         where))
