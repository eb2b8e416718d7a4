"""The official calendar a jurisdiction imports: the State Council's yearly arrangement of holidays and make-up
working days (国务院办公厅关于某年部分节假日安排的通知), for years the packaged calendar does not know yet.

The notice comes out in November or December; `chinesecalendar` follows weeks or months later, and a
deployment cannot wait for a release. So `haochaping calendar import FILE` reads the year from a small file,
keeps it in the database (every worker reads it there at each scheduler pass, so all count alike) and
recomputes the deadlines that were counted over the year's days guessed Monday-Friday. Until then no deadline
whose last counted day is in the unknown year is applied (bot/policy/workdays.py is_final), and from 1 November the
service warns that next year is unknown: in the log, on /healthz and in the console.

The file (TOML, or the same keys in JSON):

    year = 2026
    source = "国办发明电〔2025〕7号"
    holidays = ["2026-01-01..2026-01-03", "2026-02-15..2026-02-23", ...]   # days off, ranges with ..
    workdays = ["2026-01-04", "2026-02-14", ...]                           # make-up working days (上班)
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.infra.runtime import Runtime, stored_years
from bot.policy.workdays import YearDays
from bot.work_orders import lifecycle as work_orders
from store import calendar_years as store
from store.models import CalendarYear

log = logging.getLogger("haochaping.calendar")

FIRST_YEAR, LAST_YEAR = 2000, 2100
WARN_FROM_MONTH = 11  # the notice usually comes out in November; from then on, a missing next year is news
BATCH = 500
SOURCE_MAX = 300
MAX_DAYS = 60  # more days off than any year ever had: a range typed wrong, not a calendar


class CalendarFileError(ValueError):
    """A calendar file that cannot be a year's arrangement; the text names what is wrong."""


@dataclass(frozen=True)
class Arrangement:
    year: int
    holidays: tuple[date, ...]
    workdays: tuple[date, ...]
    source: str | None

    def days(self) -> YearDays:
        return YearDays(self.holidays, self.workdays)


def _days(raw: Any, key: str, year: int) -> list[date]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise CalendarFileError(f"{key}: expected a list of dates (\"2027-01-01\") or ranges "
                                "(\"2027-02-05..2027-02-11\")")
    out: list[date] = []
    for item in raw:
        first, sep, last = item.strip().partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if sep else start
        except ValueError:
            raise CalendarFileError(f"{key}: {item!r} is not a date (YYYY-MM-DD) or a range of two") from None
        if end < start:
            raise CalendarFileError(f"{key}: the range {item!r} ends before it starts")
        for day in (start + timedelta(days=n) for n in range((end - start).days + 1)):
            if day.year != year:
                raise CalendarFileError(f"{key}: {day.isoformat()} is not in {year}")
            if day in out:
                raise CalendarFileError(f"{key}: {day.isoformat()} is listed twice")
            out.append(day)
    return sorted(out)


def parse(text: str, name: str = "calendar file") -> Arrangement:
    """A year's arrangement from the file's text (TOML, or JSON when it starts with `{`)."""
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CalendarFileError(f"{name}: not TOML or JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CalendarFileError(f"{name}: expected the keys year, holidays, workdays and source")
    unknown = sorted(set(doc) - {"year", "holidays", "workdays", "source"})
    if unknown:
        raise CalendarFileError(f"{name}: unknown key(s) {', '.join(unknown)}; expected year, holidays, workdays, "
                                "source")
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarFileError(f"year: expected a year from {FIRST_YEAR} to {LAST_YEAR}, got {year!r}")
    if "holidays" not in doc:
        raise CalendarFileError("holidays: missing (the notice's days off; [] if none)")
    holidays = _days(doc["holidays"], "holidays", year)
    workdays = _days(doc.get("workdays", []), "workdays", year)
    if len(holidays) > MAX_DAYS:
        raise CalendarFileError(f"holidays: {len(holidays)} days off; no year has more than {MAX_DAYS}")
    both = sorted(set(holidays) & set(workdays))
    if both:
        raise CalendarFileError(f"{both[0].isoformat()} is listed both as a holiday and as a working day")
    weekday = [d for d in workdays if d.weekday() < 5]
    if weekday:
        raise CalendarFileError(f"workdays: {weekday[0].isoformat()} is a {weekday[0].strftime('%A')}; a make-up "
                                "working day is a Saturday or a Sunday")
    source = doc.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > SOURCE_MAX):
        raise CalendarFileError(f"source: expected the notice's name or number, at most {SOURCE_MAX} characters")
    return Arrangement(year, tuple(holidays), tuple(workdays), source.strip() if source else None)


def read(path: Path) -> Arrangement:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CalendarFileError(f"{path}: not UTF-8 text") from None
    return parse(text, str(path))


async def refresh(rt: Runtime) -> None:
    """Every scheduler pass: the imported years as the database holds them now (another process may have
    imported one)."""
    rt.timing.calendar.set_years(await stored_years(rt.db))


