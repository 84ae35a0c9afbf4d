"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT names a collector.

Spans cross gateway → gRPC (the grpc aio instrumentors) → NATS (the trace context travels in the event
envelope) → consumer (a span whose parent is the request that wrote the event).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

_configured: dict[str, object] = {}


def configure_tracing(service: str, endpoint: str) -> object | None:
    """Install the exporter and the gRPC instrumentation once per process; None when tracing is off."""
    if not endpoint:
        return None
    if "provider" in _configured:
        return _configured["provider"]
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"yaosu-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    # Patches grpc.aio.server / channels created from now on.
    GrpcAioInstrumentorServer().instrument()
    GrpcAioInstrumentorClient().instrument()
    _configured["provider"] = provider
    return provider


def shutdown_tracing() -> None:
    provider = _configured.get("provider")
    if provider is not None:
        provider.force_flush()


def current_trace_context() -> dict[str, str]:
    """The W3C headers of the active span, to carry inside an event envelope."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def consuming(name: str, trace_context: Mapping[str, str]) -> Iterator[None]:
    """A consumer span that continues the producer's trace."""
    parent = propagate.extract(dict(trace_context))
    token = otel_context.attach(parent)
    try:
        with trace.get_tracer("yaosu.events").start_as_current_span(name, kind=trace.SpanKind.CONSUMER):
            yield
    finally:
        otel_context.detach(token)
