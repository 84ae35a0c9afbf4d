"""Composition root of the gateway: settings + service clients → FastAPI application (no import-time state)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.db import make_engine, make_session_factory, migrate
from services.gateway.api import errors
from services.gateway.api.limits import BodySizeLimit, TokenBuckets
from services.gateway.api.main import build_api_router
from services.gateway.api.schemas import HealthPublic
from services.gateway.clients import ServiceClients, connect
from services.gateway.config import GatewaySettings
from services.gateway.live.hub import LiveHub
from services.gateway.metrics import GatewayMetrics, RedMiddleware
from services.gateway.security import TokenSigner

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def connect_clients(settings: GatewaySettings, metrics: GatewayMetrics) -> ServiceClients:
    return connect(registry_addr=settings.registry_addr, trading_addr=settings.trading_addr,
                   evaluation_addr=settings.evaluation_addr, api_key=settings.service_api_key,
                   timeout=settings.rpc_timeout_seconds, metrics=metrics.grpc)


def create_app(settings: GatewaySettings, clients: ServiceClients | None = None,
               metrics: GatewayMetrics | None = None) -> FastAPI:
    metrics = metrics or GatewayMetrics()
    clients = clients or connect_clients(settings, metrics)
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(engine, MIGRATIONS)
        if settings.demo_data:
            from services.gateway.demo import seed_if_empty
            await seed_if_empty(app.state.sessions, clients, settings.data_dir)
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await clients.close()
            await engine.dispose()

    app = FastAPI(title="yaosu gateway", version="1.0.0", lifespan=lifespan,
                  summary="Registry, 亩均论英雄 evaluation and public-resource trading for enterprises, agencies "
                          "and regulators", generate_unique_id_function=_operation_id)
    app.state.settings, app.state.clients, app.state.metrics = settings, clients, metrics
    app.state.sessions = make_session_factory(engine)
    app.state.signer = TokenSigner(settings.jwt_secret, settings.access_token_minutes, settings.refresh_token_hours)
    app.state.buckets = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.api_key_cache = {}
    app.state.hub = LiveHub(settings.nats_url)

    errors.install(app)
    app.include_router(build_api_router())
    from services.gateway.portal.routes import mount_portal
    mount_portal(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", response_model=HealthPublic, include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        serving = await request.app.state.clients.health()
        required = {"registry", "trading"}
        ready = all(serving.get(name) for name in required)
        return JSONResponse(HealthPublic(status="ready" if ready else "not ready", services=serving).model_dump(),
                            status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodySizeLimit, json_bytes=settings.max_json_bytes, upload_bytes=settings.max_upload_bytes)
    app.add_middleware(RedMiddleware, metrics=metrics)
    return app
