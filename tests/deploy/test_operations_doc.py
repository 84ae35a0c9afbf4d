"""docs/operations.md names every alert's runbook and every capacity benchmark."""

from __future__ import annotations

import yaml

from tests.deploy.promql_names import REPO

DOC = (REPO / "docs/operations.md").read_text(encoding="utf-8")


def test_every_alert_has_a_runbook_section():
    rules = yaml.safe_load((REPO / "deploy/prometheus/rules/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert f"\n### {rule['alert']}\n" in DOC, rule["alert"]


def test_capacity_table_lists_the_benchmarks():
    section = DOC.split("Capacity figures (from `make bench`)", 1)[1]
    for name in ("ledger transfers via gRPC", "evaluation, 1 M enterprises in-process", "evaluation, 50 k county via gRPC",
                 "matching engine", "clearing 1 M lots", "bids via gRPC", "bids via REST"):
        assert name in section, name
