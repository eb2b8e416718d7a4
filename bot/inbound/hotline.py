"""The 12345 after-call rating (Shantou art. 20): a ticket handed over by the hotline, rated by keypad.

A ticket posted as a case is rated as that case; an unknown ticket becomes a hotline case at once,
with the caller's number as the rater's, so that no rating is lost. The keypad dialog is pure
(dialogs/keypad.py) and its state rides in the signed Gather URLs; only the finished rating is
stored, once per call: its CallSid is the evaluation's unique `ref`, so a step Twilio repeats is
answered again but not stored again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.i18n import SOURCE
from bot.infra.runtime import Runtime
from bot.rating import intake
from bot.rating.ratings import RaterBarred, RatingRefused, barred, openness, record
from dialogs import keypad
from dialogs import messages as m
from dialogs.keypad import KeyState
from dialogs.types import Outcome, RecordRating
from store import cases as case_store
from store import evaluations as evaluation_store
from store.models import Case

HOTLINE_CODE = "12345"


@dataclass(frozen=True)
class Spoken:
    outcome: Outcome[KeyState]
    locale: str
    case_id: int | None = None  # the case the call rates, when it has one


def key_rules(rt: Runtime) -> keypad.KeyRules:
    return keypad.KeyRules(reasons=tuple(rt.policy.reasons))


async def _case_for(rt: Runtime, ticket: str, caller: str | None, now: datetime) -> Case:
    async with rt.db.read() as session:
        case = await case_store.by_no(session, ticket)
    if case is not None:
        return case
    name = rt.catalogs.text(SOURCE, m.HOTLINE_ITEM)
    parsed = intake.CaseIn.model_validate({
        "case_no": ticket, "item_code": HOTLINE_CODE, "item_name": name, "agency_code": HOTLINE_CODE,
        "agency_name": rt.catalogs.text(SOURCE, m.HOTLINE_AGENCY), "completed_at": now.isoformat(),
        "applicant": {"phone": caller} if caller else None,
    })
    case, _created = await intake.ingest(rt, parsed, now, source="hotline")
    return case


async def call_started(rt: Runtime, ticket: str, caller: str | None, now: datetime) -> Spoken:
    case = await _case_for(rt, ticket, caller, now)
    async with rt.db.read() as session:
        assert case.id is not None
        if await barred(session, case, now):
            return Spoken(keypad.closed(m.VOICE_BARRED), case.locale, case.id)
        existing = await evaluation_store.for_case(session, case.id)
    if openness(rt, existing, now) == "closed":
        return Spoken(keypad.closed(m.VOICE_RATED), case.locale, case.id)
    return Spoken(keypad.start(), case.locale, case.id)


async def keys_pressed(rt: Runtime, ticket: str, state: KeyState, digits: str | None, call_sid: str,
                       now: datetime) -> Spoken:
    # What the keys do does not depend on the case (only the rating they store names it): a step that stores
    # nothing reads the case for its language alone, and the step that rates reads it once, locked, in the
    # transaction that stores the rating.
    outcome = keypad.press(state, digits, keypad.About(0), key_rules(rt))
    rating = next((e for e in outcome.effects if isinstance(e, RecordRating)), None)  # one per call, at its end
    if rating is None:
        async with rt.db.read() as session:
            case = await case_store.by_no(session, ticket)
        # a ticket we never started has nothing to rate
        return Spoken(outcome, case.locale) if case is not None else Spoken(keypad.closed(m.VOICE_GOODBYE), SOURCE)
    async with rt.db.write() as session:
        case = await case_store.by_no(session, ticket, lock=rt.db.locks_rows)
        if case is None:
            return Spoken(keypad.closed(m.VOICE_GOODBYE), SOURCE)
        assert case.id is not None
        refused = await store_rating(session, rt, case, replace(rating, case_id=case.id), f"call:{call_sid}", now)
    return Spoken(keypad.closed(refused) if refused else outcome, case.locale)


async def store_rating(session: AsyncSession, rt: Runtime, locked: Case, rating: RecordRating, ref: str,
                       now: datetime) -> str | None:
    """Store a call's rating of a case the caller holds locked once, however often its last step is posted
    (`ref`, the call's own id, is unique among evaluations); the message to close the call with when the rating
    is refused (the rater barred, the case rated already), else None. `record` refuses before it writes anything,
    so the caller's transaction goes on (the JSON dialog saves its call in it)."""
    # a call's rating, once stored, made the case rated: an unrated case holds none to look for
    if locked.rated_at is not None and await evaluation_store.by_ref(session, ref) is not None:
        return None
    try:
        await record(session, rt, locked, rating.grade, rating.reasons, None, "phone", now, ref=ref)
    except RaterBarred:
        return m.VOICE_BARRED
    except RatingRefused:
        return m.VOICE_RATED
    return None
