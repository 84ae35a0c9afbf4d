"""The `evaluation-registry` durable consumer: registry enterprise events into the replica (inbox)."""

from __future__ import annotations

from nats.aio.client import Client
from yaosu.events.v1 import envelope_pb2

from services.common.events.consumer import ConsumerRunner, PermanentError
from services.common.metrics import EventMetrics
from services.evaluation.application.replica import CONSUMER, EnterpriseReplica


def registry_consumer(nc: Client, replica: EnterpriseReplica, metrics: EventMetrics) -> ConsumerRunner:
    async def handle(envelope: envelope_pb2.EventEnvelope, data: dict) -> str:
        if not data.get("credit_code"):
            raise PermanentError("enterprise event without credit_code")
        return await replica.apply_event(envelope.id, envelope.type, data)

    return ConsumerRunner(nc, stream="REGISTRY", durable=CONSUMER, handler=handle, metrics=metrics)
