"""Order entry holds in the registry (rule 7), against a real registry: a buy holds price × quantity fen, a
sell its units, before the order is acknowledged; each trade is paid out of the two orders' holds (partial
capture: one part per trade); a price better than the limit, a cancel, an amendment down and the day's
close release what the order no longer needs; an amendment up holds the extra first. Funds or units spent
elsewhere after entry never fail a settlement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.market_support import (
    account_of,
    balance,
    held,
    market_world,
    markets_json,
    new_instrument,
    place,
)
from tests.integration.trading.support import bidder, eventually, fen, key, regulator, trading_running
from tests.support.grpc_errors import reason
from tests.support.services import TRADING_KEY, bearer

BUY, SELL = pb.SIDE_BUY, pb.SIDE_SELL
FUNDS = 10_000_000_00


@pytest.fixture
async def market(database_url, nats_server, registry):
    instrument = new_instrument()
    sellers, buyers = await market_world(registry.stub, instrument)
    async with trading_running(database_url, nats_server.url, registry.address,
                               markets_json=markets_json(instrument)) as trading:
        yield trading, instrument, sellers, buyers


async def settled(stub, trades) -> None:
    async def all_settled():
        states = [(await stub.GetTrade(pb.GetTradeRequest(trade_id=t.trade_id), metadata=regulator())).trade
                  .settlement_state for t in trades]
        return all(s == pb.SETTLEMENT_STATE_SETTLED for s in states)
    await eventually(all_settled)


def tomorrow() -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    return stamp


async def holds_become(registry_stub, expected: dict[tuple[str, str], int | str]) -> None:
    """Wait for the releases (ledger tasks) to land: each (holder, instrument) holds exactly this much."""
    async def reached():
        return all([await held(registry_stub, h, i) == Decimal(v) for (h, i), v in expected.items()])
    await eventually(reached)


async def test_holds_follow_place_partial_fills_amend_cancel_and_day_close(market, registry):
    trading, instrument, (s1, _), (b1, b2) = market
    stub, reg = trading.stub, registry.stub
    ask = (await place(stub, instrument, s1, SELL, 101_00, 30)).order
    assert await held(reg, s1, instrument) == 30  # held before the answer
    # b1 buys 10 at a limit of 102.00: 102 000 fen held, the trade at 101.00 takes 101 000 of it and the
    # 1 000 it did not need go back.
    taken = await place(stub, instrument, b1, BUY, 102_00, 10)
    assert [(t.price.fen, t.quantity.value) for t in taken.trades] == [(101_00, "10")]
    more = await place(stub, instrument, b2, BUY, 101_00, 5)
    await settled(stub, [*taken.trades, *more.trades])
    # The ask was paid out twice from its one hold (two parts), which keeps the 15 still on the book.
    await holds_become(reg, {(s1, instrument): 15, (b1, "CNY"): 0, (b2, "CNY"): 0})
    assert Decimal(await balance(reg, s1, instrument)) == 985
    assert int(await balance(reg, b1, "CNY")) == FUNDS - 10 * 101_00
    assert int(await balance(reg, s1, "CNY")) == FUNDS + 15 * 101_00

    cancelled = (await stub.CancelOrder(pb.CancelOrderRequest(idempotency_key=key(), order_id=ask.order_id,
                                                              credit_code=s1), metadata=bidder(s1))).order
    assert (cancelled.state, cancelled.filled) == (pb.ORDER_STATE_CANCELLED, 15)
    await holds_become(reg, {(s1, instrument): 0})
    assert Decimal(await balance(reg, s1, instrument)) == 985

    bid = (await place(stub, instrument, b1, BUY, 99_00, 8)).order
    assert await held(reg, b1, "CNY") == 8 * 99_00

    def amend(quantity: int, price: int, idem: str = ""):
        return stub.AmendOrder(pb.AmendOrderRequest(idempotency_key=idem or key(), order_id=bid.order_id,
                                                    credit_code=b1, price=fen(price), quantity=quantity),
                               metadata=bidder(b1))

    await amend(5, 99_00)  # down: 3 × 99.00 go back
    await holds_become(reg, {(b1, "CNY"): 5 * 99_00})
    up_key = key()
    up = (await amend(9, 100_00, up_key)).order
    assert up.quantity == 9 and await held(reg, b1, "CNY") == 9 * 100_00  # the extra is held before the answer
    assert (await amend(9, 100_00, up_key)).order == up  # a retry holds nothing twice
    assert await held(reg, b1, "CNY") == 9 * 100_00
    available = int((await account_of(reg, b1, "CNY")).available.value)
    too_much = (available + 9 * 100_00) // 100_00 + 1  # one unit more than the funds cover
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await amend(too_much, 100_00)
    assert reason(caught.value) == "INSUFFICIENT_FUNDS"
    assert await held(reg, b1, "CNY") == 9 * 100_00
    assert (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument, open_only=True),
                                  metadata=bidder(b1))).orders[0].quantity == 9  # unchanged

    # The next day: the trading day closes, the bid expires and its hold goes back.
    trading.clock.advance(24 * 3600)

    async def expired():
        orders = (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument), metadata=bidder(b1))).orders
        return [o for o in orders if o.order_id == bid.order_id and o.state == pb.ORDER_STATE_CANCELLED
                and o.reject_reason == "day_end"]
    await eventually(expired)
    await holds_become(reg, {(b1, "CNY"): 0})
    assert int(await balance(reg, b1, "CNY")) == FUNDS - 10 * 101_00


async def test_settlement_never_fails_for_funds_or_units_spent_after_entry(market, registry):
    trading, instrument, (s1, s2), (b1, b2) = market
    stub, reg = trading.stub, registry.stub
    bid = await place(stub, instrument, b1, BUY, 100_00, 10)
    ask = await place(stub, instrument, s1, SELL, 105_00, 10)
    assert not bid.trades and not ask.trades

    async def spend_everything(holder: str, instrument_code: str, to: str) -> None:
        """What the registry lets the holder spend elsewhere: all that is not held."""
        source = await account_of(reg, holder, instrument_code)
        target = await account_of(reg, to, instrument_code)
        spend = rpb.TransferRequest(idempotency_key=key(), memo="spent elsewhere", legs=[rpb.TransferLeg(
            from_account_id=source.account_id, to_account_id=target.account_id,
            quantity=common_pb2.Quantity(value=source.available.value))])
        await reg.Transfer(spend, metadata=bearer(TRADING_KEY))
        more = rpb.TransferRequest(idempotency_key=key(), legs=[rpb.TransferLeg(
            from_account_id=source.account_id, to_account_id=target.account_id,
            quantity=common_pb2.Quantity(value="1"))])
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # the held part cannot go
            await reg.Transfer(more, metadata=bearer(TRADING_KEY))
        assert reason(caught.value) == "INSUFFICIENT_FUNDS"

    await spend_everything(b1, "CNY", b2)
    await spend_everything(s1, instrument, s2)
    assert int((await account_of(reg, b1, "CNY")).available.value) == 0
    assert Decimal((await account_of(reg, s1, instrument)).available.value) == 0
    # Both resting orders are taken now; their trades settle out of the holds.
    sold = await place(stub, instrument, s2, SELL, 100_00, 10)
    bought = await place(stub, instrument, b2, BUY, 105_00, 10)
    trades = [*sold.trades, *bought.trades]
    assert len(trades) == 2
    await settled(stub, trades)
    await holds_become(reg, {(b1, "CNY"): 0, (s1, instrument): 0})
    assert (int(await balance(reg, b1, "CNY")), Decimal(await balance(reg, b1, instrument))) == (0, 10)
    assert (Decimal(await balance(reg, s1, instrument)), int(await balance(reg, s1, "CNY"))) == (0, FUNDS + 10 * 105_00)


async def test_a_refused_hold_refuses_the_order_and_rests_nothing(market, registry):
    trading, instrument, (s1, _), (b1, _) = market
    stub, reg = trading.stub, registry.stub
    first = (await place(stub, instrument, b1, BUY, 100_00, 60_000)).order  # 600 000 000 of 1 000 000 000 fen
    for code, side, quantity, expected in ((b1, BUY, 40_001, "INSUFFICIENT_FUNDS"),
                                           (s1, SELL, 1_001, "INSUFFICIENT_HOLDINGS"),  # holds 1 000
                                           (b1, SELL, 1, "INSUFFICIENT_HOLDINGS")):  # no account of it at all
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await place(stub, instrument, code, side, 100_00, quantity)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(caught.value) == expected
    assert await held(reg, b1, "CNY") == 60_000 * 100_00 and await held(reg, s1, instrument) == 0
    orders = (await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument), metadata=regulator())).orders
    assert [o.order_id for o in orders] == [first.order_id]  # nothing rested, nothing recorded
    book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument), metadata=regulator())
    assert [(x.price.fen, x.quantity) for x in book.bids] == [(100_00, 60_000)] and not book.asks


async def test_a_restart_releases_the_holds_of_orders_never_recorded_and_keeps_the_others(
        database_url, nats_server, registry):
    """A hold an earlier life of trading made for an order it never recorded (it stopped between the hold and
    the commit) is voided once trading is back; the hold of an order it did record stays with the order."""
    instrument = new_instrument()
    (s1, _), (b1, _) = await market_world(registry.stub, instrument)
    reg = registry.stub
    async with trading_running(database_url, nats_server.url, registry.address,
                               markets_json=markets_json(instrument)) as trading:
        await place(trading.stub, instrument, s1, SELL, 101_00, 7)
    # What a crash between the hold and the commit leaves: a pending order hold of an earlier life.
    orphan = (await reg.CreateHold(rpb.CreateHoldRequest(
        idempotency_key=key(), account_id=(await account_of(reg, b1, "CNY")).account_id,
        quantity=common_pb2.Quantity(value="50000"), deadline=tomorrow(),
        purpose="order:O-NEVERRECORDED:earlierlife", partial=True), metadata=bearer(TRADING_KEY))).hold
    assert await held(reg, b1, "CNY") == 50000
    async with trading_running(database_url, nats_server.url, registry.address,
                               markets_json=markets_json(instrument)) as trading:
        # Once trading has reached the registry again (here: an order's hold), the orphan goes back.
        await place(trading.stub, instrument, s1, SELL, 102_00, 1)

        async def released():
            status = (await reg.GetHold(rpb.GetHoldRequest(hold_id=orphan.hold_id),
                                        metadata=bearer(TRADING_KEY))).hold.status
            return status == rpb.HOLD_STATUS_VOIDED
        await eventually(released)
        assert await held(reg, b1, "CNY") == 0
        assert await held(reg, s1, instrument) == 8  # the recorded orders keep their holds
