"""The rating dialog: from a reminder (or a person writing in) to a stored grade and reasons.

See rating.md beside this file for the diagram of its states. The dialog is a pure function:
`step(state, inbound, context, rules, now)` returns an `Outcome` (dialogs/types.py, the one shape every
dialog answers in) with the next state (None once the conversation is over), the replies to send and the
effects to store. The application stores the effects before it sends the replies, so an acknowledgement
never runs ahead of the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from dialogs import messages as m
from dialogs.grades import Grade
from dialogs.keywords import KINDS as KEYWORD_KINDS
from dialogs.keywords import keyword
from dialogs.parse import clean_text, has_words, is_help, is_list_request, is_opt_out, parse_grade, read_reasons
from dialogs.types import AddText, CaseView, Context, Inbound, OptOut, Outcome, RecordRating, Reply

DIALOG = "rating"
OTHER = "other"


class Step(StrEnum):
    GRADE = "grade"  # waiting for 1–5
    REASONS = "reasons"  # bad grade given, waiting for reason numbers
    TEXT = "text"  # only 其他 chosen: waiting for the person's words (the rating is not stored yet)
    MORE_TEXT = "more_text"  # bad rating stored: an optional sentence may follow


@dataclass(frozen=True, slots=True)
class Rules:
    """The parts of the policy the dialog needs, handed in so that the core reads no configuration."""

    reasons: tuple[str, ...]  # reason codes, in the policy's order (numbered from 1)
    labels: tuple[str, ...]  # their labels in the policy, for people who write the label out
    ttl: timedelta = timedelta(hours=24)  # a conversation waiting for a grade or reasons
    more_text_ttl: timedelta = timedelta(minutes=30)  # waiting for the optional sentence
    max_reprompts: int = 2
    # WeChat (CONTRACT): a grade from a person with exactly one unrated case rates it, menu or not.
    rate_single_directly: bool = False


@dataclass(frozen=True, slots=True)
class State:
    DIALOG: ClassVar[str] = DIALOG

    case_id: int
    step: Step
    expires_at: datetime
    grade: Grade | None = None
    reasons: tuple[str, ...] = ()
    misses: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dialog": DIALOG,
            "case_id": self.case_id,
            "step": self.step.value,
            "expires_at": self.expires_at.isoformat(),
            "grade": self.grade.value if self.grade else None,
            "reasons": list(self.reasons),
            "misses": self.misses,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        return cls(
            case_id=int(data["case_id"]),
            step=Step(data["step"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            grade=Grade(data["grade"]) if data.get("grade") else None,
            reasons=tuple(data.get("reasons") or ()),
            misses=int(data.get("misses") or 0),
        )

    @property
    def blocks_rating(self) -> bool:
        """Whether the case is still waiting for its rating (not just for an optional sentence)."""
        return self.step is not Step.MORE_TEXT

    @property
    def locks_case(self) -> bool:
        return True  # a rating, or a sentence added to it, is written to the case

    @property
    def hands_over(self) -> bool:
        """An optional sentence may not come: the next message may be meant for another case."""
        return self.step is Step.MORE_TEXT


def numbered(rules: Rules) -> tuple[tuple[int, str], ...]:
    return tuple((i + 1, code) for i, code in enumerate(rules.reasons))


def remind(case: CaseView, rules: Rules, now: datetime) -> Outcome[State]:
    """The reminder opens the conversation for its case."""
    state = State(case_id=case.id, step=Step.GRADE, expires_at=now + rules.ttl)
    return Outcome(state, (_reminder(case),))


def _reminder(case: CaseView) -> Reply:
    return Reply(
        m.REMINDER,
        {"item": case.item_name, "agency": case.agency_name, "completed_at": case.completed_at,
         "link": case.link},
    )


def step(state: State | None, inbound: Inbound, ctx: Context, rules: Rules, now: datetime) -> Outcome[State]:
    """One message from the person; `state` is None when no conversation is open."""
    if inbound.kind in KEYWORD_KINDS:
        return keyword(inbound.kind, state)
    if ctx.barred_until is not None and ctx.barred_until > now and not is_opt_out(inbound.text):
        # Barred (Hainan art. 19): told until when; any open question is closed. Opting out stays possible.
        return Outcome(None, (Reply(m.BARRED, {"until": ctx.barred_until}),))
    if inbound.kind == "subscribe":
        return greet(ctx, rules, now)
    if inbound.kind == "media":
        return _media(state, ctx, rules, now)
    if is_help(inbound.text):
        return Outcome(state, (Reply(m.HELP),))
    if is_opt_out(inbound.text):
        return Outcome(None, (Reply(m.OPTED_OUT),), (OptOut(),))
    if is_list_request(inbound.text):
        return _listing(ctx, rules, now)
    if state is not None and (state.expires_at <= now or ctx.case is None or ctx.case.id != state.case_id):
        state = None
    if state is None:
        return _without_conversation(ctx, rules, now, inbound.text)
    case = ctx.case
    assert case is not None
    if state.step is Step.GRADE:
        return _on_grade(state, case, inbound.text, rules, now)
    if state.step is Step.REASONS:
        return _on_reasons(state, case, inbound.text, rules, now)
    if state.step is Step.TEXT:
        return _on_required_text(state, case, inbound.text, rules, now)
    return _on_more_text(state, inbound, ctx, rules, now)


def _media(state: State | None, ctx: Context, rules: Rules, now: datetime) -> Outcome[State]:
    """Nothing to read: say that only words are understood, then ask the open question again. It is not
    counted as a reply we failed to read (the person did not write anything wrong)."""
    sorry = Reply(m.TEXT_ONLY)
    if state is not None and (state.expires_at <= now or ctx.case is None or ctx.case.id != state.case_id):
        state = None
    if state is None or state.step is Step.MORE_TEXT:
        fresh = _without_conversation(ctx, rules, now)
        return Outcome(fresh.state or state, (sorry, *fresh.replies))
    case = ctx.case
    assert case is not None
    again = {Step.GRADE: Reply(m.GRADE_MENU, {"item": case.item_name, "link": case.link}),
             Step.REASONS: Reply(m.REPROMPT_REASONS, {"reasons": numbered(rules)}),
             Step.TEXT: Reply(m.ASK_TEXT)}[state.step]
    return Outcome(state, (sorry, again))


def greet(ctx: Context, rules: Rules, now: datetime) -> Outcome[State]:
    """A new follower: welcome, then the cases waiting for them (and the first one's menu is open)."""
    listing = _listing(ctx, rules, now)
    return Outcome(listing.state, (Reply(m.GREETING), *listing.replies))


def _listing(ctx: Context, rules: Rules, now: datetime) -> Outcome[State]:
    case = ctx.oldest_unrated
    if case is None:
        return Outcome(None, (Reply(m.NOTHING_TO_RATE if ctx.known else m.UNKNOWN_SENDER),))
    state = State(case_id=case.id, step=Step.GRADE, expires_at=now + rules.ttl)
    cases = ctx.unrated_cases or (case,)
    return Outcome(state, (Reply(m.LIST, {"count": max(ctx.unrated, len(cases)), "cases": cases}),))


def _without_conversation(ctx: Context, rules: Rules, now: datetime, text: str = "") -> Outcome[State]:
    """Contract: the message is not a grade; the person gets the menu of their oldest unrated case.
    On WeChat, a person with exactly one unrated case is understood at once."""
    case = ctx.oldest_unrated
    if case is None:
        return Outcome(None, (Reply(m.NOTHING_TO_RATE if ctx.known else m.UNKNOWN_SENDER),))
    state = State(case_id=case.id, step=Step.GRADE, expires_at=now + rules.ttl)
    if rules.rate_single_directly and ctx.unrated == 1 and parse_grade(text) is not None:
        return _on_grade(state, case, text, rules, now)
    menu = Reply(
        m.MENU,
        {"item": case.item_name, "completed_at": case.completed_at, "link": case.link,
         "count": max(ctx.unrated, 1)},
    )
    return Outcome(state, (menu,))


def _missed(state: State, case: CaseView, again: Reply, rules: Rules, now: datetime) -> Outcome[State]:
    """Ask again twice at most; after that, point to the rating page, which cannot be misread."""
    misses = state.misses + 1
    nxt = replace(state, misses=misses, expires_at=now + rules.ttl)
    if misses > rules.max_reprompts:
        return Outcome(nxt, (Reply(m.USE_LINK, {"link": case.link}),))
    return Outcome(nxt, (again,))


def _on_grade(state: State, case: CaseView, text: str, rules: Rules, now: datetime) -> Outcome[State]:
    grade = parse_grade(text)
    if grade is None:
        return _missed(state, case, Reply(m.REPROMPT, {"item": case.item_name}), rules, now)
    if not grade.is_bad:
        return Outcome(None, (Reply(m.THANKS),), (RecordRating(case.id, grade),))
    nxt = State(case_id=case.id, step=Step.REASONS, expires_at=now + rules.ttl, grade=grade)
    return Outcome(nxt, (Reply(m.ASK_REASONS, {"reasons": numbered(rules)}),))


def _on_reasons(state: State, case: CaseView, text: str, rules: Rules, now: datetime) -> Outcome[State]:
    """Reason numbers, perhaps with the person's explanation after them ("1，等了两个小时")."""
    read = read_reasons(text, rules.labels)
    if read is None:
        again = Reply(m.REPROMPT_REASONS, {"reasons": numbered(rules)})
        return _missed(state, case, again, rules, now)
    numbers, words = read
    assert state.grade is not None
    codes = tuple(rules.reasons[n - 1] for n in numbers)
    if OTHER in codes and not words:  # 其他 says nothing by itself: the person's words are required
        nxt = State(case_id=case.id, step=Step.TEXT, expires_at=now + rules.ttl, grade=state.grade,
                    reasons=codes)
        return Outcome(nxt, (Reply(m.ASK_TEXT),))
    if words:
        return Outcome(None, (Reply(m.THANKS_TEXT),), (RecordRating(case.id, state.grade, codes, words),))
    nxt = State(case_id=case.id, step=Step.MORE_TEXT, expires_at=now + rules.more_text_ttl,
                grade=state.grade, reasons=codes)
    return Outcome(nxt, (Reply(m.THANKS_BAD),), (RecordRating(case.id, state.grade, codes),))


def _on_required_text(state: State, case: CaseView, text: str, rules: Rules, now: datetime) -> Outcome[State]:
    words = clean_text(text)
    if not has_words(words):
        return _missed(state, case, Reply(m.ASK_TEXT), rules, now)
    assert state.grade is not None
    rating = RecordRating(case.id, state.grade, state.reasons, words)
    return Outcome(None, (Reply(m.THANKS_TEXT),), (rating,))


def _on_more_text(state: State, inbound: Inbound, ctx: Context, rules: Rules, now: datetime) -> Outcome[State]:
    """A sentence is added to the stored rating; a bare digit is more likely meant for the next case."""
    words = clean_text(inbound.text)
    if not has_words(words):
        return _without_conversation(ctx, rules, now, inbound.text)
    return Outcome(None, (Reply(m.THANKS_TEXT),), (AddText(state.case_id, words),))
