"""Figures per group, computed from the stored records only (statistics cannot be edited by hand).

Each case counts in its group; its score is that of its latest valid evaluation (defaults
included, excluded ones left out); it is "rated" when it has an active (not default) valid
rating; bad reviews count every valid bad evaluation given by a rater (a callback's "dissatisfied"
is the answer to a callback, not a new review). Rectification counts each case's work orders not
excluded on appeal, and those of them put right at least once (rectified, or later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Integer, case, cast, func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, Evaluation, WorkOrder

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
    work_orders: int = 0
    rectified: int = 0
    overdue: int = 0  # open work orders past their step's deadline now


async def figures(session: AsyncSession, by: GroupBy, start: datetime | None,
                  end: datetime | None, agencies: Sequence[str] | None = None) -> list[GroupFigures]:
    """`agencies`: only these agencies' cases (a reader's jurisdiction); None = all."""
    valid = col(Evaluation.status) == "valid"
    per_case = (
        select(
            col(Evaluation.case_id).label("case_id"),
            func.max(Evaluation.id).label("latest_id"),
            func.max(case((col(Evaluation.is_default).is_(False), 1), else_=0)).label("active"),
            func.sum(case(((col(Evaluation.grade).in_(BAD)) & (func.coalesce(Evaluation.via, "") != "callback"), 1),
                          else_=0)).label("bad"),
        )
        .where(valid)
        .group_by(col(Evaluation.case_id))
        .subquery()
    )
    counted = func.coalesce(WorkOrder.outcome, "") != "excluded"
    reached = col(WorkOrder.status).in_(("rectified", "reviewed", "closed")) | (col(WorkOrder.reopened) > 0)
    put_right = counted & reached
    per_case_orders = (
        select(
            col(WorkOrder.case_id).label("case_id"),
            func.sum(case((counted, 1), else_=0)).label("orders"),
            func.sum(case((put_right, 1), else_=0)).label("rectified"),
            func.sum(case(((col(WorkOrder.overdue).is_(True)) & (col(WorkOrder.status) != "closed"), 1),
                          else_=0)).label("overdue"),
        )
        .group_by(col(WorkOrder.case_id))
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
            func.coalesce(func.sum(per_case_orders.c.orders), 0).label("orders"),
            func.coalesce(func.sum(per_case_orders.c.rectified), 0).label("rectified"),
            func.coalesce(func.sum(per_case_orders.c.overdue), 0).label("overdue"),
        )
        .select_from(Case)
        .outerjoin(per_case, per_case.c.case_id == col(Case.id))
        .outerjoin(per_case_orders, per_case_orders.c.case_id == col(Case.id))
        .outerjoin(latest, latest.c.id == per_case.c.latest_id)
        .group_by(key)
        .order_by(key)
    )
    if start is not None:
        stmt = stmt.where(col(Case.completed_at) >= start)
    if end is not None:
        stmt = stmt.where(col(Case.completed_at) < end)
    if agencies is not None:
        stmt = stmt.where(col(Case.agency_code).in_(list(agencies)))
    rows = (await session.exec(stmt)).all()  # type: ignore[call-overload]
    return [GroupFigures(key=r.key, name=r.name, cases=int(r.cases), rated=int(r.rated),
                         mean_score=None if r.mean_score is None else round(float(r.mean_score), 4),
                         bad_reviews=int(r.bad), work_orders=int(r.orders), rectified=int(r.rectified),
                         overdue=int(r.overdue)) for r in rows]
