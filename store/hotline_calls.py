"""The calls of the JSON keypad dialog (store/models.py HotlineCall)."""

from __future__ import annotations

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
