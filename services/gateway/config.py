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
    # Prometheus /metrics on its own port (same interface as HTTP_HOST), never on the public API port;
    # 0 = a free port (tests).
    metrics_port: int = 9104
    database_url: str = "sqlite+aiosqlite:///.data/gateway.db"
    registry_addr: str = "127.0.0.1:50051"
    evaluation_addr: str = "127.0.0.1:50052"
    trading_addr: str = "127.0.0.1:50053"
    # The services' own /metrics, read by the regulator dashboard's service-health panel.
    registry_metrics_url: str = "http://127.0.0.1:9101/metrics"
    evaluation_metrics_url: str = "http://127.0.0.1:9102/metrics"
    trading_metrics_url: str = "http://127.0.0.1:9103/metrics"
    rpc_timeout_seconds: float = 5.0
    # How long an agency's roles, read from the registry, are trusted before they are read again.
    agency_roles_ttl_seconds: float = 30.0
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
    # Cookies are `Secure` whenever the request came over https (directly, or X-Forwarded-Proto from a trusted
    # proxy); true forces `Secure` always (a TLS proxy that is not listed in TRUSTED_PROXIES).
    cookie_secure: bool = False
    # Addresses or networks of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (JSON list,
    # e.g. ["10.0.0.0/8"]); empty = the peer address is the client, the connection's scheme is the scheme.
    trusted_proxies: list[str] = []
    # Origins besides the gateway's own (scheme://host[:port]) whose pages may write with the portal's cookies.
    csrf_trusted_origins: list[str] = []
    # Login throttling (per account and per client address): after *_FREE_FAILURES failed attempts within
    # LOGIN_WINDOW_MINUTES each further attempt must wait a doubling delay (≤ LOGIN_MAX_DELAY_SECONDS; an attempt
    # made before the delay ran out counts as a failure too, with 429 + Retry-After); at *_LOCK_FAILURES the
    # account or address is locked for LOGIN_LOCK_MINUTES, the right password included.
    login_window_minutes: float = 15.0
    login_lock_minutes: float = 15.0
    login_max_delay_seconds: float = 60.0
    login_account_free_failures: int = 3
    login_account_lock_failures: int = 10
    login_address_free_failures: int = 20
    login_address_lock_failures: int = 100
    # How often a gateway replica reads token revocations written by the others (its own apply at once).
    revocation_sync_seconds: float = 5.0
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
