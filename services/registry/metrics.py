"""The registry's business metrics (docs/metrics.md)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge


class RegistryMetrics:
    """Observer of ledger and catalogue use cases; also keeps the catalogue gauge fresh."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.catalogue_items = Gauge("registry_catalogue_items", "Catalogue items by kind and status.",
                                     ("kind", "status"), registry=registry)
        self.ledger_operations = Counter("registry_ledger_operations_total", "Ledger operations.",
                                         ("operation", "outcome"), registry=registry)
        for operation in ("issue", "transfer", "hold", "post", "void", "retire", "deposit", "withdrawal"):
            for outcome in ("ok", "replayed", "refused"):
                self.ledger_operations.labels(operation, outcome)
        self.catalogue_dirty = asyncio.Event()
        self.catalogue_dirty.set()

    def operation(self, operation: str, outcome: str) -> None:
        self.ledger_operations.labels(operation, outcome).inc()

    def catalogue_changed(self) -> None:
        self.catalogue_dirty.set()

    def set_catalogue_counts(self, counts: list[tuple[str, str, int]]) -> None:
        self.catalogue_items.clear()
        for kind, status, items in counts:
            self.catalogue_items.labels(kind, status).set(items)
