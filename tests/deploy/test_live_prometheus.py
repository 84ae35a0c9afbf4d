"""A real Prometheus, run with the repository's local configuration and rules, scraping real targets.

The configuration file under test is deploy/prometheus/prometheus.local.yml: the test changes only the
target addresses (to free ports) and the scrape/evaluation intervals (to 1 s), and points rule_files at
the repository's rule files. Everything else (jobs, paths, labels) is the committed file.

Targets: by default, small HTTP servers started here that export, through prometheus_client, every
metric of docs/metrics.md for the job that owns it (parsed from the catalogue, so they follow the
contract). To point the test at the real suite instead, set
    YAOSU_PROM_TARGETS="registry=127.0.0.1:9101,evaluation=127.0.0.1:9102,trading=127.0.0.1:9103,gateway=127.0.0.1:9104"
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

from tests.deploy.conftest import require_binary
from tests.deploy.promql_names import REPO

PROM_DIR = REPO / "deploy/prometheus"
JOBS = ("registry", "evaluation", "trading", "gateway")
DEADLINE_S = 90.0

# Realistic label values; any label not listed gets "test".
LABEL_VALUES = {
    "grpc_type": "unary", "grpc_method": "Check", "grpc_code": "OK", "service": "test", "version": "0.0.0",
    "stream": "TRADING", "reason": "", "consumer": "test-consumer", "outcome": "ok", "kind": "land_use_right",
    "status": "200", "operation": "transfer", "result": "accepted", "grade": "A", "size_class": "above",
    "mechanism": "english", "side": "buy", "instrument_kind": "energy_use_right", "state": "bidding",
    "bidders": "multiple", "method": "GET", "route": "/api/v1/listings", "role": "enterprise",
}


# ------------------------------------------------------------------------------------ the metric contract
def contract() -> dict[str, list[tuple[str, str, list[str]]]]:
    """job → [(metric, type, label names)] from docs/metrics.md."""
    jobs: dict[str, list[tuple[str, str, list[str]]]] = {job: [] for job in JOBS}
    owners: tuple[str, ...] = ()
    for line in (REPO / "docs/metrics.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip().lower()
            owners = JOBS if heading.startswith("every grpc service") else tuple(j for j in JOBS if j == heading)
            continue
        m = re.match(r"\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram)\s*\|(.*)\|\s*$", line)
        if not m:
            continue
        labels_cell = re.sub(r"\([^)]*\)", "", m.group(3))
        labels = [name.strip() for group in re.findall(r"`([^`]*)`", labels_cell) for name in group.split(",")]
        for job in owners:
            jobs[job].append((m.group(1), m.group(2), [label for label in labels if label]))
    return jobs


def fake_registry(job: str) -> tuple[CollectorRegistry, Callable[[], None]]:
    """A registry with the job's catalogue metrics and a tick() that moves them (called on every scrape)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    movers: list[Callable[[], None]] = []
    for name, kind, labels in contract()[job]:
        values = [LABEL_VALUES.get(label, "test") for label in labels]
        if kind == "counter":
            metric = Counter(name.removesuffix("_total"), name, labels, registry=registry)
            child = metric.labels(*values) if labels else metric
            movers.append(lambda c=child: c.inc(3))
        elif kind == "gauge":
            metric = Gauge(name, name, labels, registry=registry)
            child = metric.labels(*values) if labels else metric
            movers.append(lambda c=child: c.set(1))
        else:
            metric = Histogram(name, name, labels, registry=registry)
            child = metric.labels(*values) if labels else metric
            movers.append(lambda c=child: (c.observe(0.004), c.observe(0.2)))
    assert movers, f"docs/metrics.md names no metric for {job}"

    def tick() -> None:
        for move in movers:
            move()

    return registry, tick


class MetricsServer:
    def __init__(self, job: str) -> None:
        registry, tick = fake_registry(job)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                with lock:
                    tick()
                    body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------- config from template
