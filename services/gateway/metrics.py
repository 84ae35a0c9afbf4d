"""The gateway's metric families (names fixed in docs/metrics.md) and the RED middleware."""

from __future__ import annotations

import re
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.metrics import LATENCY_BUCKETS, GrpcClientMetrics, new_registry


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        self.requests = Counter("http_requests_total", "HTTP requests by route template and status.",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request time.", ("method", "route"),
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.sse_clients = Gauge("gateway_sse_clients", "Connected server-sent-event clients.", ("stream",),
                                 registry=self.registry)
        self.logins = Counter("gateway_logins_total", "Password logins.", ("role", "outcome"),
                              registry=self.registry)
        self.login_lockouts = Counter("gateway_login_lockouts_total",
                                      "Accounts or client addresses locked after repeated failed logins.",
                                      ("scope",), registry=self.registry)
        self.refresh_reuse = Counter("gateway_refresh_token_reuse_total",
                                     "Refresh tokens presented again after use (their session was revoked).",
                                     registry=self.registry)
        self.grpc = GrpcClientMetrics(self.registry)


class RedMiddleware:
    """Counts every request under its route template (never the raw path: bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app, self.metrics = app, metrics
        self._templates: list[tuple[re.Pattern, str]] | None = None

    def _template(self, scope: Scope) -> str:
        # FastAPI includes routers lazily, so scope["route"] of an included route lacks the prefix; the
        # OpenAPI paths are the full templates.
        if self._templates is None:
            paths = scope["app"].openapi()["paths"]
            self._templates = [(re.compile("^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(p)) + "$"), p)
                               for p in sorted(paths, key=lambda p: p.count("{"))]
        path = scope.get("path", "")
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        route = scope.get("route")
        return getattr(route, "path", None) or "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            template = self._template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
