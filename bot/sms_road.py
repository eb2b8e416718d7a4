"""What the application does with what an SMS provider brings (channels.base.SmsHandlers), injected into
the provider's webhooks: a reply goes the road of bot/conversation.py, a delivery report to the outbox."""

from __future__ import annotations

from datetime import datetime

from bot import conversation
from bot.runtime import Runtime
from channels.base import Receipt
from dialogs.types import Inbound
from store import contacts, outbox


class SmsRoad:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def now(self) -> datetime:
        return self.rt.clock()

    async def message(self, inbound: Inbound) -> list[str]:
        return (await conversation.handle(self.rt, inbound, "phone")).texts

    async def receipt(self, receipt: Receipt) -> None:
        if receipt.status not in outbox.RANK:
            return
        async with self.rt.db.write() as session:
            message = await outbox.record_receipt(session, receipt.provider_id, receipt.status, receipt.error_code,
                                                  receipt.stopped, receipt.at)
            if message is not None and receipt.stopped:
                await contacts.opt_out(session, message.contact_id, "provider", receipt.at)