def local_config(targets: dict[str, str], prometheus_address: str, interval: str = "1s") -> dict:
    """prometheus.local.yml with the targets and intervals replaced, rule files made absolute."""
    cfg = yaml.safe_load((PROM_DIR / "prometheus.local.yml").read_text())
    cfg["global"]["scrape_interval"] = cfg["global"]["evaluation_interval"] = interval
    cfg["global"]["scrape_timeout"] = interval
    cfg["rule_files"] = [str((PROM_DIR / f).resolve()) for f in cfg["rule_files"]]
    seen = set()
    for sc in cfg["scrape_configs"]:
        job = sc["job_name"]
        address = prometheus_address if job == "prometheus" else targets[job]
        assert len(sc["static_configs"]) == 1 and len(sc["static_configs"][0]["targets"]) == 1, job
        sc["static_configs"][0]["targets"] = [address]
        seen.add(job)
    assert seen >= set(JOBS), f"prometheus.local.yml lacks jobs {set(JOBS) - seen}"
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def poll(what: str, check: Callable[[], object], proc: subprocess.Popen, log: Path,
         detail: Callable[[], object] | None = None) -> object:
    """Call check() until it returns a truthy value; fail at the deadline or if Prometheus exits."""
    deadline = time.monotonic() + DEADLINE_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            last = check()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.25)  # polling cadence, not a timing assumption
    shown = detail() if detail else last
    pytest.fail(f"timed out waiting for {what}; last: {shown!r}\n{log.read_text()[-4000:]}")


# ------------------------------------------------------------------------------------------------ fixture
@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path, dict[str, str]]]:
    binary = require_binary("prometheus", "prometheus")
    servers: list[MetricsServer] = []
    if os.environ.get("YAOSU_PROM_TARGETS"):
        targets = dict(item.split("=", 1) for item in os.environ["YAOSU_PROM_TARGETS"].split(","))
    else:
        servers = [MetricsServer(job) for job in JOBS]
        targets = {job: server.address for job, server in zip(JOBS, servers, strict=True)}
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_config(targets, address), sort_keys=False))
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address={address}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://{address}", proc, log, targets
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for server in servers:
            server.close()


def recorded_names() -> list[str]:
    return [r["record"] for g in yaml.safe_load((PROM_DIR / "rules/recording.yml").read_text())["groups"]
            for r in g["rules"] if "record" in r]


# ------------------------------------------------------------------------------------------------- tests
def test_contract_parser_reads_every_job():
    jobs = contract()
    names = {job: {name for name, _, _ in metrics} for job, metrics in jobs.items()}
    assert "grpc_server_handled_total" in names["registry"]
    assert "trading_bids_total" in names["trading"] and "trading_bids_total" not in names["registry"]
    assert "http_requests_total" in names["gateway"]
    assert dict((n, ls) for n, _, ls in jobs["trading"])["trading_sales_closed_total"] == [
        "mechanism", "outcome", "bidders"]


def test_prometheus_scrapes_every_target_and_records_every_rule(prometheus):
    base, proc, log, targets = prometheus
    poll("prometheus ready", lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=5).status == 200,
         proc, log)

    def all_up() -> bool:
        active = get_json(f"{base}/api/v1/targets?state=active")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return set(JOBS) <= set(health) and all(h == "up" for h in health.values()) and health

    health = poll("every target up", all_up, proc, log)
    assert set(health) == {*JOBS, "prometheus"}

    def query(expr: str) -> list[dict]:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return get_json(url)["data"]["result"]

    up = {s["metric"]["job"]: s["metric"]["instance"] for s in query("up == 1")}
    for job in JOBS:
        assert up[job] == targets[job]

    missing: list[str] = []

    def every_rule_has_series() -> bool:
        missing[:] = [name for name in recorded_names() if not query(name)]
        jobs = {s["metric"]["job"] for s in query("job:grpc_server_requests:rate5m > 0")}
        missing.extend(f"job:grpc_server_requests:rate5m{{job={job!r}}}" for job in set(JOBS) - jobs)
        return not missing

    poll("series for every recording rule", every_rule_has_series, proc, log, detail=lambda: missing)

    # The RED figures carry the job label and sensible values.
    rate = {s["metric"]["job"]: float(s["value"][1]) for s in query("job:grpc_server_requests:rate5m")}
    assert set(rate) == set(JOBS) and all(v > 0 for v in rate.values())
    p99 = {s["metric"]["job"]: float(s["value"][1]) for s in query("job:grpc_server_handling_seconds:p99_rate5m")}
    assert all(0 < v <= 0.25 for v in p99.values()), p99
    ratio = query('job:grpc_server_errors:ratio_rate5m{job="trading"}')
    assert float(ratio[0]["value"][1]) == 0.0

    # Every rule group loaded and every rule evaluates without error.
    groups = get_json(f"{base}/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {"YaosuServiceDown", "YaosuAuditJournalBroken"}
    assert [r["name"] for r in rules if r["health"] == "err"] == []
    # Healthy fakes: no service-level alert is firing.
    firing = {a["labels"]["alertname"] for a in get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
              if a["state"] == "firing"}
    assert not firing & {"YaosuServiceDown", "YaosuServiceAbsent", "YaosuAuditJournalBroken"}
