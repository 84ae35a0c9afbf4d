"""Composition root of the evaluation service: settings → host infrastructure → use cases → servicer."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import grpc

from services.common.audit import AuditJournal
from services.common.authz import Access
from services.common.authz import Policy as AccessPolicy
from services.common.events.inbox import Inbox
from services.common.gc_pause import CollectorPause
from services.common.grpc_client import open_channel
from services.common.host import Infrastructure, ServiceDefinition, ServiceHost
from services.common.journal_check import JournalCheck
from services.common.logging import configure_logging
from services.common.metrics import GrpcClientMetrics
from services.common.periodic import Periodic
from services.evaluation.adapters.db import tables
from services.evaluation.adapters.db.repository import EvaluationRepository
from services.evaluation.adapters.grpc.servicer import EvaluationServicer, register
from services.evaluation.adapters.registry.consumer import registry_consumer
from services.evaluation.adapters.registry.directory import RegistryDirectory
from services.evaluation.adapters.report.renderer import ReportRenderer
from services.evaluation.application.details import RunDetails
from services.evaluation.application.ingestion import Ingestion
from services.evaluation.application.policies import Policies
from services.evaluation.application.regrades import Regrades
from services.evaluation.application.replica import EnterpriseReplica
from services.evaluation.application.results import Results
from services.evaluation.application.runs import Evaluate, Runs
from services.evaluation.config import EvaluationSettings
from services.evaluation.domain.decided import decide_run
from services.evaluation.metrics import EvaluationMetrics

log = logging.getLogger(__name__)

SERVICE_NAME = "yaosu.evaluation.v1.EvaluationService"
MIGRATIONS = Path(__file__).parent / "adapters" / "db" / "migrations"
# Who may call what: the policy the use cases check (services.common.authz).
AUTHORIZATION = Path(__file__).parent / "authorization.yaml"
# The engine a run uses: the bulk engine with the firm's detail built on read. `make bench` times this same one.
ENGINE: Evaluate = decide_run
# How long start-up keeps trying to reach the registry for the first backfill before serving without it.
BACKFILL_PATIENCE_SECONDS = 20.0


async def _first_backfill(replica: EnterpriseReplica) -> None:
    deadline = time.monotonic() + BACKFILL_PATIENCE_SECONDS
    while True:
        try:
            await replica.backfill()
            return
        except grpc.aio.AioRpcError as exc:
            if time.monotonic() > deadline:
                log.warning("registry unreachable (%s); serving with the replica as it is", exc.code().name)
                return
            await asyncio.sleep(0.5)


def definition(settings: EvaluationSettings, evaluate: Evaluate = ENGINE) -> ServiceDefinition:
    access = Access(AccessPolicy.load(AUTHORIZATION))

    async def wire(infra: Infrastructure, server: grpc.aio.Server) -> None:
        metrics = EvaluationMetrics(infra.registry)
        channel = open_channel(settings.registry_addr, api_key=settings.service_api_key,
                               metrics=GrpcClientMetrics(infra.registry))
        infra.on_close.append(channel.close)
        replica = EnterpriseReplica(infra.uow, EvaluationRepository, Inbox(infra.tables), RegistryDirectory(channel))
        policies = Policies(infra.uow, EvaluationRepository, access)
        await policies.ensure_bundled()

        async def reference_policy():
            return (await policies.resolve(settings.default_policy_id))[1]

        ingestion = Ingestion(infra.uow, EvaluationRepository, replica, reference_policy, metrics, access,
                              settings.registry_lookup_limit)
        gc_pause = CollectorPause()
        details = RunDetails(infra.uow, EvaluationRepository, policies, gc_pause)
        runs = Runs(infra.uow, EvaluationRepository, policies, metrics, settings.default_policy_id, access, details,
                    gc_pause, evaluate=evaluate)
        await runs.discard_interrupted()
        regrades = Regrades(infra.uow, EvaluationRepository, policies, access, details)
        results = Results(infra.uow, EvaluationRepository, policies, replica, access, details)
        await _first_backfill(replica)
        if settings.demo_data:
            from services.evaluation.demo import load_if_empty
            await load_if_empty(ingestion, runs, infra.uow, EvaluationRepository, settings)
        await runs.refresh_gauge()

        def on_verified(intact: bool) -> None:
            infra.audit_metrics.verify_ok.set(1 if intact else 0)

        journal = JournalCheck(infra.uow, AuditJournal(infra.tables), access, on_verified)
        register(server, EvaluationServicer(policies, ingestion, runs, regrades, results, ReportRenderer(), journal))
        consumer = registry_consumer(infra.nc, replica, infra.event_metrics)
        skipped_first = False

        async def periodic_backfill() -> None:
            nonlocal skipped_first
            if skipped_first:  # Periodic runs at once; start-up has just backfilled
                await replica.backfill()
            skipped_first = True

        backfill = Periodic("registry-backfill", periodic_backfill, settings.registry_sync_seconds)
        for start, stop in ((consumer.start, consumer.stop), (backfill.start, backfill.stop)):
            infra.background.append((start, stop))

    return ServiceDefinition("evaluation", (SERVICE_NAME,), tables.infrastructure, MIGRATIONS, wire,
                             policy=access.policy)


def build(settings: EvaluationSettings, evaluate: Evaluate = ENGINE) -> ServiceHost:
    return ServiceHost(definition(settings, evaluate), settings)


def main() -> None:
    settings = EvaluationSettings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(build(settings).run())
