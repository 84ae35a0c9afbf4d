"""The trading service (a subprocess) is SIGKILLed while 48 clients bid on four 挂牌 listings in their
listing period — rising prices, each bid with its own key — and 16 more place orders in a continuous
market; it restarts on the same database (the registry, another subprocess, stays up).

- Every acknowledged bid and order is in the record exactly once, as it was answered, and a retry of its
  key answers it again.
- A bid or order without an answer is whole or absent: its row, its journal event (sale_events or
  market_events), its audit entry, its outbox event and its idempotency record — or none of them. A refused
  bid left nothing. After every client has retried, each request is there at most once.
- Each listing's mirror (price, leader's count of quotes) agrees with its journal; the book agrees with
  the orders; every trade settles exactly once; the registry's holds keep exactly what the open orders may
  still cost; trading moved balances but never changed their sums: Σ balances = issued − retired for every
  instrument, unchanged by the load.
- Both audit chains verify.

A second test kills trading under order load alone, until the kill catches orders between their registry
hold and their commit, and no client retries: once trading is back, those orders are not in the record
and the holds made for them keep nothing (released by the restart's reconciliation of order holds).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from yaosu.events.v1 import envelope_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.registry.v1 import registry_pb2_grpc
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from tests.integration.trading.market_support import market_world, markets_json, new_instrument
from tests.integration.trading.support import (
    GRANTOR,
    TRADING_CENTRE,
    admin,
    available_parcel,
    bidder,
    fen,
    funded_enterprise,
    key,
    land_listing,
    publish,
    register_agency,
    regulator,
    ts,
)
from tests.support.crash import (
    ACKNOWLEDGED,
    REFUSED,
    UNKNOWN,
    Load,
    ServiceProcess,
    crash_under_load,
    database,
    retry,
    rows,
    until,
)
from tests.support.services import TRADING_KEY

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

LISTINGS = 4
BIDDERS = 8
BID_CLIENTS = 48
ORDER_CLIENTS = 16
START, INCREMENT = 1_000_000_00, 10_000_00  # land_listing's start price and increment, fen
KILL_AFTER_BIDS, KILL_AFTER_ORDERS = 150, 30
FUNDS = 10_000_000_00  # fen of every market participant (market_world)


def enough(load: Load) -> bool:
    return load.count("bid") >= KILL_AFTER_BIDS and load.count("order") >= KILL_AFTER_ORDERS


@dataclass
class World:
    listings: list[str]
    bidders: list[str]
    instrument: str
    sellers: list[str]
    buyers: list[str]


def _bid_client(n: int, stub, load: Load, world: World, prices: list[itertools.count]) -> object:
    """Bids on one listing at the next price of that listing (unique per listing, so a bid row names the
    request it came from), by the bidders in turn; out-of-order arrivals are refused as too low."""
    listing = n % LISTINGS

    async def run() -> None:
        while not load.killed:
            step = next(prices[listing])
            code, price, idem = world.bidders[step % BIDDERS], START + step * INCREMENT, key()
            request = pb.PlaceBidRequest(idempotency_key=idem, listing_id=world.listings[listing],
                                         credit_code=code, price=fen(price))
            await load.send("bid", idem, stub.PlaceBid, request, bidder(code),
                            listing_id=world.listings[listing], price=price, code=code)
    return run()


def _order_client(n: int, stub, load: Load, world: World) -> object:
    """Limit orders around the previous close (100.00 yuan), buys and sells, so that many cross."""
    rng = random.Random(n)

    async def run() -> None:
        while not load.killed:
            idem = key()
            if rng.random() < 0.5:
                code, side, price = rng.choice(world.sellers), pb.SIDE_SELL, 100_00 - rng.randrange(5) * 10
            else:
                code, side, price = rng.choice(world.buyers), pb.SIDE_BUY, 100_00 + rng.randrange(7) * 10
            request = pb.PlaceOrderRequest(idempotency_key=idem, instrument=world.instrument, credit_code=code,
                                           side=side, type=pb.ORDER_TYPE_LIMIT, price=fen(price),
                                           quantity=2 + rng.randrange(5))
            await load.send("order", idem, stub.PlaceOrder, request, bidder(code))
    return run()


# ---------------------------------------------------------------- the record, read from the database
@dataclass
class Record:
    bids: dict[tuple[str, int], list[dict]]      # (listing, price) → bid rows
    quotes: dict[tuple[str, int], list[dict]]    # (listing, price) → QuoteAccepted events
    seqs: dict[str, list[int]]                   # listing → sale event seqs
    listings: dict[str, dict]
    orders: dict[str, dict]
    accepted: Counter                            # market sequence → OrderAccepted events
    market_seqs: list[int]
    audit: Counter                               # ("bid" | "order", id) → audit entries
    outbox: Counter                              # ("bid", listing, price) | ("order", id) → events
    keys: dict[str, dict]                        # idempotency key → stored answer


async def _record(url: str, world: World) -> Record:
    async with database(url) as db:
        ids = ",".join(f"'{x}'" for x in world.listings) or "''"
        bids, quotes, seqs = defaultdict(list), defaultdict(list), defaultdict(list)
        for row in await rows(db, f"SELECT * FROM bids WHERE listing_id IN ({ids})"):
            bids[(row.listing_id, row.price_fen)].append(row._asdict())
        for row in await rows(db, f"SELECT listing_id, seq, type, payload FROM sale_events WHERE listing_id IN ({ids})"):
            seqs[row.listing_id].append(row.seq)
            if row.type == "QuoteAccepted":
                payload = json.loads(row.payload)
                quotes[(row.listing_id, payload["amount"])].append(payload)
        listings = {r.listing_id: r._asdict() for r in await rows(db, f"SELECT * FROM listings WHERE listing_id IN ({ids})")}
        orders = {r.order_id: r._asdict() for r in await rows(db, "SELECT * FROM orders WHERE instrument = :i",
                                                              i=world.instrument)}
        accepted, market_seqs = Counter(), []
        for row in await rows(db, "SELECT seq, type, payload FROM market_events WHERE instrument = :i",
                              i=world.instrument):
            market_seqs.append(row.seq)
            if row.type == "OrderAccepted":
                accepted[json.loads(row.payload)["order_id"]] += 1
        audit = Counter()
        for row in await rows(db, "SELECT action, payload FROM audit_journal "
                                  "WHERE action IN ('bid.accepted', 'order.accepted')"):
            payload = json.loads(row.payload)
            audit[("bid", payload["bid_id"]) if row.action == "bid.accepted" else ("order", payload["order_id"])] += 1
        outbox = Counter()
        for (envelope,) in await rows(db, "SELECT envelope FROM outbox"):
            event = envelope_pb2.EventEnvelope.FromString(envelope)
            if event.type == "yaosu.trading.bid.accepted":
                data = json.loads(event.data)
                outbox[("bid", data["listing_id"], data["price_fen"])] += 1
            elif event.type == "yaosu.trading.market.order_accepted":
                outbox[("order", json.loads(event.data)["order_id"])] += 1
        keys = {r.key: json.loads(r.response) for r in await rows(db, "SELECT key, response FROM idempotency_keys")}
    return Record(dict(bids), dict(quotes), dict(seqs), listings, orders, accepted, sorted(market_seqs), audit,
                  outbox, keys)


def _whole(record: Record) -> None:
    """Nothing half written: each bid with its quote event, audit entry, outbox event and idempotency record,
    each order with its journal event, audit entry, outbox event and idempotency record; journals without
    gaps; each listing's mirror as its journal says."""
    answers = [v for v in record.keys.values() if isinstance(v, dict)]
    answered_bids = {v["bid_id"] for v in answers if "bid_id" in v}
    answered_orders = Counter(v["order"]["order_id"] for v in answers if "order" in v)
    assert set(record.bids) == set(record.quotes), "bids without their quote event, or the reverse"
    for (listing, price), found in record.bids.items():
        assert len(found) == 1 and len(record.quotes[(listing, price)]) == 1, f"{listing} at {price}: {found}"
        bid = found[0]
        assert bid["state"] == "accepted" and bid["sequence"] == record.quotes[(listing, price)][0]["seq"]
        assert record.audit[("bid", bid["bid_id"])] == 1, f"bid {bid['bid_id']}: {record.audit[('bid', bid['bid_id'])]}"
        assert record.outbox[("bid", listing, price)] == 1, f"bid {bid['bid_id']}: outbox"
        assert bid["bid_id"] in answered_bids, f"bid {bid['bid_id']} without its idempotency record"
    assert sum(n for (kind, *_), n in record.audit.items() if kind == "bid") == sum(map(len, record.bids.values()))
    assert sum(n for (kind, *_), n in record.outbox.items() if kind == "bid") == sum(map(len, record.bids.values()))
    for listing, row in record.listings.items():
        assert sorted(record.seqs.get(listing, [])) == list(range(1, len(record.seqs.get(listing, [])) + 1))
        quoted = sorted((b[0] for (lid, _), b in record.bids.items() if lid == listing), key=lambda b: b["sequence"])
        assert [b["price_fen"] for b in quoted] == sorted(b["price_fen"] for b in quoted), "a quote that did not improve"
        assert row["accepted_bids"] == len(quoted)
        assert row["current_price_fen"] == (quoted[-1]["price_fen"] if quoted else 0)

    assert set(answered_orders) == set(record.orders) and max(answered_orders.values(), default=1) == 1, \
        "orders without their idempotency record, or the reverse"
    for order_id, order in record.orders.items():
        assert record.accepted[order["sequence"]] == 1, f"order {order_id}: {record.accepted[order['sequence']]} events"
        assert record.audit[("order", order_id)] == 1, f"order {order_id}: audit"
        assert record.outbox[("order", order_id)] == 1, f"order {order_id}: outbox"
    assert sum(record.accepted.values()) == len(record.orders)
    assert record.market_seqs == list(range(1, len(record.market_seqs) + 1))


