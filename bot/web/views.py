"""JSON shapes of stored things, as the contract names them. Personal data leaves only masked: the
contacts by their stored masks, and every text a person typed (a rating's words, a note, an appeal's
reason, an event's data) through the one mask of bot/infra/privacy.py, so that "请打我电话13900139001"
leaves as 139****9001. What is stored stays as written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.privacy import mask_json, mask_text
from bot.infra.runtime import Runtime, instant
from bot.policy import handling
from bot.work_orders import deadlines as work_order_deadlines
from bot.work_orders import lifecycle as work_orders
from store import contacts, outbox
from store import evaluations as evaluation_store
from store import work_orders as work_order_store
from store.models import Case, Evaluation, OutboxMessage, WorkOrder, WorkOrderEvent


def evaluation_json(rt: Runtime, e: Evaluation) -> dict[str, Any]:
    return {
        "id": e.id, "grade": e.grade, "score": e.score, "reasons": list(e.reasons or []), "text": mask_text(e.text),
        "channel": e.channel, "terminal_id": e.terminal_id, "window_no": e.window_no,
        "created_at": instant(rt, e.created_at),
        # "visit": a clerk-only rating of one window visit (Shantou art. 22, 28), not the case's rating
        "scope": "visit" if e.visit_id else "case", "visit_id": e.visit_id,
        "staff_id": e.staff_id, "staff_name": e.staff_name,
        "is_default": e.is_default, "is_followup": e.is_followup, "status": e.status, "via": e.via,
        "version": e.version,
    }


def reminder_json(rt: Runtime, m: OutboxMessage) -> dict[str, Any]:
    return {"channel": m.channel, "status": m.status, "attempts": m.attempts,
            "created_at": instant(rt, m.created_at), "sent_at": instant(rt, m.sent_at)}


async def case_json(session: AsyncSession, rt: Runtime, case: Case, now: datetime | None = None
                    ) -> dict[str, Any]:
    assert case.id is not None
    masks = await contacts.masks(session, (case.phone_contact_id, case.wechat_contact_id, case.mp_contact_id))
    applicant = {
        "name": case.applicant_name_masked,
        "phone": masks.get(case.phone_contact_id) if case.phone_contact_id else None,
        "wechat_openid": masks.get(case.wechat_contact_id) if case.wechat_contact_id else None,
        "mp_openid": masks.get(case.mp_contact_id) if case.mp_contact_id else None,
        "locale": case.locale,
    }
    evaluations = await evaluation_store.for_case(session, case.id)
    visits = await evaluation_store.visits_for_case(session, case.id)
    reminders = await outbox.for_case(session, case.id, kind="reminder")
    by_id = {e.id: e for e in evaluations + visits}
    orders = await work_order_store.for_cases(session, [case.id])
    facts = await work_order_deadlines.facts_for(session, orders)
    stamp = now or case.created_at
    return {
        "id": case.id, "case_no": case.case_no, "item_code": case.item_code, "item_name": case.item_name,
        "agency_code": case.agency_code, "agency_name": case.agency_name,
        "completed_at": instant(rt, case.completed_at), "staff_id": case.staff_id,
        "staff_name": case.staff_name, "hall_code": case.hall_code, "hall_name": case.hall_name,
        "window_no": case.window_no,
        "district_code": case.district_code, "district_name": case.district_name,
        "kind": case.kind, "joint_agencies": list(case.joint_agencies or []),
        "targets": handling.targets(case.kind, case.staff_id, case.hall_code, case.agency_code, case.agency_name,
                                    case.joint_agencies),
        "batch_no": case.batch_no,
        "bundle_no": case.bundle_no, "applicant": applicant, "created_at": instant(rt, case.created_at),
        "remind_at": instant(rt, case.remind_at), "default_at": instant(rt, case.default_at),
        "rated": case.rated_at is not None,
        "evaluations": [evaluation_json(rt, e) for e in evaluations],
        # the clerk-only ratings of its window visits (承诺件, 联办件: Shantou art. 22, 28, 29): not the case's
        "visits": [evaluation_json(rt, e) for e in visits],
        "reminders": [reminder_json(rt, m) for m in reminders],
        "work_orders": [work_order_json(rt, wo, case, by_id.get(wo.evaluation_id), stamp,
                                        facts=facts.get(wo.id or 0)) for wo in orders],
    }


def work_order_json(rt: Runtime, wo: WorkOrder, case: Case | None, evaluation: Evaluation | None,
                    now: datetime, events: list[WorkOrderEvent] | None = None, *,
                    facts: work_order_deadlines.Facts | None = None) -> dict[str, Any]:
    """A work order as agencies and 12345 see it: the review and its reasons, never who gave it. The deadlines
    beside the steps (the appeal's decision, an extension, the contact) come from its history: `events`, or
    `facts` read from it already."""
    if facts is None:
        facts = work_order_deadlines.facts_from(events) if events is not None else work_order_deadlines.NO_FACTS
    more = work_order_deadlines.json_parts(rt, wo, facts)
    extension = more["extension"]
    if extension is not None:
        extension = {**extension, "reason": mask_text(extension["reason"]), "note": mask_text(extension["note"])}
    doc: dict[str, Any] = {
        "id": wo.id, "case_no": case.case_no if case else None,
        "item_code": case.item_code if case else None, "item_name": case.item_name if case else None,
        "agency_code": wo.agency_code, "agency_name": wo.agency_name,
        # The agencies the review concerns: the lead (whose work order it is) and, for a joint case, the others
        # involved (Shantou art. 29: 列出涉及“差评”关联的政务服务机构).
        "agencies": handling.involved(wo.agency_code, wo.agency_name, case.joint_agencies if case else None),
        "staff_id": wo.staff_id,
        "staff_name": wo.staff_name, "grade": wo.grade, "reasons": list(wo.reasons or []),
        "text": mask_text(evaluation.text) if evaluation else None,
        "rated_at": instant(rt, evaluation.created_at) if evaluation else None,
        "status": wo.status, "outcome": wo.outcome, "reopened": wo.reopened, "unreachable": wo.unreachable,
        "due_at": instant(rt, wo.due_at), "overdue": wo.overdue, "overdue_steps": wo.overdue_steps,
        "appeal": None if wo.appeal_status is None else {
            "status": wo.appeal_status, "reason": mask_text(wo.appeal_reason), "by": wo.appeal_by,
            "at": instant(rt, wo.appeal_at), "decided_at": instant(rt, wo.appeal_decided_at), **more["appeal"]},
        "extension": extension, "contact": more["contact"],
        "callback": {"by": list(rt.policy.callback.by), "calls": wo.calls, "next_call_at": instant(rt, wo.call_at),
                     "agent_queue": wo.agent_queue},
        "created_at": instant(rt, wo.created_at), "updated_at": instant(rt, wo.updated_at),
        "closed_at": instant(rt, wo.closed_at),
        "allowed": work_orders.allowed(rt, wo, evaluation, now, facts) if evaluation else [],
    }
    if events is not None:
        doc["history"] = [{"action": e.action, "actor": e.actor, "from": e.from_status, "to": e.to_status,
                           "note": mask_text(e.note), "data": mask_json(e.data), "at": instant(rt, e.at)}
                          for e in events]
    return doc
