"""Whether a person may still be asked for ratings on a channel: the one home of opting out and back in.

A person opts out by a reply (退订, STOP through the dialogs' OptOut effect), and a provider reports an
opt-out it enforces itself (Twilio's 21610, a carrier's STOP report, WeChat's refused subscription is not
one: that falls back to SMS). Either way the contact keeps the first opt-out and where it came from;
reminders, callbacks by SMS and replies skip an opted-out contact (store/cases.py, bot/work_orders/
callback_sms.py). A stranger who opts out is remembered too, so that the cases posted later for that
number are never reminded. START (Twilio's) clears the opt-out, whoever recorded it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.runtime import Runtime
from dialogs.addresses import mask_openid, mask_phone
from store import contacts

log = logging.getLogger("haochaping.consent")


class By(StrEnum):
    REPLY = "reply"  # the person's own words or keyword
    PROVIDER = "provider"  # the provider refuses to deliver to them (it holds their STOP)


async def opt_out(session: AsyncSession, contact_id: int, by: By, now: datetime) -> None:
    await contacts.opt_out(session, contact_id, by.value, now)
    log.info("contact %s opted out (%s)", contact_id, by.value)


async def opt_out_stranger(session: AsyncSession, rt: Runtime, channel: str, address: str,
                           address_hash: tuple[str, ...], now: datetime) -> int:
    """Someone we hold no case for opts out: the contact is made now so that it stays opted out (its id)."""
    masked = mask_phone(address) if address.startswith("+") else mask_openid(address)
    contact_id = await contacts.ensure(session, channel, address_hash, rt.sealer.seal(address), masked, now)
    await opt_out(session, contact_id, By.REPLY, now)
    return contact_id


async def opt_in(session: AsyncSession, contact_id: int) -> None:
    await contacts.opt_in(session, contact_id)
    log.info("contact %s opted in again", contact_id)
