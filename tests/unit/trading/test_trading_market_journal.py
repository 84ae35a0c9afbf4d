"""The market journal codec and the market configuration: every journal event survives a round trip, and a
market replayed from the decoded journal is the market that wrote it (same book, same trades)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from services.trading.application.market import (
    EveryDay,
    account_of,
    calendar_of,
    check_block,
    decode_event,
    encode_event,
    trading_rules,
)
from services.trading.domain import continuous as C
from services.trading.domain.errors import DomainError
from services.trading.domain.matching import OrderType

TZ = ZoneInfo("Asia/Shanghai")
ALL_DAY = {"sessions": [["00:00", "24:00"]], "block_sessions": [["00:00", "24:00"]], "trading_days": "every",
           "block_size": 100}


def test_configuration_is_data() -> None:
    rules = trading_rules(ALL_DAY)
    assert rules.sessions[0].contains(time(0, 0)) and rules.sessions[0].contains(time(23, 59, 59))
    assert rules.block_size == 100 and rules.band_bp == 1_000 and rules.block_band_bp == 3_000
    cea = trading_rules({})
    assert [(s.start, s.end) for s in cea.sessions] == [(time(9, 30), time(11, 30)), (time(13), time(15))]
    assert [(s.start, s.end) for s in cea.block_sessions] == [(time(13), time(15))]
    assert isinstance(calendar_of(ALL_DAY), EveryDay) and calendar_of(ALL_DAY).is_working_day(date(2026, 11, 22))
    assert not calendar_of({}).is_working_day(date(2026, 11, 22))  # a Sunday under the CEA calendar
    assert account_of("91330106MA00000001") == account_of("91330106MA00000001") != account_of("91330106MA00000002")


def test_journal_round_trip_replays_the_same_market() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).astimezone(TZ)
    market = C.ContinuousMarket("energy_use_right:330100:2025", trading_rules(ALL_DAY), EveryDay())
    journal = []

    def keep(events):
        journal.extend(e for e in events if isinstance(e, (C.DayOpened, C.OrderAccepted, C.OrderCancelRequested,
                                                          C.OrderAmended, C.BlockTradeExecuted, C.DayClosed)))
        return events

    keep(market.open_day(now.date(), 100_00))
    keep(market.place_order(1, 7, False, 10, now, 101_00))
    keep(market.place_order(2, 8, False, 5, now, 102_00))
    keep(market.amend_order(2, 8, now, 4, 101_50))
    traded = keep(market.place_order(3, 9, True, 12, now, 102_00))
    keep(market.place_order(4, 9, True, 3, now, None, OrderType.MARKET))
    keep(market.block_trade(9, 7, 125_00, 100, now))
    if 1 in market.book:
        keep(market.cancel_order(1, 7, now))
    rows = [encode_event(e) for e in journal]
    decoded = [decode_event(t, p) for t, p in rows]
    assert decoded == journal
    again = C.ContinuousMarket.replay(market.instrument, market.rules, decoded, EveryDay())
    assert again.book.snapshot() == market.book.snapshot() and again.trade_seq == market.trade_seq
    assert [e for e in traded if isinstance(e, C.TradeExecuted)]


def test_block_proposals_are_checked_like_the_trade() -> None:
    now = datetime(2026, 11, 23, 14, 0, tzinfo=TZ)
    market = C.ContinuousMarket("x", trading_rules(ALL_DAY), EveryDay())
    market.open_day(now.date(), 100_00)
    check_block(market, now, "A", "B", 100, 130_00)
    for args, code in ((("A", "A", 100, 100_00), "SELF_TRADE"), (("A", "", 100, 100_00), "COUNTERPARTY_REQUIRED"),
                       (("A", "B", 99, 100_00), "BELOW_BLOCK_SIZE"), (("A", "B", 100, 130_01), "PRICE_OUTSIDE_BLOCK_BAND")):
        try:
            check_block(market, now, *args)
        except DomainError as exc:
            assert exc.code == code
        else:
            raise AssertionError(code)
