"""deploy/docker/Dockerfile: static checks (no Docker engine here)."""

from __future__ import annotations

import re

from tests.deploy.promql_names import REPO

DOCKER = REPO / "deploy/docker"


def _instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_multi_stage_with_builder_and_runtime():
    froms = [rest for op, rest in _instructions() if op == "FROM"]
    assert [f.split()[-1] for f in froms] == ["builder", "runtime"]


def test_builder_installs_the_lock_with_uv_and_generates_stubs():
    runs = " ".join(rest for op, rest in _instructions() if op == "RUN")
    assert "uv pip install" in runs and "-c requirements.lock" in runs
    assert "grpc_tools.protoc" in runs and "--grpc_python_out=gen" in runs


def test_runtime_is_non_root_read_only_friendly_and_generic():
    ins = _instructions()
    runtime = ins[[i for i, (op, _) in enumerate(ins) if op == "FROM"][-1]:]
    ops = dict((op, rest) for op, rest in runtime if op in {"USER", "CMD", "ARG", "VOLUME", "WORKDIR"})
    assert ops["USER"].split(":")[0] not in {"0", "root"}
    assert ops["ARG"] == "SERVICE"
    assert '"/data"' in ops["VOLUME"]
    env = " ".join(rest for op, rest in runtime if op == "ENV")
    assert "PYTHONPATH=/app/gen:/app" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    assert "SERVICE=${SERVICE}" in env
    # Shell form, so $SERVICE expands (the exec form would not).
    assert not ops["CMD"].startswith("[") and "python -m services.$SERVICE" in ops["CMD"]


def test_dockerignore_lets_the_needed_files_in():
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    copied = [rest.split()[0] for op, rest in _instructions() if op == "COPY" and "--from" not in rest]
    for source in copied:
        assert (REPO / source).exists(), source
        assert f"!{source.rstrip('/')}" in ignore or f"!{source.rstrip('/')}/**" in ignore, source