def _as_answered(load: Load, record: Record) -> dict[str, str]:
    """Each request against the record: acknowledged ones there as answered, refused ones absent, unknown
    ones whole or absent. Returns the bid or order id of every request that is there."""
    there = {}
    for a in load.of("bid"):
        found = record.bids.get((a.info["listing_id"], a.info["price"]), [])
        if a.outcome == ACKNOWLEDGED:
            assert [b["bid_id"] for b in found] == [a.response.bid.bid_id], f"acknowledged bid {a.key}: {found}"
        elif a.outcome == REFUSED:
            assert not found and a.key not in record.keys, f"refused bid {a.key} ({a.detail}) left {found}"
        assert (a.key in record.keys) == bool(found)
        if found:
            assert found[0]["credit_code"] == a.info["code"] and record.keys[a.key]["bid_id"] == found[0]["bid_id"]
            there[a.key] = found[0]["bid_id"]
    for a in load.of("order"):
        answer = record.keys.get(a.key, {})
        if a.outcome == ACKNOWLEDGED:
            assert answer.get("order", {}).get("order_id") == a.response.order.order_id, f"order {a.key}"
            assert a.response.order.order_id in record.orders
        elif a.outcome == REFUSED:
            assert "order" not in answer, f"refused order {a.key} ({a.detail}) is there"
        if "order" in answer:
            there[a.key] = answer["order"]["order_id"]
    assert {there[a.key] for a in load.of("order") if a.key in there} == set(record.orders), \
        "an order that no request of the load placed"
    return there


