"""The after-call keypad rating as a vendor-neutral JSON dialog (CONTRACT "Hotline keypads beyond Twilio").

A switch's IVR script (FreeSWITCH, Asterisk, a vendor's platform) starts a call's rating, speaks or plays what
each answer says, collects the keys it asks for, and posts them back, step by step. The dialog is the Twilio
keypad's own (dialogs/keypad.py: the same menus, reasons, silences and goodbyes) and so is the storing of the
rating (bot/inbound/hotline.py). What differs is where the state lives: Twilio signs it into its URLs; a script
carries nothing, so the call's row holds it (store/models.py HotlineCall), locked for each step, and any worker
answers the next one. Every answer is kept as given: keys posted again for a step already answered get the same
answer, and the rating, stored in the same transaction as the step that finished the call, is stored once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.inbound import hotline
from bot.infra.refusals import NotFound, NotNow
from bot.infra.runtime import Runtime
from bot.work_orders import calls as callback_calls
from dialogs import keypad
from dialogs.keypad import Ask, KeyState
from dialogs.types import RecordCallback, RecordRating
from store import cases as case_store
from store import hotline_calls
from store import work_orders as work_order_store
from store.models import HotlineCall

CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,63}")  # a FreeSWITCH uuid, an Asterisk uniqueid, a vendor's id
TICKET_MAX = 100  # the case_no's own limit


def call_id_problem(value: object) -> str | None:
    if not isinstance(value, str) or not CALL_ID.fullmatch(value):
        return ("required: the switch's id of the call, 1 to 64 letters, digits and . _ : @ - "
                "(starting with a letter or digit)")
    return None


def ticket_problem(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > TICKET_MAX
                              or not value.isprintable()):
        return (f"the hotline ticket (the case_no), 1 to {TICKET_MAX} printable characters; leave it out to rate "
                "the call itself")
    return None


REASONS_MAX_DIGITS = keypad.MAX_REASON_KEYS  # each reason's key once, then #


@dataclass(frozen=True)
class Started:
    answer: dict[str, Any]
    created: bool  # False: the call had been started already, and this is its first answer again


def ask_of(state: KeyState | None) -> dict[str, Any] | None:
    """What the switch collects next: one key for a grade or a callback answer; for reasons, up to one key per
    reason, ended by #. None: nothing, hang up."""
    if state is None:
        return None
    if state.ask is Ask.REASONS:
        return {"max_digits": REASONS_MAX_DIGITS, "finish_on_key": "#", "timeout_s": keypad.REASONS_TIMEOUT}
    return {"max_digits": 1, "timeout_s": keypad.GRADE_TIMEOUT}


def answer(rt: Runtime, call_id: str, step: int, spoken: hotline.Spoken) -> dict[str, Any]:
    """One step's answer: the texts to speak, each also as its prompt's key (a centre that records its prompts
    plays the recording of that key, and `audio` names it when the policy does), and what to collect."""
    prompts = []
    for reply in spoken.outcome.replies:
        prompt: dict[str, Any] = {"key": reply.key, "text": rt.render(reply, spoken.locale)}
        audio = rt.policy.hotline_recordings.get(spoken.locale, {}).get(reply.key)
        if audio and not reply.params:  # a prompt with values (the reasons, an item's name) is spoken
            prompt["audio"] = audio
        prompts.append(prompt)
    state = spoken.outcome.state
    return {"call_id": call_id, "step": step, "locale": spoken.locale, "say": [p["text"] for p in prompts],
            "prompts": prompts, "ask": ask_of(state), "done": state is None}


async def start(rt: Runtime, call_id: str, caller: str | None, ticket: str | None, now: datetime) -> Started:
    """Start a call's rating; a start posted again (the script retried) answers the first step again. A call
    known under another ticket is refused: the switch reused an id."""
    ticket = ticket or f"{hotline.HOTLINE_CODE}-{call_id}"
    async with rt.db.read() as session:
        known = await hotline_calls.by_call_id(session, call_id)
    if known is not None:
        return await _again(rt, known, ticket)
    spoken = await hotline.call_started(rt, ticket, caller, now)
    case_id = spoken.case_id
    assert case_id is not None
    first = answer(rt, call_id, 1, spoken)
    state = spoken.outcome.state
    try:
        async with rt.db.write() as session:
            session.add(HotlineCall(call_id=call_id, case_id=case_id, locale=spoken.locale, step=1,
                                    state=state.to_json() if state else None, answers=[first], pressed=[],
                                    created_at=now, updated_at=now))
    except IntegrityError:  # started at the same moment by another post of the same call
        async with rt.db.read() as session:
            known = await hotline_calls.by_call_id(session, call_id)
        if known is None:
            raise
        return await _again(rt, known, ticket)
    return Started(first, created=True)


