"""Crash recovery: the trading service runs as a subprocess and is SIGKILLed in the middle of a listing;
after a restart every acknowledged bid is there, retries with the same key don't double a bid, and the
timers fire from the database. Settlement survives a registry outage and settles exactly once.

The subprocess's clock is moved with CLOCK_OFFSET_SECONDS: the listing is published 36 days "ago" (its
announcement and listing periods then comply with 39号令), and bid on by a process started at today."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from tests.integration.trading.support import (
    admin,
    bidder,
    bidding_listing,
    eventually,
    fen,
    key,
    land_world,
    publish,
    regulator,
    ts,
)
from tests.support.registry import registry_running
from tests.support.services import API_KEYS_JSON, TRADING_KEY

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(db_url: str, nats_url: str, registry_addr: str, port: int, offset: float = 0.0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'gen'}:{ROOT}", DATABASE_URL=db_url, NATS_URL=nats_url,
               GRPC_PORT=str(port), METRICS_PORT="0", API_KEYS_JSON=API_KEYS_JSON, SERVICE_API_KEY=TRADING_KEY,
               REGISTRY_ADDR=registry_addr, TIMER_SECONDS="0.05", SETTLEMENT_SECONDS="0.1",
               OUTBOX_POLL_SECONDS="0.05", CLOCK_OFFSET_SECONDS=str(offset), LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "services.trading"], cwd=ROOT, env=env)


async def wait_serving(stub, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await stub.ListListings(pb.ListListingsRequest(), metadata=admin(), timeout=1)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_sigkill_mid_listing_keeps_every_acknowledged_bid_and_timers_fire(tmp_path, nats_server):
    from datetime import UTC, datetime, timedelta

    from tests.integration.trading.support import land_listing
    async with registry_running(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", nats_server.url) as registry:
        resource_id, (alice, bob) = await land_world(registry.stub, 2)
        db = f"sqlite+aiosqlite:///{tmp_path / 'trading.db'}"
        port = free_port()
        # Published 36 days ago: announced 21 days before a listing period that opened 15 days ago and
        # closes in ten minutes.
        now = datetime.now(UTC)
        process = start(db, nats_server.url, registry.address, port, offset=-36 * 24 * 3600)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        try:
            await wait_serving(stub)
            draft = land_listing(resource_id, now - timedelta(days=36))
            draft.bidding_opens_at.CopyFrom(ts(now - timedelta(days=15)))
            draft.bidding_closes_at.CopyFrom(ts(now + timedelta(minutes=10)))
            listing = await publish(stub, draft, reserve_fen=1_000_000_00)
            lid = listing.listing_id
            stop(process)
            process = start(db, nats_server.url, registry.address, port)  # today
            await wait_serving(stub)
            for code in (alice, bob):
                await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=f"reg-{code}", listing_id=lid,
                                                                   credit_code=code),
                                          metadata=bidder(code))
            acknowledged = []
            price = 1_000_000_00
            for i in range(20):
                code = (alice, bob)[i % 2]
                response = await stub.PlaceBid(pb.PlaceBidRequest(
                    idempotency_key=f"bid-{i}", listing_id=lid, credit_code=code, price=fen(price)),
                    metadata=bidder(code))
                acknowledged.append((i, code, price, response.bid.bid_id))
                price += 10_000_00
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

            # Restart 11 minutes "later": the close timer is due and must fire from the database.
            process = start(db, nats_server.url, registry.address, port, offset=11 * 60)
            await wait_serving(stub)
            for i, code, amount, bid_id in acknowledged:  # retries after the crash replay, never double
                again = await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=f"bid-{i}", listing_id=lid,
                                                               credit_code=code, price=fen(amount)),
                                            metadata=bidder(code))
                assert again.bid.bid_id == bid_id
            bids = (await stub.ListBids(pb.ListBidsRequest(listing_id=lid, page={"page_size": 500}),
                                        metadata=regulator())).bids
            assert [b.bid_id for b in bids] == [a[3] for a in acknowledged]

            async def closed():
                got = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing
                return got.state == pb.LISTING_STATE_CLOSED  # two bidders: confirmation window opened
            await eventually(closed, timeout=15)
            verified = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=admin())
            assert verified.intact
        finally:
            await channel.close()
            stop(process)


async def test_settlement_waits_out_a_registry_outage_and_settles_exactly_once(tmp_path, nats_server):
    """The trading service stays up while the registry goes down and comes back on the same address:
    the trade waits in `settling` (attempts and the error recorded), reads keep answering, and once the
    registry is back the worker settles it — once."""
    from tests.integration.trading.support import past_close, trading_running
    registry_db = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    port = free_port()
    address = f"127.0.0.1:{port}"
    async with trading_running(f"sqlite+aiosqlite:///{tmp_path / 'trading.db'}", nats_server.url,
                               address) as trading:
        stub, clock = trading.stub, trading.clock
        async with registry_running(registry_db, nats_server.url, grpc_port=port) as registry:
            resource_id, (alice,) = await land_world(registry.stub, 1)
            listing = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
            lid = listing.listing_id
            await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=lid,
                                                               credit_code=alice),
                                      metadata=bidder(alice))
            await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=lid, credit_code=alice,
                                                   price=fen(1_000_000_00)), metadata=bidder(alice))
            past_close(clock, listing)

            async def awarded():
                got = (await stub.GetListing(pb.GetListingRequest(listing_id=lid), metadata=admin())).listing
                return got.state == pb.LISTING_STATE_AWARDED
            await eventually(awarded)
        await eventually(lambda: _down(address))  # the registry is down; trading is not
        trade = (await stub.ConfirmAward(pb.ConfirmAwardRequest(idempotency_key=key(), listing_id=lid,
                                                                credit_code=alice),
                                         metadata=bidder(alice))).trade

        async def attempted():
            t = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=regulator())).trade
            return t.settlement_attempts >= 2 and t
        t = await eventually(attempted, timeout=30)
        # Any transient answer (UNAVAILABLE, DEADLINE_EXCEEDED under load …): retried, never given up on.
        assert t.settlement_state == pb.SETTLEMENT_STATE_SETTLING and t.settlement_error.startswith("registry ")
        listed = await stub.ListListings(pb.ListListingsRequest(), metadata=admin())
        assert lid in [x.listing_id for x in listed.listings]  # the service keeps answering meanwhile

        async with registry_running(registry_db, nats_server.url, grpc_port=port) as registry:
            async def settled():
                got = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=regulator())).trade
                return got.settlement_state == pb.SETTLEMENT_STATE_SETTLED and got
            done = await eventually(settled, timeout=30)
            from yaosu.registry.v1 import registry_pb2 as rpb
            paid = (await registry.stub.ListAccounts(rpb.ListAccountsRequest(holder="AG-T-ZRZY",
                                                                             instrument="CNY"),
                                                     metadata=regulator())).accounts[0]
            assert int(paid.balance.value) == 1_000_000_00  # paid exactly once
            assert done.settlement_operation_id and done.settlement_attempts > t.settlement_attempts


async def _down(address: str) -> bool:
    host, port = address.split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return True
    writer.close()
    return False
