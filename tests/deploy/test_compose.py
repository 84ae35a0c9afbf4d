"""deploy/compose/docker-compose.yml: structure (no Docker engine here, so parse and check)."""

from __future__ import annotations

import re

import yaml

from services.common.events.topology import NATS_USERS, STREAMS_USER
from tests.deploy.promql_names import REPO

COMPOSE = REPO / "deploy/compose"
YAOSU = {"registry": ("50051", "9101"), "evaluation": ("50052", "9102"), "trading": ("50053", "9103"),
         "gateway": ("8000", "9104")}
ORDER = ["registry", "evaluation", "trading", "gateway"]


def _compose() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())  # resolves anchors and <<


def test_every_component_is_present():
    assert set(_compose()["services"]) == {*YAOSU, "postgres", "nats", "prometheus", "grafana"}


def test_every_service_has_image_healthcheck_and_read_only_root():
    for name, svc in _compose()["services"].items():
        assert svc.get("image") or svc.get("build"), name
        assert svc["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert svc.get("read_only") is True, name
        assert svc.get("restart") == "unless-stopped", name


def test_yaosu_services_build_from_the_one_dockerfile_with_their_env():
    services = _compose()["services"]
    for name, (port, metrics_port) in YAOSU.items():
        svc = services[name]
        assert svc["build"] == {"context": "../..", "dockerfile": "deploy/docker/Dockerfile",
                                "args": {"SERVICE": name}}
        assert (REPO / "deploy/compose" / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        env = svc["environment"]
        # Each service its own NATS user (deploy/nats/users.conf), its password from the environment.
        assert env["NATS_URL"] == f"nats://{name}:${{NATS_{name.upper()}_PASSWORD:-yaosu-dev-only-{name}}}@nats:4222"
        assert {env["REGISTRY_ADDR"], env["EVALUATION_ADDR"], env["TRADING_ADDR"]} == {
            "registry:50051", "evaluation:50052", "trading:50053"}
        assert env["DATABASE_URL"].startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:////data/"))
        if name == "gateway":
            assert (env["HTTP_PORT"], env["METRICS_PORT"]) == (port, metrics_port)
            # Only the API is published; Prometheus reads the metrics port on the compose network.
            assert svc["ports"] == [f"127.0.0.1:{port}:{port}"]
        else:
            assert (env["GRPC_PORT"], env["METRICS_PORT"]) == (port, metrics_port)
            assert env["DATABASE_URL"].endswith(f"@postgres:5432/{name}")
        assert svc["user"] == "10001:10001" and svc["cap_drop"] == ["ALL"]
        assert svc["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]
        assert "/tmp" in svc["tmpfs"][0]


def test_depends_on_is_sensible():
    services = _compose()["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services and dep != name, (name, dep)
            assert cond["condition"] in {"service_healthy", "service_started"}
    # The start order follows the gRPC calls: evaluation→registry, trading→registry+evaluation, gateway→all.
    for i, name in enumerate(ORDER):
        deps = services[name]["depends_on"]
        assert {d for d in ORDER[:i]} <= set(deps), name
        assert all(deps[d]["condition"] == "service_healthy" for d in ORDER[:i])
        assert deps["nats"]["condition"] == "service_healthy"
    for name in ("registry", "evaluation", "trading"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # No cycles.
    seen: dict[str, int] = {}

    def visit(n: str) -> None:
        assert seen.get(n) != 1, f"cycle through {n}"
        if seen.get(n) == 2:
            return
        seen[n] = 1
        for d in services[n].get("depends_on", {}):
            visit(d)
        seen[n] = 2

    for n in services:
        visit(n)


def test_nats_has_jetstream_on_a_volume():
    nats = _compose()["services"]["nats"]
    assert nats["command"] == ["-c", "/etc/nats/nats.conf"]
    conf = (REPO / "deploy/nats/nats.compose.conf").read_text()
    assert "store_dir: /data" in conf and "sync_interval: always" in conf and "include users.conf" in conf
    assert any(v.endswith(":/data") for v in nats["volumes"])
    assert set(nats["environment"]) == {f"NATS_{user.upper()}_PASSWORD" for user in (*NATS_USERS, STREAMS_USER)}


def test_mounted_files_exist():
    for name, svc in _compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), (name, source)
    assert set(_compose()["volumes"]) >= {"nats-data", "pg-data", "prometheus-data", "grafana-data"}


def test_compose_prometheus_config_matches_the_local_one():
    prom = REPO / "deploy/prometheus"
    local = yaml.safe_load((prom / "prometheus.local.yml").read_text())
    compose = yaml.safe_load((prom / "prometheus.compose.yml").read_text())
    assert compose["rule_files"] == local["rule_files"]
    assert {k: v for k, v in compose["global"].items() if k != "external_labels"} == {
        k: v for k, v in local["global"].items() if k != "external_labels"}
    targets = {sc["job_name"]: sc["static_configs"][0]["targets"] for sc in compose["scrape_configs"]}
    for job, (_, metrics_port) in YAOSU.items():
        assert targets[job] == [f"{job}:{metrics_port}"]


def test_no_secret_is_hard_coded_without_an_override():
    text = (COMPOSE / "docker-compose.yml").read_text()
    for match in re.finditer(r"^\s+(\w*PASSWORD\w*):\s*(\S+)", text, re.MULTILINE):
        assert match.group(2).startswith("${"), match.group(0)
