"""Continuous markets over gRPC against a real registry: price band and block size refusals, self-trade
prevention, cancel and amend priority, pre-trade balance checks, a trade settling DvP in the registry,
idempotent retries, the book, the markets and the statistics. Only the enterprise itself orders; the
other side of a book trade is shown to regulators only; an unknown order id and somebody else's answer
alike."""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import grpc
import pytest
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.market_support import (
    PREVIOUS_CLOSE,
    balance,
    market_world,
    markets_json,
    new_instrument,
    place,
)
from tests.integration.trading.support import (
    admin,
    bidder,
    bidding_listing,
    eventually,
    fen,
    key,
    past_close,
    published_listing,
    regulator,
    trading_running,
)
from tests.support.grpc_errors import reason

BUY, SELL = pb.SIDE_BUY, pb.SIDE_SELL


@pytest.fixture
async def market(database_url, nats_server, registry):
    instrument = new_instrument()
    sellers, buyers = await market_world(registry.stub, instrument)
    async with trading_running(database_url, nats_server.url, registry.address,
                               markets_json=markets_json(instrument)) as trading:
        yield trading, instrument, sellers, buyers


async def sellers(stub, placed) -> list[str]:
    """The sellers of the trades an order made, as a regulator reads them (the buyer sees its side only)."""
    return [(await stub.GetTrade(pb.GetTradeRequest(trade_id=t.trade_id), metadata=regulator())).trade.seller
            for t in placed.trades]


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def test_band_block_size_and_balances_are_checked_before_anything_is_recorded(market, registry):
    trading, instrument, (s1, _), (b1, _) = market
    stub = trading.stub
    high = await refused(place(stub, instrument, b1, BUY, PREVIOUS_CLOSE * 11 // 10 + 1, 10))
    assert high.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(high) == "PRICE_OUTSIDE_BAND"
    low = await refused(place(stub, instrument, s1, SELL, PREVIOUS_CLOSE * 9 // 10 - 1, 10))
    assert reason(low) == "PRICE_OUTSIDE_BAND"
    edge = (await place(stub, instrument, b1, BUY, PREVIOUS_CLOSE * 11 // 10, 10)).order  # the band is inclusive
    assert edge.state == pb.ORDER_STATE_OPEN
    block = await refused(place(stub, instrument, s1, SELL, PREVIOUS_CLOSE, 100_000))
    assert reason(block) == "BLOCK_SIZE_ON_BOOK"
    short = await refused(place(stub, instrument, s1, SELL, PREVIOUS_CLOSE, 1_001))  # holds 1000 tce
    assert reason(short) == "INSUFFICIENT_HOLDINGS"
    # 1 000 000 000 fen available, 110 000 already committed by the resting bid: 999 990 000 more do not fit.
    poor = await refused(place(stub, instrument, b1, BUY, PREVIOUS_CLOSE, 99_999))
    assert reason(poor) == "INSUFFICIENT_FUNDS"
    foreign = await refused(stub.PlaceOrder(pb.PlaceOrderRequest(
        idempotency_key=key(), instrument=instrument, credit_code=s1, side=SELL, type=pb.ORDER_TYPE_LIMIT,
        price=fen(PREVIOUS_CLOSE), quantity=1), metadata=bidder(b1)))
    assert foreign.code() == grpc.StatusCode.PERMISSION_DENIED
    book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument), metadata=admin())
    assert [(x.price.fen, x.quantity) for x in book.bids] == [(PREVIOUS_CLOSE * 11 // 10, 10)] and not book.asks
    assert (book.band_low.fen, book.band_high.fen, book.open) == (9_000, 11_000, True)
    orders = await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument), metadata=regulator())
    assert [o.order_id for o in orders.orders] == [edge.order_id]
    mine = await stub.ListOrders(pb.ListOrdersRequest(instrument=instrument), metadata=bidder(s1))
    assert not mine.orders  # an enterprise lists its own orders only


async def test_self_trade_prevention_cancel_and_amend_priority(market):
    trading, instrument, (s1, s2), (b1, _) = market
    stub = trading.stub
    first = (await place(stub, instrument, s1, SELL, 101_00, 10)).order
    second = (await place(stub, instrument, s2, SELL, 101_00, 10)).order
    # s1 also buys: its own resting ask is first in line, so the incoming remainder is cancelled (STP).
    own = await stub.PlaceOrder(pb.PlaceOrderRequest(
        idempotency_key=key(), instrument=instrument, credit_code=s1, side=BUY, type=pb.ORDER_TYPE_LIMIT,
        price=fen(101_00), quantity=5), metadata=bidder(s1))
    assert not own.trades and own.order.state == pb.ORDER_STATE_CANCELLED and own.order.reject_reason == "self_trade"
    # Amending the first order's quantity down keeps its priority …
    down = (await stub.AmendOrder(pb.AmendOrderRequest(idempotency_key=key(), order_id=first.order_id,
                                                       credit_code=s1, price=fen(101_00), quantity=8),
                                  metadata=bidder(s1))).order
    assert down.quantity == 8
    taker = await place(stub, instrument, b1, BUY, 101_00, 3)
    assert await sellers(stub, taker) == [s1]
    # … raising it loses priority: s2's order is now first.
    await stub.AmendOrder(pb.AmendOrderRequest(idempotency_key=key(), order_id=first.order_id, credit_code=s1,
                                               price=fen(101_00), quantity=9), metadata=bidder(s1))
    taker = await place(stub, instrument, b1, BUY, 101_00, 3)
    assert await sellers(stub, taker) == [s2]
    cancelled = (await stub.CancelOrder(pb.CancelOrderRequest(idempotency_key=key(), order_id=second.order_id,
                                                              credit_code=s2),
                                        metadata=bidder(s2))).order
    assert cancelled.state == pb.ORDER_STATE_CANCELLED and cancelled.filled == 3
    again = await refused(stub.CancelOrder(pb.CancelOrderRequest(idempotency_key=key(), order_id=second.order_id,
                                                                 credit_code=s2),
                                           metadata=bidder(s2)))
    assert reason(again) == "ORDER_NOT_ACTIVE"
    # Somebody else's order and an unknown one answer alike: no oracle of order ids.
    not_yours = await refused(stub.CancelOrder(pb.CancelOrderRequest(idempotency_key=key(), order_id=first.order_id,
                                                                     credit_code=s2),
                                               metadata=bidder(s2)))
    unknown = await refused(stub.CancelOrder(pb.CancelOrderRequest(idempotency_key=key(), order_id="O-unknown",
                                                                   credit_code=s2), metadata=bidder(s2)))
    assert not_yours.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
    assert reason(not_yours) == reason(unknown)
    assert not_yours.details().replace(first.order_id, "?") == unknown.details().replace("O-unknown", "?")
    book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument, depth=5), metadata=admin())
    assert [(x.price.fen, x.quantity, x.orders) for x in book.asks] == [(101_00, 9, 1)]


async def test_a_trade_settles_dvp_in_the_registry_once(market, registry):
    trading, instrument, (s1, s2), (b1, _) = market
    stub = trading.stub
    await place(stub, instrument, s1, SELL, 102_00, 30)
    retry_key = key()
    taken = await place(stub, instrument, b1, BUY, 103_00, 20, idem=retry_key)
    replay = await place(stub, instrument, b1, BUY, 103_00, 20, idem=retry_key)
    assert replay == taken  # the retry gets the first answer; nothing traded twice
    (trade,) = taken.trades
    assert (trade.price.fen, trade.quantity.value, trade.amount.fen) == (102_00, "20", 20 * 102_00)
    # Each party sees its own side; the counterparty's credit code only regulators.
    assert (trade.buyer_credit_code, trade.seller) == (b1, "")
    sold = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=bidder(s1))).trade
    assert (sold.buyer_credit_code, sold.seller) == ("", s1)
    listed = (await stub.ListTrades(pb.ListTradesRequest(instrument=instrument), metadata=bidder(s1))).trades
    assert [(t.buyer_credit_code, t.seller) for t in listed] == [("", s1)]
    watched = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=regulator())).trade
    assert (watched.buyer_credit_code, watched.seller) == (b1, s1)
    with pytest.raises(grpc.aio.AioRpcError) as other:  # a trade of others does not exist for a third party
        await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=bidder(s2))
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    conflict = await refused(place(stub, instrument, b1, BUY, 103_00, 21, idem=retry_key))
    assert reason(conflict) == "IDEMPOTENCY_KEY_REUSED"

    async def settled():
        t = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=regulator())).trade
        return t if t.settlement_state == pb.SETTLEMENT_STATE_SETTLED else None

    done = await eventually(settled)
    assert done.settlement_operation_id
    assert float(await balance(registry.stub, b1, instrument)) == 20
    assert float(await balance(registry.stub, s1, instrument)) == 980
    assert int(await balance(registry.stub, s1, "CNY")) == 10_000_000_00 + 20 * 102_00
    assert int(await balance(registry.stub, b1, "CNY")) == 10_000_000_00 - 20 * 102_00

    stats = await stub.GetMarketStatistics(pb.GetMarketStatisticsRequest(), metadata=regulator())
    (mine,) = [i for i in stats.instruments if i.instrument == instrument]
    assert (mine.trades, mine.volume, mine.value.fen, mine.vwap.fen, mine.high.fen, mine.low.fen) == \
        (1, 20, 20 * 102_00, 102_00, 102_00, 102_00)
    markets = await stub.ListMarkets(pb.ListMarketsRequest(), metadata=admin())
    (m,) = [x for x in markets.markets if x.instrument == instrument]
    assert (m.last_price.fen, m.volume_today, m.open, m.previous_close.fen) == (102_00, 20, True, PREVIOUS_CLOSE)
    assert m.trade_code
    body = urllib.request.urlopen(f"http://127.0.0.1:{trading.metrics_port}/metrics").read().decode()
    assert 'trading_trades_total{instrument_kind="energy_use_right"} 1.0' in body
    assert 'trading_last_price_fen{instrument_kind="energy_use_right"} 10200.0' in body
    assert 'trading_book_depth{instrument_kind="energy_use_right",side="sell"} 10.0' in body
    assert 'trading_orders_total{reason="",result="accepted",side="buy"} 1.0' in body


