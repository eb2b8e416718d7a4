"""The audit table: rows added, never changed (triggers refuse it: migration 0009), read newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import AuditEvent


@dataclass(frozen=True)
class Filters:
    """[start, end) on `at`; `action` exact, or a prefix when it ends with "*" (`user.*`); `before`: ids below."""

    start: datetime | None = None
    end: datetime | None = None
    action: str | None = None
    before: int | None = None


async def add(session: AsyncSession, at: datetime, actor: str, action: str, target_kind: str | None,
              target_id: str | None, details: dict[str, Any] | None, address: str | None) -> AuditEvent:
    row = AuditEvent(at=at, actor=actor[:100], action=action, target_kind=target_kind,
                     target_id=target_id[:100] if target_id is not None else None, details=details,
                     address=address[:64] if address else None)
    session.add(row)
    return row


async def listing(session: AsyncSession, f: Filters, limit: int) -> list[AuditEvent]:
    """Newest first, in the order the rows were written (ids), `limit` of them."""
    stmt = select(AuditEvent)
    if f.start is not None:
        stmt = stmt.where(col(AuditEvent.at) >= f.start)
    if f.end is not None:
        stmt = stmt.where(col(AuditEvent.at) < f.end)
    if f.action:
        if f.action.endswith("*"):
            prefix = f.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(col(AuditEvent.action).like(prefix + "%", escape="\\"))
        else:
            stmt = stmt.where(AuditEvent.action == f.action)
    if f.before is not None:
        stmt = stmt.where(col(AuditEvent.id) < f.before)
    stmt = stmt.order_by(col(AuditEvent.id).desc()).limit(limit)
    return list((await session.exec(stmt)).all())
