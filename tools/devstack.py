"""`make run`: the whole suite on one machine with embedded defaults.

Starts a nats-server with JetStream (unless NATS_URL names a reachable one), writes development API keys,
starts every service as its own process with its own SQLite file, waits until each reports SERVING on the
standard gRPC health service (the gateway on /healthz), prints where everything is, and on Ctrl-C or
SIGTERM stops the services in reverse order, then NATS.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import key_digest
from services.common.natsd import NatsServer, NatsUser

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Component:
    name: str
    grpc_port: int = 0
    metrics_port: int = 0
    http_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    grpc_service: str = ""

    @property
    def present(self) -> bool:
        return (ROOT / "services" / self.name / "__main__.py").exists()


COMPONENTS = [
    Component("registry", 50051, 9101, grpc_service="yaosu.registry.v1.RegistryService"),
    Component("evaluation", 50052, 9102, grpc_service="yaosu.evaluation.v1.EvaluationService"),
    Component("trading", 50053, 9103, grpc_service="yaosu.trading.v1.TradingService"),
    # The gateway's metrics have their own port: never on the public API port (issue 10, sealed sales).
    Component("gateway", metrics_port=9104, http_port=8000),
]


def key_specs() -> dict[str, dict]:
    """The development principals (services.common.authz): the services, the gateway's delegate, a
    regulator, an administrator, one key per demo agency with its roles, and two principals of the
    settlement bank (deposits need one to request and another to approve)."""
    from services.registry.demo import AGENCIES, SETTLEMENT_BANK

    specs: dict[str, dict] = {"admin": {"principal": "admin", "kind": "admin"},
                              "gateway": {"principal": "gateway", "kind": "service", "delegate": True},
                              "regulator": {"principal": "regulator", "kind": "regulator"}}
    specs |= {name: {"principal": name, "kind": "service"} for name in ("registry", "evaluation", "trading")}
    specs |= {f"agency:{agency_id}": {"principal": f"agency:{agency_id}", "kind": "agency", "agency_id": agency_id,
                                      "roles": list(roles)}
              for agency_id, _, roles in AGENCIES if agency_id != SETTLEMENT_BANK}
    specs |= {f"bank:{who}": {"principal": f"bank:{who}", "kind": "agency", "agency_id": SETTLEMENT_BANK,
                              "roles": ["settlement"]} for who in ("teller", "approver")}
    return specs


def credentials(data: Path) -> dict[str, str]:
    """Development API keys (and trading's sealing key), made once and kept in .data (git-ignored);
    the services get only digests of the API keys."""
    path = data / "credentials.json"
    keys = json.loads(path.read_text()) if path.exists() else {}
    from services.common.events.topology import NATS_USERS

    missing = [name for name in (*key_specs(), "sealing", *(f"nats:{user}" for user in NATS_USERS))
               if name not in keys]
    for name in missing:
        keys[name] = secrets.token_urlsafe(32 if name == "sealing" else 24)
    if missing:
        path.write_text(json.dumps(keys, indent=2))
        path.chmod(0o600)
    return keys


def api_keys_file(data: Path, keys: dict[str, str]) -> Path:
    path = data / "api_keys.json"
    path.write_text(json.dumps({key_digest(keys[name]): spec for name, spec in key_specs().items()}, indent=2))
    return path


def nats_users(keys: dict[str, str]) -> tuple[NatsUser, ...]:
    """One NATS user per service, with the permissions services/common/events/topology.py declares."""
    from services.common.events.topology import NATS_USERS, nats_permissions

    return tuple(NatsUser(user, keys[f"nats:{user}"], nats_permissions(user)) for user in NATS_USERS)


def nats_reachable(url: str) -> bool:
    host, _, port = url.removeprefix("nats://").rsplit("@", 1)[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def wait_grpc(port: int, service: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited with {process.returncode}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"{service} did not report SERVING within {timeout:.0f} s")


def wait_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def pipe_output(name: str, process: subprocess.Popen, log_dir: Path) -> None:
    """Copy a child's output to .data/logs/<name>.log and, prefixed, to our stdout."""
    with open(log_dir / f"{name}.log", "ab") as log:
        for line in iter(process.stdout.readline, b""):
            log.write(line)
            log.flush()
            if os.environ.get("DEVSTACK_QUIET") != "1":
                sys.stdout.write(f"{name:>10} | {line.decode(errors='replace')}")
                sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT / ".data"))
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--free-ports", action="store_true",
                        help="pick free ports instead of the standard ones (tests; a second suite beside the first)")
    parser.add_argument("--observed", action="store_true",
                        help="also run Prometheus (Debian package) with deploy/prometheus rules against the suite")
    parser.add_argument("--services", default="",
                        help="comma-separated subset to start (default: every service in the tree)")
    args = parser.parse_args()
    if args.services:
        wanted = set(args.services.split(","))
        COMPONENTS[:] = [c for c in COMPONENTS if c.name in wanted]
    if args.free_ports:
        from services.common.natsd import free_port
        for component in COMPONENTS:
            component.grpc_port = free_port() if component.grpc_port else 0
            component.metrics_port = free_port() if component.metrics_port else 0
            component.http_port = free_port() if component.http_port else 0
    data = Path(args.data)
    (data / "logs").mkdir(parents=True, exist_ok=True)
    keys = credentials(data)
    keys_file = api_keys_file(data, keys)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    nats_url = os.environ.get("NATS_URL", "")
    nats_server = None
    if nats_url and nats_reachable(nats_url):
        print(f"using NATS at {nats_url}")  # noqa: T201
    else:
        ports = (0, 0) if args.free_ports else (4233, 8233)
        nats_server = NatsServer(data / "nats", port=ports[0], monitor_port=ports[1],
                                 log_file=data / "logs" / "nats.log", users=nats_users(keys))
        nats_server.start()
        nats_url = nats_server.url
    addresses = {c.name: f"127.0.0.1:{c.grpc_port}" for c in COMPONENTS if c.grpc_port}
    children: list[tuple[Component, subprocess.Popen]] = []
    try:
        for component in [c for c in COMPONENTS if c.present]:
            service_nats_url = nats_server.url_for(component.name) if nats_server else nats_url
            env = {**os.environ, "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}", "NATS_URL": service_nats_url,
                   "DATABASE_URL": f"sqlite+aiosqlite:///{data / (component.name + '.db')}",
                   "API_KEYS_FILE": str(keys_file), "SERVICE_API_KEY": keys[component.name],
                   "DEMO_DATA": "true", "DATA_DIR": str(data), "SEALING_KEY": keys["sealing"],
                   **{f"{name.upper()}_ADDR": address for name, address in addresses.items()}}
            if component.grpc_port:
                env |= {"GRPC_PORT": str(component.grpc_port)}
            if component.metrics_port:
                env |= {"METRICS_PORT": str(component.metrics_port)}
            if component.http_port:
                env |= {"HTTP_PORT": str(component.http_port)}
            process = subprocess.Popen([sys.executable, "-m", f"services.{component.name}"], cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            children.append((component, process))
            threading.Thread(target=pipe_output, args=(component.name, process, data / "logs"), daemon=True).start()
            if component.grpc_port:
                wait_grpc(component.grpc_port, component.grpc_service, process, args.start_timeout)
            else:
                wait_http(f"http://127.0.0.1:{component.http_port}/healthz", process, args.start_timeout)
        if args.observed:
            prometheus = start_prometheus(data, children, free=args.free_ports)
            children.append((Component("prometheus", http_port=prometheus[1]), prometheus[0]))
        write_endpoints(data, children, nats_url)
        print_summary(children, nats_url, nats_server, keys, data)
        while not stop.is_set():
            for component, process in children:
                if process.poll() is not None:
                    print(f"{component.name} exited with {process.returncode}; stopping the suite")  # noqa: T201
                    stop.set()
            stop.wait(0.5)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"start-up failed: {exc} (see {data / 'logs'})", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        for _component, process in reversed(children):
            if process.poll() is None:
                process.terminate()
        for _component, process in reversed(children):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if nats_server:
            nats_server.stop()
        print("yaosu stopped")  # noqa: T201


def start_prometheus(data: Path, children, *, free: bool) -> tuple[subprocess.Popen, int]:
    """Prometheus with the repository's local configuration, its targets set to where the suite runs."""
    import shutil

    import yaml

    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus not found: apt-get install prometheus (make test installs it)")
    from services.common.natsd import free_port
    port = free_port() if free else 9090
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.local.yml").read_text())
    where = {c.name: c.metrics_port or c.http_port for c, _ in children}
    config["rule_files"] = [str(ROOT / "deploy/prometheus" / rule) for rule in config.get("rule_files", [])]
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "5s"
    config["global"]["scrape_timeout"] = "4s"
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "prometheus":
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
        elif name in where:
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{where[name]}"]
        else:
            continue  # a service not built yet
        jobs.append(job)
    config["scrape_configs"] = jobs
    folder = data / "prometheus"
    folder.mkdir(exist_ok=True)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    process = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    threading.Thread(target=pipe_output, args=("prometheus", process, data / "logs"), daemon=True).start()
    wait_http(f"http://127.0.0.1:{port}/-/ready", process, 60)
    return process, port


def write_endpoints(data: Path, children, nats_url: str) -> None:
    """What is running where, for tools and tests: .data/endpoints.json."""
    endpoints = {"nats_url": nats_url, "supervisor_pid": os.getpid(), "services": {
        c.name: {"grpc_port": c.grpc_port, "metrics_port": c.metrics_port, "http_port": c.http_port,
                 "pid": p.pid} for c, p in children}}
    (data / "endpoints.json").write_text(json.dumps(endpoints, indent=2))


def print_summary(children, nats_url: str, nats_server, keys: dict[str, str], data: Path) -> None:
    lines = ["", "yaosu is running — Ctrl-C stops everything", ""]
    for component, _ in children:
        if component.grpc_port:
            lines.append(f"  {component.name:<11} gRPC 127.0.0.1:{component.grpc_port}   metrics "
                         f"http://127.0.0.1:{component.metrics_port}/metrics")
        else:
            lines.append(f"  {component.name:<11} http://127.0.0.1:{component.http_port}/   API docs "
                         f"http://127.0.0.1:{component.http_port}/docs   metrics "
                         f"http://127.0.0.1:{component.metrics_port or component.http_port}/metrics")
    monitor = f"   monitor http://127.0.0.1:{nats_server.monitor_port}/" if nats_server else ""
    lines.append(f"  {'nats':<11} {nats_url}{monitor}")
    lines.append("")
    lines.append(f"  gRPC API keys (send 'authorization: Bearer <key>'): admin {keys['admin']}")
    lines.append(f"  every key: {data / 'credentials.json'}   logs: {data / 'logs'}")
    demo_users = data / "demo_users.txt"
    if demo_users.exists():
        lines.append("")
        lines.append(demo_users.read_text().rstrip())
    print("\n".join(lines), flush=True)  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
