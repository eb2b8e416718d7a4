"""A callback call's answer (回访 by an automated call), whoever placed the call: recorded as an agent's result
would be (lifecycle.callback), once, and only for the call that is out.

Twilio's calls (bot/duties/callback_calls.py) and the centre's own dialer's (leased from GET
/api/v1/hotline/due-calls, run as the JSON keypad dialog, bot/inbound/ivr.py) both end here."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.runtime import Runtime
from bot.work_orders import actors
from bot.work_orders import lifecycle as work_orders
from store import work_orders as store
from store.models import WorkOrder

CITIZEN = actors.Actor("citizen:call", "citizen")
DIALER_PREFIX = "dialer:"  # a work order's call_sid while the centre's dialer holds its call


def dialer_call_id(wo: WorkOrder) -> str:
    """The JSON dialog's call id of a leased callback call: the work order and its attempt."""
    return f"wo{wo.id}-{wo.calls}"


async def record_result(session: AsyncSession, rt: Runtime, work_order_id: int, result: str, call_sid: str,
                        now: datetime) -> bool:
    """A callback call's answer, recorded as an agent's would be, once: only while the work order waits at the
    callback step with this very call out (its `call_sid`), which the record clears. False when it did not."""
    wo = await store.by_id(session, work_order_id, lock=rt.db.locks_rows)
    if wo is None or wo.status != "reviewed" or wo.call_sid != call_sid:
        return False
    await work_orders.callback(session, rt, wo, result, CITIZEN, now)
    wo.call_sid = None  # answered: a status report or a lease that follows changes nothing
    wo.updated_at = now
    session.add(wo)
    return True
