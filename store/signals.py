"""The supervision scan's reads (ratings with where and after what they were given) and the signals it records.

A rating read here is a case's own rating given by a person: not a default, not a copy applied to a batch's or
bundle's sibling, not a callback's answer, not a window visit's clerk-only rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case as when
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, Evaluation, OutboxMessage, Signal, StatsDay

BAD_GRADES = ("dissatisfied", "very_dissatisfied")


@dataclass(frozen=True)
class RatingRow:
    evaluation_id: int
    case_no: str
    agency_code: str
    staff_id: str | None
    hall_code: str | None
    channel: str
    grade: str
    score: int
    text: str | None
    created_at: datetime
    phone_contact_id: int | None
    wechat_contact_id: int | None
    mp_contact_id: int | None
    applicant_name_sealed: str | None
    client_hash: str | None
    device_hash: str | None
    terminal_id: str | None
    reminded_at: datetime | None


def _reminded() -> Any:
    return (select(func.min(OutboxMessage.sent_at))
            .where(OutboxMessage.case_id == Case.id, OutboxMessage.kind == "reminder")
            .correlate(Case).scalar_subquery())


def _ratings() -> Any:
    return (select(Evaluation.id, Case.case_no, Case.agency_code, Case.staff_id, Case.hall_code, Evaluation.channel,
                   Evaluation.grade, Evaluation.score, Evaluation.text, Evaluation.created_at, Case.phone_contact_id,
                   Case.wechat_contact_id, Case.mp_contact_id, Case.applicant_name_sealed, Evaluation.client_hash,
                   Evaluation.device_hash, Evaluation.terminal_id, _reminded())
            .join(Case, col(Case.id) == col(Evaluation.case_id))
            .where(col(Evaluation.is_default).is_(False), col(Evaluation.via).is_(None),
                   col(Evaluation.visit_id).is_(None)))


async def ratings_after(session: AsyncSession, after_id: int, limit: int) -> list[RatingRow]:
    """The ratings stored after `after_id`, oldest first: what the scan has not seen."""
    stmt = _ratings().where(col(Evaluation.id) > after_id).order_by(col(Evaluation.id)).limit(limit)
    return [RatingRow(*row) for row in (await session.exec(stmt)).all()]  # type: ignore[call-overload]


async def last_id(session: AsyncSession) -> int:
    return int((await session.exec(select(func.max(Evaluation.id)))).first() or 0)


async def first_id_since(session: AsyncSession, since: datetime) -> int | None:
    """The first rating stored at or after `since` (where a new scan starts: older ones are past every rule)."""
    stmt = select(func.min(Evaluation.id)).where(col(Evaluation.created_at) >= since)
    return (await session.exec(stmt)).first()


def _chunks(values: Sequence[Any], size: int = 1000) -> list[list[Any]]:
    values = sorted(set(values))
    return [values[i:i + size] for i in range(0, len(values), size)]


async def _rows(session: AsyncSession, stmt: Any) -> list[RatingRow]:
    return [RatingRow(*row) for row in (await session.exec(stmt)).all()]  # type: ignore[call-overload]


async def ratings_between(session: AsyncSession, since: datetime, until: datetime, *,
                          bad_only: bool = False, with_text: bool = False) -> list[RatingRow]:
    """The ratings given in [since, until] (only the bad reviews: `bad_only`; only those with words: `with_text`)."""
    stmt = _ratings().where(col(Evaluation.created_at) >= since, col(Evaluation.created_at) <= until)
    if bad_only:
        stmt = stmt.where(col(Evaluation.grade).in_(BAD_GRADES))
    if with_text:
        stmt = stmt.where(col(Evaluation.text).is_not(None))
    return await _rows(session, stmt)


CONTACT_COLUMNS = {"phone": Case.phone_contact_id, "wechat": Case.wechat_contact_id,
                   "miniprogram": Case.mp_contact_id}


async def ratings_of_contacts(session: AsyncSession, channel: str, ids: Sequence[int], since: datetime,
                              until: datetime) -> list[RatingRow]:
    """The ratings given in [since, until] of the cases of these contacts (`channel`: phone, wechat, miniprogram)."""
    column = col(CONTACT_COLUMNS[channel])
    out: list[RatingRow] = []
    for chunk in _chunks(ids):
        out += await _rows(session, _ratings().where(column.in_(chunk), col(Evaluation.created_at) >= since,
                                                     col(Evaluation.created_at) <= until))
    return out


async def ratings_of_devices(session: AsyncSession, hashes: Sequence[str], since: datetime,
                             until: datetime) -> list[RatingRow]:
    """The ratings given in [since, until] from these page devices."""
    out: list[RatingRow] = []
    for chunk in _chunks(hashes):
        out += await _rows(session, _ratings().where(col(Evaluation.device_hash).in_(chunk),
                                                     col(Evaluation.created_at) >= since,
                                                     col(Evaluation.created_at) <= until))
    return out


async def ratings_of_staff(session: AsyncSession, clerks: Sequence[tuple[str, str | None]], since: datetime,
                           until: datetime) -> list[RatingRow]:
    """The ratings given in [since, until] of the cases of these (agency, clerk) pairs (clerk None: the agency's
    cases naming no clerk)."""
    out: list[RatingRow] = []
    for agency, staff in clerks:
        stmt = _ratings().where(Case.agency_code == agency, col(Evaluation.created_at) >= since,
                                col(Evaluation.created_at) <= until)
        out += await _rows(session, stmt.where(col(Case.staff_id).is_(None) if staff is None
                                               else Case.staff_id == staff))
    return out


async def ratings_of_staff_in_hall(session: AsyncSession, hall_code: str, staff_id: str, since: datetime,
                                   until: datetime) -> list[RatingRow]:
    """The ratings given in [since, until] of one clerk's cases in one hall."""
    return await _rows(session, _ratings().where(Case.hall_code == hall_code, Case.staff_id == staff_id,
                                                 col(Evaluation.created_at) >= since,
                                                 col(Evaluation.created_at) <= until))


