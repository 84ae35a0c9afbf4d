"""The real suite behind a gateway for tests, benchmarks and the browser: registry (demo jurisdiction),
trading and evaluation on their demo data, the gateway under uvicorn on a free port, one nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from yaosu.registry.v1 import registry_pb2 as rpb

from services.common.natsd import free_port
from services.evaluation.config import EvaluationSettings
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.trading.clock import Clock
from services.trading.config import TradingSettings
from tests.support.registry import deposit_cny, registry_running
from tests.support.services import API_KEYS_JSON, EVALUATION_KEY, READER_KEY, SERVICE_KEY, TRADING_KEY, bearer, running

CLOSED_PORT_ADDR = "127.0.0.1:9"  # nothing listens: calls fail with UNAVAILABLE
# Each service calls the others with its own key (a service principal by name); the gateway with the
# delegate key, naming its user on every call.
SERVICE_KEYS = {"trading": TRADING_KEY, "evaluation": EVALUATION_KEY}
SETTINGS = {"trading": TradingSettings, "evaluation": EvaluationSettings}
# Trading's sale periods under these tests (sales open at once); see the file.
SALE_POLICY = Path(__file__).with_name("sale_policy.yaml")
FUNDS_FEN = 100_000_000_00  # ¥1亿 per demo enterprise user: deposits and bids never run short


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
    trading: object
    evaluation: object
    enterprises: list[DemoUser] = field(default_factory=list)
    regulator: DemoUser | None = None
    admin: DemoUser | None = None
    agency_keys: dict[str, str] = field(default_factory=dict)
    trading_clock: Clock = field(default_factory=Clock)  # trading's clock: tests move it to close a window

    @property
    def metrics_url(self) -> str:
        """The gateway's /metrics: its own port (bound at start-up), not the public API's."""
        return f"http://127.0.0.1:{self.app.state.metrics_port}/metrics"

    def client(self, **kw) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0, **kw)

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=30.0) as client:
            reply = await client.get(self.metrics_url)
            reply.raise_for_status()
            return reply.text

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


@contextlib.asynccontextmanager
async def _service(name: str, tmp: Path, nats_url: str, addresses: dict[str, str],
                   clock: Clock | None = None) -> AsyncIterator[object]:
    """One service on its demo data, calling the others with its own key. A service that fails to start
    fails the tests that use the stack."""
    app = importlib.import_module(f"services.{name}.app")
    settings_cls = SETTINGS[name]
    settings = settings_cls(database_url=f"sqlite+aiosqlite:///{tmp / (name + '.db')}", nats_url=nats_url,
                            grpc_port=0, metrics_port=0, api_keys_json=API_KEYS_JSON,
                            service_api_key=SERVICE_KEYS[name], outbox_poll_seconds=0.05,
                            shutdown_grace_seconds=1.0, demo_data=True,
                            **{f"{k}_addr": v for k, v in addresses.items()},
                            **({"sale_policy_file": SALE_POLICY} if name == "trading" else {}))
    host = app.build(settings, clock) if clock is not None else app.build(settings)
    async with running(host):
        addresses[name] = f"127.0.0.1:{host.grpc_port}"
        yield host


async def fund(registry, credit_code: str, fen: int) -> None:
    """Money enters only by the settlement bank's deposit (requested and approved by two principals)."""
    accounts = await registry.ListAccounts(rpb.ListAccountsRequest(holder=credit_code, page={"page_size": 50}),
                                           metadata=bearer(READER_KEY))
    account = next(a for a in accounts.accounts if a.instrument == "CNY")
    await deposit_cny(registry, account.account_id, fen)


@contextlib.asynccontextmanager
async def serve(app, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False,
                                           # open live streams (a browser a failed test left) must not hold the stop
                                           timeout_graceful_shutdown=3))
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
    async with registry_running(f"sqlite+aiosqlite:///{tmp / 'registry.db'}", nats_url, demo_data=True) as registry:
        addresses = {"registry": registry.address}
        trading_clock = Clock()
        async with _service("evaluation", tmp, nats_url, addresses) as evaluation, \
                _service("trading", tmp, nats_url, addresses, trading_clock) as trading:
            settings = GatewaySettings(**({
                "database_url": f"sqlite+aiosqlite:///{tmp / 'gateway.db'}", "nats_url": nats_url,
                "data_dir": tmp, "metrics_port": 0, "registry_addr": registry.address,
                "trading_addr": addresses["trading"], "evaluation_addr": addresses["evaluation"],
                "service_api_key": SERVICE_KEY, "demo_data": True,
                "registry_metrics_url": f"http://127.0.0.1:{registry.metrics_port}/metrics",
                "evaluation_metrics_url": f"http://127.0.0.1:{evaluation.metrics_port}/metrics",
                "trading_metrics_url": f"http://127.0.0.1:{trading.metrics_port}/metrics"} | gateway_overrides))
            app = create_app(settings)
            port = free_port()
            async with serve(app, port):
                users = read_demo_users(tmp / "demo_users.txt")
                for user in users["enterprises"]:
                    await fund(registry.stub, user.credit_code, FUNDS_FEN)
                yield Stack(f"http://127.0.0.1:{port}", tmp, app, trading, evaluation, users["enterprises"],
                            users.get("regulator"), users.get("admin"), users["agency_keys"], trading_clock)
