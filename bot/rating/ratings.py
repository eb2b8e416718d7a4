"""The rules of a rating, whatever channel it came by (Shantou ch. 6; CONTRACT "Rules of detail").

One rating per case, then one follow-up (追加评价) inside the follow-up window counted from the first
rating (a default counts as one). A bad grade needs a reason or words. Storing a rating ends every
conversation still asking about the case and cancels its pending reminder and default; a bad one
opens the case's work order. A rating of a case in a batch applies to every case of the batch (Shantou
art. 24: the batch is rated once). A rating of an item of a bundle (一件事, Shantou art. 31) rates that item
only, unless the rater chose the bundle (`scope` "bundle"): then every item not yet rated gets a copy of it,
each bad copy opening its own agency's work order, and the copies are one review with their origin (the
blacklist counts reviews). An item rated already keeps its rating: a bundle rating is not its follow-up,
since the rater chose the whole matter, not a second word on that item. A rater barred by the blacklist
rates nothing. A 承诺件 or 联办件 also takes one clerk-only rating per window visit (`scope` "visit", Shantou
art. 22, 28, 29: `record_visit`), which is not the case's rating. A work order's satisfied callback answer
is the case's latest rating but not one of its "one rating and one follow-up" (bot/work_orders/lifecycle.py stores
it; a dissatisfied answer is no rating at all, Hainan art. 15).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.figures.reporting import queue as reporting
from bot.infra.limits import code_problem, text_problem
from bot.infra.refusals import Invalid, NotNow, NotYours
from bot.infra.runtime import Runtime
from bot.policy import handling
from bot.rating.intake import FieldError
from bot.work_orders import lifecycle as work_orders
from dialogs.grades import Grade, parse_grade_name
from dialogs.rating import OTHER
from store import cases as case_store
from store import contacts as contact_store
from store import conversations
from store import evaluations as evaluation_store
from store.models import Case, Evaluation

Scope = Literal["item", "bundle", "visit"]
SCOPES: tuple[Scope, ...] = ("item", "bundle", "visit")

CHANNELS = ("sms", "wechat", "miniprogram", "phone", "web", "qr", "hall", "terminal", "callback", "default")


class RatingRefused(NotNow):
    """The case cannot take this rating now (rated already, the follow-up window closed)."""


class RaterBarred(NotYours, RatingRefused):
    """The rater is on the blacklist until `until`: nothing they rate is stored. Not theirs to rate (said so),
    and a rating refused all the same (a caller catching RatingRefused stores nothing either)."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"the rater is barred from rating until {until.isoformat()}")
        self.until = until


Openness = Literal["first", "followup", "closed"]


def followup_closes(rt: Runtime, existing: list[Evaluation]) -> datetime | None:
    """When the one follow-up stops being accepted; None when there is none to take (unrated, or used)."""
    existing = [e for e in existing if e.via != "callback"]
    if not existing or len(existing) >= 2 or any(e.is_followup for e in existing):
        return None
    return rt.timing.window_end(existing[0].created_at, rt.policy.followup_window)


def closed_kind(existing: list[Evaluation]) -> str:
    """Why a closed case takes nothing more: "used" (a rating and its follow-up) or "expired" (the window is over),
    as the rating page and the mini-program say it."""
    own = [e for e in existing if e.via != "callback"]
    return "used" if len(own) >= 2 or any(e.is_followup for e in own) else "expired"


def chosen(doc: dict[str, Any]) -> tuple[Grade, tuple[str, ...], str | None]:
    """The grade, the reasons (each once, in order) and the words of a rating body `rating_errors` passed."""
    grade = parse_grade_name(doc["grade"])
    assert grade is not None
    return grade, tuple(dict.fromkeys(doc.get("reasons") or [])), (doc.get("text") or "").strip() or None


def openness(rt: Runtime, existing: list[Evaluation], now: datetime) -> Openness:
    """Whether a case takes its first rating, its one follow-up, or nothing more."""
    if not any(e.via != "callback" for e in existing):
        return "first"
    closes = followup_closes(rt, existing)
    return "followup" if closes is not None and rt.timing.open_at(closes, now) else "closed"