async def device_tallies(session: AsyncSession, since: datetime, until: datetime) -> list[tuple[str, str, int, int]]:
    """(hall, clerk, ratings, of them given at the hall's device or a terminal) of every hall's clerks' cases rated
    in [since, until]: one aggregate in the database."""
    device = func.sum(when((col(Evaluation.channel).in_(("hall", "terminal")), 1), else_=0))
    stmt = (select(Case.hall_code, Case.staff_id, func.count(), device).select_from(Evaluation)
            .join(Case, col(Case.id) == col(Evaluation.case_id))
            .where(col(Evaluation.is_default).is_(False), col(Evaluation.via).is_(None),
                   col(Evaluation.visit_id).is_(None), col(Case.hall_code).is_not(None),
                   col(Case.staff_id).is_not(None), col(Evaluation.created_at) >= since,
                   col(Evaluation.created_at) <= until)
            .group_by(Case.hall_code, Case.staff_id))
    return [(h, st, int(n), int(d or 0)) for h, st, n, d in (await session.exec(stmt)).all()]  # type: ignore[call-overload]


async def grade_mix(session: AsyncSession, since: date, until: date,
                    agencies: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each agency's rated cases and bad reviews of the cases completed on the days [since, until), from the daily
    figures (store/stats.py): a sum over a few rows a day, whatever the number of ratings."""
    out: dict[str, tuple[int, int]] = {}
    for chunk in _chunks(agencies, 500):
        stmt = (select(StatsDay.agency_code, func.sum(StatsDay.rated), func.sum(StatsDay.bad))
                .where(StatsDay.dim == "agency", col(StatsDay.day) >= since, col(StatsDay.day) < until,
                       col(StatsDay.agency_code).in_(chunk))
                .group_by(StatsDay.agency_code))
        out.update({code: (int(n or 0), int(bad or 0)) for code, n, bad in (await session.exec(stmt)).all()})  # type: ignore[call-overload]
    return out


async def of_subject(session: AsyncSession, kind: str, subject: str, agency_code: str) -> list[Signal]:
    stmt = (select(Signal).where(Signal.kind == kind, Signal.subject == subject, Signal.agency_code == agency_code)
            .order_by(col(Signal.id)))
    return list((await session.exec(stmt)).all())


async def by_id(session: AsyncSession, signal_id: int, *, lock: bool = False) -> Signal | None:
    stmt = select(Signal).where(Signal.id == signal_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.exec(stmt)).first()


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    agency_code: str | None = None
    status: str | None = None
    kind: str | None = None
    agencies: tuple[str, ...] | None = None  # a user's jurisdiction; None = every agency


async def listing(session: AsyncSession, f: Filters, limit: int, after: int | None = None) -> list[Signal]:
    """Newest first, `after` the id of the last one of the page before."""
    stmt = select(Signal)
    if f.since is not None:
        stmt = stmt.where(col(Signal.detected_at) >= f.since)
    if f.until is not None:
        stmt = stmt.where(col(Signal.detected_at) <= f.until)
    if f.agency_code is not None:
        stmt = stmt.where(Signal.agency_code == f.agency_code)
    if f.status is not None:
        stmt = stmt.where(Signal.status == f.status)
    if f.kind is not None:
        stmt = stmt.where(Signal.kind == f.kind)
    if f.agencies is not None:
        stmt = stmt.where(col(Signal.agency_code).in_(list(f.agencies)))
    if after is not None:
        stmt = stmt.where(col(Signal.id) < after)
    return list((await session.exec(stmt.order_by(col(Signal.id).desc()).limit(limit))).all())

