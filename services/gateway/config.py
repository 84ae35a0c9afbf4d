"""Gateway settings: built in the composition root, never at import."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import model_validator

from services.common.config import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    database_url: str = "sqlite+aiosqlite:///.data/gateway.db"
    registry_addr: str = "127.0.0.1:50051"
    evaluation_addr: str = "127.0.0.1:50052"
    trading_addr: str = "127.0.0.1:50053"
    # The services' own /metrics, read by the regulator dashboard's service-health panel.
    registry_metrics_url: str = "http://127.0.0.1:9101/metrics"
    evaluation_metrics_url: str = "http://127.0.0.1:9102/metrics"
    trading_metrics_url: str = "http://127.0.0.1:9103/metrics"
    rpc_timeout_seconds: float = 5.0
    data_dir: Path = Path(".data")
    # HS256 signing key; when empty it is read from (or generated into) DATA_DIR/jwt_signing.key.
    jwt_secret: str = ""
    access_token_minutes: int = 15
    refresh_token_hours: int = 12
    demo_data: bool = False
    # Token bucket per principal (anonymous callers: per client address).
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    max_json_bytes: int = 1 * 1024 * 1024
    max_upload_bytes: int = 20 * 1024 * 1024
    # Secure cookies need https; off on a developer's loopback.
    cookie_secure: bool = False
    # Regulator dashboard alerts (policy data): the same bidder number bidding ALERT_LATE_BID_COUNT times in
    # the last ALERT_LATE_BID_MINUTES before close; a decided sale's price more than ALERT_RESERVE_DEVIATION
    # above its reserve; a trade's unit price more than ALERT_TRADE_DEVIATION from the median of recent ones.
    alert_late_bid_minutes: float = 5.0
    alert_late_bid_count: int = 3
    alert_reserve_deviation: float = 0.5
    alert_trade_deviation: float = 0.3
    # How many of the most recent sales the dashboard reads bids and results of.
    dashboard_sales: int = 30

    @model_validator(mode="after")
    def _signing_key(self) -> GatewaySettings:
        if not self.jwt_secret:
            path = self.data_dir / "jwt_signing.key"
            if path.exists():
                self.jwt_secret = path.read_text().strip()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.jwt_secret = secrets.token_urlsafe(48)
                path.write_text(self.jwt_secret)
                path.chmod(0o600)
        if len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        return self
