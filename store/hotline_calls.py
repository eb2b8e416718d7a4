"""The calls of the JSON keypad dialog (store/models.py HotlineCall)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import HotlineCall


async def by_call_id(session: AsyncSession, call_id: str, *, lock: bool = False) -> HotlineCall | None:
    """The call, held to the end of the transaction with `lock` (PostgreSQL, MySQL): one step of a call at a
    time, so that a step posted twice at once is answered once and then repeated."""
    stmt = select(HotlineCall).where(col(HotlineCall.call_id) == call_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


async def prune(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to `limit` calls last touched before `before`; how many went. A call's rating lives in
    `evaluations` (ref ivr:<call_id>): its row here only serves the call's own replays."""
    ids = list((await session.exec(select(HotlineCall.id).where(col(HotlineCall.updated_at) < before)
                                   .order_by(col(HotlineCall.id)).limit(limit))).all())
    if ids:
        await session.exec(delete(HotlineCall).where(col(HotlineCall.id).in_(ids)))  # type: ignore[call-overload]
    return len(ids)
