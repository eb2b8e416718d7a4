"""The outbox: every message to a person is a row before it is a request to a provider.

A message is claimed by moving its `next_attempt_at` past a lease: a worker that dies mid-send
leaves it to be claimed again when the lease ends, and two workers never hold it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import pg_driver
from store.models import Contact, DeliveryReceipt, OutboxMessage

# Later delivery states win: a late "sent" must not overwrite "delivered".
RANK = {"pending": 0, "accepted": 1, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4,
        "failed": 4, "read": 5}


async def enqueue(session: AsyncSession, message: OutboxMessage) -> bool:
    """False when a message with the same dedupe key exists already (nothing is added)."""
    try:
        async with session.begin_nested():
            session.add(message)
        return True
    except IntegrityError:
        return False


async def enqueue_many(session: AsyncSession, dialect: str, rows: Sequence[dict[str, Any]]) -> list[int]:
    """`enqueue` for many messages in one statement; the ids of the cases whose message was added
    (a message whose dedupe key exists already is left out, as `enqueue` leaves it)."""
    if not rows:
        return []
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    if dialect in ("mysql", "mariadb"):
        # No RETURNING (MySQL itself): the keys there already, then one multi-row INSERT IGNORE. Exact because the
        # sweep holds these cases (their rows claimed with SKIP LOCKED) and a dedupe key names its case: no other
        # writer adds one of these keys between the two statements.
        keys = [row["dedupe_key"] for row in rows]
        there = set((await session.exec(select(table.c.dedupe_key)  # type: ignore[call-overload]
                                        .where(table.c.dedupe_key.in_(keys)))).all())
        await session.exec(mysql_insert(table).prefix_with("IGNORE"), params=list(rows))  # type: ignore[call-overload]
        return [row["case_id"] for row in rows if row["dedupe_key"] not in there]
    if dialect not in ("postgresql", "sqlite"):
        return [row["case_id"] for row in rows if await enqueue(session, OutboxMessage(**row))]
    if dialect == "postgresql":  # arrays through the driver (store/pg_driver.py): the sweep's largest write
        head, arrays = pg_driver.unnest_insert(table, rows)
        found = await (await pg_driver.driver(session)).fetch(
            head + " ON CONFLICT (dedupe_key) DO NOTHING RETURNING case_id", *arrays)
        return [row[0] for row in found]
    stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key]).returning(table.c.case_id)
    return list((await session.exec(stmt, params=list(rows))).scalars().all())  # type: ignore[call-overload]


async def claim_due(session: AsyncSession, now: datetime, limit: int, lease_until: datetime, wall_now: datetime,
                    *, skip_locked: bool, skip_kinds: tuple[str, ...] = (),
                    only_kinds: tuple[str, ...] = ()) -> list[tuple[OutboxMessage, Contact]]:
    """Messages due at `now` that no live lease holds, leased until `lease_until`.

    Due-ness is business time (`now`, which a test or `tick --now` may set); the lease is a
    mechanical lock on the wall clock (`wall_now`), so two ticks given different instants still
    cannot both hold a message, and a crashed worker's lease runs out in real time.
    """
    stmt = (
        select(OutboxMessage, Contact)
        .join(Contact, col(Contact.id) == col(OutboxMessage.contact_id))
        .where(col(OutboxMessage.next_attempt_at) <= now,
               or_(col(OutboxMessage.lease_until).is_(None), col(OutboxMessage.lease_until) <= wall_now),
               col(OutboxMessage.kind).not_in(skip_kinds) if skip_kinds else True,
               col(OutboxMessage.kind).in_(only_kinds) if only_kinds else True)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=OutboxMessage)  # type: ignore[arg-type]
    rows = list((await session.exec(stmt)).all())
    for message, _contact in rows:
        if message.status == "sending":  # the last attempt's lease ran out before its result was recorded
            message.unsure_since = message.unsure_since or message.attempted_at or wall_now
        message.attempted_at = wall_now
        message.status = "sending"
        message.attempts += 1
        message.lease_until = lease_until
        message.updated_at = now
    return rows  # type: ignore[return-value]


async def due_count(session: AsyncSession, now: datetime) -> int:
    """Messages due to go at `now` and not sent yet (the backlog an operator watches)."""
    stmt = select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.next_attempt_at) <= now)
    return int((await session.exec(stmt)).one())


async def for_case(session: AsyncSession, case_id: int, kind: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.case_id == case_id)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return list((await session.exec(stmt.order_by(col(OutboxMessage.id)))).all())


async def for_contact(session: AsyncSession, contact_id: int, limit: int = 200) -> list[OutboxMessage]:
    """The latest messages to one person, oldest first (the simulator's phone shows them)."""
    stmt = (select(OutboxMessage).where(OutboxMessage.contact_id == contact_id)
            .order_by(col(OutboxMessage.id).desc()).limit(limit))
    return list(reversed((await session.exec(stmt)).all()))


async def by_provider_id(session: AsyncSession, provider_id: str) -> OutboxMessage | None:
    stmt = select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)
    return (await session.exec(stmt)).first()