async def test_block_trades_within_the_block_band_execute_when_both_sides_agree(database_url, nats_server,
                                                                              registry):
    import json

    from tests.integration.trading.market_support import market_config
    instrument = new_instrument()
    (seller,), (buyer,) = await market_world(registry.stub, instrument, sellers=1, buyers=1)
    config = json.dumps([market_config(instrument, block_size=100)])
    async with trading_running(database_url, nats_server.url, registry.address, markets_json=config) as trading:
        stub = trading.stub

        def block(code: str, side: int, price: int, quantity: int, counterparty: str):
            return stub.PlaceOrder(pb.PlaceOrderRequest(
                idempotency_key=key(), instrument=instrument, credit_code=code, side=side, type=pb.ORDER_TYPE_LIMIT,
                price=fen(price), quantity=quantity, block=True, counterparty=counterparty),
                metadata=bidder(code))

        # ±30 %: 125.00 is outside the book band (±10 %) but inside the block band; 131.00 is outside both.
        outside = await refused(block(seller, SELL, 131_00, 100, buyer))
        assert reason(outside) == "PRICE_OUTSIDE_BLOCK_BAND"
        small = await refused(block(seller, SELL, 125_00, 99, buyer))
        assert reason(small) == "BELOW_BLOCK_SIZE"
        on_book = await refused(place(stub, instrument, seller, SELL, 100_00, 100))
        assert reason(on_book) == "BLOCK_SIZE_ON_BOOK"
        proposal = await block(seller, SELL, 125_00, 100, buyer)
        assert proposal.order.block and proposal.order.state == pb.ORDER_STATE_OPEN and not proposal.trades
        book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument), metadata=admin())
        assert not book.asks  # a block proposal is not on the book
        mismatch = await block(buyer, BUY, 124_00, 100, seller)  # another price: no agreement yet
        assert not mismatch.trades
        await stub.CancelOrder(pb.CancelOrderRequest(idempotency_key=key(), order_id=mismatch.order.order_id,
                                                     credit_code=buyer), metadata=bidder(buyer))
        agreed = await block(buyer, BUY, 125_00, 100, seller)
        (trade,) = agreed.trades
        assert (trade.price.fen, trade.quantity.value, trade.buyer_credit_code, trade.seller) == \
            (125_00, "100", buyer, seller)

        async def settled():
            t = (await stub.GetTrade(pb.GetTradeRequest(trade_id=trade.trade_id), metadata=regulator())).trade
            return t.settlement_state == pb.SETTLEMENT_STATE_SETTLED
        await eventually(settled)
        assert float(await balance(registry.stub, buyer, instrument)) == 100
        # A block trade does not move the book's band (the close is the VWAP of book trades only).
        book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument), metadata=admin())
        assert (book.band_low.fen, book.band_high.fen) == (90_00, 110_00)


