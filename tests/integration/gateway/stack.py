"""The real suite behind a gateway for tests, benchmarks and the browser: registry (demo jurisdiction),
trading and evaluation when importable, the gateway under uvicorn on a free port, one nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from services.common.natsd import free_port
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.registry import registry_running
from tests.support.services import API_KEYS_JSON, SERVICE_KEY, running

CLOSED_PORT_ADDR = "127.0.0.1:9"  # nothing listens: calls fail with UNAVAILABLE


@dataclass
class DemoUser:
    username: str
    password: str
    credit_code: str = ""


@dataclass
class Stack:
    base_url: str
    data_dir: Path
    app: object
    trading: object | None
    evaluation: object | None
    enterprises: list[DemoUser] = field(default_factory=list)
    regulator: DemoUser | None = None
    admin: DemoUser | None = None
    agency_keys: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def client(self, **kw) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0, **kw)

    async def token(self, user: DemoUser) -> str:
        async with self.client() as client:
            reply = await client.post("/api/v1/auth/token", json={"username": user.username,
                                                                   "password": user.password})
            reply.raise_for_status()
            return reply.json()["access_token"]


def read_demo_users(path: Path) -> dict:
    found: dict = {"enterprises": [], "agency_keys": {}}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "enterprise":
            found["enterprises"].append(DemoUser(parts[1], parts[2], parts[3]))
        elif parts[0] in ("regulator", "admin"):
            found[parts[0]] = DemoUser(parts[1], parts[2])
        elif parts[0] == "agency":
            found["agency_keys"][parts[1]] = re.split(r"X-API-Key:\s*", line)[1].strip()
    return found


def _service_builder(name: str):
    """(build, Settings) of a service that another engineer may still be writing, or the import error."""
    try:
        app = importlib.import_module(f"services.{name}.app")
        config = importlib.import_module(f"services.{name}.config")
        settings_cls = next(getattr(config, n) for n in dir(config)
                            if n.endswith("Settings") and n != "BaseServiceSettings")
        return app.build, settings_cls
    except Exception as exc:  # noqa: BLE001 - reported to the tests that need the service
        return f"services.{name} is not runnable yet: {type(exc).__name__}: {exc}"


@contextlib.asynccontextmanager
async def _optional_service(name: str, tmp: Path, nats_url: str, addresses: dict[str, str],
                            missing: dict[str, str]) -> AsyncIterator[object | None]:
    builder = _service_builder(name)
    if isinstance(builder, str):
        missing[name] = builder
        yield None
        return
    build, settings_cls = builder
    # The demo data of a service may land after its core: without it the tests create what they need.
    demo = importlib.util.find_spec(f"services.{name}.demo") is not None
    try:
        settings = settings_cls(database_url=f"sqlite+aiosqlite:///{tmp / (name + '.db')}", nats_url=nats_url,
                                grpc_port=0, metrics_port=0, api_keys_json=API_KEYS_JSON,
                                service_api_key=SERVICE_KEY, outbox_poll_seconds=0.05, shutdown_grace_seconds=1.0,
                                demo_data=demo, **{f"{k}_addr": v for k, v in addresses.items()})
        host = build(settings)
        context = running(host)
        await context.__aenter__()
    except Exception as exc:  # noqa: BLE001
        missing[name] = f"services.{name} failed to start: {type(exc).__name__}: {exc}"
        yield None
        return
    try:
        addresses[name] = f"127.0.0.1:{host.grpc_port}"
        yield host
    finally:
        await context.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def serve(app, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during start-up")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def gateway_stack(tmp: Path, nats_url: str, **gateway_overrides) -> AsyncIterator[Stack]:
    missing: dict[str, str] = {}
    async with registry_running(f"sqlite+aiosqlite:///{tmp / 'registry.db'}", nats_url, demo_data=True) as registry:
        addresses = {"registry": registry.address}
        async with _optional_service("evaluation", tmp, nats_url, addresses, missing) as evaluation, \
                _optional_service("trading", tmp, nats_url, addresses, missing) as trading:
            settings = GatewaySettings(
                database_url=f"sqlite+aiosqlite:///{tmp / 'gateway.db'}", nats_url=nats_url, data_dir=tmp,
                registry_addr=registry.address, trading_addr=addresses.get("trading", CLOSED_PORT_ADDR),
                evaluation_addr=addresses.get("evaluation", CLOSED_PORT_ADDR), service_api_key=SERVICE_KEY,
                demo_data=True, registry_metrics_url=f"http://127.0.0.1:{registry.metrics_port}/metrics",
                **{f"{name}_metrics_url": f"http://127.0.0.1:{host.metrics_port}/metrics"
                   for name, host in (("evaluation", evaluation), ("trading", trading)) if host is not None},
                **gateway_overrides)
            app = create_app(settings)
            port = free_port()
            async with serve(app, port):
                users = read_demo_users(tmp / "demo_users.txt")
                yield Stack(f"http://127.0.0.1:{port}", tmp, app, trading, evaluation, users["enterprises"],
                            users.get("regulator"), users.get("admin"), users["agency_keys"], missing)