async def start_callback(rt: Runtime, call_id: str, work_order_id: int, now: datetime) -> Started:
    """Start the automated callback call of a work order that the centre's dialer leased under `call_id`
    (GET /api/v1/hotline/due-calls): it says what the call is about and asks 1/2/3. A start posted again answers
    the first step again; a call id the lease did not give is refused."""
    async with rt.db.read() as session:
        known = await hotline_calls.by_call_id(session, call_id)
        if known is not None:
            if known.work_order_id != work_order_id:
                raise NotNow(f"the call {call_id!r} was started for another work order: a call id names one call",
                             call_id=call_id)
            return Started(known.answers[0], created=False)
        wo = await work_order_store.by_id(session, work_order_id)
        case = await case_store.by_id(session, wo.case_id) if wo is not None else None
    if wo is None or case is None or case.id is None:
        raise NotFound(f"no work order {work_order_id}")
    if wo.status != "reviewed" or wo.call_sid != callback_calls.DIALER_PREFIX + call_id:
        raise NotNow(f"work order {work_order_id} has no callback call leased as {call_id!r}: lease one with GET "
                     "/api/v1/hotline/due-calls and start it under the call_id given", work_order_id=work_order_id)
    spoken = hotline.Spoken(keypad.start_callback(case.item_name), case.locale, case.id)
    first = answer(rt, call_id, 1, spoken)
    state = spoken.outcome.state
    try:
        async with rt.db.write() as session:
            session.add(HotlineCall(call_id=call_id, case_id=case.id, work_order_id=work_order_id, locale=case.locale,
                                    step=1, state=state.to_json() if state else None, answers=[first], pressed=[],
                                    created_at=now, updated_at=now))
    except IntegrityError:  # the same start posted twice at once
        return await start_callback(rt, call_id, work_order_id, now)
    return Started(first, created=True)


async def _again(rt: Runtime, call: HotlineCall, ticket: str) -> Started:
    async with rt.db.read() as session:
        case = await case_store.by_no(session, ticket)
    if case is None or case.id != call.case_id:
        raise NotNow(f"the call {call.call_id!r} was started for another ticket: a call id names one call",
                     call_id=call.call_id)
    return Started(call.answers[0], created=False)


async def keys(rt: Runtime, call_id: str, digits: str, step: int | None, now: datetime) -> dict[str, Any]:
    """The keys pressed in answer to step `step` (the current one when not given; "" is silence); the next
    step's answer. A step answered already is answered again as it was, and stores nothing more."""
    async with rt.db.write() as session:
        call = await hotline_calls.by_call_id(session, call_id, lock=rt.db.locks_rows)
        if call is None:
            raise NotFound(f"no call {call_id!r}: start it with POST /api/v1/hotline/calls")
        asked = call.step if step is None else step
        if asked < call.step:
            return call.answers[asked]  # the answer that followed that step, as it was given
        if asked > call.step:
            raise NotNow(f"step {asked} has not been asked: the call is at step {call.step}", step=call.step)
        if call.state is None:
            raise NotNow(f"the call is over (step {call.step} hung up): no keys are taken", step=call.step)
        state = KeyState.from_json(call.state)
        outcome = keypad.press(state, digits, keypad.About(call.case_id, call.work_order_id), hotline.key_rules(rt))
        rating = next((e for e in outcome.effects if isinstance(e, RecordRating)), None)
        if rating is not None:
            locked = await case_store.by_id(session, call.case_id, lock=rt.db.locks_rows)
            assert locked is not None
            refused = await hotline.store_rating(session, rt, locked, rating, f"ivr:{call.call_id}", now)
            if refused:
                outcome = keypad.closed(refused)
        result = next((e for e in outcome.effects if isinstance(e, RecordCallback)), None)
        if result is not None:
            await callback_calls.record_result(session, rt, result.work_order_id, result.result,
                                               callback_calls.DIALER_PREFIX + call.call_id, now)
        nxt = answer(rt, call.call_id, call.step + 1, hotline.Spoken(outcome, call.locale))
        call.state = outcome.state.to_json() if outcome.state else None
        call.answers = [*call.answers, nxt]
        call.pressed = [*call.pressed, digits]
        call.step += 1
        call.updated_at = now
        session.add(call)
    return nxt


KEEP = timedelta(days=7)  # a call's row serves its replays; a day would do, a week leaves room for an inquiry
PRUNE_BATCH = 5000


async def prune(rt: Runtime, now: datetime) -> int:
    """Delete the calls of the JSON dialog untouched for KEEP (finished or abandoned): without it the table grows by
    a row a call, for ever. The ratings they stored stay in `evaluations`. In batches, one transaction each."""
    pruned = 0
    while True:
        async with rt.db.write() as session:
            gone = await hotline_calls.prune(session, now - KEEP, PRUNE_BATCH)
        pruned += gone
        if gone < PRUNE_BATCH:
            return pruned
