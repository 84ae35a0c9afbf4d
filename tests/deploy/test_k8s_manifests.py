"""deploy/k8s: render with kustomize (kubectl kustomize), validate every manifest, check the shape.

Rendering uses the real kustomize built into kubectl (no home-made renderer). Each component is
rendered on top of the base through a throw-away overlay, and overlays/full renders all of them.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.promql_names import REPO

K8S = REPO / "deploy/k8s"
COMPONENTS = sorted(p.name for p in (K8S / "components").iterdir() if (p / "kustomization.yaml").exists())
K8S_VERSION = "1.30.0"  # the oldest Kubernetes we support: grpc probes GA, preStop sleep
SERVICES = {"registry": 50051, "evaluation": 50052, "trading": 50053}


def kustomize(directory: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed: `apt-get install kubectl` "
                    "(Google Cloud SDK repository) or any kubectl ≥ 1.27 on PATH")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def overlay(tmp_path: Path, components: list[str]) -> Path:
    """A temporary overlay: the base plus the given components (kustomize wants relative paths)."""
    rel = os.path.relpath(K8S, tmp_path)
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
           "resources": [f"{rel}/base"], "components": [f"{rel}/components/{c}" for c in components]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


VARIANTS = ["base", *COMPONENTS, "full"]


@pytest.fixture(params=VARIANTS)
def rendered(request, tmp_path) -> tuple[str, list[dict]]:
    if request.param == "base":
        return "base", kustomize(K8S / "base")
    if request.param == "full":
        return "full", kustomize(K8S / "overlays/full")
    return request.param, kustomize(overlay(tmp_path, [request.param]))


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    out = {}
    for d in docs:
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}:
            out[f"{d['kind']}/{d['metadata']['name']}"] = d["spec"]["template"]
    return out


def test_components_exist():
    assert set(COMPONENTS) == {"postgres", "nats", "observability", "network-policies"}


def test_every_manifest_passes_kubernetes_validate(rendered):
    name, docs = rendered
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_everything_is_in_the_namespace_and_labelled(rendered):
    _, docs = rendered
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "yaosu", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "yaosu"


def test_pods_are_hardened(rendered):
    _, docs = rendered
    for name, template in pod_specs(docs).items():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert c["resources"]["requests"] and c["resources"]["limits"], name


def test_references_resolve(rendered):
    """Every ConfigMap, Secret, ServiceAccount and PVC a pod names exists (after hash suffixes)."""
    _, docs = rendered
    config_maps, secrets = by_kind(docs, "ConfigMap"), by_kind(docs, "Secret")
    accounts, claims = by_kind(docs, "ServiceAccount"), by_kind(docs, "PersistentVolumeClaim")
    for name, template in pod_specs(docs).items():
        spec = template["spec"]
        if "serviceAccountName" in spec:
            assert spec["serviceAccountName"] in accounts, name
        for v in spec.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in config_maps, (name, v)
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, (name, v)
        for c in spec["containers"]:
            for ref in c.get("envFrom", []):
                assert ref["configMapRef"]["name"] in config_maps, name
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["key"] in secrets[ref["name"]]["data"], (name, env["name"])


def test_services_select_pods_and_name_their_ports(rendered):
    _, docs = rendered
    labels = [t["metadata"]["labels"] for t in pod_specs(docs).values()]
    for name, svc in by_kind(docs, "Service").items():
        selector = svc["spec"]["selector"]
        assert any(selector.items() <= pod.items() for pod in labels), name
        assert all(p.get("name") for p in svc["spec"]["ports"]), name


def test_grpc_services_use_grpc_probes_and_the_gateway_http(rendered):
    _, docs = rendered
    deployments = by_kind(docs, "Deployment")
    for svc, port in SERVICES.items():
        c = deployments[svc]["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["grpc"]["port"] == port and c["livenessProbe"]["grpc"]["port"] == port
        assert deployments[svc]["spec"]["strategy"]["type"] == "Recreate"  # single writer
        assert deployments[svc]["spec"]["replicas"] == 1
        assert {p["name"] for p in by_kind(docs, "Service")[svc]["spec"]["ports"]} == {"grpc", "metrics"}
    gw = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gw["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert by_kind(docs, "HorizontalPodAutoscaler")["gateway"]["spec"]["scaleTargetRef"]["name"] == "gateway"
    assert "gateway" in by_kind(docs, "PodDisruptionBudget")


def test_scraped_services_match_the_prometheus_jobs(rendered):
    _, docs = rendered
    scraped = {n for n, s in by_kind(docs, "Service").items()
               if s["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"}
    assert scraped == {"registry", "evaluation", "trading", "gateway"}
    for name in scraped:
        svc = by_kind(docs, "Service")[name]
        assert svc["metadata"]["labels"]["app.kubernetes.io/name"] == name  # becomes the job label
        assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}


def test_gateway_metrics_have_their_own_port_read_by_prometheus_only(rendered):
    # On the public http port, counts by route would reveal that a sealed sale has bids (issue 10).
    _, docs = rendered
    service = {p["name"]: p for p in by_kind(docs, "Service")["gateway"]["spec"]["ports"]}
    assert service["metrics"]["port"] == 9104 and service["metrics"]["targetPort"] == "metrics"
    container = by_kind(docs, "Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000, "metrics": 9104}
    assert {e["name"]: e.get("value") for e in container["env"]}["METRICS_PORT"] == "9104"
    policy = by_kind(docs, "NetworkPolicy").get("gateway")
    if policy:  # the network-policies component
        rules = {p["port"]: rule.get("from") for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert rules[8000] is None  # the public entry point
        assert rules[9104] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]


def test_postgres_component_switches_database_url(tmp_path):
    docs = kustomize(overlay(tmp_path, ["postgres"]))
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].startswith("yaosu-database"))
    import base64
    urls = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert all(u.startswith("postgresql+asyncpg://") and u.endswith(f"@postgres:5432/{k}") for k, u in urls.items())
    assert not by_kind(docs, "PersistentVolumeClaim")  # no SQLite volumes left
    assert by_kind(docs, "StatefulSet")["postgres"]["spec"]["replicas"] == 1


def test_nats_component_is_a_three_node_jetstream_cluster(tmp_path):
    docs = kustomize(overlay(tmp_path, ["nats"]))
    sts = by_kind(docs, "StatefulSet")["nats"]
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["serviceName"] == "nats-headless"
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config"))
    text = conf["data"]["nats.conf"]
    assert "jetstream" in text and all(f"nats-{i}.nats-headless:6222" in text for i in range(3))
    job = by_kind(docs, "Job")["nats-streams"]
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "--replicas 3" in script and all(s in script for s in ("REGISTRY", "EVALUATION", "TRADING"))
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("yaosu-config"))
    assert config["data"]["NATS_STREAM_REPLICAS"] == "3"


def test_network_policies_name_existing_workloads():
    docs = kustomize(K8S / "overlays/full")
    apps = {t["metadata"]["labels"]["app.kubernetes.io/name"] for t in pod_specs(docs).values()}
    policies = by_kind(docs, "NetworkPolicy")
    assert "default-deny-ingress" in policies
    for name, pol in policies.items():
        target = pol["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        assert target is None or target in apps, name
        for rule in pol["spec"]["ingress"]:
            for peer in rule.get("from", []):
                assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] in apps, (name, peer)
    assert {t for t in apps} - {"nats-streams"} <= set(policies)


def test_observability_files_are_current(tmp_path):
    sync = K8S / "sync_files.py"
    files = K8S / "components/observability/files"
    # Run the sync into a copy of the tree's layout to compare without touching the repository.
    sandbox = tmp_path / "deploy"
    shutil.copytree(REPO / "deploy/prometheus", sandbox / "prometheus")
    shutil.copytree(REPO / "deploy/grafana", sandbox / "grafana")
    shutil.copytree(REPO / "deploy/nats", sandbox / "nats")
    (sandbox / "k8s/components/nats").mkdir(parents=True)
    shutil.copy(sync, sandbox / "k8s/sync_files.py")
    result = subprocess.run([sys.executable, "-I", str(sandbox / "k8s/sync_files.py")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    fresh = sandbox / "k8s/components/observability/files"
    cmp = filecmp.dircmp(fresh, files)
    assert not (cmp.left_only or cmp.right_only), "run `python deploy/k8s/sync_files.py` and commit"
    _, mismatch, errors = filecmp.cmpfiles(fresh, files, cmp.common_files, shallow=False)
    assert not mismatch and not errors, f"stale copies {mismatch}: run `python deploy/k8s/sync_files.py`"


def test_postgres_init_script_is_the_compose_one():
    assert filecmp.cmp(K8S / "components/postgres/init-databases.sh",
                       REPO / "deploy/compose/postgres/init-databases.sh", shallow=False)


def test_nats_component_gives_each_service_its_own_user(tmp_path):
    docs = kustomize(overlay(tmp_path, ["nats"]))
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config"))
    assert "include users.conf" in conf["data"]["nats.conf"]
    assert conf["data"]["users.conf"] == (REPO / "deploy/nats/users.conf").read_text()
    for name in ("registry", "evaluation", "trading", "gateway"):
        env = {e["name"]: e for e in by_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["NATS_URL"]["value"] == f"nats://{name}:$(NATS_PASSWORD)@nats:4222"
        assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "yaosu-nats-users", "key": name,
                                                                   "optional": True}
