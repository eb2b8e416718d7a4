"""A message from a person, from channel to store and back: the road in ARCHITECTURE.md.

one transaction: the person and their conversation row, locked (which queues their messages) → a
copy of a message already acted on is dropped (the row's recent ids) → their cases → the pure dialog
step → its effects and the next state → commit; then the replies, rendered in the person's language.
The replies are rendered only after the commit, so an acknowledgement never promises what the store
does not hold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.inbound import effects
from bot.infra import keys
from bot.infra.i18n import SOURCE
from bot.infra.runtime import Runtime
from bot.infra.state import StateUnavailable
from bot.rating import consent
from dialogs import registry
from dialogs.keywords import KINDS as KEYWORDS
from dialogs.parse import clean, is_list_request
from dialogs.types import CaseView, Context, ConversationState, Inbound, OptOut, Reply
from store import cases as case_store
from store import conversations
from store.cases import DueCase
from store.models import Case

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

    The database does it, in the message's own transaction: the person's conversation row, locked (on SQLite
    the one writer), handles their messages one at a time, and a copy finds its id in the row's `recent_ids`,
    committed together with what the message did. So a copy is never acted on twice, a retry of a request
    that failed is never taken for a copy, and a flushed or stopped Redis changes nothing. Only a stranger's
    message (no contact, so no row) asks Redis, after its transaction, whether a copy was answered already:
    the claim keeps the answer from going out twice, and a stranger's opt-out, the one thing such a message
    stores, is idempotent and leaves a row with its id for later copies.
    """
    inbound = replace(inbound, text=clean(inbound.text), address=clean(inbound.address),
                      message_id=clean(inbound.message_id) if inbound.message_id else inbound.message_id)
    address_hash = rt.sealer.lookup_hashes(contact_channel, inbound.address)
    answer, stranger = await _handle(rt, inbound, contact_channel, address_hash)
    if stranger and inbound.message_id and not answer.duplicate:
        try:
            if await rt.state.claim(keys.inbound_seen(inbound.channel, inbound.message_id), "1",
                                    DEDUPE_TTL) is not None:
                answer = Answer([], duplicate=True)
        except StateUnavailable as exc:  # answered once more at worst; nothing stored twice
            log.warning("inbound %s from a stranger not marked: %s", inbound.message_id, exc)
    rt.metrics.inbound.labels(inbound.channel, "duplicate" if answer.duplicate else "handled").inc()
    return answer


async def _handle(rt: Runtime, inbound: Inbound, contact_channel: str,
                  address_hash: tuple[str, ...]) -> tuple[Answer, bool]:
    """The answer, and whether it came from a stranger (see `handle`)."""
    now = inbound.received_at
    rules = rt.rules_for(inbound.channel)
    async with rt.db.write() as session:
        contact, conv = await conversations.of_address(session, contact_channel, address_hash,
                                                        lock=rt.db.locks_rows)
        if contact is None:
            outcome = registry.answer(None, inbound, Context(None, None), rules, now)
            if any(isinstance(e, OptOut) for e in outcome.effects):
                contact_id = await consent.opt_out_stranger(session, rt, contact_channel, inbound.address,
                                                            address_hash, now)
                await conversations.ensure_row(session, rt.db.dialect, contact_id, now,
                                               [inbound.message_id] if inbound.message_id else [])
            return _answer(rt, outcome.replies, SOURCE, None), True
        assert contact.id is not None
        if conv is None and rt.db.locks_rows:  # something to queue on (conversations.ensure_row)
            await conversations.ensure_row(session, rt.db.dialect, contact.id, now)
            conv = await conversations.get(session, contact.id, lock=True)
        recent = list(conv.recent_ids) if conv else []
        if inbound.message_id and inbound.message_id in recent:
            return Answer([], duplicate=True), False
        if inbound.message_id:
            recent = [*recent, inbound.message_id][-RECENT_IDS:]
        state = registry.read_conversation(conv.state) if conv else None
        if state is not None and state.expires_at <= now:
            state = None
        current = (await case_store.by_id(session, state.case_id, lock=rt.db.locks_rows and state.locks_case)
                   if state else None)
        if state is not None and (current is None or (state.blocks_rating and current.rated_at is not None)):
            state, current = None, None  # rated elsewhere meanwhile, or gone
        # The person's other cases matter only when no open question answers the message.
        needs_cases = inbound.kind not in KEYWORDS and (
            state is None or state.hands_over or inbound.kind == "subscribe" or is_list_request(inbound.text))
        waiting, unrated = (await case_store.unrated_of_contact(session, contact_channel, contact.id)
                            if needs_cases else ([], 0))
        oldest = waiting[0] if waiting else None
        ctx = Context(
            case=case_view(rt, current) if current else None,
            oldest_unrated=case_view(rt, oldest) if oldest else None,
            unrated=unrated, known=True, unrated_cases=tuple(case_view(rt, c) for c in waiting),
            barred_until=contact.barred_until)
        outcome = registry.answer(state, inbound, ctx, rules, now)
        outcome = await effects.apply(session, rt, outcome, inbound.channel, contact.id, current, now,
                                      contact.barred_until)
        nxt: ConversationState | None = outcome.state
        await conversations.save(session, contact.id, nxt.case_id if nxt else None,
                                 nxt.to_json() if nxt else None, nxt.expires_at if nxt else None, recent, now)
        talked_about = current if (current and (nxt is None or nxt.case_id == current.id)) else oldest
        locale = talked_about.locale if talked_about else SOURCE
    return _answer(rt, outcome.replies, locale, contact.id), False
