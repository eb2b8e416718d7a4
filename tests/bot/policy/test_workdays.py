"""Tests for bot.policy.workdays: deadlines must match the official calendar, including 调休 make-up days."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.workdays import DEFAULT_LOGGER_NAME, WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@pytest.fixture
def cal() -> WorkCalendar:
    return WorkCalendar()


# --- the contract example ---------------------------------------------------------------------------


@pytest.mark.parametrize("hh, mm", [(0, 0), (9, 15), (17, 59), (23, 59)])
def test_contract_example_working_days(cal: WorkCalendar, hh: int, mm: int) -> None:
    # Completed Friday 2026-11-20 (any time); working days 23..27 Nov; deadline Sat 2026-11-28 00:00 +08:00.
    start = local(2026, 11, 20, hh, mm)
    assert cal.nth_day_after(date(2026, 11, 20), 5, "working") == date(2026, 11, 27)
    result = cal.deadline(start, 5, "working", SHANGHAI)
    assert result == local(2026, 11, 28)
    assert result.tzinfo is SHANGHAI
    assert result.utcoffset() == timedelta(hours=8)
    assert result.isoformat() == "2026-11-28T00:00:00+08:00"


def test_contract_example_natural_days(cal: WorkCalendar) -> None:
    result = cal.deadline(local(2026, 11, 20, 14, 0), 7, "natural", SHANGHAI)
    assert result.isoformat() == "2026-11-28T00:00:00+08:00"


# --- 2026 National Day ------------------------------------------------------------------------------
# Checked against chinesecalendar 1.11.0: 2026-10-01..07 (Thu..Wed) are off; 2026-10-08 Thu, 10-09 Fri
# work; Saturday 2026-10-10 is a make-up working day (调休) and Sunday 2026-09-20 is one too; Sunday
# 2026-10-11 is off. (Also: Friday 2026-09-25 is off for Mid-Autumn Festival.)


def test_national_day_2026_facts(cal: WorkCalendar) -> None:
    for offset in range(7):
        assert not cal.is_workday(date(2026, 10, 1) + timedelta(days=offset))
    assert cal.is_workday(date(2026, 9, 30))
    assert cal.is_workday(date(2026, 10, 8))
    assert cal.is_workday(date(2026, 10, 9))
    assert cal.is_workday(date(2026, 10, 10))  # Saturday, make-up working day
    assert cal.is_workday(date(2026, 9, 20))  # Sunday, make-up working day
    assert not cal.is_workday(date(2026, 10, 11))


def test_national_day_2026_two_working_days(cal: WorkCalendar) -> None:
    # After 09-30 the next working days are 10-08 and 10-09.
    assert cal.deadline(local(2026, 9, 30, 16), 2, "working", SHANGHAI) == local(2026, 10, 10)


def test_national_day_2026_lands_on_makeup_saturday(cal: WorkCalendar) -> None:
    # The third working day is the make-up Saturday 10-10, so the period ends as Sunday 10-11 begins.
    assert cal.nth_day_after(date(2026, 9, 30), 3, "working") == date(2026, 10, 10)
    assert cal.deadline(local(2026, 9, 30, 16), 3, "working", SHANGHAI) == local(2026, 10, 11)
    # And the fourth skips Sunday 10-11.
    assert cal.deadline(local(2026, 9, 30, 16), 4, "working", SHANGHAI) == local(2026, 10, 13)


# --- unknown years ----------------------------------------------------------------------------------


def test_unknown_year_is_monday_to_friday_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkCalendar()
    caplog.set_level(logging.WARNING, logger=DEFAULT_LOGGER_NAME)
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2031, 1, 1))  # the premise: the package does not know 2031
    assert not cal.knows(date(2031, 6, 1))
    start = date(2031, 1, 1)
    for offset in range(365):
        day = start + timedelta(days=offset)
        assert cal.is_workday(day) == (day.weekday() < 5)
    # 2031-01-01 (New Year) is a Wednesday but is treated as a plain working day without data.
    assert cal.is_workday(date(2031, 1, 1))
    assert cal.nth_day_after(date(2031, 3, 7), 1, "working") == date(2031, 3, 10)  # Fri -> Mon
    cal.deadline(local(2031, 3, 7), 10, "working", SHANGHAI)

    records = [r for r in caplog.records if r.name == DEFAULT_LOGGER_NAME]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "2031" in records[0].getMessage()
    assert "Monday-Friday" in records[0].getMessage()


def test_unknown_year_warning_is_per_year_and_per_instance(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.workdays.custom")
    caplog.set_level(logging.WARNING, logger="test.workdays.custom")
    first = WorkCalendar(logger=logger)
    for _ in range(5):
        first.is_workday(date(2031, 5, 5))
        first.is_workday(date(2032, 5, 5))
        first.is_workday(date(2032, 5, 6))
    second = WorkCalendar(logger=logger)
    second.is_workday(date(2031, 5, 5))
    messages = [r.getMessage() for r in caplog.records if r.name == "test.workdays.custom"]
    assert len(messages) == 3
    assert sum("2031" in m for m in messages) == 2
    assert sum("2032" in m for m in messages) == 1


def test_known_year_does_not_warn(cal: WorkCalendar, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=DEFAULT_LOGGER_NAME)
    assert cal.knows(date(2026, 1, 1))
    cal.nth_day_after(date(2026, 1, 1), 200, "working")
    assert not [r for r in caplog.records if r.name == DEFAULT_LOGGER_NAME]


def test_known_years_agree_with_chinesecalendar(cal: WorkCalendar) -> None:
    day = date(2024, 1, 1)
    while day.year < 2027:
        assert cal.is_workday(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


# --- overrides --------------------------------------------------------------------------------------


def test_overrides_in_a_known_year(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=DEFAULT_LOGGER_NAME)
    tuesday, saturday = date(2026, 11, 24), date(2026, 11, 21)
    assert chinese_calendar.is_workday(tuesday) and not chinese_calendar.is_workday(saturday)
    cal = WorkCalendar(holidays=[tuesday], workdays=[saturday])
    assert not cal.is_workday(tuesday)
    assert cal.is_workday(saturday)
    assert cal.is_workday(date(2026, 11, 23))  # untouched neighbour still follows the package
    # Working days after Fri 11-20 become 21 (Sat), 23, 25, 26, 27: still ends Sat 11-28 00:00,
    # but three days take us to Wed 11-25 instead of Tue 11-24.
    assert cal.nth_day_after(date(2026, 11, 20), 3, "working") == date(2026, 11, 25)
    assert cal.deadline(local(2026, 11, 20), 5, "working", SHANGHAI) == local(2026, 11, 28)
    assert not caplog.records


def test_overrides_in_an_unknown_year(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=DEFAULT_LOGGER_NAME)
    new_year = date(2031, 1, 1)  # Wednesday
    makeup_saturday = date(2031, 1, 4)
    cal = WorkCalendar(holidays=[new_year], workdays=[makeup_saturday])
    assert cal.knows(date(2031, 7, 1))  # overrides for 2031 mean somebody has described that year
    assert not cal.is_workday(new_year)
    assert cal.is_workday(makeup_saturday)
    assert not caplog.records  # override dates are answered without consulting the package
    # Other 2031 dates still fall back to Monday-Friday, with the one warning.
    assert cal.is_workday(date(2031, 1, 2))
    assert not cal.is_workday(date(2031, 1, 5))
    # After 2030-12-31: 01-01 is off (override), 01-02 Thu, 01-03 Fri, 01-04 Sat (override) work.
    assert cal.nth_day_after(date(2030, 12, 31), 2, "working") == date(2031, 1, 3)
    assert cal.nth_day_after(date(2030, 12, 31), 3, "working") == date(2031, 1, 4)
    assert cal.nth_day_after(date(2031, 1, 2), 2, "working") == date(2031, 1, 4)
    assert len([r for r in caplog.records if "2031" in r.getMessage()]) == 1


def test_date_in_both_override_lists_raises() -> None:
    clash = date(2026, 5, 6)
    with pytest.raises(ValueError, match="2026-05-06"):
        WorkCalendar(holidays=[date(2026, 5, 5), clash], workdays=[clash])


def test_overrides_accept_any_iterable() -> None:
    cal = WorkCalendar(holidays=(d for d in [date(2026, 11, 24)]), workdays={date(2026, 11, 21)})
    assert not cal.is_workday(date(2026, 11, 24))
    assert cal.is_workday(date(2026, 11, 21))


# --- edge cases -------------------------------------------------------------------------------------


def test_n_zero(cal: WorkCalendar) -> None:
    saturday = date(2026, 11, 21)
    assert cal.nth_day_after(saturday, 0, "working") == saturday
    assert cal.nth_day_after(saturday, 0, "natural") == saturday
    # Zero days from a Friday afternoon ends when that Friday ends.
    assert cal.deadline(local(2026, 11, 20, 15), 0, "working", SHANGHAI) == local(2026, 11, 21)


def test_local_date_rule_utc_instant_before_midnight(cal: WorkCalendar) -> None:
    # 2026-11-19T23:30Z is 2026-11-20 07:30 in Shanghai: the local date is the 20th, not the 19th.
    start = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    assert cal.deadline(start, 5, "working", SHANGHAI).isoformat() == "2026-11-28T00:00:00+08:00"
    assert cal.deadline(start, 7, "natural", SHANGHAI) == local(2026, 11, 28)
    # 15:59Z is 23:59 on Thursday the 19th in Shanghai: working days 20, 23, 24, 25, 26 -> 27th 00:00.
    earlier = datetime(2026, 11, 19, 15, 59, tzinfo=UTC)
    assert cal.deadline(earlier, 5, "working", SHANGHAI) == local(2026, 11, 27)


def test_deadline_rejects_naive_start(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        cal.deadline(datetime(2026, 11, 20, 9), 5, "working", SHANGHAI)


def test_invalid_arguments(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError):
        cal.nth_day_after(date(2026, 11, 20), -1, "working")
    with pytest.raises(ValueError):
        cal.nth_day_after(date(2026, 11, 20), 1, "weekly")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cal.is_workday(datetime(2026, 11, 20, 9))
    with pytest.raises(TypeError):
        WorkCalendar(holidays=[datetime(2026, 11, 20, 9)])


# --- properties -------------------------------------------------------------------------------------

_property_calendar = WorkCalendar(logger=logging.getLogger("test.workdays.property"))


@settings(max_examples=300, deadline=None)
@given(d=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)), n=st.integers(0, 30))
def test_property_working_days(d: date, n: int) -> None:
    cal = _property_calendar
    result = cal.nth_day_after(d, n, "working")
    if n == 0:
        assert result == d
        return
    assert result > d
    assert cal.is_workday(result)
    span = [d + timedelta(days=i) for i in range(1, (result - d).days + 1)]
    assert sum(cal.is_workday(day) for day in span) == n
    # Independent check for years the package knows.
    if result.year <= 2026:
        assert chinese_calendar.is_workday(result)
        assert sum(chinese_calendar.is_workday(day) for day in span) == n


@settings(max_examples=300, deadline=None)
@given(d=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)), n=st.integers(0, 30))
def test_property_natural_days(d: date, n: int) -> None:
    assert _property_calendar.nth_day_after(d, n, "natural") == d + timedelta(days=n)


@settings(max_examples=200, deadline=None)
@given(
    d=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    n=st.integers(0, 30),
    hh=st.integers(0, 23),
    mm=st.integers(0, 59),
)
def test_property_deadline_is_local_midnight_after_nth_day(d: date, n: int, hh: int, mm: int) -> None:
    start = datetime(d.year, d.month, d.day, hh, mm, tzinfo=SHANGHAI)
    result = _property_calendar.deadline(start, n, "working", SHANGHAI)
    assert (result.hour, result.minute, result.second, result.microsecond) == (0, 0, 0, 0)
    assert result.date() == _property_calendar.nth_day_after(d, n, "working") + timedelta(days=1)
    assert result > start
