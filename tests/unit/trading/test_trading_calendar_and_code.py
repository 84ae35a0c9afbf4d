"""Working-day calendar, 39号令 period checks (policy data), the price collar, 统一交易标识码."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.trading.app import load_sale_policy
from services.trading.domain.calendar import WorkingDayCalendar, results_publication_deadline
from services.trading.domain.errors import DomainError
from services.trading.domain.periods import SalePolicy, check_collar, check_periods
from services.trading.domain.trade_code import (
    TradeCodeFormat,
    check_unique,
    make_trade_code,
    next_serial,
    parse_trade_code,
)

# 2025 National Day: 1–8 Oct off, Sunday 28 Sep and Saturday 11 Oct are make-up working days.
CAL = WorkingDayCalendar(
    holidays=frozenset(date(2025, 10, d) for d in range(1, 9)),
    makeup_working_days=frozenset({date(2025, 9, 28), date(2025, 10, 11)}),
)
POLICY = load_sale_policy()  # the bundled services/trading/sale_policy.yaml


def test_working_days_respect_weekends_holidays_and_makeup_days():
    assert not CAL.is_working_day(date(2025, 10, 6))  # a Monday inside the holiday
    assert CAL.is_working_day(date(2025, 10, 11))  # make-up Saturday
    assert not CAL.is_working_day(date(2025, 10, 12))  # ordinary Sunday
    assert CAL.working_days_inclusive(date(2025, 9, 29), date(2025, 10, 10)) == 4  # 29, 30 Sep; 9, 10 Oct
    assert CAL.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert CAL.listing_end_for(date(2025, 9, 29), 10) == date(2025, 10, 17)


def land(mechanism: str = "listing", *, published: datetime, opens: datetime, closes: datetime,
         min_bidders: int = 3, policy: SalePolicy = POLICY) -> None:
    check_periods(policy, CAL, land=True, mechanism=mechanism, published_at=published, opens_at=opens,
                  closes_at=closes, min_bidders=min_bidders)


def test_listing_of_ten_working_days():
    opens = datetime(2025, 9, 29, 9, 0)
    published = opens - timedelta(days=20)
    land(published=published, opens=opens, closes=datetime(2025, 10, 17, 15, 0))
    with pytest.raises(DomainError) as err:
        land(published=published, opens=opens, closes=datetime(2025, 10, 16, 15, 0))  # 9 working days
    assert err.value.code == "LISTING_PERIOD_TOO_SHORT"
    assert "land.listing_min_days" in err.value.message and POLICY.version in err.value.message
    calendar_days = SalePolicy.from_data({"version": "t", "land": {"announcement_min_days": 20, "listing_min_days": 10,
                                                                   "listing_counts_working_days": False},
                                          "price_collar": {"multiple": "3"}, "timers": TIMERS})
    land(published=published, opens=opens, closes=datetime(2025, 10, 8, 15, 0), policy=calendar_days)  # 10 days


def test_announcement_at_least_twenty_days_before_counted_from_publication():
    starts = datetime(2025, 6, 21, 1, 0, tzinfo=UTC)  # 09:00 in Hangzhou: days count on its calendar
    closes = starts + timedelta(days=21)
    land("tender", published=datetime(2025, 6, 1, 15, 30, tzinfo=UTC), opens=starts, closes=closes)  # 23:30 CST
    with pytest.raises(DomainError) as err:  # 00:30 on 2 June in Hangzhou: 19 days
        land("tender", published=datetime(2025, 6, 1, 16, 30, tzinfo=UTC), opens=starts, closes=closes)
    assert err.value.code == "ANNOUNCEMENT_TOO_SHORT"
    assert "land.announcement_min_days" in err.value.message
    # A sale whose bidding opened already (an announce_at in the past does not count): 0 days of notice.
    with pytest.raises(DomainError) as late:
        land(published=datetime(2025, 6, 21, 10, 0, tzinfo=UTC), opens=starts - timedelta(days=5), closes=closes)
    assert late.value.code == "ANNOUNCEMENT_TOO_SHORT"
    # After Fri 26 Sep: 28 (make-up Sun), 29, 30 Sep, 9, 10, 11 (make-up Sat), 13, 14, 15, 16 Oct.
    assert results_publication_deadline(CAL, date(2025, 9, 26)) == date(2025, 10, 16)


def test_an_auction_needs_the_minimum_bidders_of_the_policy():
    opens = datetime(2025, 6, 21, 9, 0)
    land("english", published=opens - timedelta(days=20), opens=opens, closes=opens + timedelta(hours=2))
    with pytest.raises(DomainError) as err:
        land("english", published=opens - timedelta(days=20), opens=opens, closes=opens + timedelta(hours=2),
             min_bidders=2)
    assert err.value.code == "MIN_BIDDERS_TOO_LOW" and "land.auction_min_bidders" in err.value.message


def test_quota_sales_have_no_national_period():
    now = datetime(2025, 6, 21, 9, 0)
    check_periods(POLICY, CAL, land=False, mechanism="uniform_price", published_at=now, opens_at=now,
                  closes_at=now + timedelta(hours=2), min_bidders=0)


def test_price_collar_needs_a_confirmation_above_the_multiple():
    assert POLICY.collar_multiple == Decimal(3)
    assert not check_collar(POLICY, 300_00, 100_00, confirmed=False)  # exactly 3×: no collar
    with pytest.raises(DomainError) as err:
        check_collar(POLICY, 300_01, 100_00, confirmed=False)
    assert err.value.code == "PRICE_COLLAR" and "confirm_high_price" in err.value.message
    assert check_collar(POLICY, 10**15, 100_00, confirmed=True)  # confirmed: passes, to be counted


TIMERS = {"listing_countdown_seconds": 300, "listing_confirmation_seconds": 300, "auction_countdown_seconds": 240,
          "statistics_delay_seconds": 600}


def test_the_timers_are_policy_data_fixed_by_mechanism():
    assert POLICY.timers.rules("listing") == {"countdown_seconds": 300, "confirmation_seconds": 300}
    assert POLICY.timers.rules("uniform_price") == {"statistics_delay_seconds": 600}
    assert POLICY.timers.rules("tender") == {}
    policy = SalePolicy.from_data({"version": "x", "price_collar": {"multiple": "3"}, "timers": TIMERS})
    assert policy.timers.rules("english") == {"countdown_seconds": 240}


@pytest.mark.parametrize("data", [
    {"land": {}, "price_collar": {"multiple": "3"}, "timers": TIMERS},                 # no version
    {"version": "x", "price_collar": {"multiple": "3"}},                               # no timers
    {"version": "x", "price_collar": {"multiple": "3"}, "timers": {**TIMERS, "auction_countdown_seconds": 0}},
    {"version": "x", "price_collar": {"multiple": "3"}, "timers": {**TIMERS, "tick_seconds": 5}},
    {"version": "x", "price_collar": {"multiple": "1"}, "timers": TIMERS},             # a collar at the price
    {"version": "x", "price_collar": {"multiple": "NaN"}, "timers": TIMERS},
    {"version": "x", "land": {"announcement_min_days": -1}, "price_collar": {"multiple": "3"}, "timers": TIMERS},
    {"version": "x", "land": {"announcement_days": 20}, "price_collar": {"multiple": "3"}, "timers": TIMERS},
])
def test_a_malformed_sale_policy_is_refused_at_load(data):
    with pytest.raises(ValueError):
        SalePolicy.from_data(data)


def test_trade_code_layout_round_trip_and_uniqueness():
    fmt = TradeCodeFormat()
    code = make_trade_code(fmt, "331002", "land_use_right", 2025, 42)
    assert code == "331002TD2025000042"
    assert parse_trade_code(fmt, code).serial == 42
    issued = {code}
    following = make_trade_code(fmt, "331002", "land_use_right", 2025, next_serial(42))
    check_unique(following, issued)
    with pytest.raises(DomainError) as err:
        check_unique(code, issued)
    assert err.value.code == "TRADE_CODE_NOT_UNIQUE"
    # Fixed-width parts: distinct inputs never collide.
    codes = {make_trade_code(fmt, r, t, y, s) for r in ("331002", "331003") for t in ("land_use_right", "carbon_quota")
             for y in (2025, 2026) for s in (1, 2, 10)}
    assert len(codes) == 2 * 2 * 2 * 3
    for bad in (("33100", "land_use_right", 2025, 1), ("331002", "water", 2025, 1), ("331002", "land_use_right", 2025, 10**6)):
        with pytest.raises(DomainError):
            make_trade_code(fmt, *bad)
