"""Work orders and their append-only history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.cases import outside
from store.models import RaterStrike, WorkOrder, WorkOrderEvent

OPEN = ("created", "dispatched", "rectified", "reviewed")


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    agency_code: str | None = None
    overdue: bool | None = None
    agencies: Sequence[str] | None = None  # the reader's jurisdiction; None = everything
    agent_queue: bool | None = None
    open_only: bool = False


async def add(session: AsyncSession, wo: WorkOrder, actor: str, now: datetime) -> WorkOrder:
    session.add(wo)
    await session.flush()
    await log(session, wo, "create", actor, None, wo.status, now)
    return wo


async def log(session: AsyncSession, wo: WorkOrder, action: str, actor: str, from_status: str | None,
              to_status: str | None, now: datetime, note: str | None = None,
              data: dict[str, Any] | None = None) -> None:
    assert wo.id is not None
    session.add(WorkOrderEvent(work_order_id=wo.id, action=action, actor=actor, from_status=from_status,
                               to_status=to_status, note=note, data=data, at=now))


async def by_id(session: AsyncSession, wo_id: int, *, lock: bool = False, skip_locked: bool = False
                ) -> WorkOrder | None:
    """The work order; with `lock`, locked (with `skip_locked` too: None when another transaction holds it)."""
    stmt = select(WorkOrder).where(WorkOrder.id == wo_id)
    if lock:
        stmt = stmt.with_for_update(skip_locked=skip_locked)
    return (await session.exec(stmt)).first()


async def by_call_sid(session: AsyncSession, sid: str, *, lock: bool = False) -> WorkOrder | None:
    stmt = select(WorkOrder).where(WorkOrder.call_sid == sid)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


async def listing(session: AsyncSession, f: Filters, limit: int = 200, after_id: int | None = None,
                  *, by_deadline: bool = False) -> list[WorkOrder]:
    """Work orders by id (pages with `after_id`), or the oldest deadline first (the console's queues;
    closed ones, without a deadline, last, most recently closed first)."""
    stmt = select(WorkOrder)
    if f.status:
        stmt = stmt.where(WorkOrder.status == f.status)
    if f.open_only:
        stmt = stmt.where(col(WorkOrder.status).in_(OPEN))
    if f.agency_code:
        stmt = stmt.where(WorkOrder.agency_code == f.agency_code)
    if f.overdue is not None:
        stmt = stmt.where(WorkOrder.overdue == f.overdue)
    if f.agencies is not None:
        stmt = stmt.where(col(WorkOrder.agency_code).in_(list(f.agencies)))
    if f.agent_queue is not None:
        stmt = stmt.where(WorkOrder.agent_queue == f.agent_queue)
    if after_id is not None:
        stmt = stmt.where(col(WorkOrder.id) > after_id)
    if by_deadline:
        stmt = stmt.order_by(col(WorkOrder.due_at).is_(None), col(WorkOrder.due_at), col(WorkOrder.closed_at).desc(),
                             col(WorkOrder.id))
    else:
        stmt = stmt.order_by(col(WorkOrder.id))
    return list((await session.exec(stmt.limit(limit))).all())


async def for_cases(session: AsyncSession, case_ids: Sequence[int]) -> list[WorkOrder]:
    if not case_ids:
        return []
    stmt = select(WorkOrder).where(col(WorkOrder.case_id).in_(list(case_ids))).order_by(col(WorkOrder.id))
    return list((await session.exec(stmt)).all())


async def overdue_count(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(WorkOrder).where(col(WorkOrder.overdue).is_(True),
                                                             WorkOrder.status != "closed")
    return int((await session.exec(stmt)).one())


async def for_evaluations(session: AsyncSession, evaluation_ids: Sequence[int]) -> list[WorkOrder]:
    if not evaluation_ids:
        return []
    stmt = select(WorkOrder).where(col(WorkOrder.evaluation_id).in_(list(evaluation_ids))).order_by(col(WorkOrder.id))
    return list((await session.exec(stmt)).all())


async def events(session: AsyncSession, wo_id: int) -> list[WorkOrderEvent]:
    stmt = (select(WorkOrderEvent).where(WorkOrderEvent.work_order_id == wo_id)
            .order_by(col(WorkOrderEvent.id)))
    return list((await session.exec(stmt)).all())


async def events_for(session: AsyncSession, wo_ids: Sequence[int]) -> dict[int, list[WorkOrderEvent]]:
    """The histories of several work orders in one query (a page of a list), each in order."""
    out: dict[int, list[WorkOrderEvent]] = {i: [] for i in wo_ids}
    ids = list(out)
    for at in range(0, len(ids), 1000):
        stmt = (select(WorkOrderEvent).where(col(WorkOrderEvent.work_order_id).in_(ids[at:at + 1000]))
                .order_by(col(WorkOrderEvent.id)))
        for e in (await session.exec(stmt)).all():
            out[e.work_order_id].append(e)
    return out


async def appeals_to_mark(session: AsyncSession, made_by: datetime, mark: str, after_id: int, limit: int
                          ) -> list[WorkOrder]:
    """Work orders (open or closed) whose appeal, made at or before `made_by`, is still pending and has no
    `mark` event yet: the candidates for an overdue decision. By id, from `after_id` on."""
    marked = exists().where(WorkOrderEvent.work_order_id == WorkOrder.id, WorkOrderEvent.action == mark)
    stmt = (select(WorkOrder)
            .where(WorkOrder.appeal_status == "pending", col(WorkOrder.appeal_at) <= made_by,
                   col(WorkOrder.id) > after_id, ~marked)
            .order_by(col(WorkOrder.id)).limit(limit))
    return list((await session.exec(stmt)).all())


async def rounds_to_mark(session: AsyncSession, starts: Sequence[str], ends: Sequence[str], entered_by: datetime,
                         after_id: int, limit: int) -> list[tuple[WorkOrder, datetime]]:
    """Work orders at `dispatched` whose latest `starts` event (the agency took them on) is at or before
    `entered_by` and was not followed by an `ends` event (a contact, or its overdue mark); with that event's
    instant. By id, from `after_id` on."""
    entry, later = aliased(WorkOrderEvent, name="entry"), aliased(WorkOrderEvent, name="later")
    latest = (select(func.max(entry.id)).where(entry.work_order_id == WorkOrder.id, col(entry.action).in_(starts))
              .correlate(WorkOrder).scalar_subquery())
    started = aliased(WorkOrderEvent, name="started")
    ended = exists().where(later.work_order_id == WorkOrder.id, col(later.id) > col(started.id),
                           col(later.action).in_(ends))
    stmt = (select(WorkOrder, started.at)
            .join(started, col(started.id) == latest)
            .where(WorkOrder.status == "dispatched", col(started.at) <= entered_by, col(WorkOrder.id) > after_id,
                   ~ended)
            .order_by(col(WorkOrder.id)).limit(limit))
    return [(wo, at) for wo, at in (await session.exec(stmt)).all()]


async def newly_overdue(session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool = False,
                        waiting: Sequence[tuple[datetime, datetime]] = ()) -> list[WorkOrder]:
    """Open work orders whose step's deadline is reached (inclusive) and not yet marked."""
    stmt = (select(WorkOrder)
            .where(col(WorkOrder.status).in_(OPEN), col(WorkOrder.overdue).is_(False),
                   col(WorkOrder.due_at) <= now, *outside(col(WorkOrder.due_at), waiting))
            .order_by(col(WorkOrder.due_at), col(WorkOrder.id)).limit(limit))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())


