"""The official calendar after the packaged one ends (issue 21, item 4): `haochaping calendar`, imported years
kept in the database, deadlines that wait for an unknown year and are recomputed once it is known, and the
warnings from 1 November.

The 2027 arrangement below is a FIXTURE shaped like a State Council notice (New Year 1-3 January, a Spring
Festival week, a make-up Saturday), not the published one: it tests the mechanism. calendars/2026.toml is the
real 2026 notice, checked here day by day against chinesecalendar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from console_support import logged_in, msg
from helpers import Hcp
from hypothesis import given
from hypothesis import strategies as st
from servers import BACKENDS

from bot.duties import official_calendar
from bot.duties.official_calendar import CalendarFileError, parse
from bot.policy.workdays import WorkCalendar

ROOT = Path(__file__).resolve().parents[3]
SHANGHAI = ZoneInfo("Asia/Shanghai")
HAOCHAPING = Path(sys.executable).with_name("haochaping")
both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

FIXTURE_2027 = """
year = 2027
source = "a test fixture shaped like the State Council's notice; not the published arrangement"
holidays = ["2027-01-01..2027-01-03", "2027-02-05..2027-02-13", "2027-10-01..2027-10-07"]
workdays = ["2027-02-20", "2027-10-09"]
"""


def cst(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


# --- the file ------------------------------------------------------------------------------------------


def test_the_2026_notice_as_a_file_is_chinesecalendars_2026_day_by_day() -> None:
    arrangement = official_calendar.read(ROOT / "calendars" / "2026.toml")
    days = arrangement.days()
    assert arrangement.year == 2026 and len(arrangement.workdays) == 6
    for n in range(365):
        day = date(2026, 1, 1) + timedelta(days=n)
        assert days.is_workday(day) == chinese_calendar.is_workday(day), day


def test_a_fixture_year_reads_ranges_and_make_up_days() -> None:
    arrangement = parse(FIXTURE_2027)
    assert arrangement.year == 2027 and len(arrangement.holidays) == 3 + 9 + 7
    assert arrangement.workdays == (date(2027, 2, 20), date(2027, 10, 9))
    same = parse(json.dumps({"year": 2027, "holidays": ["2027-01-01..2027-01-03", "2027-02-05..2027-02-13",
                                                          "2027-10-01..2027-10-07"],
                             "workdays": ["2027-02-20", "2027-10-09"]}))
    assert (same.holidays, same.workdays) == (arrangement.holidays, arrangement.workdays)


BAD = [
    ("year = 1999\nholidays = []", "year: expected a year from 2000"),
    ('year = "2027"\nholidays = []', "year: expected a year"),
    ("year = 2027", "holidays: missing"),
    ('year = 2027\nholidays = ["2026-12-31"]', "2026-12-31 is not in 2027"),
    ('year = 2027\nholidays = ["2027-02-30"]', "is not a date"),
    ('year = 2027\nholidays = ["2027-02-13..2027-02-05"]', "ends before it starts"),
    ('year = 2027\nholidays = ["2027-01-01", "2027-01-01..2027-01-02"]', "2027-01-01 is listed twice"),
    ('year = 2027\nholidays = ["2027-01-01..2027-12-31"]', "no year has more than 60"),
    ('year = 2027\nholidays = ["2027-02-20"]\nworkdays = ["2027-02-20"]', "both as a holiday and as a working day"),
    ('year = 2027\nholidays = []\nworkdays = ["2027-02-22"]', "2027-02-22 is a Monday"),
    ("year = 2027\nholidays = [1, 2]", "expected a list of dates"),
    ("year = 2027\nholidays = []\nextra = 1", "unknown key(s) extra"),
    ("year = = 2027", "not TOML or JSON"),
    ('{"year": 2027, "holidays": ', "not TOML or JSON"),
    ("[1, 2]", "not TOML or JSON"),
]


@pytest.mark.parametrize("text, named", BAD, ids=[b[1] for b in BAD])
def test_a_file_that_cannot_be_a_year_is_refused_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(CalendarFileError, match=None) as caught:
        parse(text)
    assert named in str(caught.value)


@given(st.text(max_size=300))
def test_no_text_makes_the_reader_fail_otherwise_than_naming_the_problem(text: str) -> None:
    try:
        parse(text)
    except CalendarFileError:
        pass


# --- the calendar ----------------------------------------------------------------------------------


def test_an_imported_year_counts_its_holidays_and_make_up_days() -> None:
    """New Year, the Spring Festival week and a make-up Saturday of the 2027 fixture."""
    calendar = WorkCalendar()
    assert not calendar.knows_year(2027)
    guessed = calendar.deadline(cst(2026, 12, 25, 10), 5, "working", SHANGHAI)
    assert guessed == cst(2027, 1, 2)  # 1 January counted as a working day: the guess is early
    calendar.set_years({2027: parse(FIXTURE_2027).days()})
    assert calendar.knows_year(2027)
    assert calendar.deadline(cst(2026, 12, 25, 10), 5, "working", SHANGHAI) == cst(2027, 1, 5)
    assert calendar.deadline(cst(2027, 2, 4, 10), 5, "working", SHANGHAI) == cst(2027, 2, 20)  # after the week off
    assert calendar.deadline(cst(2027, 2, 16, 10), 5, "working", SHANGHAI) == cst(2027, 2, 23)  # Saturday 20th worked
    assert calendar.is_workday(date(2027, 2, 20)) and not calendar.is_workday(date(2027, 2, 8))


def test_a_deadline_is_final_when_its_last_counted_day_is_in_a_known_year() -> None:
    calendar = WorkCalendar()
    assert calendar.is_final(cst(2027, 1, 1), SHANGHAI)  # last counted day 31 December 2026
    assert not calendar.is_final(cst(2027, 1, 2), SHANGHAI)
    assert calendar.waiting_spans(cst(2027, 1, 8), SHANGHAI) == [(cst(2027, 1, 1), cst(2028, 1, 1))]
    assert calendar.waiting_spans(cst(2026, 12, 7), SHANGHAI) == []
    calendar.set_years({2027: parse(FIXTURE_2027).days()})
    assert calendar.is_final(cst(2027, 1, 2), SHANGHAI) and calendar.waiting_spans(cst(2027, 1, 8), SHANGHAI) == []


# --- the service ------------------------------------------------------------------------------------


async def import_2027(hcp: Hcp, now: datetime) -> dict:
    return await official_calendar.import_year(hcp.rt, parse(FIXTURE_2027), "test", now)


@both_backends
async def test_a_default_counted_over_an_unknown_year_waits_then_is_recomputed(hcp: Hcp) -> None:
    """CONTRACT "Calendar": a deadline that needs an unknown year is applied by no tick until the year is known."""
    hcp.clock.set(cst(2026, 12, 25, 11))
    doc = await hcp.post_case(completed_at="2026-12-25T10:00:00+08:00")
    case_no = doc["case_no"]
    assert (await hcp.case(case_no))["default_at"] == "2027-01-02T00:00:00+08:00"  # counted Monday-Friday
    assert (await hcp.tick(cst(2027, 1, 2, 0, 30)))["defaults"] == 0  # due as guessed, but it waits
    assert (await hcp.tick(cst(2027, 1, 20)))["defaults"] == 0  # however long the year stays unknown
    assert (await hcp.evaluations(case_no)) == []
    result = await import_2027(hcp, cst(2027, 1, 20, 9))
    assert result["recomputed"]["cases"] >= 1 and result["changed"]
    assert (await hcp.case(case_no))["default_at"] == "2027-01-05T00:00:00+08:00"
    assert (await hcp.tick(cst(2027, 1, 20, 9, 5)))["defaults"] >= 1  # now known, and long due
    [evaluation] = await hcp.evaluations(case_no)
    assert evaluation["is_default"] is True


@both_backends
async def test_the_spring_festival_and_a_make_up_saturday_move_the_default(hcp: Hcp) -> None:
    await import_2027(hcp, cst(2026, 12, 1))
    hcp.clock.set(cst(2027, 2, 16, 11))
    before = await hcp.post_case(completed_at="2027-02-04T10:00:00+08:00")
    after = await hcp.post_case(completed_at="2027-02-16T10:00:00+08:00")
    assert (await hcp.case(before["case_no"]))["default_at"] == "2027-02-20T00:00:00+08:00"
    assert (await hcp.case(after["case_no"]))["default_at"] == "2027-02-23T00:00:00+08:00"
    assert (await hcp.tick(cst(2027, 2, 19, 23, 59)))["defaults"] == 0
    assert (await hcp.tick(cst(2027, 2, 20)))["defaults"] == 1


@both_backends
async def test_a_work_order_step_over_new_year_is_not_overdue_early_and_is_recomputed(hcp: Hcp) -> None:
    doc = await hcp.post_case(completed_at="2026-12-29T10:00:00+08:00")
    hcp.clock.set(cst(2026, 12, 30, 10))
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["efficiency"])
    [order] = (await hcp.case(doc["case_no"]))["work_orders"]
    assert order["due_at"] == "2027-01-02T00:00:00+08:00"  # dispatch in 2 working days, guessed
    assert (await hcp.tick(cst(2027, 1, 3)))["overdue"] == 0
    result = await import_2027(hcp, cst(2027, 1, 3, 8))
    assert result["recomputed"]["work_orders"] == 1
    [order] = (await hcp.case(doc["case_no"]))["work_orders"]
    assert order["due_at"] == "2027-01-05T00:00:00+08:00" and order["overdue"] is False
    assert (await hcp.tick(cst(2027, 1, 4, 23)))["overdue"] == 0
    assert (await hcp.tick(cst(2027, 1, 5)))["overdue"] == 1


@both_backends
async def test_a_follow_up_or_an_appeal_window_over_an_unknown_year_is_not_closed_by_a_guess(hcp: Hcp) -> None:
    """A window that ends in a year nobody described yet ended on a Monday-Friday guess (here 6 January 2027),
    before New Year's holidays that year will have: the rater's follow-up and the agency's appeal are still
    taken after it; once the year is imported, the window is counted on it and closes where it says."""
    doc = await hcp.post_case(completed_at="2026-12-29T10:00:00+08:00")
    hcp.clock.set(cst(2026, 12, 30, 10))
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["efficiency"])
    [order] = (await hcp.case(doc["case_no"]))["work_orders"]
    rated = await hcp.post_case(completed_at="2026-12-29T10:00:00+08:00")
    await hcp.rate(rated["case_no"], "satisfied")
    hcp.clock.set(cst(2027, 1, 7, 9))  # past the guessed end (00:00 on 7 January), 2027 still unknown
    status, answer = await hcp.api("POST", f"/api/v1/work-orders/{order['id']}/appeal", {"reason": "误评"})
    assert status == 200 and answer["appeal"]["status"] == "pending", answer
    assert (await hcp.rate(rated["case_no"], "very_satisfied"))["is_followup"] is True
    await import_2027(hcp, cst(2027, 1, 7, 10))  # New Year 1-3 January: the windows end at 00:00 on 8 January
    third = await hcp.post_case(completed_at="2026-12-29T10:00:00+08:00")
    hcp.clock.set(cst(2026, 12, 30, 10))
    await hcp.rate(third["case_no"], "satisfied")
    hcp.clock.set(cst(2027, 1, 7, 23, 59))
    status, _answer = await hcp.api("POST", "/api/v1/evaluations",
                                    {"case_no": third["case_no"], "grade": "satisfied", "channel": "web"})
    assert status == 201
    fourth = await hcp.post_case(completed_at="2026-12-29T10:00:00+08:00")
    hcp.clock.set(cst(2026, 12, 30, 10))
    await hcp.rate(fourth["case_no"], "satisfied")
    hcp.clock.set(cst(2027, 1, 8, 0, 1))
    status, answer = await hcp.api("POST", "/api/v1/evaluations",
                                   {"case_no": fourth["case_no"], "grade": "satisfied", "channel": "web"})
    assert status == 409 and "2027-01-08T00:00:00+08:00" in answer["error"], answer


async def test_importing_again_changes_nothing_and_other_days_need_replace(hcp: Hcp) -> None:
    first = await import_2027(hcp, cst(2026, 12, 1))
    again = await import_2027(hcp, cst(2026, 12, 2))
    assert first["changed"] and not again["changed"] and again["recomputed"] == {"cases": 0, "work_orders": 0}
    other = parse(FIXTURE_2027.replace('"2027-10-09"', '"2027-10-10"'))
    with pytest.raises(CalendarFileError, match="--replace"):
        await official_calendar.import_year(hcp.rt, other, "test", cst(2026, 12, 3))
    replaced = await official_calendar.import_year(hcp.rt, other, "test", cst(2026, 12, 3), replace=True)
    assert replaced["changed"] and hcp.rt.timing.calendar.is_workday(date(2027, 10, 10))


async def test_another_process_import_is_read_at_the_next_tick(hcp: Hcp, rt) -> None:
    """Every worker counts alike: the year lives in the database, read again by each scheduler pass."""
    async with rt.db.write() as session:
        from store.models import CalendarYear
        arrangement = parse(FIXTURE_2027)
        session.add(CalendarYear(year=2027, holidays=[d.isoformat() for d in arrangement.holidays],
                                 workdays=[d.isoformat() for d in arrangement.workdays], source=None,
                                 imported_at=cst(2026, 12, 1), imported_by="another worker"))
    assert not hcp.rt.timing.calendar.knows_year(2027)
    await hcp.tick(cst(2026, 12, 1, 1))
    assert hcp.rt.timing.calendar.knows_year(2027)


# --- the warnings -----------------------------------------------------------------------------------


async def test_healthz_warns_from_november_and_stays_200(hcp: Hcp) -> None:
    hcp.clock.set(cst(2026, 10, 31, 12))
    response = await hcp.client.get("/healthz")
    assert response.status == 200 and (await response.json())["calendar"] == "ok"
    hcp.clock.set(cst(2026, 11, 1, 9))
    response = await hcp.client.get("/healthz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "ok" and "2027 is unknown" in body["calendar"]
    await import_2027(hcp, cst(2026, 11, 1, 10))
    assert (await (await hcp.client.get("/healthz")).json())["calendar"] == "ok"


async def test_the_console_warns_an_unknown_next_year(hcp: Hcp) -> None:
    hcp.clock.set(cst(2026, 12, 7, 9))
    browser = await logged_in(hcp, "l1", "l1")
    status, page = await browser.get("/console/orders")
    assert status == 200 and msg(hcp, "console.calendar_next_year", year=2027) in page
    await import_2027(hcp, cst(2026, 12, 7, 10))
    status, page = await browser.get("/console/orders")
    assert msg(hcp, "console.calendar_next_year", year=2027) not in page


async def test_the_log_warns_once_a_day(hcp: Hcp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="haochaping.calendar")
    await hcp.tick(cst(2026, 12, 7, 9))
    await hcp.tick(cst(2026, 12, 7, 10))
    await hcp.tick(cst(2026, 12, 8, 9))
    warned = [r for r in caplog.records if r.name == "haochaping.calendar"]
    assert len(warned) == 2 and "2027 is unknown" in warned[0].getMessage()


# --- the command ------------------------------------------------------------------------------------


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAOCHAPING_", "TWILIO_", "WECHAT_"))}
    env["HAOCHAPING_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'hcp.db'}"
    return subprocess.run([str(HAOCHAPING), "calendar", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)


def test_the_command_shows_imports_and_refuses_a_wrong_file(tmp_path: Path) -> None:
    shown = run(tmp_path, "show")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["packaged"]["from"] <= 2026 <= doc["packaged"]["to"] and doc["imported"] == []
    (tmp_path / "2027.toml").write_text(FIXTURE_2027, encoding="utf-8")
    imported = run(tmp_path, "import", str(tmp_path / "2027.toml"))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["holidays"] == 19
    doc = json.loads(run(tmp_path, "show").stdout)
    assert [y["year"] for y in doc["imported"]] == [2027] and doc["imported"][0]["imported_by"].startswith("cli")
    (tmp_path / "bad.toml").write_text('year = 2027\nholidays = []\nworkdays = ["2027-02-22"]', encoding="utf-8")
    refused = run(tmp_path, "import", str(tmp_path / "bad.toml"))
    assert refused.returncode == 2 and "2027-02-22 is a Monday" in refused.stderr and not refused.stdout
