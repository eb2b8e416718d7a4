"""The reminder sweep: every case whose reminder is due gets one, once, unless it must wait.

The channel is chosen per case: a mini-program subscribe message when the case has an mp_openid
and the mini-program is configured (no conversation to wait for there), otherwise SMS. An SMS
reminder waits while the person is in another conversation (one at a time); a refused subscribe
message (43101) brings the case back here, and then it goes by SMS. Nothing is sent inside the quiet
hours, nor to a person who opted out (that is recorded as a skipped reminder).

The outbox's unique dedupe key makes "once per case per channel, ever" hold even when two
processes sweep at the same moment; the conditional write of the conversation makes "one
conversation at a time" hold the same way.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation import case_view
from bot.runtime import Runtime
from dialogs import rating
from store import cases as case_store
from store import contacts, conversations, outbox
from store.models import Case, Contact, OutboxMessage

BATCH = 500


async def sweep(rt: Runtime, now: datetime) -> int:
    if rt.timing.quiet(now):
        return 0
    queued = 0
    cursor: case_store.Cursor = None
    while True:
        async with rt.db.write() as session:
            due = await case_store.due_reminders(session, now, cursor, BATCH, skip_locked=rt.db.locks_rows)
            if not due:
                return queued
            last = due[-1]
            assert last.remind_at is not None and last.id is not None
            cursor = (last.remind_at, last.id)
            ids = [c.id for c in due if c.id is not None]
            reachable = [i for c in due for i in (c.phone_contact_id, c.mp_contact_id) if i]
            people = await contacts.by_ids(session, reachable)
            refused_mp = await outbox.cases_with(session, ids, "reminder", "miniprogram")
            for case in due:
                mp = people.get(case.mp_contact_id) if case.mp_contact_id else None
                phone = people.get(case.phone_contact_id) if case.phone_contact_id else None
                if mp is not None and rt.mp_api is not None and case.id not in refused_mp:
                    queued += await _by_miniprogram(session, rt, case, mp, now)
                elif phone is not None:
                    queued += await _by_sms(session, rt, case, phone, now)
                else:
                    case.remind_at = None  # no way to reach the person
                    session.add(case)


async def _by_sms(session: AsyncSession, rt: Runtime, case: Case, contact: Contact, now: datetime) -> int:
    assert case.id is not None and contact.id is not None
    key = f"reminder:sms:{case.id}"
    barred = contact.barred_until is not None and contact.barred_until > now
    if contact.opted_out_at is not None or barred:  # no reminder to one who cannot or will not answer
        await outbox.enqueue(session, OutboxMessage(
            kind="reminder", channel="sms", case_id=case.id, contact_id=contact.id, dedupe_key=key,
            body="", status="skipped", error="barred" if barred else "opted out", created_at=now, updated_at=now))
        case.remind_at = None
        session.add(case)
        return 0
    outcome = rating.remind(case_view(rt, case), rt.rules, now)
    assert outcome.state is not None
    if not await conversations.open_if_free(session, contact.id, case.id, outcome.state.to_json(),
                                            outcome.state.expires_at, now):
        return 0  # in another conversation: this reminder waits for a later sweep
    added = await outbox.enqueue(session, OutboxMessage(
        kind="reminder", channel="sms", case_id=case.id, contact_id=contact.id, dedupe_key=key,
        body=rt.render(outcome.replies[0], case.locale), status="pending", next_attempt_at=now, created_at=now,
        updated_at=now, provider=rt.sms.name))
    case.remind_at = None
    session.add(case)
    return int(added)


async def _by_miniprogram(session: AsyncSession, rt: Runtime, case: Case, contact: Contact, now: datetime) -> int:
    assert case.id is not None and contact.id is not None
    settings, fields = rt.settings, rt.policy.miniprogram_fields
    token = rt.links.token(case.id)
    page = f"{settings.wechat_mp_page}?token={token}" if settings.wechat_mp_page else None
    local = case.completed_at.astimezone(rt.policy.tz)
    values = {"item": case.item_name, "agency": case.agency_name, "completed_at": local.strftime("%Y-%m-%d %H:%M")}
    data = {field: {"value": values[name]} for name, field in fields.items() if name in values}
    added = await outbox.enqueue(session, OutboxMessage(
        kind="reminder", channel="miniprogram", case_id=case.id, contact_id=contact.id,
        dedupe_key=f"reminder:miniprogram:{case.id}", body=case.item_name,
        payload={"template_id": settings.wechat_mp_template_id, "page": page, "data": data},
        status="pending", next_attempt_at=now, created_at=now, updated_at=now, provider="wechat"))
    case.remind_at = None
    session.add(case)
    return int(added)

