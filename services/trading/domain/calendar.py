"""Working-day calendar (weekends + configurable holidays and make-up working days 调休). The period
rules of 国土资源部令第39号 that count on it are policy data: periods.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


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


# 39号令: the result is published within 10 working days after the transaction.
RESULTS_PUBLICATION_MAX_WORKING_DAYS = 10


def results_publication_deadline(
    calendar: WorkingDayCalendar, transaction_day: date,
    max_working_days: int = RESULTS_PUBLICATION_MAX_WORKING_DAYS,
) -> date:
    return calendar.add_working_days(transaction_day, max_working_days)
