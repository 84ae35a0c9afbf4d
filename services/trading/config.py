from __future__ import annotations

from pathlib import Path

from services.common.config import BaseServiceSettings


class TradingSettings(BaseServiceSettings):
    service_name: str = "trading"
    grpc_port: int = 50053
    metrics_port: int = 9103
    database_url: str = "sqlite+aiosqlite:///.data/trading.db"
    registry_addr: str = "127.0.0.1:50051"
    # Empty = no evaluation service: registration then records that no class gate could be asked.
    evaluation_addr: str = ""
    region_code: str = "330100"
    # Load the demo sales when the database is empty (make run); needs the registry's demo data.
    demo_data: bool = False
    # How often the timer loop looks for due openings, closes and countdown ends.
    timer_seconds: float = 0.5
    settlement_seconds: float = 0.5
    settlement_max_backoff_seconds: float = 30.0
    # Deposits are held until this long after the sale's expected end (award, confirmation, default).
    deposit_hold_days: int = 30
    # Sale periods, minimum bidders and the price collar (policy data, checked at publication and on
    # every bid); empty = the bundled services/trading/sale_policy.yaml.
    sale_policy_file: Path | None = None
    # Shifts the service clock (seconds); tests of timers in a subprocess use it, never production.
    clock_offset_seconds: float = 0.0
    # Key that encrypts sealed values (底价, sealed bids) at rest. Set a secret one outside development;
    # changing it makes stored sealed values unreadable (the MAC check refuses them).
    sealing_key: str = "yaosu-development-sealing-key"
    # Continuous markets as data: a JSON list of {instrument, name, unit, lot_size, previous_close_fen,
    # rules}; created at start if missing. `rules` overrides the market policy for this market only, with
    # the policy's keys (band_bp, block_band_bp, block_size, tick_fen, lot_units, taker_levels, sessions:
    # [["09:30","11:30"], …], block_sessions, timezone, trading_days: "working"|"every", holidays, …).
    markets_json: str = ""
    # Sessions, bands, block size and band, tick, lot, taker levels of the continuous markets (policy data,
    # read at start); empty = the bundled services/trading/market_policy.yaml.
    market_policy_file: Path | None = None
    # Group commit: most bids a sale's writer applies and commits in one transaction.
    max_batch: int = 512
