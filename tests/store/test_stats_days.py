"""The daily statistics (`stats_days`, migration 0006) answer exactly what computing live answers.

Statistics over millions of evaluations are sums of per-day rows; triggers mark a day dirty whenever
a case, an evaluation or a work order of it is written, the tick rebuilds dirty days, and a reader
computes dirty days and partial edge days live. Each test builds a history through the service's own
doors (the API, ticks), reads the figures both ways at many moments and ranges, and compares:
`figures(..., dialect="")` is the all-live answer.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from helpers import Hcp
from servers import WITH_MARIADB
from sqlalchemy import func
from sqlmodel import select

from store import stats
from store.models import StatsDay, StatsDirty

ON_ALL = pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
# The histories: three on SQLite and PostgreSQL, one on MariaDB (its DDL-heavy set-up makes each ~5 s there).
HISTORIES = [pytest.param(backend.values[0], seed, id=f"{seed}-{backend.id}")
             for backend in WITH_MARIADB for seed in ([1, 2, 3] if backend.values[0][0] != "mariadb" else [1])]

GRADES = ["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]
START = datetime.fromisoformat("2026-11-10T00:00:00+08:00")


async def both_ways(hcp: Hcp, start: datetime | None, end: datetime | None,
                    agencies: list[str] | None = None) -> None:
    rt = hcp.rt
    for by in stats.GROUPS:
        async with rt.db.read() as session:
            rolled = await stats.figures(session, by, start, end, agencies, dialect=rt.db.dialect)
            live = await stats.figures(session, by, start, end, agencies, dialect="")
        assert rolled == live, (by, start, end, agencies)


async def dirty_days(hcp: Hcp) -> int:
    async with hcp.rt.db.read() as session:
        return int((await session.exec(select(func.count(func.distinct(StatsDirty.day))))).one())


async def day_rows(hcp: Hcp) -> int:
    async with hcp.rt.db.read() as session:
        return int((await session.exec(select(func.count()).select_from(StatsDay))).one())


def ranges(rng: random.Random) -> list[tuple[datetime | None, datetime | None]]:
    """Whole local days, whole UTC days, instants in the middle of a day, open ends, an empty range."""
    utc_midnight = datetime(2026, 11, 12, tzinfo=UTC)
    out: list[tuple[datetime | None, datetime | None]] = [
        (None, None), (START + timedelta(days=2), START + timedelta(days=5)), (utc_midnight, None),
        (None, utc_midnight + timedelta(days=2)), (utc_midnight, utc_midnight + timedelta(days=1)),
        (START + timedelta(days=3, hours=5), START + timedelta(days=3, hours=9)),
        (START + timedelta(days=4), START + timedelta(days=4)),
    ]
    for _ in range(4):
        a = START + timedelta(minutes=rng.randrange(0, 8 * 24 * 60))
        out.append((a, a + timedelta(minutes=rng.randrange(1, 5 * 24 * 60))))
    return out


@pytest.mark.parametrize(("backend", "seed"), HISTORIES, indirect=["backend"])
async def test_the_daily_figures_equal_the_live_ones_through_a_history(hcp: Hcp, seed: int) -> None:
    rng = random.Random(seed)
    agencies = [f"AG{i}" for i in range(3)]
    posted: list[str] = []
    for step in range(6):
        for _ in range(rng.randrange(4, 9)):  # new cases over several days, agencies, items, staff
            completed = START + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
            agency = rng.choice(agencies)
            doc = await hcp.post_case(completed_at=completed.isoformat(), agency_code=agency,
                                      agency_name=f"局{agency}", item_code=f"IT{rng.randrange(3)}",
                                      item_name=f"事项{rng.randrange(3)}",
                                      staff_id=rng.choice([None, "S1", "S2"]), staff_name=rng.choice([None, "王五"]),
                                      hall_code=rng.choice([None, "H1", "H2"]),
                                      district_code=rng.choice([None, "D1", "D2"]),
                                      kind=rng.choice(["instant", "promised"]))
            posted.append(doc["case_no"])
            if doc["kind"] == "promised" and doc["staff_id"] and rng.random() < 0.7:  # its window visits
                for visit in range(rng.randrange(1, 3)):  # the clerk's figures only (Shantou art. 22, 28)
                    grade = rng.choice(GRADES)
                    await hcp.rate(doc["case_no"], grade, channel="hall", scope="visit", visit_id=f"V{visit}",
                                   staff_id=rng.choice(["S1", "S2", "S3"]),
                                   reasons=["attitude"] if grade in ("dissatisfied", "very_dissatisfied") else [])
        for case_no in rng.sample(posted, k=min(len(posted), rng.randrange(2, 6))):  # ratings, some bad
            if await hcp.evaluations(case_no):
                continue
            grade = rng.choice(GRADES)
            bad = grade in ("dissatisfied", "very_dissatisfied")
            await hcp.rate(case_no, grade, channel=rng.choice(["web", "sms", "wechat"]),
                           reasons=["attitude"] if bad else [])
        if rng.random() < 0.6:  # a tick: defaults, overdue marks, and a rebuild of the dirty days
            await hcp.tick(START + timedelta(days=20 + step * 5))
        for start, end in rng.sample(ranges(rng), 4):  # every kind of range over the seeds and steps; all at the end
            await both_ways(hcp, start, end)
        await both_ways(hcp, None, None, agencies=agencies[:1])
    await hcp.tick(START + timedelta(days=60))
    assert await dirty_days(hcp) == 0 and await day_rows(hcp) > 0
    for start, end in ranges(rng):
        await both_ways(hcp, start, end)


@ON_ALL
async def test_every_kind_of_change_marks_its_day_and_the_tick_rebuilds_it(hcp: Hcp) -> None:
    day_one = "2026-11-18T10:00:00+08:00"  # UTC 2026-11-18
    doc = await hcp.post_case(completed_at=day_one)
    assert await dirty_days(hcp) == 1  # a new case
    assert (await hcp.tick(START + timedelta(days=9)))["stats_days"] == 1
    assert await dirty_days(hcp) == 0
    await both_ways(hcp, None, None)

    await hcp.rate(doc["case_no"], "very_dissatisfied", reasons=["attitude"])  # an evaluation, a work order
    assert await dirty_days(hcp) == 1
    await both_ways(hcp, None, None)
    assert (await hcp.tick(START + timedelta(days=9)))["stats_days"] == 1
    [group] = [g for g in await figures(hcp, "agency") if g.cases]
    assert (group.cases, group.rated, group.bad_reviews, group.work_orders) == (1, 1, 1, 1)

    # Time alone moves a figure: a work order past its deadline is overdue. The mark is its update.
    counts = await hcp.tick(START + timedelta(days=40))
    assert counts["overdue"] >= 1 and counts["stats_days"] == 1, counts
    [group] = await figures(hcp, "agency")
    assert group.overdue == 1
    await both_ways(hcp, None, None)


@ON_ALL
async def test_a_reader_never_sees_a_stale_day(hcp: Hcp) -> None:
    """Between a change and the next tick the day is computed live, so the answer is already right."""
    doc = await hcp.post_case(completed_at="2026-11-18T10:00:00+08:00")
    await hcp.tick(START + timedelta(days=9))
    before = await figures(hcp, "channel")
    await hcp.rate(doc["case_no"], "satisfied", channel="wechat")
    after = await figures(hcp, "channel")
    assert [(g.key, g.cases) for g in before] == [(None, 1)]
    assert [(g.key, g.cases, g.mean_score) for g in after] == [("wechat", 1, 8.0)]  # 满意 scores 8 of 10


async def figures(hcp: Hcp, by: stats.GroupBy) -> list[stats.GroupFigures]:
    async with hcp.rt.db.read() as session:
        return await stats.figures(session, by, None, None, dialect=hcp.rt.db.dialect)



@ON_ALL
async def test_refreshers_at_once_count_nothing_twice(hcp: Hcp) -> None:
    """Two `serve` processes tick at the same moment: one rebuild wins, the other's is dropped."""
    for i in range(12):
        doc = await hcp.post_case(completed_at=(START + timedelta(hours=9 * i)).isoformat())
        if i % 3:
            await hcp.rate(doc["case_no"], GRADES[i % 5], reasons=["attitude"] if i % 5 > 2 else [])
    results = await asyncio.gather(*(stats.refresh(hcp.rt.db, limit=100) for _ in range(3)))
    assert max(results) >= 1
    rebuilt = await day_rows(hcp)
    await both_ways(hcp, None, None)
    assert await stats.refresh(hcp.rt.db, limit=100) in (0, max(results))  # what is left, if anything
    assert await dirty_days(hcp) == 0 and await day_rows(hcp) == rebuilt
    await both_ways(hcp, None, None)
    await both_ways(hcp, START + timedelta(days=1), START + timedelta(days=3))