# ---------------------------------------------------------------- the registry's side
async def _ledger(url: str) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str], int], dict[str, tuple]]:
    """(Σ balances per instrument, issued − retired per instrument, held per (holder, instrument), holds)."""
    async with database(url) as db:
        totals = {r[0]: int(r[1]) for r in await rows(db, "SELECT instrument, SUM(balance) FROM accounts "
                                                          "GROUP BY instrument")}
        supply = {r[0]: r[1] - r[2] for r in await rows(db, "SELECT code, issued, retired FROM instruments")}
        held = {(r[0], r[1]): r[2] for r in await rows(db, "SELECT holder, instrument, held FROM accounts")}
        holds = {r[0]: tuple(r[1:]) for r in await rows(db, "SELECT hold_id, status, amount - posted - released, "
                                                            "purpose FROM holds")}
    return totals, supply, held, holds


async def _stray_holds(registry_url: str, record: Record) -> list[str]:
    """Order holds in the registry that keep something for no order of the trading service."""
    _, _, _, holds = await _ledger(registry_url)
    ours = {o["hold_id"] for o in record.orders.values()}
    return [h for h, (status, kept, purpose) in holds.items()
            if purpose.startswith("order") and status == "pending" and kept and h not in ours]


async def _market_is_sound(stub, registry_url: str, world: World, record: Record,
                           before_totals: dict[str, int]) -> list:
    """The API lists the recorded orders, the book agrees with them, every fill is one trade and every trade
    settles once; the registry's holds keep exactly what the open orders may still cost (nothing for a
    request that never became an order); no balance appeared or vanished. Returns the trades."""
    instrument, buyers, sellers = world.instrument, world.buyers, world.sellers
    orders = (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument, page={"page_size": 500}),
                                    metadata=regulator())).orders
    assert sorted(o.order_id for o in orders) == sorted(record.orders)
    trades = (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument, page={"page_size": 500}),
                                    metadata=regulator())).trades
    assert trades and len({t.trade_id for t in trades}) == len(trades)
    traded = sum(int(t.quantity.value) for t in trades)
    assert sum(o.filled for o in orders) == 2 * traded  # every fill belongs to exactly one trade
    book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument, depth=50), metadata=admin())
    resting: Counter = Counter()
    for o in orders:
        if o.state in (pb.ORDER_STATE_OPEN, pb.ORDER_STATE_PARTIALLY_FILLED):
            resting[(o.side, o.price.fen)] += o.quantity - o.filled
    assert resting == Counter({(pb.SIDE_BUY, x.price.fen): x.quantity for x in book.bids}) + \
        Counter({(pb.SIDE_SELL, x.price.fen): x.quantity for x in book.asks})

    async def all_settled():
        listed = (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument, page={"page_size": 500}),
                                        metadata=regulator())).trades
        return all(t.settlement_state == pb.SETTLEMENT_STATE_SETTLED for t in listed)
    await until(all_settled, timeout=30)

    owed: Counter = Counter()
    for o in orders:
        if o.state in (pb.ORDER_STATE_OPEN, pb.ORDER_STATE_PARTIALLY_FILLED):
            left = o.quantity - o.filled
            owed[(o.credit_code, "CNY" if o.side == pb.SIDE_BUY else instrument)] += \
                left * o.price.fen if o.side == pb.SIDE_BUY else left * 1000  # units kept at scale 3

    async def holds_settled():
        _, _, held, _ = await _ledger(registry_url)
        return all(held.get((code, what), 0) == owed[(code, what)]
                   for code in (*buyers, *sellers) for what in ("CNY", instrument))
    await until(holds_settled, timeout=30)
    assert not await _stray_holds(registry_url, record)
    totals, supply, _, _ = await _ledger(registry_url)
    assert totals == before_totals, "trading changed the sum of an instrument's balances"
    assert all(totals.get(code, 0) == outstanding for code, outstanding in supply.items()), (totals, supply)
    paid = sum(t.amount.fen for t in trades)
    async with database(registry_url) as db:
        units = dict(await rows(db, "SELECT holder, balance FROM accounts WHERE instrument = :i", i=instrument))
        cash = dict(await rows(db, "SELECT holder, balance FROM accounts WHERE instrument = 'CNY'"))
    assert sum(units.get(b, 0) for b in buyers) == traded * 1000  # each trade delivered once
    assert sum(cash[b] for b in buyers) == len(buyers) * FUNDS - paid  # and paid once
    assert sum(cash[s] for s in sellers) == len(sellers) * FUNDS + paid
    return trades


