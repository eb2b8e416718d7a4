"""A message from a person, from channel to store and back: the road in ARCHITECTURE.md.

dedupe → lock the person → load the conversation and their cases → the pure dialog step →
commit its effects and the next state in one transaction → render the replies in the person's
language. The replies are rendered only after the commit, so an acknowledgement never promises
what the store does not hold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.figures.reporting import queue as reporting
from bot.inbound import callback_answer
from bot.infra import keys
from bot.infra.i18n import SOURCE
from bot.infra.runtime import Runtime
from bot.infra.state import StateUnavailable
from bot.rating.ratings import RatingRefused, record
from dialogs import callback, rating
from dialogs import messages as m
from dialogs.addresses import mask_openid, mask_phone
from dialogs.parse import clean, is_list_request, is_opt_out
from dialogs.types import AddText, CaseView, Inbound, OptIn, OptOut, RecordRating, Reply
from store import cases as case_store
from store import contacts, conversations
from store import evaluations as evaluation_store
from store.cases import DueCase
from store.models import Case, Conversation

log = logging.getLogger("haochaping.conversation")

DEDUPE_TTL = 3 * 24 * 3600
RECENT_IDS = 20


@dataclass(frozen=True)
class Answer:
    texts: list[str]
    duplicate: bool = False
    contact_id: int | None = None  # to send later replies to (WeChat answers slow work by API)
    # The texts' replies and the language they were rendered in: a template provider sends a reply's key and
    # values, not its text (bot/policy/sms_templates.py).
    replies: list[Reply] = field(default_factory=list)
    locale: str = SOURCE


def _answer(rt: Runtime, replies: Sequence[Reply], locale: str, contact_id: int | None) -> Answer:
    return Answer([rt.render(reply, locale) for reply in replies], contact_id=contact_id, replies=list(replies),
                  locale=locale)


def case_view(rt: Runtime, case: Case | DueCase) -> CaseView:
    assert case.id is not None
    return CaseView(id=case.id, case_no=case.case_no, item_name=case.item_name, agency_name=case.agency_name,
                    completed_at=case.completed_at, link=rt.links.url(case.id))


async def handle(rt: Runtime, inbound: Inbound, contact_channel: str) -> Answer:
    """Act on one inbound message once, however often the provider delivers it.

    The dedupe key says "acted on", and is written only after acting: a key written first, as a claim,
    would outlive a request that failed after it (a Redis write that timed out still lands), and the
    provider's retry would then be taken for a duplicate and lost. Copies arriving together are
    serialized by the person's lock, and the database's `recent_ids` stays the durable second line.
    """
    inbound = replace(inbound, text=clean(inbound.text), address=clean(inbound.address),
                      message_id=clean(inbound.message_id) if inbound.message_id else inbound.message_id)
    dedupe_key = keys.inbound_seen(inbound.channel, inbound.message_id) if inbound.message_id else None
    address_hash = rt.sealer.lookup_hash(contact_channel, inbound.address)
    async with rt.state.lock(keys.contact(contact_channel, address_hash)):
        if dedupe_key and await rt.state.get(dedupe_key) is not None:
            answer = Answer([], duplicate=True)
        else:
            answer = await _handle_locked(rt, inbound, contact_channel, address_hash)
            if dedupe_key and not answer.duplicate:
                try:
                    await rt.state.put(dedupe_key, "1", DEDUPE_TTL)
                except StateUnavailable as exc:  # acted on and stored: recent_ids still catches a copy
                    log.warning("inbound %s acted on but not marked: %s", inbound.message_id, exc)
    rt.metrics.inbound.labels(inbound.channel, "duplicate" if answer.duplicate else "handled").inc()
    return answer


async def _handle_locked(rt: Runtime, inbound: Inbound, contact_channel: str, address_hash: str) -> Answer:
    now = inbound.received_at
    async with rt.db.write() as session:
        contact = await contacts.find(session, contact_channel, address_hash)
        if contact is None:
            outcome = _respond(rt, None, inbound, rating.Context(None, None), now)
            if any(isinstance(e, OptOut) for e in outcome.effects):
                # A stranger who opts out stays opted out for the cases that come later.
                stranger = await contacts.ensure(
                    session, contact_channel, address_hash, rt.sealer.seal(inbound.address),
                    _mask(inbound.address), now)
                await contacts.opt_out(session, stranger, "reply", now)
            locale = SOURCE
            contact_id = None
        else:
            assert contact.id is not None
            contact_id = contact.id
            conv = await conversations.get(session, contact.id, lock=rt.db.locks_rows)
            recent = list(conv.recent_ids) if conv else []
            if inbound.message_id and inbound.message_id in recent:
                return Answer([], duplicate=True)
            if inbound.message_id:
                recent = [*recent, inbound.message_id][-RECENT_IDS:]
            if inbound.kind in rating.KEYWORD_KINDS:  # the provider's STOP/START/HELP, whatever is open
                return await _keyword(session, rt, conv, inbound, contact.id, recent, now)
            if conv is not None and callback.is_callback(conv.state) and conv.expires_at and conv.expires_at > now:
                return await _callback_reply(session, rt, conv.state, inbound, contact.id, recent, now)
            if contact.barred_until is not None and contact.barred_until > now and not is_opt_out(inbound.text):
                await conversations.save(session, contact.id, None, None, None, recent, now)
                return _answer(rt, [Reply(m.BARRED, {"until": contact.barred_until})], SOURCE,
                              contact_id=contact_id)
            state = rating.State.from_json(conv.state) if (conv and conv.case_id and conv.state
                                                                and not callback.is_callback(conv.state)) else None
            current = await case_store.by_id(session, state.case_id, lock=rt.db.locks_rows) if state else None
            if state is not None and (current is None or (state.blocks_rating and current.rated_at is not None)):
                state, current = None, None  # rated elsewhere meanwhile, or gone
            # The person's other cases matter only when no live conversation answers the message.
            needs_cases = (state is None or state.step is rating.Step.MORE_TEXT or state.expires_at <= now
                           or inbound.kind == "subscribe" or is_list_request(inbound.text))
            waiting, unrated = (await case_store.unrated_of_contact(session, contact_channel, contact.id)
                                if needs_cases else ([], 0))
            oldest = waiting[0] if waiting else None
            ctx = rating.Context(
                case=case_view(rt, current) if current else None,
                oldest_unrated=case_view(rt, oldest) if oldest else None,
                unrated=unrated, known=True, unrated_cases=tuple(case_view(rt, c) for c in waiting))
            outcome = _respond(rt, state, inbound, ctx, now)
            await _apply(session, rt, outcome, inbound, contact.id, current, now)
            nxt = outcome.state
            await conversations.save(session, contact.id, nxt.case_id if nxt else None,
                                     nxt.to_json() if nxt else None, nxt.expires_at if nxt else None,
                                     recent, now)
            talked_about = current if (current and (nxt is None or nxt.case_id == current.id)) else oldest
            locale = talked_about.locale if talked_about else SOURCE
    return _answer(rt, outcome.replies, locale, contact_id)


async def _keyword(session: AsyncSession, rt: Runtime, conv: Conversation | None, inbound: Inbound, contact_id: int,
                   recent: list[str], now: datetime) -> Answer:
    """Twilio's STOP, START or HELP: the opt-out changes, an open conversation stays as it was (STOP ends it)."""
    kept = conv.state if conv is not None else None
    outcome = rating.keyword(inbound.kind, None)
    await _apply(session, rt, outcome, inbound, contact_id, None, now)
    stop = inbound.kind == "stop"
    await conversations.save(session, contact_id, None if stop or conv is None else conv.case_id,
                             None if stop else kept, None if stop or conv is None else conv.expires_at, recent, now)
    return _answer(rt, outcome.replies, SOURCE, contact_id)


