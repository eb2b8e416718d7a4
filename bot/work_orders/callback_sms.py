"""The callback by SMS: "整改结果满意请回复1…" for work orders whose policy lists "sms" in callback.by.

The question opens the rater's conversation (one at a time, as reminders do); the reply comes back
through the same road as every SMS (bot/inbound/conversation.py), which hands a callback conversation to
bot/inbound/callback_answer.py: a reply is recorded exactly as an agent's callback result would be.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.runtime import Runtime
from bot.work_orders.actors import SYSTEM
from dialogs import callback
from store import contacts as contact_store
from store import conversations, outbox
from store import work_orders as store
from store.models import Case, OutboxMessage, WorkOrder


async def ask(session: AsyncSession, rt: Runtime, wo: WorkOrder, case: Case, now: datetime) -> bool:
    """Queue the question when the rater can be texted and is in no other conversation."""
    assert wo.id is not None and case.id is not None and case.phone_contact_id is not None
    people = await contact_store.by_ids(session, [case.phone_contact_id])
    contact = people.get(case.phone_contact_id)
    if contact is None or contact.opted_out_at is not None:
        return False
    outcome = callback.ask(wo.id, case.id, case.item_name, case.completed_at,
                           timedelta(hours=rt.policy.conversation_hours), now)
    assert outcome.state is not None
    if not await conversations.open_if_free(session, case.phone_contact_id, case.id, outcome.state.to_json(),
                                            outcome.state.expires_at, now):
        return False  # busy with another conversation: a 12345 agent calls instead
    await outbox.enqueue(session, OutboxMessage(
        kind="callback", channel="sms", case_id=case.id, contact_id=case.phone_contact_id,
        dedupe_key=f"callback:sms:{wo.id}:{wo.reopened}", body=rt.render(outcome.replies[0], case.locale),
        payload=rt.sms_payload(outcome.replies[0], case.locale), status="pending", next_attempt_at=now,
        created_at=now, updated_at=now, provider=rt.sms.name))
    await store.log(session, wo, "callback-sms", SYSTEM.name, wo.status, wo.status, now)
    return True
