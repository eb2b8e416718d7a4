"""JSON shapes of stored things, as the contract names them. Personal data leaves only masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Runtime
from store import evaluations as evaluation_store
from store import outbox
from store.models import Case, Contact, Evaluation, OutboxMessage


def instant(rt: Runtime, value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(rt.policy.tz).isoformat()


def evaluation_json(rt: Runtime, e: Evaluation) -> dict[str, Any]:
    return {
        "id": e.id, "grade": e.grade, "score": e.score, "reasons": list(e.reasons or []), "text": e.text,
        "channel": e.channel, "created_at": instant(rt, e.created_at), "is_default": e.is_default,
        "is_followup": e.is_followup, "status": e.status,
    }


def reminder_json(rt: Runtime, m: OutboxMessage) -> dict[str, Any]:
    return {"channel": m.channel, "status": m.status, "attempts": m.attempts,
            "created_at": instant(rt, m.created_at), "sent_at": instant(rt, m.sent_at)}


async def case_json(session: AsyncSession, rt: Runtime, case: Case) -> dict[str, Any]:
    assert case.id is not None
    ids = [i for i in (case.phone_contact_id, case.wechat_contact_id, case.mp_contact_id) if i]
    masks: dict[int, str] = {}
    if ids:
        rows = await session.exec(select(Contact.id, Contact.masked).where(col(Contact.id).in_(ids)))
        masks = {i: mk for i, mk in rows.all()}  # type: ignore[misc]
    applicant = {
        "name": case.applicant_name_masked,
        "phone": masks.get(case.phone_contact_id) if case.phone_contact_id else None,
        "wechat_openid": masks.get(case.wechat_contact_id) if case.wechat_contact_id else None,
        "mp_openid": masks.get(case.mp_contact_id) if case.mp_contact_id else None,
        "locale": case.locale,
    }
    evaluations = await evaluation_store.for_case(session, case.id)
    reminders = await outbox.for_case(session, case.id, kind="reminder")
    return {
        "id": case.id, "case_no": case.case_no, "item_code": case.item_code, "item_name": case.item_name,
        "agency_code": case.agency_code, "agency_name": case.agency_name,
        "completed_at": instant(rt, case.completed_at), "staff_id": case.staff_id,
        "staff_name": case.staff_name, "kind": case.kind, "batch_no": case.batch_no,
        "bundle_no": case.bundle_no, "applicant": applicant, "created_at": instant(rt, case.created_at),
        "remind_at": instant(rt, case.remind_at), "default_at": instant(rt, case.default_at),
        "rated": case.rated_at is not None,
        "evaluations": [evaluation_json(rt, e) for e in evaluations],
        "reminders": [reminder_json(rt, m) for m in reminders],
        "work_orders": [],
    }
