"""Bids per second through gRPC, committed and acknowledged, from 64 concurrent clients on SQLite: 挂牌
(listing mechanism) and 拍卖 (English auction), each beside the echo floor at 64 clients. Targets
(issue 13): ≥ 40 % of the floor, p99 ≤ 50 ms.

Registry and trading run as deployed (`python -m services.<name>`, each its own process, trading with the
gateway tests' sale policy so that a sale opens at once); the clients run in this process on one grpc.aio
channel, as the floor's do, and bid as the gateway does (its delegate key naming the enterprise).

What is measured is accepted work. The 64 clients are spread over LISTINGS sales of each mechanism
(64 / LISTINGS bids in flight per sale, so a sale's writer still batches); each sale has its own
registered bidders, and its bids take rising prices from the sale's own counter — the k-th bid of a sale
offers start + k × increment as its bidder k mod BIDDERS — so a bid is refused only when it overtakes an
earlier one of its sale in flight (QUOTE_TOO_LOW / BID_TOO_LOW, ALREADY_HIGHEST). Refusals are counted
apart, by reason. The English auctions are measured once trading's timer has started every one of them.

    make bench BENCH_ARGS=bids
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.registry.v1 import registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from services.common.natsd import NatsServer
from tests.bench.floors import echo_floor
from tests.bench.harness import (
    CALL_TIMEOUT,
    EngineWatch,
    closed_loop,
    grpc_outcome,
    judge,
    registry_env,
    service,
    trading_env,
)
from tests.integration.gateway.stack import SALE_POLICY
from tests.integration.trading.support import (
    GRANTOR,
    TRADING_CENTRE,
    admin,
    available_parcel,
    bidder,
    fen,
    funded_enterprise,
    grantor,
    key,
    register_agency,
    ts,
)

CLIENTS = 64
LISTINGS = 8                  # sales of each mechanism; 64 / 8 = 8 bids in flight per sale
BIDDERS = CLIENTS // LISTINGS  # registered bidders per sale
MIN_SHARE, MAX_P99 = 40.0, 50.0
START_FEN, INCREMENT_FEN = 1_000_000_00, 10_00  # ¥1,000,000 and ¥10: far below the 3× price collar
ENGLISH_START_DELAY = timedelta(seconds=20)     # registration closes when the auction starts


async def _sale(stub: trading_pb2_grpc.TradingServiceStub, resource_id: str, mechanism: int,
                opens: datetime) -> str:
    """Draft → reserve entered by one person of the grantor, approved by another → published."""
    if mechanism == pb.MECHANISM_ENGLISH:
        closes = opens + timedelta(seconds=900)
        rules = pb.ListingRules(start_price=fen(START_FEN), increment=fen(INCREMENT_FEN), deposit=fen(2_000_000_0),
                                countdown_seconds=300, hard_stop=ts(closes))
        title = "基准地块拍卖出让"
    else:
        closes = opens + timedelta(hours=2)
        rules = pb.ListingRules(start_price=fen(START_FEN), increment=fen(INCREMENT_FEN), deposit=fen(2_000_000_0),
                                countdown_seconds=300)
        title = "基准地块挂牌出让"
    listing = pb.Listing(mechanism=mechanism, agency_id=GRANTOR, resource_id=resource_id, title=title,
                         quantity=common_pb2.Quantity(value="50", unit="亩"), rules=rules,
                         eligibility=pb.Eligibility(sale_kind="new_industrial_land"),
                         bidding_opens_at=ts(opens), bidding_closes_at=ts(closes))
    created = (await stub.CreateListing(pb.CreateListingRequest(idempotency_key=key(), listing=listing),
                                        metadata=grantor())).listing
    lid = created.listing_id
    await stub.EnterReservePrice(pb.EnterReservePriceRequest(idempotency_key=key(), listing_id=lid,
                                                             reserve_price=fen(START_FEN)), metadata=grantor("staff"))
    await stub.ApproveReservePrice(pb.ApproveReservePriceRequest(idempotency_key=key(), listing_id=lid),
                                   metadata=grantor("supervisor"))
    await stub.PublishListing(pb.PublishListingRequest(idempotency_key=key(), listing_id=lid), metadata=grantor())
    return lid


async def _register(stub, listings: list[str], codes: list[str]) -> list[list[str]]:
    """Bidder i registers in sale i mod LISTINGS; returns each sale's bidders."""
    groups: list[list[str]] = [[] for _ in listings]
    for i, code in enumerate(codes):
        groups[i % len(listings)].append(code)

    async def one(lid: str, code: str) -> None:
        await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid, credit_code=code),
                                  metadata=bidder(code))

    await asyncio.gather(*(one(lid, code) for lid, group in zip(listings, groups, strict=True) for code in group))
    return groups