def _services(database_url: str, registry_database: str, nats_url: str, instrument: str):
    registry = ServiceProcess("services.registry", DATABASE_URL=registry_database, NATS_URL=nats_url,
                              HOLD_SWEEP_SECONDS="0.5")
    trading = ServiceProcess("services.trading", DATABASE_URL=database_url, NATS_URL=nats_url,
                             SERVICE_API_KEY=TRADING_KEY, REGISTRY_ADDR=registry.address, TIMER_SECONDS="0.05",
                             SETTLEMENT_SECONDS="0.1", SETTLEMENT_MAX_BACKOFF_SECONDS="0.5",
                             MARKETS_JSON=markets_json(instrument))
    return registry, trading


async def test_sigkill_under_load_keeps_every_acknowledged_bid_and_order_exactly_once(
        database_url, registry_database, nats_server):
    instrument = new_instrument()
    registry, trading = _services(database_url, registry_database, nats_server.url, instrument)
    registry_channel = grpc.aio.insecure_channel(registry.address)
    ledger = registry_pb2_grpc.RegistryServiceStub(registry_channel)
    channel = grpc.aio.insecure_channel(trading.address)
    stub = trading_pb2_grpc.TradingServiceStub(channel)

    async def registry_up():
        return await ledger.GetInstrument(rpb.GetInstrumentRequest(code="CNY"), metadata=admin(), timeout=1)

    async def trading_up():
        return await stub.ListListings(pb.ListListingsRequest(), metadata=admin(), timeout=1)
    registry.start()
    try:
        await registry.serving(registry_up)
        await register_agency(ledger, GRANTOR, "测试自然资源局", rpb.AGENCY_ROLE_GRANTOR)
        await register_agency(ledger, TRADING_CENTRE, "测试公共资源交易中心", rpb.AGENCY_ROLE_TRADING_CENTRE)
        parcels = [await available_parcel(ledger) for _ in range(LISTINGS)]
        bidders = list(await asyncio.gather(*(funded_enterprise(ledger, 10_000_000_00) for _ in range(BIDDERS))))
        sellers, buyers = await market_world(ledger, instrument, sellers=3, buyers=3)

        # Published 36 days "ago" (announced 21 days before a listing period that opened 15 days ago and
        # closes in ten minutes), by a process whose clock runs 36 days behind; bid on today.
        now = datetime.now(UTC)
        trading.start(CLOCK_OFFSET_SECONDS=str(-36 * 24 * 3600), MARKETS_JSON="")
        await trading.serving(trading_up)
        listings = []
        for parcel in parcels:
            draft = land_listing(parcel, now - timedelta(days=36))
            draft.bidding_opens_at.CopyFrom(ts(now - timedelta(days=15)))
            draft.bidding_closes_at.CopyFrom(ts(now + timedelta(minutes=10)))
            listings.append((await publish(stub, draft, reserve_fen=START)).listing_id)
        trading.stop()
        trading.start()
        await trading.serving(trading_up)
        await asyncio.gather(*(stub.RegisterBidder(pb.RegisterBidderRequest(
            idempotency_key=key(), listing_id=lid, credit_code=code), metadata=bidder(code))
            for lid in listings for code in bidders))
        world = World(listings, bidders, instrument, sellers, buyers)
        before_totals, _, _, _ = await _ledger(registry_database)

        load = Load(enough)
        prices = [itertools.count() for _ in range(LISTINGS)]
        await crash_under_load(trading, load, [_bid_client(n, stub, load, world, prices) for n in range(BID_CLIENTS)]
                               + [_order_client(n, stub, load, world) for n in range(ORDER_CLIENTS)])
        summary = load.summary()
        assert len(load.of("bid", UNKNOWN)) + len(load.of("order", UNKNOWN)) >= 4, \
            f"the kill came when few requests were in flight: {summary}"
        assert not [a for a in load.of("order", REFUSED)], [(a.error, a.detail) for a in load.of("order", REFUSED)]
        # Bids overtaken on their way (a higher one arrived first) or a leader's own second bid: refused.
        assert {a.reason for a in load.of("bid", REFUSED)} <= {"QUOTE_TOO_LOW", "ALREADY_HIGHEST"}, \
            {(a.error, a.reason, a.detail) for a in load.of("bid", REFUSED)}

        # While trading is down: holds the registry made for orders trading never recorded.
        stray = await _stray_holds(registry_database, await _record(database_url, world))
        trading.start()  # the same database, the same port
        await trading.serving(trading_up)
        first = await _record(database_url, world)
        _whole(first)
        there = _as_answered(load, first)

        # Every client retries what it had not heard back about, and the acknowledged ones once more.
        async def again(a):
            try:
                return await retry(a)
            except grpc.aio.AioRpcError as error:
                return error
        retried = [a for a in load.attempts if a.outcome in (ACKNOWLEDGED, UNKNOWN)]
        answers = await asyncio.gather(*(again(a) for a in retried))
        for a, answer in zip(retried, answers, strict=True):
            if a.key in there:
                assert not isinstance(answer, grpc.aio.AioRpcError), f"retry of {a.kind} {a.key}: {answer}"
                got = answer.bid.bid_id if a.kind == "bid" else answer.order.order_id
                assert got == there[a.key], f"retry of {a.kind} {a.key} answered {got}, not {there[a.key]}"
            elif isinstance(answer, grpc.aio.AioRpcError):  # a bid overtaken meanwhile: refused now
                assert a.kind == "bid" and answer.code() == grpc.StatusCode.FAILED_PRECONDITION, answer
        second = await _record(database_url, world)
        _whole(second)
        final = _as_answered(load, second)
        assert final.items() >= there.items()
        for a, answer in zip(retried, answers, strict=True):
            assert (a.key in final) == (not isinstance(answer, grpc.aio.AioRpcError))

        # The API says the same as the database: each listing's bids, once each.
        for lid in listings:
            listed = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, page={"page_size": 500}),
                                          metadata=regulator())).bids
            assert sorted(b.bid_id for b in listed) == sorted(b[0]["bid_id"] for (x, _), b in second.bids.items()
                                                              if x == lid)
        trades = await _market_is_sound(stub, registry_database, world, second, before_totals)

        for stub_, name in ((stub, "trading"), (ledger, "registry")):
            request = pb.VerifyAuditJournalRequest() if name == "trading" else rpb.VerifyAuditJournalRequest()
            verified = await stub_.VerifyAuditJournal(request, metadata=admin())
            assert verified.intact, f"{name}: {verified.problem}"
        log.info("%s", json.dumps({"attempts": summary, "bids": sum(map(len, second.bids.values())),
                                     "orders": len(second.orders), "trades": len(trades),
                                     "unknown_there_before_retry": sum(1 for a in load.attempts if a.outcome == UNKNOWN
                                                                       and a.key in there),
                                     "stray_order_holds_before_retry": len(stray)}))
    finally:
        await channel.close()
        await registry_channel.close()
        trading.stop()
        registry.stop()


