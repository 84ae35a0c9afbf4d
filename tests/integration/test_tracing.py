"""OpenTelemetry spans cross gRPC client → server → outbox/NATS → consumer in one trace, exported by
OTLP to a collector (a real OTLP/gRPC receiver started here)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, int, str]] = []  # (service, name, kind, trace id)

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((service, span.name, span.kind, span.trace_id.hex()))
        return trace_service_pb2.ExportTraceServiceResponse()


def test_one_trace_spans_the_call_and_the_event_consumer(nats_server, sqlite_url) -> None:
    receiver = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}"}
        done = subprocess.run([sys.executable, "-m", "tests.integration.tracing_probe", sqlite_url, nats_server.url,
                               f"http://127.0.0.1:{port}"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        server.stop(0)
    method = "/yaosu.registry.v1.RegistryService/RegisterEnterprise"
    server_spans = [s for s in receiver.spans if s[1] == method and s[2] == 2]  # SPAN_KIND_SERVER
    client_spans = [s for s in receiver.spans if s[1] == method and s[2] == 3]  # SPAN_KIND_CLIENT
    consumer_spans = [s for s in receiver.spans if s[1].startswith("consume registry.enterprise.")]
    assert server_spans and client_spans and consumer_spans, receiver.spans
    assert server_spans[0][0] == "yaosu-registry"
    trace_id = client_spans[0][3]
    assert server_spans[0][3] == trace_id
    # The shared NATS may hold other tests' events; the one this call caused continues its trace.
    assert trace_id in {span[3] for span in consumer_spans}
