"""The one open conversation per contact, and the rule that a second one waits for the first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, or_, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import contacts, pg_driver
from store.models import Contact, Conversation


async def get(session: AsyncSession, contact_id: int, *, lock: bool = False) -> Conversation | None:
    stmt = select(Conversation).where(Conversation.contact_id == contact_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


async def of_address(session: AsyncSession, channel: str, address_hash: contacts.Hashes,
                     *, lock: bool) -> tuple[Contact | None, Conversation | None]:
    """A person by their address, and their conversation (locked with `lock`), in one round trip when they
    have one, as every person a reminder reached has: the inbound road's first read.

    Locking the nullable side of an outer join is refused (PostgreSQL), so the join is an inner one and a
    person without a conversation is looked up alone."""
    stmt = (select(Contact, Conversation).join(Conversation, col(Conversation.contact_id) == col(Contact.id))
            .where(col(Contact.channel) == channel, contacts.matches(address_hash)))
    if lock:
        stmt = stmt.with_for_update(of=Conversation)  # type: ignore[arg-type]
    found = (await session.exec(stmt)).first()
    if found is not None:
        return found[0], found[1]
    contact = (await session.exec(select(Contact).where(col(Contact.channel) == channel,
                                                        contacts.matches(address_hash)))).first()
    return contact, None


async def ensure_row(session: AsyncSession, dialect: str, contact_id: int, now: datetime,
                     recent_ids: Sequence[str] = ()) -> None:
    """Give a contact an (empty) conversation row if they have none, so that their messages can queue on it.

    The row is what serialises one person's messages (a copy waits for the first, then finds its id in
    `recent_ids`); a person who never had one would have nothing to lock, and two copies could both act. A
    concurrent insert waits for the other transaction and then does nothing (ON CONFLICT DO NOTHING; the
    MySQL family's INSERT IGNORE)."""
    table = Conversation.__table__  # type: ignore[attr-defined]
    row = {"contact_id": contact_id, "recent_ids": list(recent_ids), "version": 0, "updated_at": now}
    if dialect in ("mysql", "mariadb"):
        stmt: Any = table.insert().values(**row).prefix_with("IGNORE")
    else:
        stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(**row).on_conflict_do_nothing(
            index_elements=[table.c.contact_id])
    await session.exec(stmt)


async def open_if_free(session: AsyncSession, contact_id: int, case_id: int, state: dict[str, Any],
                       expires_at: datetime, now: datetime) -> bool:
    """Open a conversation unless one is open: a conditional write, so two sweeps cannot both win."""
    result = await session.exec(  # type: ignore[call-overload]
        update(Conversation)
        .where(col(Conversation.contact_id) == contact_id,
               or_(col(Conversation.case_id).is_(None), col(Conversation.expires_at).is_(None),
                   col(Conversation.expires_at) <= now))
        .values(case_id=case_id, state=state, expires_at=expires_at, updated_at=now,
                version=col(Conversation.version) + 1)
        .execution_options(synchronize_session=False))
    if result.rowcount:
        return True
    if await get(session, contact_id) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(Conversation(contact_id=contact_id, case_id=case_id, state=state,
                                     expires_at=expires_at, updated_at=now))
        return True
    except IntegrityError:
        return False


async def open_many(session: AsyncSession, dialect: str, opens: Sequence[tuple[int, int, dict[str, Any], datetime]],
                    now: datetime) -> set[int]:
    """`open_if_free` for many contacts (one each) in one statement; the contacts whose conversation opened.

    An upsert whose update only happens while the stored conversation is free: what it returns is what
    it wrote, so two sweeps at once still cannot both open one. Other dialects go one by one.
    """
    if not opens:
        return set()
    # In contact order: two of these at once (a sweep's overlapping batches, two workers) then take the rows they
    # share in one order, and one waits for the other instead of each holding a row the other wants (a deadlock).
    opens = sorted(opens, key=lambda o: o[0])
    if dialect in ("mysql", "mariadb"):
        return await _open_many_mysql(session, opens, now)
    if dialect not in ("postgresql", "sqlite"):
        return {contact_id for contact_id, case_id, state, expires_at in opens
                if await open_if_free(session, contact_id, case_id, state, expires_at, now)}
    table = Conversation.__table__  # type: ignore[attr-defined]
    rows = [{"contact_id": contact_id, "case_id": case_id, "state": state, "expires_at": expires_at,
             "recent_ids": [], "version": 0, "updated_at": now} for contact_id, case_id, state, expires_at in opens]
    if dialect == "postgresql":  # arrays through the driver (store/pg_driver.py), the same upsert
        head, arrays = pg_driver.unnest_insert(table, rows)
        found = await (await pg_driver.driver(session)).fetch(
            head + " ON CONFLICT (contact_id) DO UPDATE SET case_id = EXCLUDED.case_id, state = EXCLUDED.state,"
            " expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at,"
            " version = conversations.version + 1"
            " WHERE conversations.case_id IS NULL OR conversations.expires_at IS NULL"
            f" OR conversations.expires_at <= ${len(arrays) + 1} RETURNING contact_id",
            *arrays, pg_driver.naive_utc(now))
        return {row[0] for row in found}
    stmt = sqlite_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.contact_id],
        set_={"case_id": stmt.excluded.case_id, "state": stmt.excluded.state, "expires_at": stmt.excluded.expires_at,
              "updated_at": stmt.excluded.updated_at, "version": table.c.version + 1},
        where=or_(table.c.case_id.is_(None), table.c.expires_at.is_(None), table.c.expires_at <= now),
    ).returning(table.c.contact_id)
    # Many parameter sets to one cached statement: SQLAlchemy sends them as multi-row inserts itself.
    return set((await session.exec(stmt, params=rows)).scalars().all())  # type: ignore[call-overload]


