"""The official calendar years a jurisdiction imported (`haochaping calendar import`), as stored rows."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import CalendarYear, Case, WorkOrder, WorkOrderEvent
from store.work_orders import OPEN


async def all_years(session: AsyncSession) -> list[CalendarYear]:
    return list((await session.exec(select(CalendarYear).order_by(col(CalendarYear.year)))).all())


async def get(session: AsyncSession, year: int) -> CalendarYear | None:
    return await session.get(CalendarYear, year)


async def waiting_cases(session: AsyncSession, after: datetime, limit: int, cursor: int = 0) -> list[Case]:
    """Unrated cases whose default comes after `after` (00:00 of 1 January of a year just described), by id."""
    stmt = (select(Case).where(col(Case.default_at) > after, col(Case.id) > cursor)
            .order_by(col(Case.id)).limit(limit))
    return list((await session.exec(stmt)).all())


async def open_orders_due_after(session: AsyncSession, after: datetime, limit: int, cursor: int = 0
                                ) -> list[WorkOrder]:
    stmt = (select(WorkOrder).where(col(WorkOrder.status).in_(OPEN), col(WorkOrder.due_at) > after,
                                    col(WorkOrder.id) > cursor)
            .order_by(col(WorkOrder.id)).limit(limit))
    return list((await session.exec(stmt)).all())


async def step_started(session: AsyncSession, wo: WorkOrder) -> datetime:
    """When the order's current step began: the last event that moved it into its status (created: its birth)."""
    stmt = (select(WorkOrderEvent.at)
            .where(col(WorkOrderEvent.work_order_id) == wo.id, col(WorkOrderEvent.to_status) == wo.status,
                   col(WorkOrderEvent.from_status) != wo.status)
            .order_by(col(WorkOrderEvent.at).desc(), col(WorkOrderEvent.id).desc()).limit(1))
    found = (await session.exec(stmt)).first()
    return found if found is not None else wo.created_at
