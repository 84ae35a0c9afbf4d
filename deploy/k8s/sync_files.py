#!/usr/bin/env python3
"""Copy the Prometheus and Grafana files the observability component packages into ConfigMaps.

kustomize only reads files at or below a kustomization's directory, so the component keeps copies in
components/observability/files/. Run after changing deploy/prometheus or deploy/grafana:
    python deploy/k8s/sync_files.py
tests/deploy/test_k8s_manifests.py fails when the copies are stale.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
FILES = DEPLOY / "k8s/components/observability/files"


def sources() -> dict[str, Path]:
    """Name in files/ → source file."""
    out = {"prometheus.k8s.yml": DEPLOY / "prometheus/prometheus.k8s.yml",
           "grafana-datasource.yaml": DEPLOY / "grafana/provisioning/datasources/prometheus.yaml",
           "grafana-dashboards.yaml": DEPLOY / "grafana/provisioning/dashboards/yaosu.yaml"}
    out |= {f"rules-{p.name}": p for p in sorted((DEPLOY / "prometheus/rules").glob("*.yml"))}
    out |= {p.name: p for p in sorted((DEPLOY / "grafana/dashboards").glob("*.json"))}
    return out


# The nats component's copy of the NATS users (rendered from services/common/events/topology.py).
NATS_USERS = (DEPLOY / "nats/users.conf", DEPLOY / "k8s/components/nats/users.conf")


def main() -> int:
    shutil.copyfile(*NATS_USERS)
    if FILES.exists():
        shutil.rmtree(FILES)
    FILES.mkdir(parents=True)
    for name, source in sources().items():
        shutil.copyfile(source, FILES / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
