"""deploy/nats: the NATS users of compose and Kubernetes are the ones the services' topology declares,
and nats-server accepts the configuration."""

from __future__ import annotations

import os
import subprocess

from services.common.events.topology import NATS_USERS, STREAMS_USER, nats_authorization_conf
from services.common.natsd import find_binary
from tests.deploy.promql_names import REPO


def test_users_conf_is_rendered_from_the_topology():
    assert (REPO / "deploy/nats/users.conf").read_text() == nats_authorization_conf(), \
        "regenerate deploy/nats/users.conf from services.common.events.topology.nats_authorization_conf()"


def test_nats_server_accepts_the_compose_configuration(tmp_path):
    conf = (REPO / "deploy/nats/nats.compose.conf").read_text().replace("/data", str(tmp_path / "data"))
    (tmp_path / "nats.conf").write_text(conf)
    (tmp_path / "users.conf").write_text((REPO / "deploy/nats/users.conf").read_text())
    env = {**os.environ, **{f"NATS_{user.upper()}_PASSWORD": f"pw-{user}" for user in (*NATS_USERS, STREAMS_USER)}}
    result = subprocess.run([find_binary(), "-c", str(tmp_path / "nats.conf"), "-t"], capture_output=True,
                            text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr + result.stdout
    # Without the passwords the server refuses to start rather than run open.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    result = subprocess.run([find_binary(), "-c", str(tmp_path / "nats.conf"), "-t"], capture_output=True,
                            text=True, env=bare, timeout=30)
    assert result.returncode != 0
