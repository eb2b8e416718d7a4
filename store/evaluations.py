"""Ratings of a case."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Evaluation


async def for_case(session: AsyncSession, case_id: int) -> list[Evaluation]:
    stmt = select(Evaluation).where(Evaluation.case_id == case_id).order_by(col(Evaluation.id))
    return list((await session.exec(stmt)).all())


async def latest_for_case(session: AsyncSession, case_id: int) -> Evaluation | None:
    stmt = (select(Evaluation).where(Evaluation.case_id == case_id)
            .order_by(col(Evaluation.id).desc()).limit(1))
    return (await session.exec(stmt)).first()


async def by_ref(session: AsyncSession, ref: str) -> Evaluation | None:
    return (await session.exec(select(Evaluation).where(Evaluation.ref == ref))).first()


async def exclude_copies(session: AsyncSession, original: Evaluation, via: str) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(Evaluation).where(col(Evaluation.origin_id) == original.id, col(Evaluation.via) == via)
        .values(status="excluded").execution_options(synchronize_session=False))
