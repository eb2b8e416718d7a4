"""Queueing reports: every rating, and every later change to one, becomes one row per upstream profile,
written in the transaction of the change itself (so a committed change is never left unreported).

The row holds a neutral snapshot of that version of the evaluation, named grades and channels
included: the digits exist only in the request a profile builds (bot/policy/reporting_profiles.py). The
rater's phone, openid and name are never part of it, and numbers written into the free text are
masked, because the rater's identity does not leave without consent (DOMAIN "Privacy").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.privacy import mask_numbers
from bot.policy.reporting_profiles import ReportingProfile
from store import evaluations as evaluation_store
from store import reports
from store import work_orders as work_order_store
from store.models import Case, Evaluation, UpstreamReport, WorkOrder

if TYPE_CHECKING:
    from bot.infra.runtime import Runtime


def profiles(rt: Runtime) -> tuple[ReportingProfile, ...]:
    return tuple(p for p in rt.policy.reporting if p.enabled)


def idempotency_key(profile: str, evaluation_id: int, version: int) -> str:
    """What the upstream sees twice when a push is retried, and never for two different changes."""
    return f"{profile}:{evaluation_id}:{version}"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


def snapshot(case: Case, evaluation: Evaluation, callback_result: str | None, changed_at: datetime) -> dict[str, Any]:
    """The neutral record of one version of an evaluation (named values, instants in UTC)."""
    return {
        "case_no": case.case_no, "item_code": case.item_code, "item_name": case.item_name,
        "agency_code": case.agency_code, "agency_name": case.agency_name,
        # a window visit's rating is its clerk's (Shantou art. 22, 28); every other is the case's clerk's
        "staff_id": evaluation.staff_id if evaluation.visit_id else case.staff_id,
        "staff_name": evaluation.staff_name if evaluation.visit_id else case.staff_name,
        "target": "clerk" if evaluation.visit_id else "case", "visit_id": evaluation.visit_id,
        "terminal_id": evaluation.terminal_id, "hall_code": case.hall_code, "hall_name": case.hall_name,
        "district_code": case.district_code, "district_name": case.district_name,
        "completed_at": _iso(case.completed_at), "grade": evaluation.grade, "score": evaluation.score,
        "reasons": list(evaluation.reasons or []), "text": mask_numbers(evaluation.text) if evaluation.text else None,
        "channel": evaluation.channel, "is_default": evaluation.is_default, "is_followup": evaluation.is_followup,
        "via": evaluation.via, "status": evaluation.status, "callback_result": callback_result,
        "rated_at": _iso(evaluation.created_at), "version": evaluation.version, "changed_at": _iso(changed_at),
    }


def _enqueue(session: AsyncSession, targets: tuple[ReportingProfile, ...], case: Case, evaluation: Evaluation,
             callback_result: str | None, now: datetime) -> None:
    assert evaluation.id is not None
    record = snapshot(case, evaluation, callback_result, now)
    reports.add_many(session, [
        UpstreamReport(profile=p.name, evaluation_id=evaluation.id, version=evaluation.version,
                       idempotency_key=idempotency_key(p.name, evaluation.id, evaluation.version), record=record,
                       next_attempt_at=now, created_at=now, updated_at=now)
        for p in targets])


async def rated(session: AsyncSession, rt: Runtime, case: Case, evaluation: Evaluation, now: datetime) -> None:
    """A new rating (version 1), whatever path stored it: active, default, batch or bundle copy."""
    targets = profiles(rt)
    if not targets or evaluation.via == "callback":
        return
    _enqueue(session, targets, case, evaluation, None, now)


async def changed(session: AsyncSession, rt: Runtime, evaluation: Evaluation, now: datetime,
                  work_order: WorkOrder | None = None) -> None:
    """A later change of a stored rating: its version goes up by one, and the new version is queued.

    The version goes up whether or not a profile is configured: it is the evaluation's own count of
    changes (the API shows it), not the queue's. `work_order` is the bad review's own, whose last
    callback result the snapshot carries.
    """
    await evaluation_store.next_version(session, evaluation)
    targets = profiles(rt)
    if not targets or evaluation.via == "callback":
        return
    case = await session.get(Case, evaluation.case_id)
    assert case is not None
    result = await callback_result(session, work_order) if work_order is not None else None
    _enqueue(session, targets, case, evaluation, result, now)


async def callback_result(session: AsyncSession, wo: WorkOrder) -> str | None:
    """The latest callback answer that changed the review: a rater's answer, or the unreachable that closed it
    (an unreachable that leaves the work order waiting is no outcome yet)."""
    assert wo.id is not None
    for event in reversed(await work_order_store.events(session, wo.id)):
        result = (event.data or {}).get("result")
        if result and (result != "unreachable" or event.to_status == "closed"):
            return str(result)
    return None
