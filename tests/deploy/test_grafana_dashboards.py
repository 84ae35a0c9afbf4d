"""Dashboards as code: the committed JSON is what the generator writes, and reads only known series."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.deploy.promql_names import REPO, unknown_names

GRAFANA = REPO / "deploy/grafana"
COMMITTED = GRAFANA / "dashboards"


def _recorded() -> set[str]:
    return {r["record"] for f in (REPO / "deploy/prometheus/rules").glob("*.yml")
            for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "record" in r}


def test_committed_dashboards_are_current(tmp_path):
    # Run the generator as operators do (a plain interpreter, stdlib only) into a temp dir.
    result = subprocess.run([sys.executable, "-I", str(GRAFANA / "dashboards.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED.glob("*.json")}
    assert sorted(fresh) == sorted(committed), "run `python deploy/grafana/dashboards.py` and commit"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale dashboards {stale}: run `python deploy/grafana/dashboards.py` and commit"


def _dashboards() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(COMMITTED.glob("*.json"))]


def test_expected_dashboards_exist():
    assert {d["uid"] for d in _dashboards()} == {"yaosu-overview", "yaosu-market", "yaosu-evaluation",
                                                 "yaosu-events"}


def test_panels_are_well_formed_and_read_only_known_series():
    recorded = _recorded()
    for board in _dashboards():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for panel in board["panels"]:
            assert 0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            if panel["type"] == "row":
                continue
            assert panel["targets"], (board["uid"], panel["title"])
            for target in panel["targets"]:
                assert panel["datasource"]["uid"] == "${datasource}"
                unknown = unknown_names(target["expr"], recorded)
                assert not unknown, (board["uid"], panel["title"], unknown)


def test_panels_do_not_overlap():
    for board in _dashboards():
        cells = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (board["uid"], panel["title"])
                    cells.add((x, y))


def test_provisioning_points_at_the_dashboards_and_prometheus():
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    prov = yaml.safe_load((GRAFANA / "provisioning/dashboards/yaosu.yaml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/yaosu"