async def barred(session: AsyncSession, case: Case, now: datetime,
                 known: Mapping[int, datetime | None] | None = None) -> datetime | None:
    """Until when the case's rater is barred, if they are (any of the case's addresses counts). `known`: the bars
    of contacts read already in this transaction (the inbound road's sender), which need no second look."""
    ids = [i for i in (case.phone_contact_id, case.wechat_contact_id, case.mp_contact_id) if i]
    known = known or {}
    ends = [end for i in ids if i in known and (end := known[i]) is not None and end > now]
    looked = await contact_store.barred_until(session, [i for i in ids if i not in known], now)
    if looked is not None:
        ends.append(looked)
    return max(ends) if ends else None


async def record(session: AsyncSession, rt: Runtime, case: Case, grade: Grade, reasons: tuple[str, ...],
                 text: str | None, channel: str, now: datetime, *, is_default: bool = False,
                 ref: str | None = None, via: str | None = None, origin_id: int | None = None,
                 scope: Scope = "item", terminal_id: str | None = None,
                 known_bars: Mapping[int, datetime | None] | None = None,
                 saves_conversation_of: int | None = None, client_hash: str | None = None,
                 device_hash: str | None = None, window_no: str | None = None) -> Evaluation:
    """Store a rating of a case whose row the caller holds locked (or, on SQLite, inside BEGIN IMMEDIATE).

    `scope` "bundle" also rates the case's bundle (the caller checked `scope_error` first: a case without a
    `bundle_no` has no bundle to rate, and guessing "item" would store less than the rater asked for).
    `client_hash`, `device_hash`: where a page's rating came from (the supervision signals' sources); `window_no`:
    the window whose rating device took it (channel `hall`).
    `known_bars`: see `barred`. `saves_conversation_of`: the contact whose conversation the caller writes itself
    after this (the inbound road's sender); when the case has no other contact, no other conversation can be
    about it (they are opened for a case's own contacts), and none is looked for.

    A case never rated (`rated_at` unset, read under the caller's lock) has no rating that counts here:
    every one is stored by this function, which sets it; a callback's answer comes after a rating and a
    window visit's is not the case's. So its ratings are read only when it has some."""
    assert case.id is not None
    if scope == "bundle" and not case.bundle_no:
        raise Invalid("the case is in no bundle: scope 'bundle' does not apply")
    if not is_default:
        until = await barred(session, case, now, known_bars)
        if until is not None:
            raise RaterBarred(until)
    existing = await evaluation_store.for_case(session, case.id) if case.rated_at is not None else []
    state = openness(rt, existing, now)
    if is_default and state != "first":
        raise RatingRefused("the case is rated already: no default")
    if state == "closed":
        closes = followup_closes(rt, existing)
        raise RatingRefused(f"the follow-up window closed at {closes.isoformat()}" if closes
                            else "the case has its rating and its follow-up already")
    evaluation = Evaluation(
        case_id=case.id, grade=grade.value, score=grade.score, reasons=list(reasons), text=text,
        channel=channel, is_default=is_default, is_followup=state == "followup", status="valid", via=via,
        ref=ref, origin_id=origin_id, created_at=now,
        terminal_id=terminal_id,  # the self-service terminal's number (终端机编号, Shantou art. 23), if given
        client_hash=client_hash, device_hash=device_hash, window_no=window_no,
    )
    session.add(evaluation)
    if case.rated_at is None:
        case.rated_at = now
    case.remind_at = None
    case.default_at = None
    session.add(case)
    others = {case.phone_contact_id, case.wechat_contact_id, case.mp_contact_id} - {None, saves_conversation_of}
    if others or saves_conversation_of is None:
        await conversations.close_for_case(session, case.id, now)
    await session.flush()
    await reporting.rated(session, rt, case, evaluation, now)  # version 1, upward, in this same transaction
    rt.metrics.ratings.labels(channel, grade.value).inc()
    if grade.is_bad and not is_default and via != "batch":  # a batch's one review: the one work order
        await work_orders.open_for(session, rt, case, evaluation, now)
    if via is None and not is_default:
        await _apply_to_siblings(session, rt, case, evaluation, now, scope)
    return evaluation


