"""The queue of reports to the upstream platforms (table upstream_reports).

A report is claimed as the outbox's messages are: by a lease on the wall clock, so that a worker
that dies mid-push leaves it to be claimed again and two workers never hold it at once. A report is
claimable only once every lower version of the same evaluation for the same profile has been sent:
the upstream must see the changes in the order they happened, or version 1 arriving after version 2
would overwrite the newer state there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import UpstreamReport

STATUSES = ("pending", "sent", "rejected")


def add_many(session: AsyncSession, reports: Sequence[UpstreamReport]) -> None:
    """In the caller's transaction, beside the change they report: both are kept, or neither."""
    session.add_all(reports)


async def claim_due(session: AsyncSession, now: datetime, limit: int, lease_until: datetime, wall_now: datetime,
                    *, profiles: Sequence[str], skip_locked: bool) -> list[UpstreamReport]:
    """Pending reports of these profiles due at `now`, in order, held by no live lease; leased until
    `lease_until` and counted as one more attempt.

    Due-ness is business time (`now`); the lease is real time (`wall_now`), as in store/outbox.py.
    """
    if not profiles:
        return []
    earlier = aliased(UpstreamReport)
    unsent_before = exists().where(
        earlier.profile == UpstreamReport.profile, earlier.evaluation_id == UpstreamReport.evaluation_id,
        earlier.version < UpstreamReport.version, earlier.status != "sent")
    stmt = (
        select(UpstreamReport)
        .where(col(UpstreamReport.status) == "pending", col(UpstreamReport.next_attempt_at) <= now,
               col(UpstreamReport.profile).in_(profiles),
               or_(col(UpstreamReport.lease_until).is_(None), col(UpstreamReport.lease_until) <= wall_now),
               ~unsent_before)
        .order_by(col(UpstreamReport.next_attempt_at), col(UpstreamReport.id))
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=UpstreamReport)  # type: ignore[arg-type]
    rows = list((await session.exec(stmt)).all())
    for report in rows:
        report.attempts += 1
        report.lease_until = lease_until
        report.updated_at = now
        session.add(report)
    return rows


async def record(session: AsyncSession, report_id: int, lease: datetime, values: dict[str, Any]) -> bool:
    """Write an attempt's outcome; False when the lease ran out and another worker holds the report."""
    done = await session.exec(  # type: ignore[call-overload]
        update(UpstreamReport).where(col(UpstreamReport.id) == report_id, col(UpstreamReport.lease_until) == lease)
        .values(lease_until=None, **values).execution_options(synchronize_session=False))
    return bool(done.rowcount)


async def retry_rejected(session: AsyncSession, now: datetime, profile: str | None = None) -> int:
    """A person looked at the rejected reports: they go again at `now`, their attempts counted anew."""
    stmt = update(UpstreamReport).where(col(UpstreamReport.status) == "rejected")
    if profile is not None:
        stmt = stmt.where(col(UpstreamReport.profile) == profile)
    done = await session.exec(stmt.values(  # type: ignore[call-overload]
        status="pending", next_attempt_at=now, attempts=0, lease_until=None, updated_at=now)
        .execution_options(synchronize_session=False))
    return int(done.rowcount or 0)


@dataclass(frozen=True)
class Tally:
    profile: str
    status: str
    count: int
    oldest: datetime | None  # the oldest report's created_at


async def tally(session: AsyncSession, statuses: Sequence[str] = STATUSES) -> list[Tally]:
    """How many reports per profile and status, and each group's oldest."""
    stmt = (select(UpstreamReport.profile, UpstreamReport.status, func.count(), func.min(UpstreamReport.created_at))
            .where(col(UpstreamReport.status).in_(statuses))
            .group_by(col(UpstreamReport.profile), col(UpstreamReport.status)))
    return [Tally(p, s, int(n), oldest) for p, s, n, oldest in (await session.exec(stmt)).all()]


async def recent_errors(session: AsyncSession, limit: int = 20) -> list[UpstreamReport]:
    """The latest failures still to resolve (pending with an error, or rejected), newest first."""
    stmt = (select(UpstreamReport)
            .where(col(UpstreamReport.last_error).is_not(None), col(UpstreamReport.status) != "sent")
            .order_by(col(UpstreamReport.updated_at).desc(), col(UpstreamReport.id).desc()).limit(limit))
    return list((await session.exec(stmt)).all())


async def for_evaluation(session: AsyncSession, evaluation_id: int) -> list[UpstreamReport]:
    stmt = (select(UpstreamReport).where(UpstreamReport.evaluation_id == evaluation_id)
            .order_by(col(UpstreamReport.profile), col(UpstreamReport.version)))
    return list((await session.exec(stmt)).all())

