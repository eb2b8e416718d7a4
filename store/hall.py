"""The hall's rating devices (store/models.py HallDevice) and the cases completed at their windows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, HallDevice

SEEN_EVERY = timedelta(seconds=30)  # last_seen_at is written at most this often a device


async def add(session: AsyncSession, device: HallDevice) -> HallDevice:
    session.add(device)
    await session.flush()
    return device


async def by_token_hash(session: AsyncSession, token_hash: str) -> HallDevice | None:
    """The device holding this token, unless revoked."""
    stmt = select(HallDevice).where(col(HallDevice.token_hash) == token_hash, col(HallDevice.revoked_at).is_(None))
    return (await session.exec(stmt)).first()


async def by_id(session: AsyncSession, device_id: int) -> HallDevice | None:
    return (await session.exec(select(HallDevice).where(col(HallDevice.id) == device_id))).first()


async def listed(session: AsyncSession, hall_code: str | None = None) -> list[HallDevice]:
    stmt = select(HallDevice).order_by(col(HallDevice.hall_code), col(HallDevice.window_no), col(HallDevice.id))
    if hall_code:
        stmt = stmt.where(col(HallDevice.hall_code) == hall_code)
    return list((await session.exec(stmt)).all())


async def revoke(session: AsyncSession, device_id: int, now: datetime) -> bool:
    result = await session.exec(update(HallDevice).where(  # type: ignore[call-overload]
        col(HallDevice.id) == device_id, col(HallDevice.revoked_at).is_(None)).values(revoked_at=now)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)


async def seen(session: AsyncSession, device_id: int, now: datetime) -> None:
    """The device was there at `now` (the console's status), written at most every SEEN_EVERY."""
    await session.exec(update(HallDevice).where(  # type: ignore[call-overload]
        col(HallDevice.id) == device_id,
        or_(col(HallDevice.last_seen_at).is_(None), col(HallDevice.last_seen_at) < now - SEEN_EVERY))
        .values(last_seen_at=now).execution_options(synchronize_session=False))


def _at_window(device: HallDevice) -> object:
    """A case of this device's window: one that names the window, or names none and was served by its clerk."""
    by_window = col(Case.window_no) == device.window_no
    if device.staff_id:
        return or_(by_window, and_(col(Case.window_no).is_(None), col(Case.staff_id) == device.staff_id))
    return by_window


async def newest_unrated(session: AsyncSession, device: HallDevice, after: int, since: datetime) -> Case | None:
    """The newest case completed at the device's window after case id `after`, stored since `since`, and still
    unrated (a batch's other cases are rated with the first: Shantou art. 24)."""
    stmt = (select(Case).where(col(Case.hall_code) == device.hall_code, _at_window(device),  # type: ignore[arg-type]
                               col(Case.id) > after, col(Case.created_at) >= since, col(Case.rated_at).is_(None))
            .order_by(col(Case.id).desc()).limit(1))
    return (await session.exec(stmt)).first()


async def at_window(session: AsyncSession, hall_code: str, window_no: str, since: datetime,
                    limit: int = 30) -> Sequence[Case]:
    """A window's cases completed since `since`, newest first (the static window code's list)."""
    stmt = (select(Case).where(col(Case.hall_code) == hall_code, col(Case.window_no) == window_no,
                               col(Case.completed_at) >= since)
            .order_by(col(Case.completed_at).desc()).limit(limit))
    return list((await session.exec(stmt)).all())
