"""What the application does with what an SMS provider brings (channels.base.SmsHandlers), injected into
the provider's webhooks: a reply goes the road of bot/inbound/conversation.py, a delivery report to the outbox.

A provider that answers inline (Twilio's TwiML) gets the answer's texts back. The others push replies to us
and cannot be answered in the push (Aliyun, Tencent, a CMPP gateway): the answer is queued in the outbox,
one message per reply with its template key and values, and delivered at once in the background, one
after another so that they arrive in order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bot.delivery import sender
from bot.inbound import conversation
from bot.infra.runtime import Runtime
from bot.rating import consent
from channels.base import Receipt
from dialogs.types import Inbound
from store import outbox
from store.models import OutboxMessage

log = logging.getLogger("haochaping.sms")
_sending: set[asyncio.Task[None]] = set()  # deliveries still running after the push was answered
STEP = timedelta(microseconds=1)  # between the replies to one message: their order in the outbox


class SmsRoad:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def now(self) -> datetime:
        return self.rt.clock()

    async def message(self, inbound: Inbound) -> list[str]:
        answer = await conversation.handle(self.rt, inbound, "phone")
        if self.rt.sms_channel.answers_inline:
            return answer.texts
        if answer.duplicate or not answer.replies or answer.contact_id is None:
            return []
        stamp = inbound.received_at
        async with self.rt.db.write() as session:
            for i, (reply, text) in enumerate(zip(answer.replies, answer.texts, strict=True)):
                due = stamp + i * STEP
                await outbox.enqueue(session, OutboxMessage(
                    kind="reply", channel="sms", contact_id=answer.contact_id, body=text,
                    payload=self.rt.sms_payload(reply, answer.locale), status="pending", next_attempt_at=due,
                    created_at=due, updated_at=due, provider=self.rt.sms.name))
        task = asyncio.ensure_future(_deliver_in_order(self.rt, stamp, len(answer.replies)))
        _sending.add(task)
        task.add_done_callback(_sending.discard)
        return []

    async def receipt(self, receipt: Receipt) -> None:
        if receipt.status not in outbox.RANK:
            return
        async with self.rt.db.write() as session:
            message = await outbox.record_receipt(session, receipt.provider_id, receipt.status, receipt.error_code,
                                                  receipt.stopped, receipt.at)
            if message is not None and receipt.stopped:
                await consent.opt_out(session, message.contact_id, consent.By.PROVIDER, receipt.at)


async def _deliver_in_order(rt: Runtime, stamp: datetime, count: int) -> None:
    """Each reply once the one before it was attempted; what fails waits for the scheduler's retries."""
    try:
        for i in range(count):
            await sender.deliver_due(rt, stamp + i * STEP, only_kinds=("reply",))
    except Exception:
        log.exception("the answer to an SMS reply could not be sent now; the scheduler retries it")


async def settled() -> None:
    """Wait for the answers still being sent (tests, and a clean stop)."""
    await asyncio.gather(*list(_sending), return_exceptions=True)
