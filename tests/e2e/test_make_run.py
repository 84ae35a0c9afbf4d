"""`make run`'s launcher from an empty data folder: every service SERVING with demo data, metrics that
pass promtool, and a clean stop on SIGTERM with no process left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from yaosu.registry.v1 import registry_pb2, registry_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _query(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def _assert_prometheus_sees_the_suite(services: dict) -> None:
    """Through Prometheus's HTTP API: every target up, and the recording rules produce series."""
    port = services["prometheus"]["http_port"]
    expected = {name for name in services if name != "prometheus"} | {"prometheus"}
    deadline = time.monotonic() + 90
    while True:
        targets = _query(port, "/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        rule_series = _query(port, "/api/v1/query?query=job:grpc_server_requests:rate5m")["data"]["result"]
        if set(health) >= expected and all(h == "up" for h in health.values()) and rule_series:
            break
        assert time.monotonic() < deadline, f"targets {health}, recording rule series {rule_series}"
        time.sleep(1)
    rules = _query(port, "/api/v1/rules")["data"]["groups"]
    assert all(rule["health"] == "ok" for group in rules for rule in group["rules"]), rules


def test_devstack_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}", "DEVSTACK_QUIET": "1"}
    env.pop("NATS_URL", None)
    observed = shutil.which("prometheus") is not None
    arguments = ["--data", str(data), "--free-ports"] + (["--observed"] if observed else [])
    process = subprocess.Popen([sys.executable, "-m", "tools.devstack", *arguments],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 300
        for line in process.stdout:
            output.append(line)
            if "yaosu is running" in line or time.monotonic() > deadline:
                break
        assert any("yaosu is running" in line for line in output), "".join(output)
        endpoints = json.loads((data / "endpoints.json").read_text())
        keys = json.loads((data / "credentials.json").read_text())
        services = endpoints["services"]
        for name, where in services.items():
            if where["grpc_port"]:
                with grpc.insecure_channel(f"127.0.0.1:{where['grpc_port']}") as channel:
                    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                    assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        registry = services["registry"]
        with grpc.insecure_channel(f"127.0.0.1:{registry['grpc_port']}") as channel:
            listed = registry_pb2_grpc.RegistryServiceStub(channel).ListEnterprises(
                registry_pb2.ListEnterprisesRequest(), metadata=[("authorization", f"Bearer {keys['admin']}")],
                timeout=5)
        assert listed.page.total_size == 300  # the demo jurisdiction was loaded on first start
        with urllib.request.urlopen(f"http://127.0.0.1:{registry['metrics_port']}/metrics",  # noqa: S310
                                    timeout=5) as response:
            body = response.read().decode()
        assert "registry_catalogue_items" in body
        if shutil.which("promtool"):
            checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        if observed:
            _assert_prometheus_sees_the_suite(services)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            rest, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            rest, _ = process.communicate()
        output.append(rest or "")
    assert process.returncode == 0, "".join(output)
    assert "yaosu stopped" in "".join(output)
    for name, where in services.items():
        assert not _alive(where["pid"]), f"{name} outlived the launcher"
    assert not _alive(endpoints["supervisor_pid"])