async def due_calls(session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool = False
                    ) -> list[WorkOrder]:
    stmt = (select(WorkOrder)
            .where(WorkOrder.status == "reviewed", col(WorkOrder.call_at) <= now)
            .order_by(col(WorkOrder.call_at), col(WorkOrder.id)).limit(limit))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.exec(stmt)).all())


async def add_strike(session: AsyncSession, contact_id: int, review_id: int, made_at: datetime) -> bool:
    """Count a false review against a contact, once: False when it is counted already (another work order
    of the same batch or bundle rating was upheld before; the unique key settles two decisions at once)."""
    stmt = select(RaterStrike.id).where(RaterStrike.contact_id == contact_id, RaterStrike.evaluation_id == review_id)
    if (await session.exec(stmt)).first() is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(RaterStrike(contact_id=contact_id, evaluation_id=review_id, at=made_at))
    except IntegrityError:
        return False
    return True


async def strikes_made(session: AsyncSession, contact_ids: Iterable[int], since: datetime, until: datetime
                       ) -> list[datetime]:
    """When the false reviews counted against any of these addresses (one person's) were made, from `since` to
    `until` (both included), in order: each review once, though it is counted against each of its addresses."""
    stmt = (select(RaterStrike.evaluation_id, func.min(RaterStrike.at))
            .where(col(RaterStrike.contact_id).in_(list(contact_ids)), col(RaterStrike.at) >= since,
                   col(RaterStrike.at) <= until)
            .group_by(col(RaterStrike.evaluation_id)))
    return sorted(at for _review, at in (await session.exec(stmt)).all())  # type: ignore[call-overload]

