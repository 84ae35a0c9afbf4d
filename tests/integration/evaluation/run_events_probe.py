"""Run by test_run_events.py in its own process (tracing instruments gRPC process-wide): a registry, an
evaluation service exporting spans by OTLP, StartRun and PublishRun each called inside a span of the caller,
and every event they caused read back from JetStream. Prints one JSON document on its last line."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from services.common.events.envelope import parse
from tests.integration.evaluation.support import (
    EVALUATOR,
    evaluation_running,
    firm_values,
    key,
    register_enterprises,
    row,
    submit,
)
from tests.support.registry import registry_running

FIRMS, YEAR = 20, 2024


async def _events_of(subscription, run_id: str, expected: int) -> list[dict]:
    """The envelopes about this run (the shared NATS carries other tests' events too)."""
    found: list[dict] = []
    async with asyncio.timeout(30):
        while len(found) < expected:
            try:
                messages = await subscription.fetch(batch=100, timeout=1)
            except NatsTimeoutError:
                continue
            for message in messages:
                envelope, data = parse(message.data)
                await message.ack()
                if data.get("run_id") == run_id:
                    found.append({"type": envelope.type, "subject": envelope.subject, "source": envelope.source,
                                  "actor": envelope.actor, "request_id": envelope.request_id,
                                  "trace_context": dict(envelope.trace_context), "data": data})
    return found


async def main(nats_url: str, endpoint: str, workdir: str) -> None:
    folder = Path(workdir)
    nc = await nats.connect(nats_url)
    durable = f"probe-{uuid.uuid4().hex[:8]}"
    async with registry_running(f"sqlite+aiosqlite:///{folder / 'registry.db'}", nats_url) as registry:
        codes = await register_enterprises(registry.stub, FIRMS)
        async with evaluation_running(f"sqlite+aiosqlite:///{folder / 'evaluation.db'}", nats_url, registry.address,
                                      otel_exporter_otlp_endpoint=endpoint) as evaluation:
            await nc.jetstream().add_consumer("EVALUATION", ConsumerConfig(
                durable_name=durable, name=durable, filter_subject="evaluation.>", ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW))
            subscription = await nc.jetstream().pull_subscribe_bind(durable=durable, stream="EVALUATION")
            await submit(evaluation.stub, [row(code, YEAR, **firm_values(i)) for i, code in enumerate(codes)])
            tracer = trace.get_tracer("run-events-probe")
            with tracer.start_as_current_span("evaluate the county") as span:
                run = (await evaluation.stub.StartRun(pb.StartRunRequest(
                    idempotency_key=key(), jurisdiction="330106", year=YEAR), metadata=EVALUATOR)).run
                start_trace = format(span.get_span_context().trace_id, "032x")
            completed = await _events_of(subscription, run.run_id, 1)
            with tracer.start_as_current_span("publish the county's classes") as span:
                await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id),
                                                 metadata=EVALUATOR)
                publish_trace = format(span.get_span_context().trace_id, "032x")
            published = await _events_of(subscription, run.run_id, 1 + FIRMS)
            await subscription.unsubscribe()
    await nc.jetstream().delete_consumer("EVALUATION", durable)
    await nc.drain()
    sys.stdout.write(json.dumps({"run_id": run.run_id, "output_digest": run.output_digest,
                                 "start_trace": start_trace, "publish_trace": publish_trace,
                                 "completed": completed, "published": published}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
