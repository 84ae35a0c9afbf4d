"""Runs one service process: the shared lifecycle every composition root plugs its parts into.

Start: metrics → database (migrate) → NATS (topology) → outbox relay → background tasks → gRPC.
Stop (SIGTERM/SIGINT): health NOT_SERVING → gRPC drain → background tasks → outbox flush → NATS drain →
engine dispose.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from nats.aio.client import Client
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.common.audit import AuditJournal
from services.common.authz import Policy
from services.common.config import BaseServiceSettings
from services.common.db import make_engine, make_session_factory, migrate
from services.common.events import topology
from services.common.events.connection import connect
from services.common.events.outbox import Outbox, OutboxRelay
from services.common.grpc_server import GrpcServer
from services.common.metrics import (
    AuditMetrics,
    EventMetrics,
    GrpcServerMetrics,
    build_info,
    new_registry,
    serve_metrics,
)
from services.common.tables import InfrastructureTables
from services.common.tracing import configure_tracing, shutdown_tracing
from services.common.uow import UnitOfWork, utc_now

log = logging.getLogger(__name__)


@dataclass
class Infrastructure:
    """What the host built, handed to the service's wiring function."""

    settings: BaseServiceSettings
    registry: CollectorRegistry
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    nc: Client
    uow: UnitOfWork
    event_metrics: EventMetrics
    audit_metrics: AuditMetrics
    tables: InfrastructureTables
    # Started after the gRPC server is up, stopped before the relay: consumers, timers, sweepers.
    background: list[tuple[Callable[[], None], Callable[[], Awaitable[None]]]] = field(default_factory=list)
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass
class ServiceDefinition:
    name: str
    grpc_service_names: tuple[str, ...]
    tables: InfrastructureTables
    migrations: Path
    # Registers servicers on the server and background tasks on the infrastructure.
    wire: Callable[[Infrastructure, grpc.aio.Server], Awaitable[None]]
    version: str = "0.1.0"
    # The service's declared authorization policy (services.common.authz): the gRPC server refuses at the
    # door what it does not grant; the use cases check the object rules against the same policy.
    policy: Policy | None = None


class ServiceHost:
    def __init__(self, definition: ServiceDefinition, settings: BaseServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.grpc_port = 0
        self.metrics_port = 0
        self.infrastructure: Infrastructure | None = None

    def request_stop(self) -> None:
        self.stopping.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        d, s = self.definition, self.settings
        configure_tracing(d.name, s.otel_exporter_otlp_endpoint)
        registry = new_registry()
        build_info(registry, d.name, d.version)
        metrics_server, self.metrics_port = serve_metrics(registry, s.metrics_port, s.grpc_host)
        engine = make_engine(s.database_url)
        await migrate(engine, d.migrations)
        sessions = make_session_factory(engine)
        nc = await connect(s.nats_url, d.name)
        await topology.apply(nc.jetstream(), replicas=s.nats_stream_replicas)
        event_metrics, audit_metrics = EventMetrics(registry), AuditMetrics(registry)
        outbox = Outbox(d.tables, f"yaosu/{d.name}", utc_now)
        uow = UnitOfWork(sessions, d.tables, outbox, AuditJournal(d.tables), audit_metrics)
        infra = Infrastructure(s, registry, engine, sessions, nc, uow, event_metrics, audit_metrics, d.tables)
        self.infrastructure = infra
        relay = OutboxRelay(outbox, sessions, nc, event_metrics, poll_seconds=s.outbox_poll_seconds)
        relay.start()

        grpc_server = GrpcServer(register=lambda server: None, service_names=d.grpc_service_names,
                                 metrics=GrpcServerMetrics(registry), api_keys=s.api_keys(),
                                 host=s.grpc_host, port=s.grpc_port, policy=d.policy)
        await d.wire(infra, grpc_server.server)
        self.grpc_port = grpc_server.port
        for start, _ in infra.background:
            start()
        await grpc_server.start()
        if install_signal_handlers:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stopping.set)
        log.info("%s ready", d.name, extra={"grpc_port": self.grpc_port, "metrics_port": self.metrics_port})
        self.ready.set()
        try:
            await self.stopping.wait()
        finally:
            log.info("%s stopping", d.name)
            await grpc_server.stop(s.shutdown_grace_seconds)
            for _, stop in reversed(infra.background):
                await stop()
            await relay.stop()
            for close in infra.on_close:
                await close()
            try:
                await nc.drain()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                log.debug("nats drain failed", exc_info=True)
            await engine.dispose()
            metrics_server.shutdown()
            shutdown_tracing()
            log.info("%s stopped", d.name)
