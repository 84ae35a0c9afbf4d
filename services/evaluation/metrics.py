"""The evaluation service's business metrics (docs/metrics.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

GRADES = ("A", "B", "C", "D", "T")
SIZE_LABEL = {"above_size": "above", "below_size": "below"}


class EvaluationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("evaluation_runs_total", "Evaluation runs.", ("result",), registry=registry)
        for result in ("completed", "failed"):
            self.runs.labels(result)
        self.run_duration = Histogram("evaluation_run_duration_seconds", "Time to compute and store a run.",
                                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160),
                                      registry=registry)
        self.enterprises = Gauge("evaluation_enterprises", "Enterprises by class in the latest published runs.",
                                 ("grade", "size_class"), registry=registry)
        self.rows = Counter("evaluation_rows_total", "Indicator rows submitted.", ("outcome", "reason"),
                            registry=registry)
        self.rows.labels("accepted", "")

    def rows_counted(self, accepted: int, refused_reasons: dict[str, int]) -> None:
        if accepted:
            self.rows.labels("accepted", "").inc(accepted)
        for reason, count in refused_reasons.items():
            self.rows.labels("refused", reason).inc(count)

    def set_classes(self, counts: list[tuple[str, str, int]]) -> None:
        """(grade, size_class in domain terms, enterprises) of the current classes."""
        self.enterprises.clear()
        for grade in GRADES:
            for size in SIZE_LABEL.values():
                self.enterprises.labels(grade, size).set(0)
        for grade, size_class, count in counts:
            self.enterprises.labels(grade, SIZE_LABEL.get(size_class, size_class)).set(count)