def unknown_year(rt: Runtime, now: datetime) -> tuple[str, int] | None:
    """("this", year) when this year is unknown; ("next", year) from 1 November when next year is; else None."""
    calendar, local = rt.timing.calendar, now.astimezone(rt.policy.tz)
    if not calendar.knows_year(local.year):
        return "this", local.year
    if local.month >= WARN_FROM_MONTH and not calendar.knows_year(local.year + 1):
        return "next", local.year + 1
    return None


def warning(rt: Runtime, now: datetime) -> str | None:
    """Why deadlines may be wrong soon, in the operator's words (log, /healthz), or None."""
    found = unknown_year(rt, now)
    if found is None:
        return None
    which, year = found
    if which == "this":
        return (f"the official calendar of {year} is unknown: nothing due after 1 January {year} is applied until "
                "its arrangement is imported (haochaping calendar import FILE)")
    return (f"the official calendar of {year} is unknown: import the State Council's arrangement "
            f"(haochaping calendar import FILE) before 1 January, or deadlines after it wait")


def log_warning(rt: Runtime, now: datetime) -> None:
    """Once a day and process, so that the log says it without saying it every five seconds."""
    text = warning(rt, now)
    stamp = f"{now.astimezone(rt.policy.tz).date().isoformat()}: {text}"
    if text is not None and rt.calendar_logged != stamp:
        rt.calendar_logged = stamp
        log.warning("calendar: %s", text)


def years(rt: Runtime, rows: list[CalendarYear], now: datetime) -> dict[str, Any]:
    """What `calendar show` prints: every year known and where it comes from."""
    calendar = rt.timing.calendar
    local_year = now.astimezone(rt.policy.tz).year
    packaged = [y for y in range(FIRST_YEAR, local_year + 6) if calendar.packaged(y)]
    imported = [{"year": r.year, "holidays": len(r.holidays), "workdays": len(r.workdays), "source": r.source,
                 "imported_at": r.imported_at.isoformat(), "imported_by": r.imported_by} for r in rows]
    return {
        "packaged": {"from": min(packaged), "to": max(packaged)} if packaged else None,
        "imported": imported,
        "policy_overrides": sorted({d.year for d in (*rt.policy.holidays, *rt.policy.workdays)}),
        "this_year_known": calendar.knows_year(local_year),
        "next_year_known": calendar.knows_year(local_year + 1),
        "warning": warning(rt, now),
    }


async def import_year(rt: Runtime, arrangement: Arrangement, actor: str, now: datetime, *,
                      replace: bool = False) -> dict[str, Any]:
    """Store the year (refusing to change an imported one without `replace`), then recompute every deadline
    still ahead that counts days of it."""
    holidays = [d.isoformat() for d in arrangement.holidays]
    workdays = [d.isoformat() for d in arrangement.workdays]
    async with rt.db.write() as session:
        row = await store.get(session, arrangement.year)
        if row is not None and (row.holidays, row.workdays) != (holidays, workdays) and not replace:
            raise CalendarFileError(f"{arrangement.year} was imported on {row.imported_at.date().isoformat()} "
                                    "with other days: give --replace to change it")
        changed = row is None or (row.holidays, row.workdays) != (holidays, workdays)
        if row is None:
            row = CalendarYear(year=arrangement.year, holidays=holidays, workdays=workdays,
                               source=arrangement.source, imported_at=now, imported_by=actor)
        else:
            row.holidays, row.workdays, row.source = holidays, workdays, arrangement.source or row.source
            row.imported_at, row.imported_by = now, actor
        session.add(row)
    await refresh(rt)
    recomputed = await recompute(rt, arrangement.year) if changed else {"cases": 0, "work_orders": 0}
    return {"year": arrangement.year, "holidays": len(holidays), "workdays": len(workdays),
            "changed": changed, "recomputed": recomputed,
            "packaged_too": rt.timing.calendar.packaged(arrangement.year)}


async def recompute(rt: Runtime, year: int) -> dict[str, int]:
    """Every deadline ahead that ends after 1 January of `year` counted again with the calendar as it now is:
    unrated cases' defaults and open work orders' steps. A deadline ending at 00:00 of 1 January counted no
    day of the year, and stays."""
    after = datetime(year, 1, 1, tzinfo=rt.policy.tz)
    cases = orders = 0
    cursor = 0
    while True:
        async with rt.db.write() as session:
            batch = await store.waiting_cases(session, after, BATCH, cursor)
            for case in batch:
                new = rt.timing.default_at(case.completed_at)
                if new != case.default_at:
                    case.default_at = new
                    session.add(case)
                    cases += 1
        if len(batch) < BATCH:
            break
        cursor = batch[-1].id or cursor
    cursor = 0
    while True:
        async with rt.db.write() as session:
            found = await store.open_orders_due_after(session, after, BATCH, cursor)
            for wo in found:
                new_due = work_orders.step_due(rt, wo.status, await store.step_started(session, wo))
                if new_due is not None and new_due != wo.due_at:
                    wo.due_at = new_due
                    session.add(wo)
                    orders += 1
        if len(found) < BATCH:
            break
        cursor = found[-1].id or cursor
    return {"cases": cases, "work_orders": orders}
