"""Intermediary-service ratings and complaints (Hainan 中介服务 art. 21–25): the queries.

The store knows no grade: the figures take the score of each grade name and the names that are bad from
the caller (bot/rating/intermediaries.py), and sum them in SQL, so a period's figures are one grouped query
whatever the number of projects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import IntermediaryComplaint, IntermediaryRating


async def add_rating(session: AsyncSession, rating: IntermediaryRating) -> IntermediaryRating | None:
    """Store a project's rating; None when the project is rated already (一事一评), also when another request
    rated it a moment before: the unique `project_no` decides, inside a savepoint."""
    if await rating_by_project(session, rating.project_no) is not None:
        return None
    try:
        async with session.begin_nested():
            session.add(rating)
        return rating
    except IntegrityError:
        return None


async def rating_by_project(session: AsyncSession, project_no: str) -> IntermediaryRating | None:
    stmt = select(IntermediaryRating).where(IntermediaryRating.project_no == project_no)
    return (await session.exec(stmt)).first()


def _period(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    """[start, end), as every period of the statistics."""
    return [*([column >= start] if start is not None else []), *([column < end] if end is not None else [])]


async def ratings(session: AsyncSession, intermediary_code: str | None, start: datetime | None,
                  end: datetime | None, limit: int, after_id: int | None = None) -> list[IntermediaryRating]:
    """Ratings by id (pages with `after_id`), of one intermediary or all, fulfilled in [start, end)."""
    stmt = select(IntermediaryRating).where(*_period(col(IntermediaryRating.fulfilled_at), start, end))
    if intermediary_code is not None:
        stmt = stmt.where(IntermediaryRating.intermediary_code == intermediary_code)
    if after_id is not None:
        stmt = stmt.where(col(IntermediaryRating.id) > after_id)
    return list((await session.exec(stmt.order_by(col(IntermediaryRating.id)).limit(limit))).all())


@dataclass(frozen=True)
class Figures:
    """One intermediary's sums over a period: projects rated, the five dimensions' score sums, the projects
    with a bad grade on any dimension."""

    code: str
    name: str
    projects: int
    score_sum: int
    dimension_sums: dict[str, int]
    bad_projects: int


async def figures(session: AsyncSession, dimensions: Sequence[str], scores: Mapping[str, int],
                  bad: Collection[str], start: datetime | None, end: datetime | None) -> list[Figures]:
    """Per intermediary (by code), the valid ratings of projects fulfilled in [start, end). The name is the
    greatest one given (one code, one name, unless a rater spelt it otherwise)."""
    def score_of(column: Any) -> Any:
        return case(*((column == grade, value) for grade, value in scores.items()), else_=0)

    columns = [getattr(IntermediaryRating, d) for d in dimensions]
    any_bad = or_(*(col(c).in_(list(bad)) for c in columns))
    stmt = (select(IntermediaryRating.intermediary_code, func.max(IntermediaryRating.intermediary_name),
                   func.count(), func.sum(IntermediaryRating.score_sum),
                   *(func.sum(score_of(c)) for c in columns), func.sum(case((any_bad, 1), else_=0)))
            .where(IntermediaryRating.status == "valid",
                   *_period(col(IntermediaryRating.fulfilled_at), start, end))
            .group_by(IntermediaryRating.intermediary_code)
            .order_by(IntermediaryRating.intermediary_code))
    out = []
    for row in (await session.exec(stmt)).all():  # type: ignore[call-overload]
        code, name, projects, total, *sums, bad_projects = row
        out.append(Figures(code, name, int(projects), int(total or 0),
                           {d: int(s or 0) for d, s in zip(dimensions, sums, strict=True)}, int(bad_projects or 0)))
    return out


async def add_complaint(session: AsyncSession, complaint: IntermediaryComplaint) -> IntermediaryComplaint:
    session.add(complaint)
    await session.flush()
    return complaint


async def complaint_by_id(session: AsyncSession, complaint_id: int, *, lock: bool = False
                          ) -> IntermediaryComplaint | None:
    stmt = select(IntermediaryComplaint).where(IntermediaryComplaint.id == complaint_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


@dataclass(frozen=True)
class ComplaintFilters:
    overdue: bool | None = None
    answered: bool | None = None  # status: answered (True) or open (False)
    project_no: str | None = None


async def complaints(session: AsyncSession, f: ComplaintFilters, limit: int, after_id: int | None = None
                     ) -> list[IntermediaryComplaint]:
    """Complaints by id (pages with `after_id`)."""
    stmt = select(IntermediaryComplaint)
    if f.overdue is not None:
        stmt = stmt.where(IntermediaryComplaint.overdue == f.overdue)
    if f.answered is not None:
        answered_at = col(IntermediaryComplaint.answered_at)
        stmt = stmt.where(answered_at.is_not(None) if f.answered else answered_at.is_(None))
    if f.project_no is not None:
        stmt = stmt.where(IntermediaryComplaint.project_no == f.project_no)
    if after_id is not None:
        stmt = stmt.where(col(IntermediaryComplaint.id) > after_id)
    return list((await session.exec(stmt.order_by(col(IntermediaryComplaint.id)).limit(limit))).all())


async def unanswered_received_by(session: AsyncSession, received_by: datetime, after_id: int, limit: int, *,
                                 skip_locked: bool = False) -> list[IntermediaryComplaint]:
    """Unanswered complaints not yet marked overdue, received by `received_by`: those whose answer can be due
    (the tick recomputes each one's deadline). By id, for a keyset walk; `skip_locked` passes over the rows
    another transaction holds (an answer being written: the next tick looks again)."""
    stmt = (select(IntermediaryComplaint)
            .where(col(IntermediaryComplaint.answered_at).is_(None), col(IntermediaryComplaint.overdue).is_(False),
                   col(IntermediaryComplaint.received_at) <= received_by, col(IntermediaryComplaint.id) > after_id)
            .order_by(col(IntermediaryComplaint.id)).limit(limit))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())
