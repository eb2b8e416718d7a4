"""A rater's SMS answer to the callback question (bot/work_orders/callback_sms.py asked it): the dialog's step,
then the result recorded exactly as an agent's callback result would be, before the thanks is sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.runtime import Runtime
from bot.work_orders import lifecycle as work_orders
from bot.work_orders.actors import CITIZEN_SMS
from dialogs import callback
from dialogs import messages as m
from dialogs.types import Reply
from store import contacts as contact_store
from store import work_orders as store


async def reply(session: AsyncSession, rt: Runtime, state: callback.CallbackState, text: str, contact_id: int,
                now: datetime) -> callback.CallbackOutcome:
    """A reply inside a callback conversation: the result is stored before the thanks is sent."""
    outcome = callback.step(state, text, now)
    if outcome.opt_out is not None:
        await contact_store.opt_out(session, contact_id, "reply", now)
    if outcome.result is not None:
        wo = await store.by_id(session, state.work_order_id, lock=rt.db.locks_rows)
        if wo is None or wo.status != "reviewed":  # settled another way meanwhile: promise nothing
            return replace(outcome, replies=(Reply(m.NOTHING_TO_RATE),), result=None)
        await work_orders.callback(session, rt, wo, outcome.result, CITIZEN_SMS, now)
        wo.updated_at = now
        session.add(wo)
    return outcome
