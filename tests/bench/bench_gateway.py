"""Bids through the REST API into a 挂牌 listing with 200 concurrent clients, against the floor: a bare
FastAPI endpoint doing one equivalent database insert. Target: ≥ 50 % of the floor's throughput, p99 ≤ 100 ms.

    make bench BENCH_ARGS="gateway"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from services.common.db import make_engine
from services.common.natsd import NatsServer, free_port
from tests.integration.gateway.flows import bidding_listing
from tests.integration.gateway.stack import gateway_stack, serve

CLIENTS = 200
REQUESTS_PER_CLIENT = 10


def report(name: str, latencies: list[float], seconds: float, statuses: Counter | None = None) -> float:
    latencies.sort()
    throughput = len(latencies) / seconds
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    answers = f"  ({', '.join(f'{code}: {n}' for code, n in sorted(statuses.items(), key=str))})" if statuses else ""
    print(f"  {name:<28} {len(latencies):>6} requests  {throughput:>8.0f} req/s  p50 {p50:6.1f} ms  "
          f"p99 {p99:6.1f} ms{answers}")
    return throughput


@dataclass(frozen=True)
class Load:
    """What the load process sends (plain data: it crosses into another process)."""

    base_url: str
    path: str
    bidders: tuple[tuple[str, str], ...] = ()  # gateway: (credit code, access token) of each demo enterprise
    start_fen: int = 0
    step_fen: int = 1
    grpc: bool = False          # base_url is then trading's address and path the listing id

    def body(self, n: int, i: int) -> dict:
        # Prices rise round by round, so most bids are current when they arrive.
        price = self.start_fen + self.step_fen * (1 + i * CLIENTS + n)
        if not self.bidders:
            return {"bidder": str(n), "fen": price}
        return {"credit_code": self.bidders[n % len(self.bidders)][0], "price_fen": price}

    def headers(self, n: int, i: int) -> dict:
        if not self.bidders:
            return {}
        return {"Authorization": f"Bearer {self.bidders[n % len(self.bidders)][1]}",
                "Idempotency-Key": f"bench-{n}-{i}"}


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, body: dict,
                headers: dict) -> int:
    """One keep-alive HTTP/1.1 POST on an open connection: the status code (the body is read and dropped)."""
    payload = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\n{head}\r\n".encode() + payload)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _drive(spec: Load) -> tuple[list[float], float, Counter]:
    """Each client holds one keep-alive connection (a lean HTTP/1.1 client: httpx's pool, not the server,
    limits at this concurrency)."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    host_port = spec.base_url.removeprefix("http://")
    host, _, port = host_port.partition(":")

    async def one_client(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in range(REQUESTS_PER_CLIENT):
                started = time.perf_counter()
                try:
                    status = await _post(reader, writer, host_port, spec.path, spec.body(n, i), spec.headers(n, i))
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    latencies.append(time.perf_counter() - started)
                    statuses[type(exc).__name__] += 1
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
        finally:
            writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
    return latencies, time.perf_counter() - started, statuses


async def _drive_grpc(spec: Load) -> tuple[list[float], float, Counter]:
    """The same bids straight to trading over gRPC, as the gateway sends them (service key, on behalf of)."""
    import grpc
    from yaosu.common.v1 import common_pb2
    from yaosu.trading.v1 import trading_pb2 as tpb
    from yaosu.trading.v1 import trading_pb2_grpc

    from services.common.grpc_client import open_channel
    from tests.support.services import SERVICE_KEY

    latencies: list[float] = []
    statuses: Counter = Counter()
    listing_id = spec.path
    channel = open_channel(spec.base_url, api_key=SERVICE_KEY)
    stub = trading_pb2_grpc.TradingServiceStub(channel)

    async def one_client(n: int) -> None:
        credit_code = spec.bidders[n % len(spec.bidders)][0]
        for i in range(REQUESTS_PER_CLIENT):
            price = spec.start_fen + spec.step_fen * (1 + i * CLIENTS + n)
            started = time.perf_counter()
            try:
                await stub.PlaceBid(tpb.PlaceBidRequest(
                    idempotency_key=f"bench-grpc-{n}-{i}", listing_id=listing_id, credit_code=credit_code,
                    price=common_pb2.Money(fen=price, currency="CNY")), timeout=60,
                    metadata=(("x-on-behalf-of", f"enterprise:{credit_code}"),))
                statuses["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                statuses[exc.code().name] += 1
            latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
    seconds = time.perf_counter() - started
    await channel.close()
    return latencies, seconds, statuses


def _drive_in_process(spec: Load) -> tuple[list[float], float, Counter]:
    return asyncio.run(_drive_grpc(spec) if spec.grpc else _drive(spec))


async def load(spec: Load) -> tuple[list[float], float, Counter]:
    """The 200 clients run in a process of their own, so they do not share the server's event loop."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        latencies, seconds, statuses = await asyncio.get_running_loop().run_in_executor(pool, _drive_in_process, spec)
    errors = sum(n for code, n in statuses.items()
                 if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN")
                 or (isinstance(code, int) and code >= 500) or (not isinstance(code, int) and "Error" in code))
    if errors > len(latencies) // 100:
        raise RuntimeError(f"more than 1 % server errors: {dict(statuses)}")
    return latencies, seconds, statuses


async def floor(tmp: Path) -> float:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp / 'floor.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE bids (id TEXT PRIMARY KEY, listing TEXT, bidder TEXT, fen INTEGER)"))
    app = FastAPI()

    @app.post("/bids")
    async def insert(body: dict) -> dict:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO bids VALUES (:id, :listing, :bidder, :fen)"),
                                     {"id": str(uuid.uuid4()), "listing": "L", "bidder": body["bidder"],
                                      "fen": body["fen"]})
        return {"ok": True}

    port = free_port()
    async with serve(app, port):
        latencies, seconds, statuses = await load(Load(f"http://127.0.0.1:{port}", "/bids"))
    await engine.dispose()
    return report("floor: one insert", latencies, seconds, statuses)


async def gateway(tmp: Path, nats_url: str) -> float | None:
    async with gateway_stack(tmp, nats_url, rate_limit_per_second=100_000, rate_limit_burst=100_000) as stack:
        async with stack.client() as client:
            listing = await bidding_listing(stack, await stack.token(stack.admin))
            bidders = []
            for user in stack.enterprises:
                token = await stack.token(user)
                registered = await client.post(f"/api/v1/listings/{listing['listing_id']}/registrations",
                                               json={"credit_code": user.credit_code},
                                               headers={"Authorization": f"Bearer {token}",
                                                        "Idempotency-Key": "bench-reg"})
                if registered.status_code == 201 and registered.json()["state"] == "qualified":
                    bidders.append((user.credit_code, token))
            start = int(listing["rules"]["start_price"]["fen"])
            step = max(1, int(listing["rules"]["increment"]["fen"]))
        print(f"  {len(bidders)} registered bidders, client n bids as bidder n mod {len(bidders)}")
        latencies, seconds, statuses = await load(Load(
            stack.base_url, f"/api/v1/listings/{listing['listing_id']}/bids", tuple(bidders), start, step))
        # 201: accepted; 409: refused by the sale's rules (QUOTE_TOO_LOW: a higher bid committed first;
        # ALREADY_HIGHEST: the bidder leads already) — decided by the sale's writer like an accepted bid.
        report("gateway in the suite's process", latencies, seconds, statuses)
        # As deployed: the gateway in a process of its own (`python -m services.gateway`), same services,
        # same users database and signing key; prices continue above the first run's.
        start += step * (CLIENTS * REQUESTS_PER_CLIENT + 1)
        async with gateway_process(stack) as base_url:
            latencies, seconds, statuses = await load(Load(
                base_url, f"/api/v1/listings/{listing['listing_id']}/bids", tuple(bidders), start, step))
        measured = report("gateway: POST bids (own proc)", latencies, seconds, statuses)
        start += step * (CLIENTS * REQUESTS_PER_CLIENT + 1)
        # What trading alone sustains at the same concurrency (prices continue above the REST run's).
        latencies, seconds, statuses = await load(Load(
            f"127.0.0.1:{stack.trading.grpc_port}", listing["listing_id"], tuple(bidders), start, step, grpc=True))
        report("trading gRPC direct", latencies, seconds, statuses)
        return measured


@contextlib.asynccontextmanager
async def gateway_process(stack) -> AsyncIterator[str]:
    settings = stack.app.state.settings
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["gen", "."]), "DATABASE_URL": settings.database_url,
           "NATS_URL": settings.nats_url, "DATA_DIR": str(settings.data_dir), "JWT_SECRET": settings.jwt_secret,
           "REGISTRY_ADDR": settings.registry_addr, "TRADING_ADDR": settings.trading_addr,
           "EVALUATION_ADDR": settings.evaluation_addr, "SERVICE_API_KEY": settings.service_api_key,
           "HTTP_PORT": str(port), "RATE_LIMIT_PER_SECOND": "100000", "RATE_LIMIT_BURST": "100000",
           "DEMO_DATA": "false", "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.gateway", env=env,
                                                   cwd=Path(__file__).resolve().parents[2])
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the gateway process did not start")
                await asyncio.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        await process.wait()


async def run() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        print(f"gateway bids, {CLIENTS} concurrent clients × {REQUESTS_PER_CLIENT} requests")
        base = await floor(tmp)
        nats = NatsServer(tmp / "nats")
        nats.start()
        try:
            measured = await gateway(tmp / "stack", nats.url)
        finally:
            nats.stop()
        if measured is not None:
            print(f"  gateway / floor = {measured / base:.0%} (target ≥ 50 %)")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
