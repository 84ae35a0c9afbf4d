"""Working-day calendar (weekends + configurable holidays and make-up working days 调休) and the
announcement / listing period checks of 国土资源部令第39号 (evaluation-and-land.md §5.1)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .errors import DomainError


@dataclass(frozen=True, slots=True)
class WorkingDayCalendar:
    """Mon–Fri are working days except `holidays`; `makeup_working_days` (调休 Saturdays/Sundays)
    are working days although they fall on a weekend. Both lists are data, published yearly."""

    holidays: frozenset[date] = frozenset()
    makeup_working_days: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def working_days_inclusive(self, first: date, last: date) -> int:
        """Working days in [first, last], both ends counted (a listing open on both days)."""
        if last < first:
            return 0
        count, day = 0, first
        while day <= last:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (start itself not counted)."""
        if days < 0:
            raise ValueError("days must be >= 0")
        day = start
        while days:
            day += timedelta(days=1)
            days -= self.is_working_day(day)
        return day

    def listing_end_for(self, start: date, working_days: int) -> date:
        """Last day of a listing that opens on `start` and must last `working_days` working days."""
        if not self.is_working_day(start):
            start = self.add_working_days(start, 1)
        return self.add_working_days(start, working_days - 1)


@dataclass(frozen=True, slots=True)
class LandSaleTimingRules:
    """Policy data. Defaults: announcement ≥ 20 days before the listing/auction starts (39号令);
    listing ≥ 10 working days (2002 text, still enforced by many platforms; set
    `listing_counts_working_days=False` for the 2007 "不得少于十日" reading)."""

    announcement_min_days: int = 20
    listing_min_days: int = 10
    listing_counts_working_days: bool = True
    results_publication_max_working_days: int = 10


def check_announcement_lead(
    rules: LandSaleTimingRules, announced_on: date, starts_at: datetime
) -> None:
    lead = (starts_at.date() - announced_on).days
    if lead < rules.announcement_min_days:
        raise DomainError(
            "ANNOUNCEMENT_TOO_SHORT",
            f"announcement {lead} days before start, rule requires >= {rules.announcement_min_days}",
        )


def check_listing_period(
    rules: LandSaleTimingRules,
    calendar: WorkingDayCalendar,
    opens_at: datetime,
    closes_at: datetime,
) -> None:
    if closes_at <= opens_at:
        raise DomainError("LISTING_PERIOD_INVALID", "listing must close after it opens")
    if rules.listing_counts_working_days:
        days = calendar.working_days_inclusive(opens_at.date(), closes_at.date())
        unit = "working days"
    else:
        days = (closes_at.date() - opens_at.date()).days + 1
        unit = "days"
    if days < rules.listing_min_days:
        raise DomainError(
            "LISTING_PERIOD_TOO_SHORT",
            f"listing lasts {days} {unit}, rule requires >= {rules.listing_min_days}",
        )


def results_publication_deadline(
    rules: LandSaleTimingRules, calendar: WorkingDayCalendar, transaction_day: date
) -> date:
    return calendar.add_working_days(transaction_day, rules.results_publication_max_working_days)