async def _callback_reply(session: AsyncSession, rt: Runtime, data: dict[str, Any], inbound: Inbound, contact_id: int,
                          recent: list[str], now: datetime) -> Answer:
    """The rater answers the SMS callback question (bot/work_orders/callback_sms.py)."""
    state = callback.CallbackState.from_json(data)
    outcome = await callback_answer.reply(session, rt, state, inbound.text, contact_id, now)
    nxt = outcome.state
    await conversations.save(session, contact_id, nxt.case_id if nxt else None, nxt.to_json() if nxt else None,
                             nxt.expires_at if nxt else None, recent, now)
    case = await case_store.by_id(session, state.case_id)
    locale = case.locale if case else SOURCE
    return _answer(rt, outcome.replies, locale, contact_id)


def _respond(rt: Runtime, state: rating.State | None, inbound: Inbound, ctx: rating.Context,
             now: datetime) -> rating.Outcome:
    """The dialog's answer: a new follower is greeted; anything else is one step of the dialog."""
    rules = rt.rules_for(inbound.channel)
    if inbound.kind == "subscribe":
        return rating.greet(ctx, rules, now)
    return rating.step(state, inbound, ctx, rules, now)


async def _apply(session: AsyncSession, rt: Runtime, outcome: rating.Outcome, inbound: Inbound,
                 contact_id: int, current: Case | None, now: datetime) -> None:
    for effect in outcome.effects:
        if isinstance(effect, OptOut):
            await contacts.opt_out(session, contact_id, "reply", now)
        elif isinstance(effect, OptIn):
            await contacts.opt_in(session, contact_id)
        elif isinstance(effect, RecordRating):
            case = current if current and current.id == effect.case_id else await case_store.by_id(
                session, effect.case_id, lock=rt.db.locks_rows)
            assert case is not None
            try:
                await record(session, rt, case, effect.grade, effect.reasons, effect.text, inbound.channel, now)
            except RatingRefused as exc:  # the dialog checked first; a race lost is logged, not shown
                log.warning("rating of case %s refused: %s", case.case_no, exc.message)
        elif isinstance(effect, AddText):
            latest = await evaluation_store.latest_for_case(session, effect.case_id)
            if latest is not None and not latest.is_default:
                latest.text = f"{latest.text}\n{effect.text}" if latest.text else effect.text
                session.add(latest)
                await reporting.changed(session, rt, latest, now)  # the words are part of the review upward


def _mask(address: str) -> str:
    return mask_phone(address) if address.startswith("+") else mask_openid(address)
