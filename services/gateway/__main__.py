"""`python -m services.gateway`: one uvicorn process (no workers: plain prometheus_client metrics)."""

from __future__ import annotations

import uvicorn

from services.common.logging import configure_logging
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None,
                access_log=False, proxy_headers=False)


main()
