"""Bids through the REST API into a 挂牌 listing with 200 concurrent clients, against the floor: a bare
FastAPI endpoint doing one equivalent database insert. Target: ≥ 50 % of the floor's throughput, p99 ≤ 100 ms.

    make bench BENCH_ARGS="gateway"
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections import Counter
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
    answers = f"  ({', '.join(f'{code}: {n}' for code, n in sorted(statuses.items()))})" if statuses else ""
    print(f"  {name:<28} {len(latencies):>6} requests  {throughput:>8.0f} req/s  p50 {p50:6.1f} ms  "
          f"p99 {p99:6.1f} ms{answers}")
    return throughput


async def load(base_url: str, path_for, body_for, headers_for) -> tuple[list[float], float, Counter]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        async def one_client(n: int) -> None:
            for i in range(REQUESTS_PER_CLIENT):
                started = time.perf_counter()
                reply = await client.post(path_for(n, i), json=body_for(n, i), headers=headers_for(n, i))
                latencies.append(time.perf_counter() - started)
                statuses[reply.status_code] += 1
                if reply.status_code >= 500:
                    raise RuntimeError(f"{reply.status_code}: {reply.text[:200]}")
        started = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
        return latencies, time.perf_counter() - started, statuses


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
        latencies, seconds, _ = await load(f"http://127.0.0.1:{port}", lambda n, i: "/bids",
                                        lambda n, i: {"bidder": str(n), "fen": n * 100 + i}, lambda n, i: {})
    await engine.dispose()
    return report("floor: one insert", latencies, seconds)


async def gateway(tmp: Path, nats_url: str) -> float | None:
    async with gateway_stack(tmp, nats_url, rate_limit_per_second=100_000, rate_limit_burst=100_000) as stack:
        if "trading" in stack.missing:
            print(f"  gateway bids: not measured — {stack.missing['trading']}")
            return None
        async with stack.client() as client:
            listing = await bidding_listing(stack, await stack.token(stack.admin))
            token = await stack.token(stack.enterprises[0])
            auth = {"Authorization": f"Bearer {token}"}
            credit_code = stack.enterprises[0].credit_code
            registered = await client.post(f"/api/v1/listings/{listing['listing_id']}/registrations",
                                           json={"credit_code": credit_code},
                                           headers={**auth, "Idempotency-Key": "bench-reg"})
            registered.raise_for_status()
            start = int(listing["rules"]["start_price"]["fen"])
            step = max(1, int(listing["rules"]["increment"]["fen"]))
        latencies, seconds, statuses = await load(
            stack.base_url, lambda n, i: f"/api/v1/listings/{listing['listing_id']}/bids",
            lambda n, i: {"credit_code": credit_code, "price_fen": start + step * (1 + n * REQUESTS_PER_CLIENT + i)},
            lambda n, i: {**auth, "Idempotency-Key": f"bench-{n}-{i}"})
        # 201: accepted; 409: outbid meanwhile (a later, higher bid of another client committed first).
        return report("gateway: POST bids", latencies, seconds, statuses)


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
