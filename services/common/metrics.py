"""Metric families shared by every service, registered on the service's own CollectorRegistry.

The gRPC names and the TitleCase grpc_code values are those of go-grpc-prometheus, so existing gRPC
dashboards and alerts apply unchanged (docs/metrics.md).
"""

from __future__ import annotations

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
    start_http_server,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

GRPC_CODE_LABEL = {code: "".join(part.title() for part in code.name.split("_")) for code in grpc.StatusCode}
GRPC_CODE_LABEL[grpc.StatusCode.OK] = "OK"
GRPC_CODE_LABEL[grpc.StatusCode.CANCELLED] = "Canceled"


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors, as the default one has."""
    registry = CollectorRegistry(auto_describe=True)
    process_collector.ProcessCollector(registry=registry)
    platform_collector.PlatformCollector(registry=registry)
    gc_collector.GCCollector(registry=registry)
    return registry


class GrpcServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        self.started = Counter("grpc_server_started_total", "RPCs started on the server.", labels, registry=registry)
        self.handled = Counter(
            "grpc_server_handled_total", "RPCs completed on the server.", (*labels, "grpc_code"), registry=registry
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds", "RPC handling time.", labels, buckets=LATENCY_BUCKETS, registry=registry
        )


class GrpcClientMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        self.handled = Counter(
            "grpc_client_handled_total", "RPCs completed by the client.", (*labels, "grpc_code"), registry=registry
        )
        self.latency = Histogram(
            "grpc_client_handling_seconds", "RPC time seen by the client.", labels, buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.outbox_pending = Gauge("yaosu_outbox_pending", "Events written, not yet acknowledged by JetStream.",
                                    registry=registry)
        self.outbox_oldest = Gauge("yaosu_outbox_oldest_pending_seconds", "Age of the oldest unpublished event.",
                                   registry=registry)
        self.published = Counter("yaosu_outbox_published_total", "Events published.", ("stream",), registry=registry)
        self.publish_failures = Counter("yaosu_outbox_publish_failures_total", "Failed publish attempts.",
                                        ("reason",), registry=registry)
        self.consumed = Counter("yaosu_events_consumed_total", "Events handled by consumers.",
                                ("consumer", "outcome"), registry=registry)
        self.consumer_pending = Gauge("yaosu_consumer_pending", "Messages the consumer has not yet received.",
                                      ("consumer",), registry=registry)


class WriteEngineMetrics:
    """The write engine (services/common/write_engine.py): how full its batches are, how long a commit and a
    command's whole stay (queue + batch + commit) take, how much waits, and how often a full queue refused."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram("yaosu_write_batch_size", "Commands per committed batch.", ("engine",),
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=registry)
        self.commit_seconds = Histogram("yaosu_write_commit_seconds", "From a batch's start to its commit.",
                                        ("engine",), registry=registry,
                                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.command_seconds = Histogram("yaosu_write_command_seconds", "From a command's queueing to its answer.",
                                         ("engine",), registry=registry,
                                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.queue_depth = Gauge("yaosu_write_queue_depth", "Commands waiting for their writer.", ("engine",),
                                 registry=registry)
        self.overloaded = Counter("yaosu_write_overloaded_total", "Commands refused because the queue was full.",
                                  ("engine",), registry=registry)


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.entries = Counter("yaosu_audit_entries_total", "Entries appended to the audit journal.",
                               registry=registry)
        self.verify_ok = Gauge("yaosu_audit_verify_ok", "1 when the last verification found the chain whole.",
                               registry=registry)
        self.verify_ok.set(1)


def build_info(registry: CollectorRegistry, service: str, version: str) -> None:
    info = Gauge("yaosu_build_info", "Build information.", ("service", "version"), registry=registry)
    info.labels(service, version).set(1)


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> tuple[object, int]:
    """Start /metrics on its own port (a daemon thread); returns the server and the bound port."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, server.server_port
