"""Prometheus configuration and rules: promtool checks, promtool unit tests, the metric contract."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.deploy.conftest import require_binary
from tests.deploy.promql_names import REPO, catalogue, metric_names, unknown_names

PROM = REPO / "deploy/prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))


def _rules() -> list[dict]:
    return [r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def _recorded() -> set[str]:
    return {r["record"] for r in _rules() if "record" in r}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROM, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules():
    promtool = require_binary("promtool", "prometheus")
    result = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_local_config():
    promtool = require_binary("promtool", "prometheus")
    result = _run(promtool, "check", "config", "prometheus.local.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    promtool = require_binary("promtool", "prometheus")
    result = _run(promtool, "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_alert_is_unit_tested_firing_and_not_firing():
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    firing, quiet = set(), set()
    for f in TEST_FILES:
        for group in yaml.safe_load(f.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested not firing"


@pytest.mark.parametrize("required", [
    "YaosuServiceDown", "YaosuGrpcErrorRatioHigh", "YaosuHttpErrorRatioHigh", "YaosuGrpcLatencyHigh",
    "YaosuOutboxBacklogGrowing", "YaosuConsumerLagging", "YaosuSettlementStuck", "YaosuAuditJournalBroken",
    "YaosuSaleClosedWithSingleBidder"])
def test_required_alert_exists_with_runbook(required):
    rule = next((r for r in _rules() if r.get("alert") == required), None)
    assert rule is not None
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    for key in ("summary", "description", "runbook"):
        assert len(rule["annotations"].get(key, "")) > 20, (required, key)


def test_recording_rules_required_by_the_issue():
    recorded = _recorded()
    for name in ("job:grpc_server_requests:rate5m", "job:grpc_server_errors:ratio_rate5m",
                 "job:grpc_server_handling_seconds:p50_rate5m", "job:grpc_server_handling_seconds:p99_rate5m",
                 "job:http_requests:rate5m", "job:http_requests_errors:ratio_rate5m",
                 "job:http_request_duration_seconds:p99_rate5m", "mechanism_result:trading_bids:per_minute5m",
                 "instrument_kind:trading_trades:per_minute5m", "instrument_kind:trading_traded_quantity:increase1h",
                 "mechanism:trading_open_sales:sum"):
        assert name in recorded


def test_rules_read_only_catalogued_metrics():
    recorded = _recorded()
    for rule in _rules():
        assert unknown_names(rule["expr"], recorded) == set(), rule.get("record") or rule.get("alert")


def test_metric_name_extraction():
    names = metric_names('sum by (job, le) (rate(foo_bucket{job=~"a|b"}[5m])) / on (job) group_left bar'
                         ' or absent(up{job="x"}) unless baz offset 15m > bool 0')
    assert names == {"foo_bucket", "bar", "up", "baz"}
    assert "trading_bids_total" in catalogue()


def test_local_config_scrapes_every_service_on_its_port():
    cfg = yaml.safe_load((PROM / "prometheus.local.yml").read_text())
    targets = {sc["job_name"]: [t for s in sc["static_configs"] for t in s["targets"]] for sc in cfg["scrape_configs"]}
    assert targets["registry"] == ["127.0.0.1:9101"]
    assert targets["evaluation"] == ["127.0.0.1:9102"]
    assert targets["trading"] == ["127.0.0.1:9103"]
    assert targets["gateway"] == ["127.0.0.1:9104"]  # its metrics port: the API port has no /metrics
    assert {(PROM / f).resolve() for f in cfg["rule_files"]} == {f.resolve() for f in RULE_FILES}


def test_k8s_config_derives_job_from_service_name():
    # The Debian prometheus build has no Kubernetes service discovery, so promtool cannot load this
    # file here; check its structure instead.
    cfg = yaml.safe_load((PROM / "prometheus.k8s.yml").read_text())
    sc = next(s for s in cfg["scrape_configs"] if s["job_name"] == "yaosu-services")
    assert sc["kubernetes_sd_configs"][0]["role"] == "endpoints"
    relabel = {(tuple(r.get("source_labels", [])), r.get("target_label"), r.get("action", "replace")) for r in
               sc["relabel_configs"]}
    assert (("__meta_kubernetes_service_label_app_kubernetes_io_name",), "job", "replace") in relabel
    assert (("__meta_kubernetes_endpoint_port_name",), None, "keep") in relabel
    assert cfg["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert cfg["global"] == yaml.safe_load((PROM / "prometheus.local.yml").read_text())["global"] | {
        "external_labels": {"suite": "yaosu", "env": "kubernetes"}}