async def _bidding(stub, listings: list[str], english_start: datetime | None = None, timeout: float = 60.0) -> None:
    """Until every sale takes bids: a 挂牌 once its listing period began; an English auction once the timer
    started it (its shown end is then the first countdown's end, start + 300 s: before that it is the start
    itself, the timer's next due time)."""
    deadline = time.monotonic() + timeout
    for lid in listings:
        while True:
            state = (await stub.GetSaleState(pb.GetSaleStateRequest(listing_id=lid), metadata=admin())).state
            if state.state == pb.LISTING_STATE_BIDDING and (
                    english_start is None
                    or english_start + timedelta(seconds=100) < state.closes_at.ToDatetime(tzinfo=UTC)
                    < english_start + timedelta(seconds=600)):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"sale {lid} did not open for bidding")
            await asyncio.sleep(0.2)


async def _measure(name: str, stub, listings: list[str], groups: list[list[str]], floor, watch: EngineWatch) -> None:
    counters = [0] * len(listings)

    def place(c: int, _n: int):
        sale = c % len(listings)
        k = counters[sale]
        counters[sale] += 1
        code = groups[sale][k % len(groups[sale])]
        return grpc_outcome(stub.PlaceBid(pb.PlaceBidRequest(
            idempotency_key=key(), listing_id=listings[sale], credit_code=code,
            price=fen(START_FEN + k * INCREMENT_FEN)), metadata=bidder(code), timeout=CALL_TIMEOUT))

    await watch.start()
    measured = await closed_loop(name, CLIENTS, place)
    judge(measured.label, measured, floor, min_share=MIN_SHARE, max_p99=MAX_P99)
    await watch.report()


async def _bench(folder: Path, nats_url: str) -> None:
    floor = await echo_floor(CLIENTS)
    async with service("registry", registry_env(f"sqlite+aiosqlite:///{folder / 'registry.db'}", nats_url),
                       folder) as registry:
        async with grpc.aio.insecure_channel(registry.address) as registry_channel:
            registry_stub = registry_pb2_grpc.RegistryServiceStub(registry_channel)
            await register_agency(registry_stub, GRANTOR, "基准自然资源局", rpb.AGENCY_ROLE_GRANTOR)
            await register_agency(registry_stub, TRADING_CENTRE, "基准公共资源交易中心", rpb.AGENCY_ROLE_TRADING_CENTRE)
            parcels = await asyncio.gather(*(available_parcel(registry_stub, "基准地块") for _ in range(2 * LISTINGS)))
            codes = list(await asyncio.gather(*(funded_enterprise(registry_stub, 10_000_000_00)
                                                for _ in range(CLIENTS))))
        env = trading_env(f"sqlite+aiosqlite:///{folder / 'trading.db'}", nats_url, registry.address,
                          SALE_POLICY_FILE=str(SALE_POLICY))
        async with service("trading", env, folder) as trading, \
                grpc.aio.insecure_channel(trading.address) as channel:
            stub = trading_pb2_grpc.TradingServiceStub(channel)
            english_start = datetime.now(UTC) + ENGLISH_START_DELAY
            english = [await _sale(stub, parcel, pb.MECHANISM_ENGLISH, english_start) for parcel in parcels[LISTINGS:]]
            english_groups = await _register(stub, english, codes)
            if datetime.now(UTC) >= english_start:
                raise RuntimeError("registration for the English auctions took past their start")
            listing = [await _sale(stub, parcel, pb.MECHANISM_LISTING, datetime.now(UTC) + timedelta(seconds=1))
                       for parcel in parcels[:LISTINGS]]
            listing_groups = await _register(stub, listing, codes)
            await _bidding(stub, listing)
            print(f"   {CLIENTS} clients over {LISTINGS} sales of each mechanism ({BIDDERS} registered bidders and "
                  f"{CLIENTS // LISTINGS} clients per sale)", flush=True)
            watch = EngineWatch(trading=trading.metrics_port, registry=registry.metrics_port)
            await _measure(f"挂牌 bids gRPC {CLIENTS} clients SQLite", stub, listing, listing_groups, floor, watch)
            await _bidding(stub, english, english_start)
            await _measure(f"English-auction bids gRPC {CLIENTS} clients SQLite", stub, english, english_groups,
                           floor, watch)


async def _main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        nats = NatsServer(folder / "nats")
        nats.start()
        try:
            await _bench(folder, nats.url)
        finally:
            nats.stop()


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    main()