async def test_an_order_never_acknowledged_keeps_nothing_held_after_the_restart(
        database_url, registry_database, nats_server):
    """Clients that give up after the crash (they never retry): their orders are not in the record, and once
    trading is back, the holds the registry made for them are released — nothing stays held for an order
    that does not exist."""
    instrument = new_instrument()
    registry, trading = _services(database_url, registry_database, nats_server.url, instrument)
    registry_channel = grpc.aio.insecure_channel(registry.address)
    ledger = registry_pb2_grpc.RegistryServiceStub(registry_channel)
    channel = grpc.aio.insecure_channel(trading.address)
    stub = trading_pb2_grpc.TradingServiceStub(channel)

    async def registry_up():
        return await ledger.GetInstrument(rpb.GetInstrumentRequest(code="CNY"), metadata=admin(), timeout=1)

    async def trading_up():
        return await stub.ListMarkets(pb.ListMarketsRequest(), metadata=admin(), timeout=1)
    registry.start()
    try:
        await registry.serving(registry_up)
        sellers, buyers = await market_world(ledger, instrument, sellers=3, buyers=3)
        world = World([], [], instrument, sellers, buyers)
        before_totals, _, _, _ = await _ledger(registry_database)
        # Up to three crashes, until one catches an order between its registry hold and its commit.
        everything = Load(lambda load: False)  # every request of every round
        for _ in range(3):
            trading.start()
            await trading.serving(trading_up)
            load = Load(lambda load: load.count("order") >= KILL_AFTER_ORDERS)
            await crash_under_load(trading, load, [_order_client(n, stub, load, world) for n in range(ORDER_CLIENTS)])
            everything.attempts += load.attempts
            down = await _record(database_url, world)  # what trading recorded, read while it is down
            stray = await _stray_holds(registry_database, down)
            if stray:
                break
        else:
            # Timing alone decides whether a kill lands between a hold and its commit (every run so far
            # caught some at the first). Without one, the checks below still hold; the release itself is
            # also proven deterministically (test_market_holds.py, a hold of an earlier life).
            log.warning("no order was between its registry hold and its commit when the kill came")

        trading.start()
        await trading.serving(trading_up)
        record = await _record(database_url, world)
        _whole(record)
        _as_answered(everything, record)
        assert set(record.orders) == set(down.orders)

        async def released() -> bool:
            return not await _stray_holds(registry_database, record)
        await until(released, timeout=20)
        await _market_is_sound(stub, registry_database, world, record, before_totals)
        _, _, _, holds = await _ledger(registry_database)
        assert all(holds[h][0] != "pending" for h in stray), [holds[h] for h in stray]
        verified = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=admin())
        assert verified.intact, verified.problem
        log.info("%s", json.dumps({"attempts": everything.summary(), "orders": len(record.orders),
                                     "stray_order_holds_released": len(stray)}))
    finally:
        await channel.close()
        await registry_channel.close()
        trading.stop()
        registry.stop()
