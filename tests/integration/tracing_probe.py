"""Run by test_tracing.py in its own process (tracing instruments gRPC process-wide): a registry with
OTLP export on, one RegisterEnterprise call, and a consumer handling the resulting event."""

from __future__ import annotations

import asyncio
import sys

import grpc
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from services.common.events.consumer import ConsumerRunner
from services.common.metrics import EventMetrics, new_registry
from tests.integration.registry.helpers import enterprise, key
from tests.support.registry import registry_running
from tests.support.services import ADMIN_KEY


async def main(database_url: str, nats_url: str, endpoint: str) -> None:
    async with registry_running(database_url, nats_url, otel_exporter_otlp_endpoint=endpoint) as registry:
        nc = await nats.connect(nats_url)
        await nc.jetstream().add_consumer("REGISTRY", ConsumerConfig(
            durable_name="probe", name="probe", filter_subject="registry.enterprise.>",
            ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW))
        handled = asyncio.Event()

        async def handle(envelope, data) -> str:
            handled.set()
            return "ack"

        runner = ConsumerRunner(nc, stream="REGISTRY", durable="probe", handler=handle,
                                metrics=EventMetrics(new_registry()))
        runner.start()
        async with grpc.aio.insecure_channel(registry.address) as channel:
            await registry_pb2_grpc.RegistryServiceStub(channel).RegisterEnterprise(
                pb.RegisterEnterpriseRequest(idempotency_key=key(), enterprise=enterprise()),
                metadata=[("authorization", f"Bearer {ADMIN_KEY}")])
        async with asyncio.timeout(20):
            await handled.wait()
        await runner.stop()
        await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
