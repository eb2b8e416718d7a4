"""A conversation dialog's effects, stored in the message's transaction before its replies are sent.

The effects are typed (dialogs/types.py) and the same whichever dialog answered: the rating and the SMS
callback both end here, so a new dialog brings no new branch to the inbound road, only perhaps a new effect.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.figures.reporting import queue as reporting
from bot.infra.runtime import Runtime
from bot.rating import consent
from bot.rating.ratings import RatingRefused, record
from bot.work_orders import lifecycle as work_orders
from bot.work_orders.actors import CITIZEN_SMS
from dialogs import messages as m
from dialogs.types import AddText, OptIn, OptOut, Outcome, RecordCallback, RecordRating, Reply
from store import cases as case_store
from store import evaluations as evaluation_store
from store import work_orders as work_order_store
from store.models import Case

log = logging.getLogger("haochaping.conversation")


async def apply(session: AsyncSession, rt: Runtime, outcome: Outcome[Any], channel: str, contact_id: int,
                current: Case | None, now: datetime, barred_until: datetime | None = None) -> Outcome[Any]:
    """Store each effect; the outcome comes back as it should be answered (an answer that found nothing
    left to record promises nothing). `barred_until`: the sender's bar, as read in this transaction."""
    for effect in outcome.effects:
        if isinstance(effect, OptOut):
            await consent.opt_out(session, contact_id, consent.By.REPLY, now)
        elif isinstance(effect, OptIn):
            await consent.opt_in(session, contact_id)
        elif isinstance(effect, RecordRating):
            case = current if current and current.id == effect.case_id else await case_store.by_id(
                session, effect.case_id, lock=rt.db.locks_rows)
            assert case is not None
            try:
                await record(session, rt, case, effect.grade, effect.reasons, effect.text, channel, now,
                             known_bars={contact_id: barred_until}, saves_conversation_of=contact_id)
            except RatingRefused as exc:  # the dialog checked first; a race lost is logged, not shown
                log.warning("rating of case %s refused: %s", case.case_no, exc.message)
        elif isinstance(effect, AddText):
            latest = await evaluation_store.latest_for_case(session, effect.case_id)
            if latest is not None and not latest.is_default:
                latest.text = f"{latest.text}\n{effect.text}" if latest.text else effect.text
                session.add(latest)
                await reporting.changed(session, rt, latest, now)  # the words are part of the review upward
        elif isinstance(effect, RecordCallback):
            # Recorded exactly as an agent's callback result would be (bot/work_orders/callback_sms.py asked).
            wo = await work_order_store.by_id(session, effect.work_order_id, lock=rt.db.locks_rows)
            if wo is None or wo.status != "reviewed":  # settled another way meanwhile: promise nothing
                return replace(outcome, replies=(Reply(m.NOTHING_TO_RATE),))
            await work_orders.callback(session, rt, wo, effect.result, CITIZEN_SMS, now)
            wo.updated_at = now
            session.add(wo)
    return outcome
