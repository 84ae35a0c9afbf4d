"""`python -m services.gateway`: one uvicorn process (no workers: plain prometheus_client metrics)."""

from __future__ import annotations

import asyncio

import uvicorn

from services.common.logging import configure_logging
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings


async def serve(settings: GatewaySettings) -> None:
    # The app (and its gRPC channels) is built inside the running loop: grpc.aio channels belong to the
    # loop that created them.
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None,
                            access_log=False, proxy_headers=False)
    await uvicorn.Server(config).serve()


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(serve(settings))


main()
