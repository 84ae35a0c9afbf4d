"""The market journal codec and the market configuration: every journal event survives a round trip, and a
market replayed from the decoded journal is the market that wrote it (same book, same trades). Market rules
are the versioned policy's with a market's overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from services.trading.application.market import account_of, decode_event, encode_event
from services.trading.domain import continuous as C
from services.trading.domain.errors import DomainError
from services.trading.domain.market_policy import EveryDay, MarketPolicy
from services.trading.domain.matching import OrderType, SelfTradePrevention
from tests.unit.trading.market_rules import POLICY, market_config

TZ = ZoneInfo("Asia/Shanghai")
ALL_DAY = {"sessions": [["00:00", "24:00"]], "block_sessions": [["00:00", "24:00"]], "trading_days": "every",
           "block_size": 100}


def test_configuration_is_policy_data_with_market_overrides() -> None:
    config = market_config(**ALL_DAY)
    rules = config.rules
    assert rules.sessions[0].contains(time(0, 0)) and rules.sessions[0].contains(time(23, 59, 59))
    assert rules.block_size == 100 and rules.band_bp == 1_000 and rules.block_band_bp == 3_000
    assert rules.overrides == frozenset(ALL_DAY) and rules.policy_version == POLICY.version == "2025.1-cea"
    cea = market_config()
    assert [(s.start, s.end) for s in cea.rules.sessions] == [(time(9, 30), time(11, 30)), (time(13), time(15))]
    assert [(s.start, s.end) for s in cea.rules.block_sessions] == [(time(13), time(15))]
    assert (cea.rules.taker_levels, cea.rules.tick_fen, cea.rules.lot_units) == (5, 1, 1)
    assert cea.rules.self_trade_prevention is SelfTradePrevention.CANCEL_NEWEST
    assert (cea.timezone, cea.hold_days) == ("Asia/Shanghai", 7)
    assert isinstance(config.calendar, EveryDay) and config.calendar.is_working_day(date(2026, 11, 22))
    assert not cea.calendar.is_working_day(date(2026, 11, 22))  # a Sunday under the CEA calendar
    assert market_config(policy_version="demo-all-day").rules.overrides == frozenset()  # rows from before
    assert account_of("91330106MA00000001") == account_of("91330106MA00000001") != account_of("91330106MA00000002")


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"band": 5}, "unknown rules ['band']"), ({"band_bp": 0}, "band_bp must be a whole number from 1"),
    ({"block_size": "100"}, "block_size must be a whole number"), ({"sessions": [["15:00", "09:30"]]}, "start"),
    ({"sessions": "all day"}, "sessions is a non-empty list"), ({"timezone": "Mars/Base"}, "unknown timezone"),
    ({"trading_days": "some"}, "trading_days is working or every"), ({"holidays": ["2026-13-01"]}, "ISO dates"),
    ({"self_trade_prevention": "maybe"}, "self_trade_prevention is one of")])
def test_a_malformed_market_rule_is_refused_naming_its_key(overrides, problem) -> None:
    with pytest.raises(ValueError) as error:
        POLICY.configure(overrides, "market X")
    assert problem in str(error.value) and str(error.value).startswith("market X: ")


def test_a_policy_names_its_version_and_every_rule() -> None:
    with pytest.raises(ValueError, match="names its version"):
        MarketPolicy.from_data({"rules": dict(POLICY.defaults)})
    rules = dict(POLICY.defaults)
    del rules["taker_levels"]
    with pytest.raises(ValueError, match="taker_levels"):
        MarketPolicy.from_data({"version": "x", "rules": rules})


def test_journal_round_trip_replays_the_same_market() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).astimezone(TZ)
    market = C.ContinuousMarket("energy_use_right:330100:2025", market_config(**ALL_DAY).rules, EveryDay())
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
    keep(market.place_order(5, 7, False, 6, now, 101_00))
    keep(market.place_order(6, 8, True, 2, now, 101_00, OrderType.LEVEL, 1))
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
    market = C.ContinuousMarket("x", market_config(**ALL_DAY).rules, EveryDay())
    market.open_day(now.date(), 100_00)
    a, b = account_of("A"), account_of("B")
    market.check_block(a, b, 100, 130_00, now)
    for args, code in (((a, a, 100, 100_00), "SELF_TRADE"), ((a, 0, 100, 100_00), "COUNTERPARTY_REQUIRED"),
                       ((a, b, 99, 100_00), "BELOW_BLOCK_SIZE"), ((a, b, 100, 130_01), "PRICE_OUTSIDE_BLOCK_BAND")):
        with pytest.raises(DomainError) as error:
            market.check_block(*args, now)
        assert error.value.code == code
    with pytest.raises(DomainError) as error:
        market.block_trade(a, b, 130_01, 100, now)  # the trade itself meets the same check
    assert error.value.code == "PRICE_OUTSIDE_BLOCK_BAND" and "(rule block_band_bp, market policy" in \
        error.value.message
