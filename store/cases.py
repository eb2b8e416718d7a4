"""Cases: intake, look-up, and the due-ness queries of the scheduler (index range scans)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, not_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import pg_driver
from store.models import Case

Cursor = tuple[datetime, int] | None


async def by_no(session: AsyncSession, case_no: str, *, lock: bool = False) -> Case | None:
    """The case; with `lock`, locked with its batch and bundle (`_locked`)."""
    if lock:
        group = await _locked(session, col(Case.case_no) == case_no)
        return next((c for c in group if c.case_no == case_no), None)
    return (await session.exec(select(Case).where(Case.case_no == case_no))).first()


async def by_id(session: AsyncSession, case_id: int, *, lock: bool = False) -> Case | None:
    """The case; with `lock`, locked with its batch and bundle (`_locked`)."""
    if lock:
        group = await _locked(session, col(Case.id) == case_id)
        return next((c for c in group if c.id == case_id), None)
    return (await session.exec(select(Case).where(Case.id == case_id))).first()


async def _locked(session: AsyncSession, which: Any) -> Sequence[Case]:
    """Lock the case `which` names together with every case of its batch (same agency) and of its bundle, in id
    order, in one statement: the group, the case among it (or nothing, when there is no such case).

    A rating of a batch's case goes on to its siblings (Shantou art. 24), and a bundle rating to the bundle's
    items (art. 31). Locking the case first and its siblings after lets two ratings of two cases of one group
    each hold one and wait for the other: PostgreSQL aborts one with "deadlock detected"
    (tests/system/test_lock_order.py made it happen at the first try). Taken in id order, the whole group is
    waited for, never half-held. A case in no group locks itself alone, still in one round trip. The batch and
    bundle of a case never change.
    """
    me = select(col(Case.id).label("id"), col(Case.batch_no).label("batch_no"),
                col(Case.bundle_no).label("bundle_no"), col(Case.agency_code).label("agency_code")
                ).where(which).subquery("me")
    in_group = or_(col(Case.id) == me.c.id, col(Case.bundle_no) == me.c.bundle_no,
                   and_(col(Case.batch_no) == me.c.batch_no, col(Case.agency_code) == me.c.agency_code))
    stmt = (select(Case).join(me, in_group).order_by(col(Case.id))
            .with_for_update(of=Case).execution_options(populate_existing=True))  # type: ignore[arg-type]
    return (await session.exec(stmt)).all()


async def add(session: AsyncSession, case: Case) -> tuple[Case, bool]:
    """Insert, or hand back the case already stored under this case_no (idempotent intake)."""
    existing = await by_no(session, case.case_no)
    if existing is not None:
        return existing, False
    try:
        async with session.begin_nested():
            session.add(case)
        return case, True
    except IntegrityError:
        existing = await by_no(session, case.case_no)
        if existing is None:
            raise
        return existing, False


async def existing_nos(session: AsyncSession, case_nos: Sequence[str]) -> set[str]:
    if not case_nos:
        return set()
    if pg_driver.on_postgresql(session):  # one array, not a bound parameter per case_no
        found = await (await pg_driver.driver(session)).fetch(
            "SELECT case_no FROM cases WHERE case_no = ANY($1::text[])", list(case_nos))
        return {row[0] for row in found}
    stmt = select(Case.case_no).where(col(Case.case_no).in_(list(case_nos)))
    return set((await session.exec(stmt)).all())


async def add_many(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """One multi-row insert for a batch of new cases (the bulk endpoint's hot path); the number created.

    When another writer stored some of the same case_nos meanwhile, the batch falls back to one
    insert per case, each in its own savepoint, and those already stored are left alone.
    """
    if not rows:
        return 0
    if pg_driver.on_postgresql(session):  # arrays through the driver (store/pg_driver.py), no savepoint:
        # a case_no stored meanwhile is skipped by the insert itself, and what it returns is what it created
        head, arrays = pg_driver.unnest_insert(Case.__table__, rows)  # type: ignore[attr-defined]
        found = await (await pg_driver.driver(session)).fetch(
            head + " ON CONFLICT (case_no) DO NOTHING RETURNING id", *arrays)
        return len(found)
    try:
        async with session.begin_nested():
            await session.exec(insert(Case), params=rows)  # type: ignore[call-overload]
        return len(rows)
    except IntegrityError:
        created = 0
        for row in rows:
            _case, fresh = await add(session, Case(**row))
            created += int(fresh)
        return created


def online_consultation() -> Any:
    """SQL for bot.policy.handling.online_consultation: a `consult` case with neither hall nor clerk (Shantou art. 32),
    which needs no rating; an empty code counts as none, as it does there."""
    return ((col(Case.kind) == "consult") & (func.coalesce(Case.hall_code, "") == "")
            & (func.coalesce(Case.staff_id, "") == ""))


def _after(column: Any, cursor: Cursor) -> Any:
    if cursor is None:
        return True
    at, ident = cursor
    return or_(column > at, and_(column == at, col(Case.id) > ident))


@dataclass(frozen=True, slots=True)
class DueCase:
    """The columns a reminder needs, not the whole row: the sweep reads a million of them."""

    id: int
    case_no: str
    item_name: str
    agency_name: str
    completed_at: datetime
    locale: str
    remind_at: datetime
    phone_contact_id: int | None
    mp_contact_id: int | None


_DUE_COLUMNS = [col(getattr(Case, f.name)) for f in fields(DueCase)]


async def due_reminders(session: AsyncSession, now: datetime, cursor: Cursor, limit: int,
                        *, skip_locked: bool) -> list[DueCase]:
    """Cases whose reminder is due, oldest first (locked, and skipping those another sweep holds).

    Keyset pagination (remind_at, id) lets one sweep walk past reminders that must keep waiting
    (the person is in another conversation) without seeing them again in the same sweep.
    """
    stmt = (
        select(*_DUE_COLUMNS)
        .where(col(Case.remind_at) <= now, _after(col(Case.remind_at), cursor))
        .order_by(col(Case.remind_at), col(Case.id))
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return [DueCase(*row) for row in (await session.exec(stmt)).all()]  # type: ignore[call-overload]


def outside(column: Any, waiting: Sequence[tuple[datetime, datetime]]) -> list[Any]:
    """Conditions keeping `column` out of each (start, end] of `waiting` (deadlines that wait for a year of the
    calendar, bot/policy/workdays.py waiting_spans)."""
    return [not_(and_(column > start, column <= end)) for start, end in waiting]


async def due_defaults(session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool,
                       waiting: Sequence[tuple[datetime, datetime]] = ()) -> list[Case]:
    stmt = (select(Case).where(col(Case.default_at) <= now, *outside(col(Case.default_at), waiting))
            .order_by(col(Case.default_at), col(Case.id)).limit(limit))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())


CONTACT_COLUMNS = {"phone": "phone_contact_id", "wechat": "wechat_contact_id", "miniprogram": "mp_contact_id"}


async def unrated_of_contact(session: AsyncSession, contact_channel: str, contact_id: int,
                             limit: int = 5) -> tuple[list[Case], int]:
    """The oldest cases of a contact still waiting for their first rating (at most `limit`), and how many wait.
    An online consultation waits for none (Shantou art. 32), so a message never opens its menu."""
    column = getattr(Case, CONTACT_COLUMNS[contact_channel])
    where = (col(column) == contact_id, col(Case.rated_at).is_(None), ~online_consultation())
    oldest = list((await session.exec(
        select(Case).where(*where).order_by(col(Case.completed_at), col(Case.id)).limit(limit))).all())
    if len(oldest) < limit:
        return oldest, len(oldest)
    count = (await session.exec(select(func.count()).select_from(Case).where(*where))).one()
    return oldest, int(count)


async def siblings(session: AsyncSession, case: Case, field: str, *, lock: bool = False) -> list[Case]:
    """The other cases of the same batch (same agency) or bundle, locked in id order when asked."""
    value = getattr(case, field)
    if not value:
        return []
    column = col(Case.batch_no) if field == "batch_no" else col(Case.bundle_no)
    stmt = select(Case).where(column == value, col(Case.id) != case.id)
    if field == "batch_no":
        stmt = stmt.where(col(Case.agency_code) == case.agency_code)
    stmt = stmt.order_by(col(Case.id))
    if lock:
        stmt = stmt.with_for_update()
    return list((await session.exec(stmt)).all())


async def by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Case]:
    if not ids:
        return {}
    return {c.id: c for c in (await session.exec(select(Case).where(col(Case.id).in_(list(ids))))).all()}  # type: ignore[misc]


async def of_miniprogram_contact(session: AsyncSession, contact_id: int, limit: int) -> list[Case]:
    """A mini-program user's latest cases, newest first."""
    stmt = (select(Case).where(col(Case.mp_contact_id) == contact_id)
            .order_by(col(Case.completed_at).desc()).limit(limit))
    return list((await session.exec(stmt)).all())


async def reminded(session: AsyncSession, ids: Sequence[int], dialect: str = "") -> None:
    """These cases' reminders are settled (sent, queued, or not to be sent): no sweep takes them again."""
    if dialect == "postgresql":  # one array, one prepared statement, whatever the batch's size
        await (await pg_driver.driver(session)).execute(
            "UPDATE cases SET remind_at = NULL WHERE id = ANY($1::int8[])", list(ids))
        return
    await session.exec(  # type: ignore[call-overload]
        update(Case).where(col(Case.id).in_(list(ids))).values(remind_at=None)
        .execution_options(synchronize_session=False))


async def remind_by_sms_instead(session: AsyncSession, case_id: int, now: datetime) -> int:
    """A case whose mini-program reminder was refused (43101) is reminded by SMS at the next sweep, when it has
    a phone and is still unrated: 1 when it will be, else 0."""
    result = await session.exec(  # type: ignore[call-overload]
        update(Case).where(col(Case.id) == case_id, col(Case.phone_contact_id).is_not(None),
                           col(Case.rated_at).is_(None))
        .values(remind_at=now).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)
