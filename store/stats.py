"""Figures per group, computed from the stored records only (statistics cannot be edited by hand).

Each case counts in its group; its score is that of its latest valid evaluation (defaults
included, excluded ones left out); it is "rated" when it has an active (not default) valid
rating; bad reviews count every valid bad evaluation given by a rater (a callback's answer is not
a new review). A case is among those that should be rated (`to_rate`, the participation rate's
base) unless every rating it had was excluded on an upheld appeal: the rating is not adopted
(不予采纳, Fujian 十三, Shandong art. 17), so the case counts neither as rated nor as unrated, and an
agency does not lose participation by winning an appeal. An online consultation (a `consult` case with
neither hall nor clerk) needs no rating (Shantou art. 32): it is in `to_rate` only once someone rated it
anyway. A 全程网办 case (`online`) rates the agency only (art. 9, 30): it is in no clerk's figures.
Rectification counts each case's work orders not excluded on appeal, and those of them put right at
least once (rectified, or later). A clerk-only rating of a window visit (a 承诺件's or 联办件's acceptance,
Shantou art. 22, 28, 29) is in no figure of the case: only the staff figures count it, as the visit's clerk's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Integer, case, cast, delete, func, insert, literal, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from store.cases import online_consultation
from store.engine import Database
from store.models import Case, Evaluation, StatsDay, StatsDirty, WorkOrder

GroupBy = Literal["agency", "item", "staff", "channel", "hall", "district"]
BAD = ("dissatisfied", "very_dissatisfied")


@dataclass(frozen=True)
class GroupFigures:
    key: str | None
    name: str | None
    cases: int
    rated: int
    mean_score: float | None
    bad_reviews: int
    work_orders: int = 0
    rectified: int = 0
    overdue: int = 0  # open work orders past their step's deadline now
    score_sum: int = 0  # the sums behind mean_score, so that groups add up exactly
    scored: int = 0
    to_rate: int = 0  # the cases that should be rated: `cases` less those whose every rating was excluded


ROLLED = ("postgresql", "sqlite", "mysql")  # whose triggers keep the daily figures (migrations 0006, 0018)
MAX_LIVE_DAYS = 62  # dirty days computed live beside the daily figures; with more, everything is live
REFRESH_DAYS = 7  # days rebuilt per refresh: a backlog (a migration, an import) is worked off tick by tick
_SUMS = ("cases", "to_rate", "rated", "score_sum", "scored", "bad", "orders", "rectified", "overdue")


async def figures(session: AsyncSession, by: GroupBy, start: datetime | None,
                  end: datetime | None, agencies: Sequence[str] | None = None, *,
                  dialect: str = "") -> list[GroupFigures]:
    """`agencies`: only these agencies' cases (a reader's jurisdiction); None = all.

    The whole UTC days inside [start, end) whose figures are up to date are read from `stats_days`;
    the rest (the partial days at the edges, the days changed since their last refresh) is computed
    from the records. Both are sums, so the answer is the same as computing everything live.
    """
    ranges: list[Any] = []  # the live part: conditions on Case, OR-ed
    rolled: tuple[date, date] | None = None  # first and last whole day read from stats_days
    dirty: list[date] = []
    if dialect in ROLLED:
        found = await session.exec(select(StatsDirty.day).distinct())  # type: ignore[call-overload]
        dirty = sorted(_as_date(d) for d in found.scalars().all())
        first = _day_of(start, up=True) if start is not None else None
        last = _day_of(end, up=False) - timedelta(days=1) if end is not None else None
        if len(dirty) <= MAX_LIVE_DAYS and (first is None or last is None or first <= last):
            rolled = (first or date.min, last or date.max)
    completed = col(Case.completed_at)
    if rolled is None:
        ranges.append(True)
    else:
        if start is not None and rolled[0] > date.min:
            ranges.append(completed < _midnight(rolled[0]))
        if end is not None and rolled[1] < date.max:
            ranges.append(completed >= _midnight(rolled[1] + timedelta(days=1)))
        ranges += [(completed >= _midnight(d)) & (completed < _midnight(d + timedelta(days=1)))
                   for d in dirty if rolled[0] <= d <= rolled[1]]
    bounds = [completed >= start] if start is not None else []
    bounds += [completed < end] if end is not None else []
    if agencies is not None:
        bounds.append(col(Case.agency_code).in_(list(agencies)))
    sums: dict[str | None, dict[str, Any]] = {}
    if ranges:
        for stmt in _lives(by, [*bounds, or_(*ranges)], per_day=False):
            for row in (await session.exec(stmt)).all():  # type: ignore[call-overload]
                _add(sums, row)
    if rolled is not None:
        where = [col(StatsDay.dim) == by]
        if rolled[0] > date.min:
            where.append(col(StatsDay.day) >= rolled[0])
        if rolled[1] < date.max:
            where.append(col(StatsDay.day) <= rolled[1])
        if dirty:
            where.append(col(StatsDay.day).not_in(dirty))
        if agencies is not None:
            where.append(col(StatsDay.agency_code).in_(list(agencies)))
        stmt = (select(col(StatsDay.key).label("key"), func.max(StatsDay.name).label("name"),
                       *(func.sum(getattr(StatsDay, f)).label(f) for f in _SUMS))
                .where(*where).group_by(col(StatsDay.key)))
        for row in (await session.exec(stmt)).all():  # type: ignore[call-overload]
            _add(sums, row)
    return [GroupFigures(key=k, name=v["name"], cases=v["cases"], rated=v["rated"],
                         mean_score=round(v["score_sum"] / v["scored"], 4) if v["scored"] else None,
                         bad_reviews=v["bad"], work_orders=v["orders"], rectified=v["rectified"],
                         overdue=v["overdue"], score_sum=v["score_sum"], scored=v["scored"], to_rate=v["to_rate"])
            for k, v in sorted(sums.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]


def _add(sums: dict[str | None, dict[str, Any]], row: Any) -> None:
    into = sums.setdefault(row.key, {"name": None, **dict.fromkeys(_SUMS, 0)})
    if row.name is not None and (into["name"] is None or row.name > into["name"]):
        into["name"] = row.name
    for f in _SUMS:
        into[f] += int(getattr(row, f) or 0)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _day_of(instant: datetime, *, up: bool) -> date:
    """The UTC day an instant falls on; rounded up to the next day when it is not a midnight and `up`."""
    utc = instant.astimezone(UTC)
    day = utc.date()
    return day + timedelta(days=1) if up and utc != _midnight(day) else day


def _lives(by: GroupBy, where: list[Any], *, per_day: bool) -> list[Any]:
    """The statements whose rows, added up by key, are the figures: the cases' own, and for the staff the
    ratings of window visits too (their rows may share a key, a day and an agency with a case's: they add)."""
    return [_live(by, where, per_day=per_day), *([_visits(where, per_day=per_day)] if by == "staff" else [])]


def _order_counts() -> list[Any]:
    """Per group of work orders: those not excluded on appeal, those of them put right at least once
    (rectified, or later), and the open ones past their step's deadline."""
    counted = func.coalesce(WorkOrder.outcome, "") != "excluded"
    reached = col(WorkOrder.status).in_(("rectified", "reviewed", "closed")) | (col(WorkOrder.reopened) > 0)
    return [func.sum(case((counted, 1), else_=0)).label("orders"),
            func.sum(case((counted & reached, 1), else_=0)).label("rectified"),
            func.sum(case(((col(WorkOrder.overdue).is_(True)) & (col(WorkOrder.status) != "closed"), 1),
                          else_=0)).label("overdue")]


def _scored(latest: Any, bad: Any, orders: Any) -> list[Any]:
    """The sums each figure statement ends with: the latest ratings' scores, the bad reviews, the work orders."""
    return [func.coalesce(func.sum(latest.score), 0).label("score_sum"),
            func.count(latest.score).label("scored"),
            func.coalesce(func.sum(bad), 0).label("bad"),
            *(func.coalesce(func.sum(orders.c[name]), 0).label(name) for name in ("orders", "rectified", "overdue"))]


def _visit_ids(chosen: Any) -> Any:
    """The visit ratings of the chosen cases (their work orders are counted by `_visits`)."""
    return select(col(Evaluation.id)).where(col(Evaluation.case_id).in_(chosen), col(Evaluation.visit_id).is_not(None))


def _visits(where: list[Any], *, per_day: bool) -> Any:
    """The clerks' figures from the window visits of 承诺件 and 联办件 (Shantou art. 22, 28, 29), by the clerk who
    served each visit: a visit is one more scored rating of that clerk (its latest valid version, a callback's
    satisfied answer included), its bad reviews and its work order are theirs; it is no case, so `cases`,
    `to_rate` and `rated` stay the cases' own. The day and agency are the case's, as for every other figure."""
    chosen = select(col(Case.id)).where(*where)
    valid = col(Evaluation.status) == "valid"
    per_visit = (
        select(
            col(Evaluation.case_id).label("case_id"),
            col(Evaluation.visit_id).label("visit_id"),
            func.max(Evaluation.staff_id).label("staff_id"),
            func.max(Evaluation.staff_name).label("staff_name"),
            func.max(case((valid, col(Evaluation.id)), else_=None)).label("latest_id"),
            func.sum(case((valid & col(Evaluation.grade).in_(BAD) & (func.coalesce(Evaluation.via, "") != "callback"),
                           1), else_=0)).label("bad"),
        )
        .where(col(Evaluation.case_id).in_(chosen), col(Evaluation.visit_id).is_not(None))
        .group_by(col(Evaluation.case_id), col(Evaluation.visit_id))
        .subquery()
    )
    rated = aliased(Evaluation, name="rated")
    per_visit_orders = (
        select(col(rated.case_id).label("case_id"), col(rated.visit_id).label("visit_id"), *_order_counts())
        .select_from(WorkOrder)
        .join(rated, col(rated.id) == col(WorkOrder.evaluation_id))
        .where(col(WorkOrder.case_id).in_(chosen), col(rated.visit_id).is_not(None))
        .group_by(col(rated.case_id), col(rated.visit_id))
        .subquery()
    )
    latest = aliased(Evaluation, name="latest")
    key = per_visit.c.staff_id
    groups: list[Any] = [key]
    extra: list[Any] = []
    if per_day:
        day = func.date(col(Case.completed_at))
        groups = [day, col(Case.agency_code), key]
        extra = [day.label("day"), col(Case.agency_code).label("agency_code")]
    zero = literal(0)
    return (
        select(
            *extra,
            key.label("key"),
            func.max(per_visit.c.staff_name).label("name"),
            zero.label("cases"), zero.label("to_rate"), zero.label("rated"),
            *_scored(latest, per_visit.c.bad, per_visit_orders),
        )
        .select_from(per_visit)
        .join(Case, col(Case.id) == per_visit.c.case_id)
        .outerjoin(per_visit_orders, (per_visit_orders.c.case_id == per_visit.c.case_id)
                   & (per_visit_orders.c.visit_id == per_visit.c.visit_id))
        .outerjoin(latest, col(latest.id) == per_visit.c.latest_id)
        .where(*where)
        .group_by(*groups)
    )


def _live(by: GroupBy, where: list[Any], *, per_day: bool) -> Any:
    """The figures computed from the records, per group (and per day and agency when `per_day`: the rows
    of `stats_days`). Every sub-aggregate is restricted to the cases in question, so a day costs a day."""
    chosen = select(col(Case.id)).where(*where)
    valid = col(Evaluation.status) == "valid"
    per_case = (  # every evaluation of the case, the excluded ones too: they take the case out of `to_rate`
        select(
            col(Evaluation.case_id).label("case_id"),
            func.max(case((valid, col(Evaluation.id)), else_=None)).label("latest_id"),
            func.max(case((valid & col(Evaluation.is_default).is_(False), 1), else_=0)).label("active"),
            func.sum(case((valid & col(Evaluation.grade).in_(BAD) & (func.coalesce(Evaluation.via, "") != "callback"),
                           1), else_=0)).label("bad"),
            func.max(case((valid, 1), else_=0)).label("kept"),  # 0: every rating of the case was excluded
        )
        .where(col(Evaluation.case_id).in_(chosen), col(Evaluation.visit_id).is_(None))
        .group_by(col(Evaluation.case_id))
        .subquery()
    )
    per_case_orders = (
        select(col(WorkOrder.case_id).label("case_id"), *_order_counts())
        # a visit's work order is its clerk's (`_visits`): it is no bad review of the item (服务事项"差评", whose
        # rectification Shantou art. 33 counts), nor of the case's clerk
        .where(col(WorkOrder.case_id).in_(chosen), col(WorkOrder.evaluation_id).not_in(_visit_ids(chosen)))
        .group_by(col(WorkOrder.case_id))
        .subquery()
    )
    latest = aliased(Evaluation, name="latest")  # joined by primary key: never a scan of every evaluation
    keys = {
        "agency": (col(Case.agency_code), col(Case.agency_name)),
        "item": (col(Case.item_code), col(Case.item_name)),
        # 全程网办 rates the agency only (Shantou art. 9, 30): a clerk the business system named is not rated.
        "staff": (case((col(Case.kind) == "online", None), else_=col(Case.staff_id)),
                  case((col(Case.kind) == "online", None), else_=col(Case.staff_name))),
        "channel": (col(latest.channel), col(latest.channel)),
        "hall": (col(Case.hall_code), col(Case.hall_name)),
        "district": (col(Case.district_code), col(Case.district_name)),
    }
    key, name = keys[by]
    groups: list[Any] = [key]
    extra: list[Any] = []
    if per_day:
        day = func.date(col(Case.completed_at))
        groups = [day, col(Case.agency_code), key]
        extra = [day.label("day"), col(Case.agency_code).label("agency_code")]
    return (
        select(
            *extra,
            key.label("key"),
            func.max(name).label("name"),
            func.count().label("cases"),
            # An unrated case (no evaluation: kept is NULL) should be rated; one whose ratings were all
            # excluded on appeal should not, nor an online consultation nobody rated (Shantou art. 32).
            func.coalesce(func.sum(case((per_case.c.kept == 0, 0),
                                        (online_consultation() & (func.coalesce(per_case.c.active, 0) == 0), 0),
                                        else_=1)), 0).label("to_rate"),
            func.coalesce(func.sum(cast(per_case.c.active, Integer)), 0).label("rated"),
            *_scored(latest, per_case.c.bad, per_case_orders),
        )
        .select_from(Case)
        .outerjoin(per_case, per_case.c.case_id == col(Case.id))
        .outerjoin(per_case_orders, per_case_orders.c.case_id == col(Case.id))
        .outerjoin(latest, col(latest.id) == per_case.c.latest_id)
        .where(*where)
        .group_by(*groups)
    )


async def refresh(db: Database, limit: int = REFRESH_DAYS) -> int:
    """Rebuild the daily figures of up to `limit` dirty days; how many were rebuilt.

    The figures are computed in a read transaction (a writer is not held up by it), then written in a
    short one, provided every mark read is still there: if another refresher removed one meanwhile,
    it wrote figures at least as new, and these are dropped. Only the marks read are removed: a mark
    committed meanwhile (its change perhaps not seen here) stays, and its day is rebuilt again later.
    """
    if db.dialect not in ROLLED:
        return 0
    async with db.read() as session:
        oldest = select(col(StatsDirty.day)).distinct().order_by(col(StatsDirty.day)).limit(limit).subquery()
        marks = (await session.exec(select(col(StatsDirty.id), col(StatsDirty.day))  # type: ignore[call-overload]
                                    .where(col(StatsDirty.day).in_(select(oldest.c.day))))).all()
        if not marks:
            return 0
        days = sorted({_as_date(d) for _id, d in marks})
        completed = col(Case.completed_at)
        within = or_(*((completed >= _midnight(d)) & (completed < _midnight(d + timedelta(days=1))) for d in days))
        rows = []
        for dim in GROUPS:
            rows += [{"dim": dim, "day": _as_date(r.day), "agency_code": r.agency_code, "key": r.key, "name": r.name,
                      **{f: int(getattr(r, f) or 0) for f in _SUMS}}
                     for stmt in _lives(dim, [within], per_day=True)
                     for r in (await session.exec(stmt)).all()]  # type: ignore[call-overload]
    ids = [i for i, _d in marks]
    async with db.write() as session:
        still = 0
        for at in range(0, len(ids), 5000):
            stmt = select(col(StatsDirty.id)).where(col(StatsDirty.id).in_(ids[at:at + 5000]))
            if db.locks_rows:  # a refresher deleting them now is waited for
                stmt = stmt.with_for_update()
            still += len((await session.exec(stmt)).all())  # type: ignore[call-overload]
        if still != len(ids):
            return 0  # another refresher got there first
        await session.exec(delete(StatsDay).where(col(StatsDay.day).in_(days)))  # type: ignore[call-overload]
        if rows:
            await session.exec(insert(StatsDay), params=rows)  # type: ignore[call-overload]
        for at in range(0, len(ids), 5000):
            await session.exec(delete(StatsDirty).where(col(StatsDirty.id).in_(ids[at:at + 5000])))  # type: ignore[call-overload]
    return len(days)


def _as_date(value: date | str) -> date:
    """SQLite hands a computed date back as text."""
    return value if isinstance(value, date) else date.fromisoformat(value)


GROUPS: tuple[GroupBy, ...] = ("agency", "item", "staff", "channel", "hall", "district")