async def _apply_to_siblings(session: AsyncSession, rt: Runtime, case: Case, evaluation: Evaluation,
                             now: datetime, scope: Scope) -> None:
    """A batch is rated once for all its cases; a bundle's rating, when the rater chose the bundle, goes to
    the items not rated yet (an item's own rating, or its default, stands)."""
    groups = [("batch", await case_store.siblings(session, case, "batch_no", lock=rt.db.locks_rows))]
    if scope == "bundle":
        groups.append(("bundle", await case_store.siblings(session, case, "bundle_no", lock=rt.db.locks_rows)))
    for via, siblings in groups:
        for sibling in siblings:
            assert sibling.id is not None
            if via == "bundle" and await evaluation_store.for_case(session, sibling.id):
                continue  # rated already (by its rater, a batch or a default): its own rating stands
            try:
                await record(session, rt, sibling, Grade(evaluation.grade), tuple(evaluation.reasons or ()),
                             evaluation.text, evaluation.channel, now, via=via, origin_id=evaluation.id)
            except RatingRefused:
                continue  # this sibling takes no more ratings


async def record_visit(session: AsyncSession, rt: Runtime, case: Case, grade: Grade, reasons: tuple[str, ...],
                       text: str | None, channel: str, now: datetime, *, visit_id: str, staff_id: str,
                       staff_name: str | None, terminal_id: str | None = None) -> Evaluation:
    """Store the clerk-only rating of one window visit of a 承诺件 or 联办件 (Shantou art. 22: 每次到窗口办理后均可
    对服务人员进行1次评价; art. 28, 29: 接受申请材料时评价窗口人员), the case's row held locked as for `record`.

    One rating per visit, no follow-up: the 追加评价 of art. 22 is the case's. It is not the case's rating: the
    reminder, the default and the case's one rating and follow-up go on as if it were not there, and only the
    staff figures count it (store/stats.py). A bad one opens a work order naming the visit's clerk."""
    assert case.id is not None
    if not handling.takes_visits(case.kind):
        raise Invalid("only a promised or joint case is rated at its window visits")
    until = await barred(session, case, now)
    if until is not None:
        raise RaterBarred(until)
    if any(e.via != "callback" for e in await evaluation_store.visits_for_case(session, case.id, visit_id)):
        raise RatingRefused(f"the visit {visit_id!r} of this case is rated already: one rating per visit")
    evaluation = Evaluation(
        case_id=case.id, grade=grade.value, score=grade.score, reasons=list(reasons), text=text, channel=channel,
        status="valid", visit_id=visit_id, staff_id=staff_id, staff_name=staff_name, terminal_id=terminal_id,
        created_at=now)
    session.add(evaluation)
    await session.flush()
    await reporting.rated(session, rt, case, evaluation, now)
    rt.metrics.ratings.labels(channel, grade.value).inc()
    if grade.is_bad:
        await work_orders.open_for(session, rt, case, evaluation, now)
    return evaluation


def scope_error(case: Case, scope: Scope, doc: dict[str, Any] | None = None) -> FieldError | None:
    """Why `scope` does not fit `case`: "bundle" names a 一件事 the case must belong to (Shantou art. 31); "visit"
    a window visit of a 承诺件 or 联办件 (art. 22, 28, 29), whose clerk is the body's or else the case's."""
    if scope == "bundle" and not case.bundle_no:
        return FieldError("scope", "'bundle' needs a case with a bundle_no; this case is in no bundle")
    if scope == "visit" and not handling.takes_visits(case.kind):
        return FieldError("scope", f"'visit' needs a case of kind {' or '.join(handling.VISIT_KINDS)}; "
                                   f"this case is {case.kind or 'instant'}")
    if scope == "visit" and not (doc or {}).get("staff_id") and not case.staff_id:
        return FieldError("staff_id", "required: the clerk who served the visit (the case names none)")
    return None


def scope_of(doc: dict[str, Any]) -> Scope:
    """The scope of a body `rating_errors` accepted: "item" unless the rater chose the bundle or a visit."""
    return doc["scope"] if doc.get("scope") in ("bundle", "visit") else "item"


