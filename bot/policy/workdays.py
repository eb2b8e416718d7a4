"""China's official working-day calendar, for deadlines stated in "N working days".

Government-service rules count response and rectification periods in official working days, which follow
the State Council's yearly holiday notice (holidays plus make-up working days, 调休) rather than plain
Monday-Friday.  The notice is only published a few weeks before each year starts, so the packaged calendar
(``chinesecalendar``) always lags behind. A jurisdiction imports the year the day the notice appears
(`haochaping calendar import`, kept in the database so that every worker agrees); policies can patch single
dates with overrides. A year nobody has described yet is counted Monday-Friday with a loud warning, and what
was counted so is provisional (`is_final`, `waiting_spans`): the scheduler applies no such deadline (a default,
an overdue mark) until the year is known and the deadlines are recomputed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

import chinese_calendar

__all__ = ["DEFAULT_LOGGER_NAME", "DayUnit", "WorkCalendar", "YearDays"]

DayUnit = Literal["working", "natural"]

DEFAULT_LOGGER_NAME = "haochaping.workdays"
# How far back a deadline due now may have its last counted day (waiting_spans): deadlines run days or weeks.
LOOK_BACK_YEARS = 2


class YearDays:
    """One imported year: its days off and its make-up working days; every other day Monday-Friday."""

    __slots__ = ("holidays", "workdays")

    def __init__(self, holidays: Iterable[date], workdays: Iterable[date]) -> None:
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)

    @classmethod
    def from_iso(cls, holidays: Iterable[str], workdays: Iterable[str]) -> YearDays:
        """As the database keeps them (store/models.py CalendarYear): ISO dates."""
        return cls((date.fromisoformat(d) for d in holidays), (date.fromisoformat(d) for d in workdays))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, YearDays) and (self.holidays, self.workdays) == (other.holidays, other.workdays)

    def __hash__(self) -> int:
        return hash((self.holidays, self.workdays))

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() < 5


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
        years: Mapping[int, YearDays] | None = None,
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
        self._years: dict[int, YearDays] = dict(years or {})

    def set_years(self, years: Mapping[int, YearDays]) -> None:
        """The imported years as the database now holds them (read again by every scheduler pass)."""
        if years == self._years:
            return
        self._years = dict(years)
        self._day_cache = {}

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
        """Whether the official calendar (imported, packaged, or an override) covers this date's year."""
        day = _plain_date(day, "day")
        return self.knows_year(day.year)

    def knows_year(self, year: int) -> bool:
        return year in self._years or year in self._override_years or self._official_knows(year)

    def packaged(self, year: int) -> bool:
        """Whether chinesecalendar itself describes the year."""
        return self._official_knows(year)

    def is_final(self, deadline: datetime, tz: tzinfo) -> bool:
        """Whether a deadline (00:00 after its last counted day) was counted over known days: its last day's year
        is described. One counted over a year guessed Monday-Friday waits until the year is known."""
        return self.knows_year((deadline.astimezone(tz) - timedelta(days=1)).year)

    def waiting_spans(self, now: datetime, tz: tzinfo) -> list[tuple[datetime, datetime]]:
        """The deadlines that are not final among those that can be due at `now`: (start, end] per unknown year,
        a deadline in it having its last counted day in that year. The scheduler applies none of them."""
        year = now.astimezone(tz).year
        return [(datetime(y, 1, 1, tzinfo=tz), datetime(y + 1, 1, 1, tzinfo=tz))
                for y in range(year - LOOK_BACK_YEARS, year + 1) if not self.knows_year(y)]

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
        imported = self._years.get(day.year)
        if imported is not None:
            return imported.is_workday(day)
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
            "calendar for %d unknown: Monday-Friday assumed, and nothing due after 1 January %d is applied "
            "until the State Council's arrangement is imported (haochaping calendar import FILE)",
            year, year,
        )
