"""Random supervisory callbacks (Hainan art. 17, Shantou art. 36, Shandong art. 15): the population a draw is
made from, the draws, and the calls they give the agents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, Contact, Evaluation, Signal, SupervisionCall, SupervisionDraw

# What a draw's population is, as recorded with it (an auditor reads it beside the ids).
RULE = ("the first rating of each case of the agency given in the period by a person (no default, copy, callback "
        "answer or visit rating), still valid, whose case has a phone number")


async def population(session: AsyncSession, since: datetime, until: datetime) -> dict[str, list[int]]:
    """Per agency, the ids of RULE's ratings given in [since, until), ascending."""
    first = (select(func.min(Evaluation.id).label("id"))
             .where(col(Evaluation.is_default).is_(False), col(Evaluation.via).is_(None),
                    col(Evaluation.visit_id).is_(None), col(Evaluation.created_at) >= since,
                    col(Evaluation.created_at) < until)
             .group_by(col(Evaluation.case_id)).subquery())
    stmt = (select(Case.agency_code, Evaluation.id)
            .join(first, first.c.id == col(Evaluation.id))
            .join(Case, col(Case.id) == col(Evaluation.case_id))
            .where(Evaluation.status == "valid", col(Case.phone_contact_id).is_not(None))
            .order_by(col(Evaluation.id)))
    out: dict[str, list[int]] = {}
    for code, eid in (await session.exec(stmt)).all():  # type: ignore[call-overload]
        out.setdefault(code, []).append(int(eid))
    return out


async def drawn_agencies(session: AsyncSession, period: str) -> set[str]:
    stmt = select(SupervisionDraw.agency_code).where(SupervisionDraw.period == period)
    return set((await session.exec(stmt)).all())


async def _called(session: AsyncSession, evaluation_ids: Sequence[int]) -> set[int]:
    """Those of the ratings with a call already: one call per rating, ever."""
    if not evaluation_ids:
        return set()
    stmt = select(SupervisionCall.evaluation_id).where(col(SupervisionCall.evaluation_id).in_(list(evaluation_ids)))
    return set((await session.exec(stmt)).all())


async def add_draw(session: AsyncSession, draw: SupervisionDraw, case_of: dict[int, int]) -> tuple[int, int]:
    """The draw and a pending call for each rating drawn (`case_of`: evaluation id → case id) but one called about
    already (a supervisor sent a signal's raters): (the draw's id, the calls made)."""
    session.add(draw)
    await session.flush()
    assert draw.id is not None
    called = await _called(session, draw.drawn_ids)
    made = [eid for eid in draw.drawn_ids if eid not in called]
    for eid in made:
        session.add(SupervisionCall(draw_id=draw.id, evaluation_id=eid, case_id=case_of[eid],
                                    agency_code=draw.agency_code, created_at=draw.created_at))
    return draw.id, len(made)


async def add_signal_calls(session: AsyncSession, signal: Signal, at: datetime) -> list[int]:
    """A call for each of the signal's ratings whose case has a phone number and no call yet; their ids."""
    ids = list(signal.evaluation_ids or [])
    if not ids:
        return []
    called = await _called(session, ids)
    stmt = (select(Evaluation.id, Evaluation.case_id, Case.agency_code)
            .join(Case, col(Case.id) == col(Evaluation.case_id))
            .where(col(Evaluation.id).in_(ids), col(Case.phone_contact_id).is_not(None)))
    made = []
    for eid, case_id, agency in (await session.exec(stmt)).all():  # type: ignore[call-overload]
        if eid in called:
            continue
        call = SupervisionCall(signal_id=signal.id, evaluation_id=eid, case_id=case_id, agency_code=agency,
                               created_at=at)
        session.add(call)
        made.append(call)
    await session.flush()
    return [c.id for c in made if c.id is not None]


async def cases_of(session: AsyncSession, evaluation_ids: Sequence[int]) -> dict[int, int]:
    if not evaluation_ids:
        return {}
    stmt = select(Evaluation.id, Evaluation.case_id).where(col(Evaluation.id).in_(list(evaluation_ids)))
    return {int(e): int(c) for e, c in (await session.exec(stmt)).all()}  # type: ignore[call-overload]


async def draws(session: AsyncSession, period: str | None, agencies: tuple[str, ...] | None) -> list[SupervisionDraw]:
    stmt = select(SupervisionDraw)
    if period is not None:
        stmt = stmt.where(SupervisionDraw.period == period)
    if agencies is not None:
        stmt = stmt.where(col(SupervisionDraw.agency_code).in_(list(agencies)))
    return list((await session.exec(stmt.order_by(col(SupervisionDraw.id).desc()).limit(500))).all())