async def record_receipt(session: AsyncSession, provider_id: str, status: str, error_code: str | None,
                         stopped: bool, now: datetime) -> OutboxMessage | None:
    """Keep the receipt, and apply it to its message when the message is known already."""
    session.add(DeliveryReceipt(provider_id=provider_id, status=status, error_code=error_code, stopped=stopped,
                                received_at=now))
    message = await by_provider_id(session, provider_id)
    if message is not None:
        apply_status(message, status, error_code, now)
        session.add(message)
    return message


def apply_status(message: OutboxMessage, status: str, error_code: str | None, now: datetime) -> bool:
    if RANK.get(status, -1) < RANK.get(message.status, 0):
        return False
    message.status = status
    if error_code:
        message.error = f"provider error {error_code}"
    message.updated_at = now
    return True


async def receipts_for(session: AsyncSession, provider_ids: list[str]) -> list[DeliveryReceipt]:
    if not provider_ids:
        return []
    stmt = select(DeliveryReceipt).where(col(DeliveryReceipt.provider_id).in_(provider_ids)).order_by(
        col(DeliveryReceipt.id))
    return list((await session.exec(stmt)).all())


async def cases_with(session: AsyncSession, case_ids: list[int], kind: str, channel: str) -> set[int]:
    """Which of these cases have a message of this kind on this channel already (whatever its status)."""
    if not case_ids:
        return set()
    stmt = select(OutboxMessage.case_id).where(col(OutboxMessage.case_id).in_(case_ids),
                                               OutboxMessage.kind == kind, OutboxMessage.channel == channel)
    return {i for i in (await session.exec(stmt)).all() if i is not None}


async def renew_lease(session: AsyncSession, message_id: int, held: datetime | None, until: datetime) -> bool:
    """Hold a message being sent until `until`, if this worker still holds it (its lease is still `held`)."""
    kept = await session.exec(  # type: ignore[call-overload]
        update(OutboxMessage).where(col(OutboxMessage.id) == message_id, col(OutboxMessage.lease_until) == held,
                                    col(OutboxMessage.status) == "sending")
        .values(lease_until=until).execution_options(synchronize_session=False))
    return bool(kept.rowcount)


async def release(session: AsyncSession, message_id: int, leases: Sequence[datetime | None], attempts: int,
                  now: datetime) -> None:
    """A message not tried back to `pending`, unless another worker holds it by now (a lease not in `leases`)."""
    await session.exec(update(OutboxMessage).where(  # type: ignore[call-overload]
        col(OutboxMessage.id) == message_id, col(OutboxMessage.status) == "sending",
        col(OutboxMessage.lease_until).in_(list(leases)))
        .values(status="pending", lease_until=None, attempts=attempts, updated_at=now)
        .execution_options(synchronize_session=False))


def _sent_statement() -> Any:
    """An attempt that reached the provider, recorded if its lease still holds: one statement, built once,
    for a whole batch's parameter sets."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    when = table.c.sent_at.type
    return (update(table)
            .where(table.c.id == bindparam("b_id"), table.c.lease_until == bindparam("b_lease", type_=when))
            .values(status="sent", provider_id=bindparam("b_provider"), sent_at=bindparam("b_now", type_=when),
                    next_attempt_at=None, error=None, updated_at=bindparam("b_now", type_=when), lease_until=None))


_SENT = _sent_statement()


async def record_sent(session: AsyncSession, sent: Sequence[tuple[int, datetime, str]], now: datetime) -> set[int]:
    """Record many sends at once, each `(message id, the lease it was sent under, the provider's id)`; the ids
    that were not recorded because their lease ran out and another worker holds the row now.

    One executemany (the driver sends the parameter sets together) and one read to check them: rowcounts of
    an executemany are not reported by every driver, so what was written is read back instead."""
    if not sent:
        return set()
    await session.exec(_SENT, params=[{"b_id": i, "b_lease": lease, "b_provider": provider, "b_now": now}  # type: ignore[call-overload]
                                      for i, lease, provider in sent])
    stored = dict((await session.exec(select(OutboxMessage.id, OutboxMessage.provider_id).where(
        col(OutboxMessage.id).in_([i for i, _, _ in sent])))).all())
    return {i for i, _, provider in sent if stored.get(i) != provider}


async def record_attempt(session: AsyncSession, message_id: int, lease: datetime, values: dict[str, Any]) -> bool:
    """Write an attempt's outcome, if the lease it was made under still holds (False: another worker has it)."""
    recorded = await session.exec(update(OutboxMessage).where(  # type: ignore[call-overload]
        col(OutboxMessage.id) == message_id, col(OutboxMessage.lease_until) == lease).values(**values))
    return bool(recorded.rowcount)
