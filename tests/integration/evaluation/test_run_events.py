"""A run's events go out through the common outbox on the real NATS: `evaluation.run.completed` when StartRun
completes, `evaluation.run.published` and the `evaluation.enterprise.classified` changes when PublishRun
does, each in the envelope every service writes (source, request id, actor) and carrying the W3C trace
context of the call that caused it, so a consumer's span joins the caller's trace.

The services run in a process of their own (run_events_probe.py): tracing instruments gRPC process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]
RUN_FACTS = {"run_id", "jurisdiction", "year", "policy_ref", "input_digest", "output_digest", "enterprises",
             "prior_run_id"}
START_RUN = "/yaosu.evaluation.v1.EvaluationService/StartRun"


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """A real OTLP/gRPC trace receiver: (service, span name, kind, trace id) of every span exported."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, int, str]] = []

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((service, span.name, span.kind, span.trace_id.hex()))
        return trace_service_pb2.ExportTraceServiceResponse()


def _trace_id(envelope: dict) -> str:
    return envelope["trace_context"]["traceparent"].split("-")[1]


def test_run_events_carry_the_envelope_and_the_trace_of_their_call(nats_server, tmp_path) -> None:
    receiver = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}"}
        done = subprocess.run([sys.executable, "-m", "tests.integration.evaluation.run_events_probe", nats_server.url,
                               f"http://127.0.0.1:{port}", str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        server.stop(0)
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    (completed,) = seen["completed"]
    assert completed["type"] == "yaosu.evaluation.run.completed" and completed["subject"] == seen["run_id"]
    assert completed["source"] == "yaosu/evaluation" and completed["actor"] == "jxj:evaluator-1"
    assert completed["request_id"]
    assert _trace_id(completed) == seen["start_trace"]
    # What a run under review says on the bus: what it evaluated and its digests, no classes.
    assert set(completed["data"]) == RUN_FACTS | {"completed_at"}
    assert completed["data"]["output_digest"] == seen["output_digest"] and completed["data"]["enterprises"] == 20

    published = [e for e in seen["published"] if e["type"] == "yaosu.evaluation.run.published"]
    classified = [e for e in seen["published"] if e["type"] == "yaosu.evaluation.enterprise.classified"]
    assert len(published) == 1 and len(classified) == 20
    assert set(published[0]["data"]) == RUN_FACTS | {"class_counts", "classes_changed", "published_at"}
    assert published[0]["data"]["classes_changed"] == 20
    for envelope in (*published, *classified):
        assert envelope["source"] == "yaosu/evaluation" and envelope["actor"] == "jxj:evaluator-1"
        assert _trace_id(envelope) == seen["publish_trace"]
    assert {e["subject"] for e in classified} == {e["data"]["credit_code"] for e in classified}
    assert all(set(e["data"]) == {"credit_code", "run_id", "year", "previous_class", "final_class", "managed_as",
                                  "policy_ref", "reason"} for e in classified)

    # The collector saw the evaluation service's StartRun span in the caller's trace.
    server_spans = [s for s in receiver.spans if s[1] == START_RUN and s[2] == 2]  # SPAN_KIND_SERVER
    assert [s[0] for s in server_spans] == ["yaosu-evaluation"]
    assert server_spans[0][3] == seen["start_trace"]
