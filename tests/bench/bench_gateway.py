"""Bids through the REST gateway into 挂牌 listings from 200 concurrent clients, beside the FastAPI floor at
200 clients (a bare FastAPI endpoint under uvicorn doing one committed SQLite insert). Targets (issue 13):
≥ 50 % of the floor, p99 ≤ 100 ms.

The suite runs as `make run` runs it (tools/devstack.py: registry, evaluation, trading and the gateway each
in its own process, NATS with its users, demo data), on free ports in a scratch directory, with the gateway
tests' sale policy (a sale opens at once) and the gateway's per-principal rate limit raised out of the way.
The clients run in this process, each on one keep-alive HTTP/1.1 connection (the same lean client as the
floor's), as the four demo enterprise users.

What is measured is accepted work (201). The 200 clients are spread over LISTINGS listings the grantor
opens through the API (client c bids in listing c mod LISTINGS); each listing's bids take rising prices from
the listing's own counter — its k-th bid offers start + k × increment as demo enterprise k mod 4 — so a bid
is refused only when it overtakes an earlier one of its listing in flight (409 QUOTE_TOO_LOW,
ALREADY_HIGHEST). Refusals are counted apart. The spread is a trade-off: through the gateway, bids of one
listing overtake each other often, so fewer listings mean more refusals, while more listings mean smaller
batches for each listing's writer (one listing per client: every bid its own commit).
BENCH_GATEWAY_LISTINGS overrides the default of 50 (4 clients per listing).

For comparison (no target) the same bids go straight to trading over gRPC with the gateway's delegate key
from 200 clients, beside the echo floor at 200 clients.

    make bench BENCH_ARGS=gateway
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.registry.v1 import registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2 as tpb
from yaosu.trading.v1 import trading_pb2_grpc

from tests.bench.floors import HttpConnection, echo_floor, fastapi_floor
from tests.bench.harness import CALL_TIMEOUT, EngineWatch, Process, child, closed_loop, grpc_outcome, inform, judge
from tests.integration.gateway.flows import GRANTOR, open_listing, second_key
from tests.integration.gateway.stack import SALE_POLICY, Stack, read_demo_users

CLIENTS = 200
LISTINGS = int(os.environ.get("BENCH_GATEWAY_LISTINGS", "50"))
MIN_SHARE, MAX_P99 = 50.0, 100.0
START_FEN, INCREMENT_FEN = 100_000_000, 100  # ¥1,000,000 and ¥1: far below the 3× price collar
FUNDS_FEN = 100_000_000_00


@contextlib.asynccontextmanager
async def suite(folder: Path) -> AsyncIterator[dict]:
    """tools/devstack.py on free ports with its data in `folder`; yields its endpoints.json once every
    service is ready, stops it (and so every service) on exit."""
    data = folder / "suite"
    env = {"DEVSTACK_QUIET": "1", "SALE_POLICY_FILE": str(SALE_POLICY), "RATE_LIMIT_PER_SECOND": "1000000",
           "RATE_LIMIT_BURST": "1000000"}
    async with child("devstack", ["tools/devstack.py", "--free-ports", "--data", str(data)], env, folder) as running:
        endpoints = await _endpoints(running, data / "endpoints.json")
        yield endpoints


async def _endpoints(running: Process, path: Path, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if running.process.returncode is not None:
            raise RuntimeError(f"the suite did not start:\n{running.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the suite did not start within {timeout:.0f} s:\n{running.tail()}")
        await asyncio.sleep(0.5)
    return json.loads(path.read_text())


async def _fund(registry_address: str, keys: dict[str, str], credit_codes: list[str]) -> None:
    """Money enters only by the settlement bank's deposit, requested and approved by two of its principals."""
    async with grpc.aio.insecure_channel(registry_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        async def fund(code: str) -> None:
            accounts = await stub.ListAccounts(rpb.ListAccountsRequest(holder=code, page={"page_size": 50}),
                                               metadata=[("authorization", f"Bearer {keys['regulator']}")])
            account = next(a for a in accounts.accounts if a.instrument == "CNY")
            requested = await stub.RequestCashMovement(rpb.RequestCashMovementRequest(
                idempotency_key=uuid.uuid4().hex, kind=rpb.CASH_MOVEMENT_KIND_DEPOSIT, account_id=account.account_id,
                amount=common_pb2.Money(fen=FUNDS_FEN, currency="CNY"), bank_reference=f"bench-{uuid.uuid4().hex[:12]}"),
                metadata=[("authorization", f"Bearer {keys['bank:teller']}")])
            await stub.ApproveCashMovement(rpb.ApproveCashMovementRequest(
                idempotency_key=uuid.uuid4().hex, movement_id=requested.movement.movement_id),
                metadata=[("authorization", f"Bearer {keys['bank:approver']}")])

        await asyncio.gather(*(fund(code) for code in credit_codes))


async def _parcels(registry_address: str, grantor_key: str, count: int) -> None:
    """`count` more available land parcels of the grantor (the demo has a few dozen), registered with the
    grantor's own key."""
    metadata = [("authorization", f"Bearer {grantor_key}")]
    async with grpc.aio.insecure_channel(registry_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        async def parcel(n: int) -> None:
            resource_id = f"R-330106-B{uuid.uuid4().hex[:6]}"
            await stub.RegisterResource(rpb.RegisterResourceRequest(idempotency_key=uuid.uuid4().hex, resource=rpb.Resource(
                resource_id=resource_id, kind="land_use_right", name=f"基准地块{n}", region_code="330106",
                quantity=common_pb2.Quantity(value="50", unit="亩"), allocation_mode=rpb.ALLOCATION_MODE_MARKET,
                controller_agency_id=GRANTOR, attributes={"land_use": "工业用地", "plot_ratio_min": "1.2",
                                                            "plot_ratio_max": "2.0", "term_years": "50"})),
                metadata=metadata)
            await stub.TransitionResource(rpb.TransitionResourceRequest(
                idempotency_key=uuid.uuid4().hex, resource_id=resource_id, to_status=rpb.RESOURCE_STATUS_AVAILABLE,
                reason="bench"), metadata=metadata)

        await asyncio.gather(*(parcel(n) for n in range(count)))


async def _listings(stack: Stack) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """LISTINGS listings opened by the grantor through the API, and in each the demo enterprises that
    registered and qualified: (credit code, access token)."""
    admin_token = await stack.token(stack.admin)
    await second_key(stack, admin_token)
    gate = asyncio.Semaphore(16)

    async def listing() -> dict:
        async with gate:
            return await open_listing(stack, admin_token, start_fen=START_FEN, increment_fen=INCREMENT_FEN)

    opened = await asyncio.gather(*(listing() for _ in range(LISTINGS)))
    tokens = {user.credit_code: await stack.token(user) for user in stack.enterprises}
    async with stack.client() as client:
        async def register(lid: str, code: str) -> tuple[str, str] | None:
            async with gate:
                reply = await client.post(f"/api/v1/listings/{lid}/registrations", json={"credit_code": code},
                                          headers={"Authorization": f"Bearer {tokens[code]}",
                                                   "Idempotency-Key": f"bench-{uuid.uuid4().hex}"})
            return (code, tokens[code]) if reply.status_code == 201 and reply.json()["state"] == "qualified" else None

        ids = [listing["listing_id"] for listing in opened]
        found = await asyncio.gather(*(register(lid, code) for lid in ids for code in tokens))
        groups = [[g for g in found[i * len(tokens):(i + 1) * len(tokens)] if g is not None] for i in range(len(ids))]
    if any(len(group) < 2 for group in groups):
        raise RuntimeError(f"fewer than two qualified bidders in a listing: {[len(g) for g in groups]}")
    return ids, groups


async def _bench(folder: Path) -> None:
    floor = await fastapi_floor(CLIENTS)
    echo = await echo_floor(CLIENTS)  # for the comparison straight to trading
    async with suite(folder) as endpoints:
        data = folder / "suite"
        keys = json.loads((data / "credentials.json").read_text())
        users = read_demo_users(data / "demo_users.txt")
        services = endpoints["services"]
        base_url = f"http://127.0.0.1:{services['gateway']['http_port']}"
        stack = Stack(base_url, data, None, None, None, users["enterprises"], users.get("regulator"),
                      users.get("admin"), users["agency_keys"])
        registry_address = f"127.0.0.1:{services['registry']['grpc_port']}"
        await _fund(registry_address, keys, [u.credit_code for u in stack.enterprises])
        await _parcels(registry_address, keys[f"agency:{GRANTOR}"], LISTINGS)
        started = time.perf_counter()
        listings, groups = await _listings(stack)
        print(f"   {CLIENTS} clients over {LISTINGS} listings ({CLIENTS / LISTINGS:g} clients and "
              f"{min(len(g) for g in groups)}–{max(len(g) for g in groups)} qualified bidders per listing; "
              f"set up through the API in {time.perf_counter() - started:.0f} s)", flush=True)
        counters = [0] * LISTINGS

        def next_bid(c: int) -> tuple[int, str, str, int]:
            sale = c % LISTINGS
            k = counters[sale]
            counters[sale] += 1
            code, token = groups[sale][k % len(groups[sale])]
            return sale, code, token, START_FEN + k * INCREMENT_FEN

        connections = [HttpConnection(base_url) for _ in range(CLIENTS)]

        def rest_bid(c: int, _n: int):
            sale, code, token, price = next_bid(c)
            return connections[c].post(f"/api/v1/listings/{listings[sale]}/bids",
                                       {"credit_code": code, "price_fen": price},
                                       {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})

        watch = EngineWatch(trading=services["trading"]["metrics_port"], registry=services["registry"]["metrics_port"])
        await watch.start()
        measured = await closed_loop(f"bids REST gateway {CLIENTS} clients SQLite", CLIENTS, rest_bid)
        for connection in connections:
            connection.close()
        judge(measured.label, measured, floor, min_share=MIN_SHARE, max_p99=MAX_P99)
        await watch.report()

        # The same bids straight to trading, as the gateway sends them (its delegate key, on behalf of).
        async with grpc.aio.insecure_channel(f"127.0.0.1:{services['trading']['grpc_port']}") as channel:
            stub = trading_pb2_grpc.TradingServiceStub(channel)

            def grpc_bid(c: int, _n: int):
                sale, code, _token, price = next_bid(c)
                return grpc_outcome(stub.PlaceBid(tpb.PlaceBidRequest(
                    idempotency_key=uuid.uuid4().hex, listing_id=listings[sale], credit_code=code,
                    price=common_pb2.Money(fen=price, currency="CNY")), timeout=CALL_TIMEOUT,
                    metadata=[("authorization", f"Bearer {keys['gateway']}"),
                              ("x-on-behalf-of", f"enterprise:{code}")]))

            await watch.start()
            direct = await closed_loop(f"bids gRPC trading direct {CLIENTS} clients SQLite", CLIENTS, grpc_bid)
            inform(direct.label, direct, echo)
            await watch.report()


async def run() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        await _bench(Path(scratch))


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
