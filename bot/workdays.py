"""China's official working-day calendar, for deadlines stated in "N working days".

Government-service rules count response and rectification periods in official working days, which follow
the State Council's yearly holiday notice (holidays plus make-up working days, 调休) rather than plain
Monday-Friday.  The notice is only published a few weeks before each year starts, so the packaged calendar
(``chinesecalendar``) always lags behind; policies can patch that gap with explicit overrides, and a year
nobody has described yet degrades to Monday-Friday with a loud warning instead of stopping case handling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

import chinese_calendar

__all__ = ["DEFAULT_LOGGER_NAME", "DayUnit", "WorkCalendar"]

DayUnit = Literal["working", "natural"]

DEFAULT_LOGGER_NAME = "haochaping.workdays"


def _plain_date(value: date, what: str) -> date:
    # A datetime is a date subclass but never equal to one, so it would silently miss overrides and the
    # cache; and which calendar day an aware instant falls on depends on a timezone only the caller knows.
    if isinstance(value, datetime):
        raise TypeError(f"{what} must be a date, not a datetime ({value!r}); take its local .date() first")
    if not isinstance(value, date):
        raise TypeError(f"{what} must be a date, got {type(value).__name__}")
    return value


class WorkCalendar:
    """Official working days: chinesecalendar, corrected by overrides, Monday-Friday for unknown years."""

    def __init__(
        self,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        logger: logging.Logger | None = None,
    ) -> None:
        self._holidays: frozenset[date] = frozenset(_plain_date(d, "holiday override") for d in holidays)
        self._workdays: frozenset[date] = frozenset(_plain_date(d, "workday override") for d in workdays)
        clash = sorted(self._holidays & self._workdays)
        if clash:
            listed = ", ".join(d.isoformat() for d in clash)
            raise ValueError(f"date(s) listed both as holiday and as workday override: {listed}")
        self._override_years: frozenset[int] = frozenset(d.year for d in self._holidays | self._workdays)
        self._log = logger if logger is not None else logging.getLogger(DEFAULT_LOGGER_NAME)
        # Called for every posted case, so answers are memoised; the day cache is bounded by the handful of
        # years a deployment ever looks at, so a plain dict is enough.
        self._day_cache: dict[date, bool] = {}
        self._year_known: dict[int, bool] = {}
        # Guards only the warn-once bookkeeping, so concurrent first lookups of a year log a single warning.
        self._warn_lock = threading.Lock()
        self._warned_years: set[int] = set()

    def is_workday(self, day: date) -> bool:
        cached = self._day_cache.get(day)
        if cached is not None:
            return cached
        day = _plain_date(day, "day")
        if day in self._workdays:
            answer = True
        elif day in self._holidays:
            answer = False
        else:
            answer = self._official(day)
        self._day_cache[day] = answer
        return answer

    def nth_day_after(self, day: date, n: int, unit: DayUnit) -> date:
        """The n-th working (or natural) day strictly after `day`; the day itself never counts.

        n >= 0; n == 0 returns `day`.  Counting starts the next day because a case's own day is already
        partly spent, and the rules grant the full number of days.
        """
        day = _plain_date(day, "day")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if unit == "natural":
            return day + timedelta(days=n)
        if unit != "working":
            raise ValueError(f"unit must be 'working' or 'natural', got {unit!r}")
        current = day
        remaining = n
        one_day = timedelta(days=1)
        while remaining:
            current += one_day
            if self.is_workday(current):
                remaining -= 1
        return current

    def deadline(self, start: datetime, n: int, unit: DayUnit, tz: tzinfo) -> datetime:
        """The instant that "n days" counted from `start` ends.

        That is 00:00 local time (in tz) of the day after the n-th counted day after start's local date,
        returned aware, in tz.  Days are counted in the office's zone because that is where the calendar
        and office hours apply, whatever zone the timestamp was stored in.
        """
        # A naive start would be read in the server's own zone, which is exactly the kind of silent
        # off-by-one-day bug a deadline must not have.
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, got naive {start!r}")
        local_day = start.astimezone(tz).date()
        last_day = self.nth_day_after(local_day, n, unit)
        # The period runs through the whole last counted day, so it ends when the next local day begins.
        return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz)

    def knows(self, day: date) -> bool:
        """Whether the official calendar (or an override) covers this date's year."""
        day = _plain_date(day, "day")
        return day.year in self._override_years or self._official_knows(day.year)

    def _official_knows(self, year: int) -> bool:
        known = self._year_known.get(year)
        if known is None:
            try:
                chinese_calendar.is_workday(date(year, 1, 1))
            except NotImplementedError:
                known = False
            else:
                known = True
            self._year_known[year] = known
        return known

    def _official(self, day: date) -> bool:
        if self._official_knows(day.year):
            return bool(chinese_calendar.is_workday(day))
        self._warn_unknown_year(day.year)
        return day.weekday() < 5

    def _warn_unknown_year(self, year: int) -> None:
        with self._warn_lock:
            if year in self._warned_years:
                return
            self._warned_years.add(year)
        self._log.warning(
            "calendar for %d unknown to chinesecalendar: Monday-Friday assumed; "
            "add calendar_overrides to the policy",
            year,
        )