async def _open_many_mysql(session: AsyncSession, opens: Sequence[tuple[int, int, dict[str, Any], datetime]],
                           now: datetime) -> set[int]:
    """`open_many` for the MySQL family, which has neither a conditional upsert nor (MySQL itself) RETURNING: the
    existing rows are held first (in contact order), then one insert adds the missing and one update opens the
    free, three statements whatever the batch's size. A row another transaction added between the read and the
    insert is left as it is (INSERT IGNORE): that person's case waits for a later sweep, as a busy one does."""
    table = Conversation.__table__  # type: ignore[attr-defined]
    wanted = {contact_id: (case_id, state, expires_at) for contact_id, case_id, state, expires_at in opens}
    held = (await session.exec(select(table.c.contact_id, table.c.case_id, table.c.expires_at)  # type: ignore[call-overload]
                               .where(table.c.contact_id.in_(list(wanted))).order_by(table.c.contact_id)
                               .with_for_update())).all()
    existing = {row[0] for row in held}
    free = [row[0] for row in held if row[1] is None or row[2] is None or row[2] <= now]
    missing = [contact_id for contact_id in wanted if contact_id not in existing]
    opened: set[int] = set()
    if missing:
        rows = [{"contact_id": c, "case_id": wanted[c][0], "state": wanted[c][1], "expires_at": wanted[c][2],
                 "recent_ids": [], "version": 0, "updated_at": now} for c in missing]
        await session.exec(mysql_insert(table).prefix_with("IGNORE"), params=rows)  # type: ignore[call-overload]
        added = await session.exec(select(table.c.contact_id, table.c.case_id)  # type: ignore[call-overload]
                                   .where(table.c.contact_id.in_(missing)))
        opened |= {contact_id for contact_id, case_id in added.all() if wanted[contact_id][0] == case_id}
    if free:
        def each(column: str, at: int) -> Any:
            """The column's new value for each free row: one CASE, one bound value a row."""
            kind = table.c[column].type
            return case(*[(table.c.contact_id == c, bindparam(f"{column}_{c}", wanted[c][at], type_=kind))
                          for c in free])
        await session.exec(update(table).where(table.c.contact_id.in_(free)).values(  # type: ignore[call-overload]
            case_id=each("case_id", 0), state=each("state", 1), expires_at=each("expires_at", 2), updated_at=now,
            version=table.c.version + 1).execution_options(synchronize_session=False))
        opened |= set(free)
    return opened


async def save(session: AsyncSession, contact_id: int, case_id: int | None, state: dict[str, Any] | None,
               expires_at: datetime | None, recent_ids: list[str], now: datetime) -> None:
    """Write every column explicitly: other statements in the same transaction (close_for_case) change
    rows behind the ORM's back, so comparing with a loaded object would skip a real change."""
    result = await session.exec(  # type: ignore[call-overload]
        update(Conversation).where(col(Conversation.contact_id) == contact_id)
        .values(case_id=case_id, state=state, expires_at=expires_at, recent_ids=recent_ids, updated_at=now,
                version=col(Conversation.version) + 1)
        .execution_options(synchronize_session=False))
    if not result.rowcount:
        session.add(Conversation(contact_id=contact_id, case_id=case_id, state=state, expires_at=expires_at,
                                 recent_ids=recent_ids, updated_at=now))
        await session.flush()


async def close_for_case(session: AsyncSession, case_id: int, now: datetime) -> None:
    """A case rated anywhere ends every conversation still asking about it, but one that a message is being
    answered in (its row locked) is left to that message.

    The message's transaction holds the conversation and then locks the case; a rating holds the case (its
    caller locked it) and would wait here for the conversation: each waits for the other and PostgreSQL aborts
    one (tests/system/test_lock_order.py). Skipping it is safe: the message gets the case after this rating commits,
    sees it rated (bot/inbound/conversation.py: "rated elsewhere meanwhile") and saves its conversation itself.
    """
    about = col(Conversation.case_id) == case_id
    free = select(col(Conversation.contact_id)).where(about).with_for_update(skip_locked=True)
    if session.bind is not None and session.bind.dialect.name in ("mysql", "mariadb"):
        # MySQL refuses an UPDATE that reads its own table in a subquery (error 1093): read the ids first
        free = list((await session.exec(free)).all())  # type: ignore[assignment]
        if not free:
            return
    await session.exec(  # type: ignore[call-overload]
        update(Conversation).where(about, col(Conversation.contact_id).in_(free))
        .values(case_id=None, state=None, expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False))


async def close_where(session: AsyncSession, case_id: int, match: Callable[[dict[str, Any]], bool],
                      now: datetime) -> None:
    """End the conversations about a case whose state `match` accepts (a dialog's own test)."""
    rows = (await session.exec(select(Conversation).where(Conversation.case_id == case_id))).all()
    for conv in rows:
        if conv.state is not None and match(conv.state):
            await session.exec(  # type: ignore[call-overload]
                update(Conversation).where(col(Conversation.contact_id) == conv.contact_id,
                                           col(Conversation.version) == conv.version)
                .values(case_id=None, state=None, expires_at=None, updated_at=now,
                        version=col(Conversation.version) + 1)
                .execution_options(synchronize_session=False))
