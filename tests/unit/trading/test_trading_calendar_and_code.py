"""Working-day calendar, 39号令 period checks, 统一交易标识码."""
from datetime import date, datetime

import pytest

from services.trading.domain.calendar import (
    LandSaleTimingRules,
    WorkingDayCalendar,
    check_announcement_lead,
    check_listing_period,
    results_publication_deadline,
)
from services.trading.domain.errors import DomainError
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
RULES = LandSaleTimingRules()


def test_working_days_respect_weekends_holidays_and_makeup_days():
    assert not CAL.is_working_day(date(2025, 10, 6))  # a Monday inside the holiday
    assert CAL.is_working_day(date(2025, 10, 11))  # make-up Saturday
    assert not CAL.is_working_day(date(2025, 10, 12))  # ordinary Sunday
    assert CAL.working_days_inclusive(date(2025, 9, 29), date(2025, 10, 10)) == 4  # 29, 30 Sep; 9, 10 Oct
    assert CAL.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert CAL.listing_end_for(date(2025, 9, 29), 10) == date(2025, 10, 17)


def test_listing_of_ten_working_days():
    opens = datetime(2025, 9, 29, 9, 0)
    check_listing_period(RULES, CAL, opens, datetime(2025, 10, 17, 15, 0))
    with pytest.raises(DomainError) as err:
        check_listing_period(RULES, CAL, opens, datetime(2025, 10, 16, 15, 0))  # 9 working days
    assert err.value.code == "LISTING_PERIOD_TOO_SHORT"
    calendar_days = LandSaleTimingRules(listing_counts_working_days=False)
    check_listing_period(calendar_days, CAL, opens, datetime(2025, 10, 8, 15, 0))  # 10 calendar days


def test_announcement_at_least_twenty_days_before():
    starts = datetime(2025, 6, 21, 9, 0)
    check_announcement_lead(RULES, date(2025, 6, 1), starts)
    with pytest.raises(DomainError) as err:
        check_announcement_lead(RULES, date(2025, 6, 2), starts)
    assert err.value.code == "ANNOUNCEMENT_TOO_SHORT"
    # After Fri 26 Sep: 28 (make-up Sun), 29, 30 Sep, 9, 10, 11 (make-up Sat), 13, 14, 15, 16 Oct.
    assert results_publication_deadline(RULES, CAL, date(2025, 9, 26)) == date(2025, 10, 16)


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