def _visit_errors(doc: dict[str, Any]) -> list[FieldError]:
    """A visit rating names its visit (the business system's id of it, one rating each) and may name the clerk
    who served it, who is not always the case's (the result is handed out by another window)."""
    errs = []
    if doc.get("scope") == "visit":
        visit_id = doc.get("visit_id")
        if not isinstance(visit_id, str) or not visit_id.strip() or len(visit_id) > 100:
            errs.append(FieldError("visit_id", "required with scope 'visit': the visit's id, 1 to 100 characters"))
        elif code_problem(visit_id):
            errs.append(FieldError("visit_id", code_problem(visit_id)))  # type: ignore[arg-type]
    elif "visit_id" in doc:
        errs.append(FieldError("visit_id", "only a rating with scope 'visit' names a visit"))
    for field in ("staff_id", "staff_name"):
        value = doc.get(field)
        if value is None:
            continue
        if doc.get("scope") != "visit":
            errs.append(FieldError(field, "only a rating with scope 'visit' names its clerk; "
                                          "a case's rating rates the case's clerk"))
        elif not isinstance(value, str) or not value.strip() or len(value) > 100:
            errs.append(FieldError(field, "expected a string of 1 to 100 characters"))
        elif problem := (code_problem(value) if field == "staff_id" else text_problem(value)):
            errs.append(FieldError(field, problem))
    return errs


def _terminal_errors(terminal_id: Any) -> list[FieldError]:
    """A terminal's number (终端机编号, Shantou art. 23) is a code: a short string without control characters.
    It is optional on every channel: a terminal sends it with `terminal`, and a QR code stuck on a terminal
    (art. 18) may carry it too; the contract's `terminal` rating without one stays a 201."""
    if terminal_id is None:
        return []
    if not isinstance(terminal_id, str) or not terminal_id.strip() or len(terminal_id) > 100:
        return [FieldError("terminal_id", "expected the terminal's number: a string of 1 to 100 characters")]
    problem = code_problem(terminal_id)
    return [FieldError("terminal_id", problem)] if problem else []


def rating_errors(doc: Any, reason_codes: set[str], *, channel: bool = True) -> list[FieldError]:
    """What is wrong with a rating body (the API's and the mini-program's), field by field."""
    if not isinstance(doc, dict):
        return [FieldError("body", "expected a JSON object")]
    errs = []
    if not isinstance(doc.get("case_no"), str) or not doc["case_no"]:
        errs.append(FieldError("case_no", "required: the case's case_no"))
    elif code_problem(doc["case_no"]):
        errs.append(FieldError("case_no", code_problem(doc["case_no"])))  # type: ignore[arg-type]
    grade = parse_grade_name(doc.get("grade"))
    if grade is None:
        errs.append(FieldError("grade", "expected one of very_satisfied, satisfied, basically_satisfied, "
                                        "dissatisfied, very_dissatisfied"))
    if channel and (doc.get("channel") not in CHANNELS or doc.get("channel") == "default"):
        errs.append(FieldError("channel", f"expected one of {', '.join(c for c in CHANNELS if c != 'default')}"))
    if "scope" in doc and doc["scope"] not in SCOPES:  # a typo must not rate less (or more) than meant
        errs.append(FieldError("scope", f"expected one of {', '.join(SCOPES)}"))
    reasons = doc.get("reasons", [])
    if reasons is None:
        reasons = []
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        errs.append(FieldError("reasons", "expected a list of reason codes"))
        reasons = []
    unknown = [r for r in reasons if r not in reason_codes]
    if unknown:
        errs.append(FieldError("reasons", f"unknown reason code(s) {unknown}; known: {sorted(reason_codes)}"))
    text = doc.get("text")
    if text is not None and not isinstance(text, str):
        errs.append(FieldError("text", "expected a string"))
        text = None
    if isinstance(text, str) and len(text) > 2000:
        errs.append(FieldError("text", "at most 2000 characters"))
    if text_problem(text):
        errs.append(FieldError("text", text_problem(text)))  # type: ignore[arg-type]
    errs += _terminal_errors(doc.get("terminal_id"))
    errs += _visit_errors(doc)
    if grade is not None and grade.is_bad and not reasons and not (text and text.strip()):
        errs.append(FieldError("reasons", "a bad grade needs at least one reason or a text"))
    # "other" says nothing by itself: it opens the text that names the reason (Shantou art. 23; CONTRACT
    # "Rules of detail"), with other reasons beside it or alone, as the rating page and the dialogs ask.
    if grade is not None and grade.is_bad and OTHER in reasons and not (isinstance(text, str) and text.strip()):
        errs.append(FieldError("text", f"required when the reasons include {OTHER!r}: say what went wrong"))
    return errs
