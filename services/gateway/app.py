"""Composition root of the gateway: settings + service clients → FastAPI application (no import-time state)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.common.db import make_engine, make_session_factory, migrate
from services.common.metrics import serve_metrics
from services.common.periodic import Periodic
from services.gateway.api import errors
from services.gateway.api.authz import load_access
from services.gateway.api.deps import REFRESH_COOKIE, SESSION_COOKIE
from services.gateway.api.limits import BodySizeLimit, TokenBuckets
from services.gateway.api.main import build_api_router
from services.gateway.api.schemas import HealthPublic
from services.gateway.browser import CrossSiteWriteGuard, SecurityHeaders, swagger_page
from services.gateway.clients import ServiceClients, connect
from services.gateway.config import GatewaySettings
from services.gateway.live.hub import LiveHub
from services.gateway.metrics import GatewayMetrics, RedMiddleware
from services.gateway.security import TokenSigner
from services.gateway.sessions import SessionService
from services.gateway.throttle import Lockout, LoginThrottle, ThrottleRule

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def connect_clients(settings: GatewaySettings, metrics: GatewayMetrics) -> ServiceClients:
    return connect(registry_addr=settings.registry_addr, trading_addr=settings.trading_addr,
                   evaluation_addr=settings.evaluation_addr, api_key=settings.service_api_key,
                   timeout=settings.rpc_timeout_seconds, metrics=metrics.grpc,
                   agency_roles_ttl=settings.agency_roles_ttl_seconds)


def login_throttle(settings: GatewaySettings, sessions, metrics: GatewayMetrics) -> LoginThrottle:
    window, lock = timedelta(minutes=settings.login_window_minutes), timedelta(minutes=settings.login_lock_minutes)
    max_delay = timedelta(seconds=settings.login_max_delay_seconds)

    async def locked(lockout: Lockout) -> None:
        # The security_events row is written with the lock; this is the operator's signal (alert rule).
        metrics.login_lockouts.labels(lockout.scope).inc()
        log.warning("login locked after repeated failures",
                    extra={"scope": lockout.scope, "username": lockout.username, "client_address": lockout.address,
                           "locked_until": lockout.until.isoformat()})

    return LoginThrottle(
        sessions, on_lock=locked,
        account=ThrottleRule(settings.login_account_free_failures, settings.login_account_lock_failures, window,
                             lock, max_delay),
        address=ThrottleRule(settings.login_address_free_failures, settings.login_address_lock_failures, window,
                             lock, max_delay))


def create_app(settings: GatewaySettings, clients: ServiceClients | None = None,
               metrics: GatewayMetrics | None = None) -> FastAPI:
    metrics = metrics or GatewayMetrics()
    clients = clients or connect_clients(settings, metrics)
    engine = make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Metrics on their own port, as every service: on the public API port the counts by route and RPC
        # (bids, registrations) would tell anyone that a sealed sale has takers, how many and when.
        metrics_server, app.state.metrics_port = serve_metrics(metrics.registry, settings.metrics_port,
                                                               settings.http_host)
        log.info("gateway metrics", extra={"metrics_port": app.state.metrics_port})
        try:
            await migrate(engine, MIGRATIONS)
            if settings.demo_data:
                from services.gateway.demo import seed_if_empty
                await seed_if_empty(app.state.sessions, clients, settings.data_dir)
            session_service: SessionService = app.state.session_service
            await session_service.sync()
            revocations = Periodic("revocation-sync", session_service.sync, settings.revocation_sync_seconds)
            pruning = Periodic("session-prune", lambda: session_service.prune(
                timedelta(minutes=max(settings.login_window_minutes, settings.login_lock_minutes))), 600.0)
            revocations.start()
            pruning.start()
            await app.state.hub.start()
            try:
                yield
            finally:
                await app.state.hub.stop()
                await revocations.stop()
                await pruning.stop()
                await clients.close()
                await engine.dispose()
        finally:
            metrics_server.shutdown()
            metrics_server.server_close()

    # /docs is served below with its own Content-Security-Policy; ReDoc (fonts and script from CDNs) is off.
    app = FastAPI(title="yaosu gateway", version="1.0.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  summary="Registry, 亩均论英雄 evaluation and public-resource trading for enterprises, agencies "
                          "and regulators", generate_unique_id_function=_operation_id)
    app.state.settings, app.state.clients, app.state.metrics = settings, clients, metrics
    app.state.metrics_port = 0  # bound at start-up (settings.metrics_port, 0 = a free port)
    app.state.access = load_access()  # the REST routes' policy (services/gateway/authorization.yaml)
    app.state.sessions = make_session_factory(engine)
    app.state.signer = TokenSigner(settings.jwt_secret, settings.access_token_minutes, settings.refresh_token_hours)
    app.state.session_service = SessionService(app.state.sessions, app.state.signer,
                                               on_reuse=metrics.refresh_reuse.inc)
    app.state.login_throttle = login_throttle(settings, app.state.sessions, metrics)
    app.state.buckets = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.api_key_cache = {}
    app.state.hub = LiveHub(settings.nats_url)

    errors.install(app)
    app.include_router(build_api_router())
    from services.gateway.portal.routes import mount_portal
    mount_portal(app)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return swagger_page(app.openapi_url or "/openapi.json", f"{app.title} · API")

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

    # Outermost last: trusted proxy → security headers → RED metrics → cross-site guard → body size → routes.
    app.add_middleware(BodySizeLimit, json_bytes=settings.max_json_bytes, upload_bytes=settings.max_upload_bytes)
    app.add_middleware(CrossSiteWriteGuard, cookies=(SESSION_COOKIE, REFRESH_COOKIE),
                       trusted_origins=settings.csrf_trusted_origins)
    app.add_middleware(RedMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        # Client address (login throttling, rate limits) and scheme (Secure cookies) as the proxy saw them.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