@dataclass(frozen=True)
class CallRow:
    call: SupervisionCall
    case: Case
    evaluation: Evaluation
    phone_masked: str | None


def _calls() -> Any:
    return (select(SupervisionCall, Case, Evaluation, Contact.masked)
            .join(Case, col(Case.id) == col(SupervisionCall.case_id))
            .join(Evaluation, col(Evaluation.id) == col(SupervisionCall.evaluation_id))
            .outerjoin(Contact, col(Contact.id) == col(Case.phone_contact_id)))


async def calls(session: AsyncSession, status: str | None, agency_code: str | None,
                agencies: tuple[str, ...] | None, limit: int, after: int | None = None) -> list[CallRow]:
    stmt = _calls()
    if status is not None:
        stmt = stmt.where(SupervisionCall.status == status)
    if agency_code is not None:
        stmt = stmt.where(SupervisionCall.agency_code == agency_code)
    if agencies is not None:
        stmt = stmt.where(col(SupervisionCall.agency_code).in_(list(agencies)))
    if after is not None:
        stmt = stmt.where(col(SupervisionCall.id) > after)
    rows = (await session.exec(stmt.order_by(col(SupervisionCall.id)).limit(limit))).all()
    return [CallRow(*row) for row in rows]


async def call(session: AsyncSession, call_id: int, *, lock: bool = False) -> CallRow | None:
    if lock:  # the call's row alone (MariaDB has no FOR UPDATE OF)
        locked = select(SupervisionCall.id).where(SupervisionCall.id == call_id).with_for_update()
        if (await session.exec(locked)).first() is None:
            return None
    row = (await session.exec(_calls().where(SupervisionCall.id == call_id))).first()  # type: ignore[call-overload]
    return CallRow(*row) if row else None


async def answers(session: AsyncSession, since: datetime | None, until: datetime | None,
                  agencies: tuple[str, ...] | None) -> dict[str, dict[str, int]]:
    """Per agency, the calls drawn (by when the draw was made) and how many got each answer."""
    stmt = select(SupervisionCall.agency_code, SupervisionCall.answer, func.count()).group_by(
        SupervisionCall.agency_code, SupervisionCall.answer)
    stmt = _period(stmt, SupervisionCall.created_at, since, until, agencies, SupervisionCall.agency_code)
    out: dict[str, dict[str, int]] = {}
    for code, answer, n in (await session.exec(stmt)).all():  # type: ignore[call-overload]
        out.setdefault(code, {})[answer or "pending"] = int(n)
    return out


async def rated_counts(session: AsyncSession, since: datetime | None, until: datetime | None,
                       agencies: tuple[str, ...] | None) -> dict[str, int]:
    """Per agency, the ratings given by a person in the period (the base of the flagged share)."""
    stmt = (select(Case.agency_code, func.count()).select_from(Evaluation)
            .join(Case, col(Case.id) == col(Evaluation.case_id))
            .where(col(Evaluation.is_default).is_(False), col(Evaluation.via).is_(None),
                   col(Evaluation.visit_id).is_(None)).group_by(Case.agency_code))
    stmt = _period(stmt, Evaluation.created_at, since, until, agencies, Case.agency_code)
    return {code: int(n) for code, n in (await session.exec(stmt)).all()}  # type: ignore[call-overload]


async def flagged(session: AsyncSession, agencies: tuple[str, ...] | None) -> list[tuple[str, list[int]]]:
    """(agency, evaluation ids) of every signal not dismissed."""
    stmt = select(Signal.agency_code, Signal.evaluation_ids).where(Signal.status != "dismissed")
    if agencies is not None:
        stmt = stmt.where(col(Signal.agency_code).in_(list(agencies)))
    return [(code, list(ids or [])) for code, ids in (await session.exec(stmt)).all()]  # type: ignore[call-overload]


async def created_between(session: AsyncSession, ids: Sequence[int], since: datetime | None,
                          until: datetime | None) -> set[int]:
    """Those of the evaluations `ids` given in the period."""
    out: set[int] = set()
    ids = sorted(set(ids))
    for start in range(0, len(ids), 1000):
        stmt = select(Evaluation.id).where(col(Evaluation.id).in_(ids[start:start + 1000]))
        stmt = _period(stmt, Evaluation.created_at, since, until, None, None)
        out |= {int(i) for i in (await session.exec(stmt)).all()}
    return out


def _period(stmt: Any, column: Any, since: datetime | None, until: datetime | None,
            agencies: tuple[str, ...] | None, agency_column: Any) -> Any:
    if since is not None:
        stmt = stmt.where(column >= since)
    if until is not None:
        stmt = stmt.where(column <= until)
    if agencies is not None:
        stmt = stmt.where(agency_column.in_(list(agencies)))
    return stmt
