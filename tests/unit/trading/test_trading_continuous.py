"""CEA continuous trading: band, block band, hours, VWAP close, STP, cancel/amend priority."""
from datetime import date, datetime, time

import pytest

from services.trading.domain.continuous import (
    ContinuousMarket,
    DayClosed,
    DayOpened,
    OrderCancelled,
    TradeExecuted,
)
from services.trading.domain.errors import DomainError
from services.trading.domain.matching import OrderType, SelfTradePrevention
from tests.unit.trading.market_rules import cea_rules

DAY = date(2025, 3, 3)  # a Monday


def at(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime.combine(DAY, time(h, m, s))


def market(stp=SelfTradePrevention.CANCEL_NEWEST) -> ContinuousMarket:
    mkt = ContinuousMarket("CEA", cea_rules(self_trade_prevention=stp.value))
    mkt.open_day(DAY, previous_close=10_000)  # 100.00 元
    return mkt


def trades(events):
    return [(e.maker_order_id, e.taker_order_id, e.price, e.quantity) for e in events if isinstance(e, TradeExecuted)]


def test_price_band_is_plus_minus_ten_percent_of_previous_close():
    mkt = market()
    assert mkt.price_limits() == (9_000, 11_000)
    mkt.place_order(1, 7, True, 10, at(9, 30), price=9_000)
    mkt.place_order(2, 7, False, 10, at(9, 31), price=11_000)
    for price in (8_999, 11_001):
        with pytest.raises(DomainError) as err:
            mkt.place_order(3, 7, True, 10, at(9, 32), price=price)
        assert err.value.code == "PRICE_OUTSIDE_BAND"


def test_block_trades_use_the_thirty_percent_band_block_size_and_block_session():
    mkt = market()
    with pytest.raises(DomainError) as err:
        mkt.place_order(1, 7, True, 100_000, at(10), price=10_000)
    assert err.value.code == "BLOCK_SIZE_ON_BOOK"
    with pytest.raises(DomainError) as err:
        mkt.block_trade(1, 2, 13_000, 100_000, at(10))  # block session is 13:00–15:00
    assert err.value.code == "OUTSIDE_TRADING_HOURS"
    [block] = mkt.block_trade(1, 2, 13_000, 100_000, at(13, 5))
    assert (block.price, block.quantity) == (13_000, 100_000)
    for price in (6_999, 13_001):
        with pytest.raises(DomainError) as err:
            mkt.block_trade(1, 2, price, 100_000, at(13, 6))
        assert err.value.code == "PRICE_OUTSIDE_BLOCK_BAND"
    with pytest.raises(DomainError) as err:
        mkt.block_trade(1, 2, 10_000, 99_999, at(13, 7))
    assert err.value.code == "BELOW_BLOCK_SIZE"


def test_trading_hours_refuse_orders_outside_sessions():
    mkt = market()
    for moment in (at(9, 29, 59), at(11, 30), at(12, 0), at(15, 0)):
        with pytest.raises(DomainError) as err:
            mkt.place_order(1, 7, True, 10, moment, price=10_000)
        assert err.value.code == "OUTSIDE_TRADING_HOURS"
    mkt.place_order(1, 7, True, 10, at(13, 0), price=10_000)


def test_price_time_priority_and_trade_at_resting_price():
    mkt = market()
    mkt.place_order(1, 1, False, 10, at(9, 30), price=10_100)
    mkt.place_order(2, 2, False, 10, at(9, 31), price=10_000)
    mkt.place_order(3, 3, False, 10, at(9, 32), price=10_000)
    events = mkt.place_order(4, 4, True, 25, at(9, 33), price=10_200)
    assert trades(events) == [(2, 4, 10_000, 10), (3, 4, 10_000, 10), (1, 4, 10_100, 5)]


def test_market_order_remainder_is_cancelled():
    mkt = market()
    mkt.place_order(1, 1, False, 10, at(9, 30), price=10_100)
    events = mkt.place_order(2, 2, True, 15, at(9, 31), order_type=OrderType.MARKET)
    assert trades(events) == [(1, 2, 10_100, 10)]
    assert events[-1] == OrderCancelled(2, 5, "unfilled_remainder", at(9, 31))


def test_self_trade_prevention_cancel_newest():
    mkt = market(SelfTradePrevention.CANCEL_NEWEST)
    mkt.place_order(1, 5, False, 10, at(9, 30), price=10_000)
    mkt.place_order(2, 9, False, 10, at(9, 31), price=10_000)
    events = mkt.place_order(3, 9, True, 20, at(9, 32), price=10_000)
    assert trades(events) == [(1, 3, 10_000, 10)]
    assert events[-1] == OrderCancelled(3, 10, "self_trade", at(9, 32))
    assert 2 in mkt.book and 3 not in mkt.book


def test_self_trade_prevention_cancel_resting():
    mkt = market(SelfTradePrevention.CANCEL_RESTING)
    mkt.place_order(1, 9, False, 10, at(9, 30), price=10_000)
    mkt.place_order(2, 5, False, 10, at(9, 31), price=10_000)
    events = mkt.place_order(3, 9, True, 20, at(9, 32), price=10_000)
    assert OrderCancelled(1, 10, "self_trade", at(9, 32)) in events
    assert trades(events) == [(2, 3, 10_000, 10)]
    assert mkt.book.order(3).quantity == 10  # the remainder rests


def test_amend_down_keeps_priority_price_change_or_increase_loses_it():
    mkt = market()
    for oid in (1, 2, 3):
        mkt.place_order(oid, oid, False, 10, at(9, 30), price=10_000)
    [amended] = mkt.amend_order(1, 1, at(9, 31), new_quantity=5)
    assert amended.keeps_priority
    mkt.amend_order(2, 2, at(9, 32), new_quantity=15)  # up: back of the queue
    assert [o.order_id for o in mkt.book.side_in_priority(False)] == [1, 3, 2]
    mkt.amend_order(3, 3, at(9, 33), new_quantity=10, new_price=10_000)  # unchanged: stays
    mkt.amend_order(1, 1, at(9, 34), new_quantity=5, new_price=10_001)
    mkt.amend_order(1, 1, at(9, 35), new_quantity=5, new_price=10_000)  # price round trip: last
    assert [o.order_id for o in mkt.book.side_in_priority(False)] == [3, 2, 1]
    with pytest.raises(DomainError) as err:
        mkt.amend_order(1, 99, at(9, 36), new_quantity=1)
    assert err.value.code == "NOT_ORDER_OWNER"


def test_cancel_and_close_price_is_vwap_or_previous_close():
    mkt = market()
    mkt.place_order(1, 1, False, 10, at(9, 30), price=10_000)
    mkt.place_order(2, 1, False, 30, at(9, 30), price=10_300)
    mkt.place_order(3, 2, True, 40, at(9, 31), price=10_300)
    mkt.place_order(4, 2, True, 5, at(9, 32), price=9_500)
    [_, cancelled] = mkt.cancel_order(4, 2, at(9, 33))
    assert cancelled == OrderCancelled(4, 5, "requested", at(9, 33))
    with pytest.raises(DomainError) as err:
        mkt.cancel_order(4, 2, at(9, 34))
    assert err.value.code == "ORDER_NOT_ACTIVE"
    mkt.block_trade(1, 2, 12_000, 200_000, at(14))  # not in the close
    events = mkt.close_day(at(15, 0))
    closed = events[0]
    assert isinstance(closed, DayClosed)
    # (10 × 10,000 + 30 × 10,300) / 40 = 10,225
    assert (closed.close_price, closed.book_volume, closed.open_price) == (10_225, 40, 10_000)
    quiet = market()
    assert quiet.close_day(at(15, 1))[0].close_price == 10_000


def test_day_end_expires_resting_orders_and_replay_rebuilds_the_market():
    mkt = market()
    journal_rules = mkt.rules
    journal = [DayOpened(DAY, 10_000)]
    journal += mkt.place_order(1, 1, False, 10, at(9, 30), price=10_000)
    journal += mkt.place_order(2, 2, True, 4, at(9, 31), price=10_100)
    journal += mkt.amend_order(1, 1, at(9, 32), new_quantity=3)
    restored = ContinuousMarket.replay("CEA", journal_rules, journal)
    assert restored.book.snapshot() == mkt.book.snapshot()
    assert restored.day.volume == mkt.day.volume == 4
    events = mkt.close_day(at(15))
    assert events[1] == OrderCancelled(1, 3, "day_end", at(15))
    assert len(mkt.book) == 0 and mkt.last_close == 10_000


def test_a_level_order_takes_only_its_chosen_level_at_its_price_and_cancels_the_rest():
    """CEA 挂牌协议: the taker picks one of the best five ask levels; worked by hand.

    Asks (previous close 100.00): #2 5 @ 100.20 and #3 8 @ 100.20 (level 1, 13), #1 10 @ 100.50 (level 2),
    #5 7 @ 100.80 (3), #4 20 @ 101.00 (4), #6 3 @ 101.50 (5), #7 4 @ 102.00 (6: not choosable)."""
    mkt = market()
    for oid, price, qty in ((1, 10_050, 10), (2, 10_020, 5), (3, 10_020, 8), (4, 10_100, 20), (5, 10_080, 7),
                            (6, 10_150, 3), (7, 10_200, 4)):
        mkt.place_order(oid, oid, False, qty, at(9, 30), price=price)
    assert mkt.book.depth(False, 6) == [(10_020, 13), (10_050, 10), (10_080, 7), (10_100, 20), (10_150, 3),
                                        (10_200, 4)]
    # Buy 12 at level 2 (100.50): all of #1 at 100.50; the 2 left are cancelled — not rested, and never
    # traded through to the cheaper level 1 or the dearer level 3.
    events = mkt.place_order(8, 9, True, 12, at(9, 31), price=10_050, order_type=OrderType.LEVEL, level=2)
    assert trades(events) == [(1, 8, 10_050, 10)]
    assert events[-1] == OrderCancelled(8, 2, "unfilled_remainder", at(9, 31))
    assert 8 not in mkt.book
    assert mkt.book.depth(False, 5) == [(10_020, 13), (10_080, 7), (10_100, 20), (10_150, 3), (10_200, 4)]
    # Level 2 is 100.80 now: a taker who saw 100.50 there is refused, never re-pointed at 100.80.
    with pytest.raises(DomainError) as err:
        mkt.place_order(9, 9, True, 1, at(9, 32), price=10_050, order_type=OrderType.LEVEL, level=2)
    assert err.value.code == "LEVEL_PRICE_CHANGED" and "10080" in err.value.message
    # Buy 6 at level 1 (100.20): time priority within the level — #2's 5, then 1 of #3.
    events = mkt.place_order(10, 9, True, 6, at(9, 33), price=10_020, order_type=OrderType.LEVEL, level=1)
    assert trades(events) == [(2, 10, 10_020, 5), (3, 10, 10_020, 1)]
    assert not [e for e in events if isinstance(e, OrderCancelled)]
    assert mkt.book.order(3).quantity == 7
    # Only the best five are choosable (policy taker_levels); an empty level is refused too.
    with pytest.raises(DomainError) as err:
        mkt.place_order(11, 9, True, 1, at(9, 34), price=10_200, order_type=OrderType.LEVEL, level=6)
    assert err.value.code == "LEVEL_OUT_OF_RANGE" and "taker_levels" in err.value.message
    assert "market policy 2025.1-cea" in err.value.message
    with pytest.raises(DomainError) as err:
        mkt.place_order(12, 1, False, 1, at(9, 35), price=10_020, order_type=OrderType.LEVEL, level=1)
    assert err.value.code == "LEVEL_EMPTY"  # no bids at all


def test_level_orders_replay_into_the_same_book():
    mkt = market()
    journal = [DayOpened(DAY, 10_000)]
    journal += mkt.place_order(1, 1, True, 10, at(9, 30), price=9_900)
    journal += mkt.place_order(2, 2, True, 10, at(9, 30), price=9_950)
    journal += mkt.place_order(3, 3, False, 4, at(9, 31), price=9_900, order_type=OrderType.LEVEL, level=2)
    restored = ContinuousMarket.replay("CEA", mkt.rules, journal)
    assert restored.book.snapshot() == mkt.book.snapshot()
    assert [(o.order_id, o.quantity) for o in restored.book.side_in_priority(True)] == [(2, 10), (1, 6)]
    assert restored.trade_seq == mkt.trade_seq == 1


def test_refusals_name_the_rule_and_the_policy_version():
    mkt = ContinuousMarket("CEA", cea_rules(band_bp=500))
    mkt.open_day(DAY, previous_close=10_000)
    with pytest.raises(DomainError) as err:
        mkt.place_order(1, 7, True, 10, at(9, 30), price=10_600)
    assert err.value.code == "PRICE_OUTSIDE_BAND"
    assert err.value.message.endswith("(rule band_bp, set by this market, market policy 2025.1-cea)")
    with pytest.raises(DomainError) as err:
        mkt.place_order(1, 7, True, 100_000, at(9, 30), price=10_000)
    assert err.value.message.endswith("(rule block_size, market policy 2025.1-cea)")
    with pytest.raises(DomainError) as err:
        mkt.place_order(1, 7, True, 10, at(12, 0), price=10_000)
    assert err.value.code == "OUTSIDE_TRADING_HOURS" and "09:30–11:30, 13:00–15:00 (rule sessions," in err.value.message