async def test_concurrent_orders_never_commit_more_than_the_balance(market):
    import asyncio
    trading, instrument, _, (b1, _) = market
    # 1 000 000 000 fen available: at 100.00 one buyer covers 100 000 units; five concurrent orders of 40 000.
    results = await asyncio.gather(*(place(trading.stub, instrument, b1, BUY, 100_00, 40_000) for _ in range(5)),
                                   return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refusals = [reason(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(accepted) == 2 and refusals == ["INSUFFICIENT_FUNDS"] * 3, (accepted, refusals)


async def test_statistics_count_sales_by_state_and_single_bidder_sales(trading, registry):
    from tests.integration.trading.support import land_world
    stub, clock = trading.stub, trading.clock
    resource_id, (alice,) = await land_world(registry.stub, 1)
    other_id, _ = await land_world(registry.stub, 0)
    await published_listing(stub, other_id, clock.now(), reserve_fen=1_000_000_00, listing_period=timedelta(days=40))
    sold = await bidding_listing(trading, resource_id, reserve_fen=1_000_000_00)
    await stub.RegisterBidder(pb.RegisterBidderRequest(idempotency_key=key(), listing_id=sold.listing_id,
                                                       credit_code=alice), metadata=bidder(alice))
    await stub.PlaceBid(pb.PlaceBidRequest(idempotency_key=key(), listing_id=sold.listing_id, credit_code=alice,
                                           price=fen(1_000_000_00)), metadata=bidder(alice))
    past_close(clock, sold)

    async def decided():
        stats = await stub.GetMarketStatistics(pb.GetMarketStatisticsRequest(), metadata=regulator())
        return stats if stats.sales_by_state.get("awarded") == 1 else None
    stats = await eventually(decided)
    assert dict(stats.sales_by_state) == {"awarded": 1, "published": 1}
    assert (stats.open_sales, stats.single_bidder_sales, stats.settlement_backlog) == (1, 1, 1)
    assert not stats.instruments  # no book trades: a land sale is not a market trade


async def test_a_level_order_takes_the_chosen_one_of_the_best_five_levels(market, registry):
    from tests.integration.trading.market_support import held
    from tests.support.grpc_errors import field_violations
    trading, instrument, (s1, s2), (b1, b2) = market
    stub = trading.stub
    for code, price, quantity in ((s1, 100_20, 5), (s2, 100_50, 10), (s1, 100_80, 7)):
        await place(stub, instrument, code, SELL, price, quantity)
    book = await stub.GetOrderBook(pb.GetOrderBookRequest(instrument=instrument), metadata=admin())
    assert [(x.level, x.price.fen, x.quantity) for x in book.asks] == [(1, 100_20, 5), (2, 100_50, 10),
                                                                       (3, 100_80, 7)]
    assert book.taker_levels == 5

    def take(code: str, side: int, level: int, price: int, quantity: int, idem: str = ""):
        return stub.PlaceOrder(pb.PlaceOrderRequest(
            idempotency_key=idem or key(), instrument=instrument, credit_code=code, side=side,
            type=pb.ORDER_TYPE_LEVEL, level=level, price=fen(price), quantity=quantity), metadata=bidder(code))

    # Level 2 at 100.50: all 10 there, at that price only (never the cheaper 100.20); the 2 left cancelled.
    taken = await take(b1, BUY, 2, 100_50, 12)
    assert [(t.price.fen, t.quantity.value) for t in taken.trades] == [(100_50, "10")]
    assert (taken.order.type, taken.order.state, taken.order.filled, taken.order.reject_reason) == (
        pb.ORDER_TYPE_LEVEL, pb.ORDER_STATE_CANCELLED, 10, "unfilled_remainder")
    assert await sellers(stub, taken) == [s2]
    # The book moved: level 2 is 100.80 now. The stale choice is refused, its hold released, and a retry
    # with the same key gets the same answer without holding again; a new choice takes a new key.
    stale_key = key()
    for _ in range(2):
        stale = await refused(take(b2, BUY, 2, 100_50, 3, stale_key))
        assert stale.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(stale) == "LEVEL_PRICE_CHANGED"
        assert "10080" in stale.details()
    await eventually(lambda: _zero(held(registry.stub, b2, "CNY")))
    again = await take(b2, BUY, 2, 100_80, 3)
    assert [(t.price.fen, t.quantity.value) for t in again.trades] == [(100_80, "3")]
    assert reason(await refused(take(b2, BUY, 3, 100_80, 1))) == "LEVEL_EMPTY"
    # The sell side chooses among the bids the same way.
    await place(stub, instrument, b1, BUY, 99_00, 4)
    sold = await take(s1, SELL, 1, 99_00, 4)
    assert [(t.price.fen, t.quantity.value) for t in sold.trades] == [(99_00, "4")]
    # Bad input names its field: no level, a level beyond the market's five, a level on a limit order, no price.
    for request, field in (
            (dict(type=pb.ORDER_TYPE_LEVEL, price=fen(100_20)), "level"),
            (dict(type=pb.ORDER_TYPE_LEVEL, level=6, price=fen(100_20)), "level"),
            (dict(type=pb.ORDER_TYPE_LIMIT, level=1, price=fen(100_20)), "level"),
            (dict(type=pb.ORDER_TYPE_LEVEL, level=1), "price.fen")):
        bad = await refused(stub.PlaceOrder(pb.PlaceOrderRequest(
            idempotency_key=key(), instrument=instrument, credit_code=b1, side=BUY, quantity=1, **request),
            metadata=bidder(b1)))
        assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(bad), request
    beyond = await refused(take(b1, BUY, 6, 100_20, 1))
    assert "taker_levels" in field_violations(beyond)["level"] and "2025.1-cea" in field_violations(beyond)["level"]


async def _zero(value) -> bool:
    return await value == 0
