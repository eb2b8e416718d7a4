"""The outbox: every message to a person is a row before it is a request to a provider.

A message is claimed by moving its `next_attempt_at` past a lease: a worker that dies mid-send
leaves it to be claimed again when the lease ends, and two workers never hold it at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Contact, OutboxMessage

TERMINAL = frozenset({"sent", "delivered", "undelivered", "failed", "skipped", "read"})


async def enqueue(session: AsyncSession, message: OutboxMessage) -> bool:
    """False when a message with the same dedupe key exists already (nothing is added)."""
    try:
        async with session.begin_nested():
            session.add(message)
        return True
    except IntegrityError:
        return False


async def claim_due(session: AsyncSession, now: datetime, limit: int, lease: timedelta,
                    *, skip_locked: bool) -> list[tuple[OutboxMessage, Contact]]:
    stmt = (
        select(OutboxMessage, Contact)
        .join(Contact, col(Contact.id) == col(OutboxMessage.contact_id))
        .where(col(OutboxMessage.next_attempt_at) <= now)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=OutboxMessage)  # type: ignore[arg-type]
    rows = list((await session.exec(stmt)).all())
    for message, _contact in rows:
        message.status = "sending"
        message.attempts += 1
        message.next_attempt_at = now + lease
        message.lease_until = now + lease
        message.updated_at = now
    return rows  # type: ignore[return-value]


async def for_case(session: AsyncSession, case_id: int, kind: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.case_id == case_id)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return list((await session.exec(stmt.order_by(col(OutboxMessage.id)))).all())


async def by_provider_id(session: AsyncSession, provider_id: str) -> OutboxMessage | None:
    stmt = select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)
    return (await session.exec(stmt)).first()


async def set_delivery_status(session: AsyncSession, provider_id: str, status: str, error: str | None,
                              now: datetime) -> int:
    result = await session.exec(  # type: ignore[call-overload]
        update(OutboxMessage).where(col(OutboxMessage.provider_id) == provider_id)
        .values(status=status, error=error, updated_at=now))
    return int(result.rowcount or 0)
