"""Automated callback calls (回访) through Twilio Voice, for work orders waiting at the callback step.

The tick places each due call once: the work order's `call_at` is cleared in the same transaction
that counts the call, so two schedulers cannot both dial. The call fetches its TwiML from
/webhooks/twilio/voice/callback; the keys 1/2/3 are recorded exactly as an agent's callback result
would be (bot/work_orders.callback). No answer, busy, failed, or an answered call that gave no
result: another call `call_interval_minutes` later inside the calling hours, `call_retries` times;
after the last, the work order waits in the agents' queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.inbound.hotline import Spoken
from bot.infra import audit
from bot.infra.i18n import SOURCE
from bot.infra.limits import parse_id
from bot.infra.runtime import Runtime
from bot.work_orders import actors, calls
from bot.work_orders import lifecycle as work_orders
from bot.work_orders.calls import CITIZEN
from channels.base import Sent
from channels.twilio import voice as twilio_voice
from dialogs import keypad
from dialogs import messages as m
from dialogs.addresses import mask_phone
from dialogs.keypad import KeyState
from dialogs.types import RecordCallback
from store import cases as case_store
from store import contacts as contact_store
from store import work_orders as store
from store.models import Case, Contact, WorkOrder

log = logging.getLogger("haochaping.callback_calls")
BATCH = 50


def _wo_id(text: str) -> int | None:
    return parse_id(text)


async def sweep(rt: Runtime, now: datetime) -> int:
    """Place every callback call due at `now`; the number placed."""
    if rt.caller is None or rt.policy.callback.placed_by != "twilio":
        return 0  # no Twilio, or the centre's dialer leases the calls (lease_for_dialer)
    placed = 0
    async with rt.db.write() as session:
        due = await store.due_calls(session, now, BATCH, skip_locked=rt.db.locks_rows)
        jobs: list[tuple[int, str]] = []
        for wo in due:
            assert wo.id is not None
            if _waits_for_calling_hours(session, rt, wo, now):
                continue
            _case, contact = await _callee(session, wo)
            wo.call_at = None
            wo.calls += 1
            wo.updated_at = now
            session.add(wo)
            if contact is None:
                wo.agent_queue = True
                continue
            await store.log(session, wo, "call", actors.SYSTEM.name, wo.status, wo.status, now,
                            data={"attempt": wo.calls})
            jobs.append((wo.id, rt.sealer.open(contact.address_sealed)))
    base = rt.settings.public_url
    for wo_id, phone in jobs:
        result = await rt.caller.call(phone, f"{base}/webhooks/twilio/voice/callback?wo={wo_id}",
                                      f"{base}/webhooks/twilio/voice/status")
        async with rt.db.write() as session:
            wo = await store.by_id(session, wo_id, lock=rt.db.locks_rows)
            if wo is None:
                continue
            if isinstance(result, Sent):
                wo.call_sid = result.provider_id
                placed += 1
            else:
                log.warning("callback call for work order %s not placed: %s", wo_id, result)
                await _not_reached(session, rt, wo, "failed", now)
            session.add(wo)
    return placed


def _waits_for_calling_hours(session: AsyncSession, rt: Runtime, wo: WorkOrder, now: datetime) -> bool:
    """Outside the calling hours a due call waits for the morning (its call_at moved there): True."""
    slot = work_orders.next_call_slot(rt, now)
    if slot <= now:
        return False
    wo.call_at = slot
    session.add(wo)
    return True


async def _callee(session: AsyncSession, wo: WorkOrder) -> tuple[Case | None, Contact | None]:
    """The work order's case and the phone its rater is called on (None: no phone to call)."""
    case = await case_store.by_id(session, wo.case_id)
    people = await contact_store.by_ids(session, [case.phone_contact_id] if case and case.phone_contact_id else [])
    return case, next(iter(people.values()), None)


@dataclass(frozen=True)
class DueCall:
    work_order_id: int
    call_id: str
    phone: str
    item: str
    locale: str
    attempt: int
    lease_until: datetime


