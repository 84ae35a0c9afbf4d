"""Composition root of the registry: settings → host infrastructure → use cases → servicer."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc

from services.common.audit import AuditJournal
from services.common.authz import Access, Policy
from services.common.host import Infrastructure, ServiceDefinition, ServiceHost
from services.common.logging import configure_logging
from services.common.metrics import WriteEngineMetrics
from services.common.periodic import Periodic
from services.common.write_engine import WriteEngine
from services.registry.adapters.db import tables
from services.registry.adapters.db.repository import RegistryRepository
from services.registry.adapters.grpc.servicer import RegistryServicer, register
from services.registry.application.audit import AuditTrail
from services.registry.application.cash import CashMovements
from services.registry.application.catalogue import Catalogue
from services.registry.application.ledger import CNY, Ledger
from services.registry.application.subjects import Subjects
from services.registry.config import RegistrySettings
from services.registry.domain.catalogue import STANDARD_KINDS
from services.registry.metrics import RegistryMetrics

log = logging.getLogger(__name__)

SERVICE_NAME = "yaosu.registry.v1.RegistryService"
MIGRATIONS = Path(__file__).parent / "adapters" / "db" / "migrations"
POLICY = Path(__file__).parent / "authorization.yaml"


def definition(settings: RegistrySettings) -> ServiceDefinition:
    # Read once, at start: a malformed policy stops the service before it serves.
    policy = Policy.load(POLICY)

    async def wire(infra: Infrastructure, server: grpc.aio.Server) -> None:
        lock_rows = infra.engine.dialect.name != "sqlite"

        def repositories(session):
            return RegistryRepository(session, lock_rows=lock_rows)

        metrics = RegistryMetrics(infra.registry)
        access = Access(policy)
        subjects = Subjects(infra.uow, repositories, access)
        catalogue = Catalogue(infra.uow, repositories, metrics, access)
        writes = WriteEngine(infra.uow, WriteEngineMetrics(infra.registry), name="registry",
                             serial=infra.engine.dialect.name == "sqlite")
        # Registered first, so stopped last: the other tasks' changes are drained after them.
        infra.background.append((lambda: None, writes.drain))
        ledger = Ledger(infra.uow, repositories, metrics, access, writes)
        cash = CashMovements(ledger, access)
        await catalogue.ensure_standard_kinds(STANDARD_KINDS)
        await ledger.ensure_instrument(CNY)
        if settings.demo_data:
            from services.registry.demo import load_if_empty
            await load_if_empty(subjects, catalogue, ledger, cash, seed=settings.demo_seed)

        def on_verified(intact: bool) -> None:
            infra.audit_metrics.verify_ok.set(1 if intact else 0)

        audit = AuditTrail(infra.uow, AuditJournal(infra.tables), access, on_verified)
        register(server, RegistryServicer(subjects, catalogue, ledger, cash, audit))

        async def expire_holds() -> None:
            from services.common.uow import utc_now
            await ledger.expire_due_holds(utc_now())

        async def refresh_catalogue_gauge() -> None:
            if metrics.catalogue_dirty.is_set():
                metrics.catalogue_dirty.clear()
                metrics.set_catalogue_counts(await catalogue.counts())

        for task in (Periodic("hold-expiry", expire_holds, settings.hold_sweep_seconds),
                     Periodic("catalogue-gauge", refresh_catalogue_gauge, 2.0)):
            infra.background.append((task.start, task.stop))

    return ServiceDefinition("registry", (SERVICE_NAME,), tables.infrastructure, MIGRATIONS, wire,
                             policy=policy)


def build(settings: RegistrySettings) -> ServiceHost:
    return ServiceHost(definition(settings), settings)


def main() -> None:
    settings = RegistrySettings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(build(settings).run())
