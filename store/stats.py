"""Figures per group, computed from the stored records only (statistics cannot be edited by hand).

Each case counts in its group; its score is that of its latest valid evaluation (defaults
included, excluded ones left out); it is "rated" when it has an active (not default) valid
rating; bad reviews count every valid bad evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Integer, case, cast, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, Evaluation

GroupBy = Literal["agency", "item", "staff", "channel"]
BAD = ("dissatisfied", "very_dissatisfied")


@dataclass(frozen=True)
class GroupFigures:
    key: str | None
    name: str | None
    cases: int
    rated: int
    mean_score: float | None
    bad_reviews: int


async def figures(session: AsyncSession, by: GroupBy, start: datetime | None,
                  end: datetime | None) -> list[GroupFigures]:
    valid = col(Evaluation.status) == "valid"
    per_case = (
        select(
            col(Evaluation.case_id).label("case_id"),
            func.max(Evaluation.id).label("latest_id"),
            func.max(case((col(Evaluation.is_default).is_(False), 1), else_=0)).label("active"),
            func.sum(case((col(Evaluation.grade).in_(BAD), 1), else_=0)).label("bad"),
        )
        .where(valid)
        .group_by(col(Evaluation.case_id))
        .subquery()
    )
    latest = select(Evaluation.id, Evaluation.score, Evaluation.channel).subquery()
    keys = {
        "agency": (col(Case.agency_code), col(Case.agency_name)),
        "item": (col(Case.item_code), col(Case.item_name)),
        "staff": (col(Case.staff_id), col(Case.staff_name)),
        "channel": (latest.c.channel, latest.c.channel),
    }
    key, name = keys[by]
    stmt = (
        select(
            key.label("key"),
            func.max(name).label("name"),
            func.count().label("cases"),
            func.coalesce(func.sum(cast(per_case.c.active, Integer)), 0).label("rated"),
            func.avg(latest.c.score).label("mean_score"),
            func.coalesce(func.sum(per_case.c.bad), 0).label("bad"),
        )
        .select_from(Case)
        .outerjoin(per_case, per_case.c.case_id == col(Case.id))
        .outerjoin(latest, latest.c.id == per_case.c.latest_id)
        .group_by(key)
        .order_by(key)
    )
    if start is not None:
        stmt = stmt.where(col(Case.completed_at) >= start)
    if end is not None:
        stmt = stmt.where(col(Case.completed_at) < end)
    rows = (await session.exec(stmt)).all()  # type: ignore[call-overload]
    return [GroupFigures(key=r.key, name=r.name, cases=int(r.cases), rated=int(r.rated),
                         mean_score=None if r.mean_score is None else round(float(r.mean_score), 4),
                         bad_reviews=int(r.bad)) for r in rows]
