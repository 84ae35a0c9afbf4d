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


def test_devstack_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}", "DEVSTACK_QUIET": "1"}
    env.pop("NATS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "tools.devstack", "--data", str(data), "--free-ports"],
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
