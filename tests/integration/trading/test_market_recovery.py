"""Crash recovery of a continuous market: the trading service (a subprocess) is SIGKILLed while orders are
streaming in mid trading day. After the restart the book is rebuilt from the journal: every acknowledged
order is there, retries with the same keys never place an order twice nor hold its funds twice, no trade is
executed twice, every trade settles exactly once in the registry, and the holds keep exactly what the open
orders may still cost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal

import grpc
from yaosu.trading.v1 import trading_pb2 as pb
from yaosu.trading.v1 import trading_pb2_grpc

from tests.integration.trading.market_support import (
    balance,
    held,
    market_world,
    markets_json,
    new_instrument,
    place,
)
from tests.integration.trading.support import admin, eventually, regulator
from tests.integration.trading.test_recovery import ROOT, free_port, wait_serving
from tests.support.registry import registry_running
from tests.support.services import API_KEYS_JSON, TRADING_KEY

ORDERS = 60


def start(db_url: str, nats_url: str, registry_addr: str, port: int, instrument: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'gen'}:{ROOT}", DATABASE_URL=db_url, NATS_URL=nats_url,
               GRPC_PORT=str(port), METRICS_PORT="0", API_KEYS_JSON=API_KEYS_JSON, SERVICE_API_KEY=TRADING_KEY,
               REGISTRY_ADDR=registry_addr, SETTLEMENT_SECONDS="0.1", OUTBOX_POLL_SECONDS="0.05",
               MARKETS_JSON=markets_json(instrument), LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "services.trading"], cwd=ROOT, env=env)


def order_spec(i: int, sellers: list[str], buyers: list[str]) -> tuple[str, int, int, int]:
    # Alternating sides around the previous close, so that many orders cross and trade.
    if i % 2:
        return sellers[i // 2 % 2], pb.SIDE_SELL, 100_00 - (i % 5) * 10, 3 + i % 4
    return buyers[i // 2 % 2], pb.SIDE_BUY, 100_00 + (i % 7) * 10, 2 + i % 5


async def retried(call, *args, attempts: int = 50, **kwargs):
    """A client as the API asks: UNAVAILABLE or ABORTED are retried with the same idempotency key (a
    restarted service may still be reconnecting to the registry)."""
    for attempt in range(attempts):
        try:
            return await call(*args, **kwargs)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1)


async def test_sigkill_mid_trading_day_rebuilds_the_book_without_doubles(tmp_path, nats_server):
    async with registry_running(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}", nats_server.url) as registry:
        instrument = new_instrument()
        sellers, buyers = await market_world(registry.stub, instrument)
        db = f"sqlite+aiosqlite:///{tmp_path / 'trading.db'}"
        port = free_port()
        process = start(db, nats_server.url, registry.address, port, instrument)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        try:
            await wait_serving(stub)
            acknowledged: dict[int, str] = {}

            async def send(i: int) -> None:
                code, side, price, quantity = order_spec(i, sellers, buyers)
                response = await place(stub, instrument, code, side, price, quantity, idem=f"order-{i}")
                acknowledged[i] = response.order.order_id

            for i in range(10):  # a few in sequence, then a burst the kill interrupts
                await send(i)
            burst = [asyncio.create_task(send(i)) for i in range(10, ORDERS)]
            await eventually(lambda: asyncio.sleep(0, len(acknowledged) >= 20), interval=0.001)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            await asyncio.gather(*burst, return_exceptions=True)
            assert len(acknowledged) < ORDERS, "the kill came too late to interrupt anything"

            process = start(db, nats_server.url, registry.address, port, instrument)
            await wait_serving(stub)
            for i in range(ORDERS):  # every client retries with its key: acknowledged ones are replayed
                code, side, price, quantity = order_spec(i, sellers, buyers)
                again = await retried(place, stub, instrument, code, side, price, quantity, idem=f"order-{i}")
                if i in acknowledged:
                    assert again.order.order_id == acknowledged[i]
            orders = (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument, page={"page_size": 500}),
                                            metadata=regulator())).orders
            assert len(orders) == ORDERS  # one order per key, none lost, none doubled
            trades = (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument, page={"page_size": 500}),
                                            metadata=regulator())).trades
            assert len({t.trade_id for t in trades}) == len(trades) and trades
            traded = sum(int(t.quantity.value) for t in trades)
            assert sum(o.filled for o in orders) == 2 * traded  # every fill belongs to exactly one trade
            # The rebuilt book agrees with the order mirror.
            book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument, depth=50), metadata=admin())
            resting = Counter()
            for o in orders:
                if o.state in (pb.ORDER_STATE_OPEN, pb.ORDER_STATE_PARTIALLY_FILLED):
                    resting[(o.side, o.price.fen)] += o.quantity - o.filled
            assert resting == Counter({(pb.SIDE_BUY, x.price.fen): x.quantity for x in book.bids}) + \
                Counter({(pb.SIDE_SELL, x.price.fen): x.quantity for x in book.asks})

            async def all_settled():
                listed = (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument,
                                                                     page={"page_size": 500}),
                                                metadata=regulator())).trades
                return all(t.settlement_state == pb.SETTLEMENT_STATE_SETTLED for t in listed)
            await eventually(all_settled, timeout=30)
            # Every hold keeps exactly what its open orders may still cost: none held twice by a retry, none
            # left behind by the kill, every part paid or released once.
            owed: Counter = Counter()
            for o in orders:
                if o.state in (pb.ORDER_STATE_OPEN, pb.ORDER_STATE_PARTIALLY_FILLED):
                    left = o.quantity - o.filled
                    owed[(o.credit_code, "CNY" if o.side == pb.SIDE_BUY else instrument)] += \
                        left * o.price.fen if o.side == pb.SIDE_BUY else left

            async def holds_settled():
                return all([await held(registry.stub, code, what) == owed[(code, what)]
                            for code in (*buyers, *sellers) for what in ("CNY", instrument)])
            await eventually(holds_settled, timeout=30)
            bought = sum([Decimal(await balance(registry.stub, b, instrument)) for b in buyers], Decimal(0))
            assert bought == traded  # each trade delivered exactly once
            paid = sum(t.amount.fen for t in trades)
            cash = sum([int(await balance(registry.stub, b, "CNY")) for b in buyers])
            assert cash == 2 * 10_000_000_00 - paid
            verified = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=admin())
            assert verified.intact
        finally:
            await channel.close()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