async def lease_for_dialer(rt: Runtime, now: datetime, limit: int, actor: str) -> list[DueCall]:
    """The callback calls due at `now`, each leased to the asking dialer until the next attempt would be due
    (`call_interval_minutes` later, inside the calling hours): no other dialer gets it meanwhile (the rows are
    locked and skipped while this lease is made, and its `call_at` moves past the lease). A call that brings no
    result by then is due again as the next attempt; after `call_retries` more, the work order goes to the agents'
    queue. The rater's whole number leaves the service here, so each lease is audited (`number.dial`)."""
    leased: list[DueCall] = []
    rules = rt.policy.callback
    async with rt.db.write() as session:
        for wo in await store.due_calls(session, now, limit, skip_locked=rt.db.locks_rows):
            assert wo.id is not None
            if _waits_for_calling_hours(session, rt, wo, now):
                continue
            if wo.calls >= 1 + rules.call_retries:  # the last lease ran out without a result
                await _not_reached(session, rt, wo, "no-result", now)
                wo.call_at = None
                session.add(wo)
                continue
            case, contact = await _callee(session, wo)
            wo.calls += 1
            wo.updated_at = now
            if case is None or contact is None:
                wo.call_at, wo.agent_queue = None, True
                session.add(wo)
                continue
            phone = rt.sealer.open(contact.address_sealed)
            call_id = calls.dialer_call_id(wo)
            wo.call_sid = calls.DIALER_PREFIX + call_id
            wo.call_at = work_orders.next_call_slot(rt, now + timedelta(minutes=rules.call_interval_minutes))
            session.add(wo)
            await store.log(session, wo, "call", actor, wo.status, wo.status, now,
                            data={"attempt": wo.calls, "by": "dialer", "call_id": call_id})
            await audit.record(session, now, actor, audit.DIAL, target=("work_order", wo.id),
                               details={"masked": mask_phone(phone), "case_no": case.case_no, "call_id": call_id,
                                        "agency_code": wo.agency_code})
            leased.append(DueCall(wo.id, call_id, phone, case.item_name, case.locale, wo.calls, wo.call_at))
    return leased


async def _not_reached(session: AsyncSession, rt: Runtime, wo: WorkOrder, status: str, now: datetime) -> None:
    """One more call later, or the agents' queue after the last."""
    wo.call_sid = None
    rules = rt.policy.callback
    data = {"status": status, "attempt": wo.calls}
    if wo.calls < 1 + rules.call_retries:
        wo.call_at = work_orders.next_call_slot(rt, now + timedelta(minutes=rules.call_interval_minutes))
        data["next_call_at"] = wo.call_at.isoformat()
    else:
        wo.agent_queue = True
        data["agent_queue"] = True
    wo.updated_at = now
    await store.log(session, wo, "call-not-reached", actors.SYSTEM.name, wo.status, wo.status, now, data=data)


async def status(rt: Runtime, sid: str, call_status: str, now: datetime) -> None:
    """Twilio's status callback: a call that ended without a callback result was not a callback."""
    if call_status not in twilio_voice.NOT_REACHED and call_status != "completed":
        return
    async with rt.db.write() as session:
        wo = await store.by_call_sid(session, sid, lock=rt.db.locks_rows)
        if wo is None or wo.status != "reviewed":
            return  # the result came in during the call (call_sid cleared), or the work order moved on
        await _not_reached(session, rt, wo, call_status, now)
        session.add(wo)


async def answered(rt: Runtime, wo_text: str, call: twilio_voice.CallIn, now: datetime) -> Spoken:
    wo_id = _wo_id(wo_text)
    async with rt.db.read() as session:
        wo = await store.by_id(session, wo_id) if wo_id else None
        case = await case_store.by_id(session, wo.case_id) if wo else None
    if wo is None or case is None or wo.status != "reviewed" or wo.call_sid not in (None, call.sid):
        return Spoken(keypad.closed(m.VOICE_GOODBYE), case.locale if case else SOURCE)
    return Spoken(keypad.start_callback(case.item_name), case.locale)


async def keys_pressed(rt: Runtime, wo_text: str, state: KeyState, call: twilio_voice.CallIn,
                       now: datetime) -> Spoken:
    wo_id = _wo_id(wo_text)
    async with rt.db.write() as session:
        wo = await store.by_id(session, wo_id, lock=rt.db.locks_rows) if wo_id else None
        case = await case_store.by_id(session, wo.case_id) if wo else None
        locale = case.locale if case else SOURCE
        if wo is None:
            return Spoken(keypad.closed(m.VOICE_GOODBYE), locale)
        outcome = keypad.press(state, call.digits, keypad.About(wo.case_id, wo.id), keypad.KeyRules(reasons=()))
        for effect in outcome.effects:
            if isinstance(effect, RecordCallback) and wo.status == "reviewed" and wo.call_sid in (None, call.sid):
                await work_orders.callback(session, rt, wo, effect.result, CITIZEN, now)
                wo.call_sid = None  # answered: the status callback that follows changes nothing
                wo.updated_at = now
                session.add(wo)
    return Spoken(outcome, locale)
