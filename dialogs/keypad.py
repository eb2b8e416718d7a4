"""The 12345 after-call rating on a telephone keypad (Shantou art. 20): see keypad.md for its states.

A call has no conversation row: the whole state (which question, the grade chosen, how many silences
and wrong keys so far) rides in the query of the next `<Gather action=…>` URL, which the provider
signs on every request. A flushed Redis or a restarted worker therefore loses nothing of a call, and
a hang-up leaves nothing to clean up: an unfinished rating was never stored (CONTRACT).

`press(state, digits, about, rules)` is pure and answers in the `Outcome` every dialog answers in: what to
say, the next question's state (None: hang up) and, once the caller has finished, the effect to store (the
rating of the call's case, or the callback result of its work order: `about` is what the application knows
the call is for, as the rating dialog's `Context` is). As JSON the state is an envelope like every dialog's
(dialogs/registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

from dialogs import messages as m
from dialogs.grades import PROMPT_DIGITS, Grade
from dialogs.types import Outcome, RecordCallback, RecordRating, Reply

DIALOG = "keypad"

REPEAT = "0"
MAX_SILENCES = 1  # "asked once more, then goodbye"
MAX_INVALID = 3  # wrong keys: re-prompted, three times at most, then goodbye
MAX_REASON_KEYS = 9  # one key per reason: a tenth reason has no key of its own
GRADE_TIMEOUT = 8  # seconds a switch waits for the key of a grade or a callback answer
REASONS_TIMEOUT = 10  # and for the reasons' keys (several, then #)


class Ask(StrEnum):
    GRADE = "grade"
    REASONS = "reasons"
    CALLBACK = "callback"  # the automated callback call: satisfied with the rectification? 1/2/3


# The prompts a centre may record once and play instead of its text-to-speech: those without values (the reasons
# menu names the policy's reasons and the callback's introduction the item, so they are always spoken).
RECORDABLE: tuple[str, ...] = (m.VOICE_WELCOME, m.VOICE_GRADE_MENU, m.VOICE_NO_INPUT, m.VOICE_INVALID, m.VOICE_THANKS,
                               m.VOICE_THANKS_BAD, m.VOICE_GOODBYE, m.VOICE_RATED, m.VOICE_BARRED,
                               m.VOICE_CALLBACK_MENU, m.VOICE_CALLBACK_THANKS)

# The callback call's keys, as its prompt states them (CONTRACT "callback results").
CALLBACK_KEYS: dict[str, str] = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}


@dataclass(frozen=True, slots=True)
class KeyState:
    DIALOG: ClassVar[str] = DIALOG

    ask: Ask = Ask.GRADE
    grade: Grade | None = None
    silences: int = 0
    invalid: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"dialog": DIALOG, "ask": self.ask.value, "grade": self.grade.value if self.grade else None,
                "silences": self.silences, "invalid": self.invalid}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyState:
        return cls(ask=Ask(data["ask"]), grade=Grade(data["grade"]) if data.get("grade") else None,
                   silences=int(data.get("silences") or 0), invalid=int(data.get("invalid") or 0))


@dataclass(frozen=True, slots=True)
class About:
    """What a call is for, as the application knows it: the case rated, and a callback call's work order."""

    case_id: int
    work_order_id: int | None = None


@dataclass(frozen=True, slots=True)
class KeyRules:
    reasons: tuple[str, ...]  # reason codes in the policy's order; key n = reason n (n ≤ 9)

    @property
    def keyed(self) -> tuple[tuple[int, str], ...]:
        return tuple((i + 1, code) for i, code in enumerate(self.reasons[:MAX_REASON_KEYS]))


def menu(state: KeyState, rules: KeyRules) -> Reply:
    if state.ask is Ask.GRADE:
        return Reply(m.VOICE_GRADE_MENU)
    if state.ask is Ask.CALLBACK:
        return Reply(m.VOICE_CALLBACK_MENU)
    return Reply(m.VOICE_REASONS_MENU, {"key_reasons": rules.keyed})


def start() -> Outcome[KeyState]:
    """The call is handed over: greet and ask for the grade."""
    return Outcome(KeyState(), (Reply(m.VOICE_WELCOME), Reply(m.VOICE_GRADE_MENU)))


def start_callback(item: str) -> Outcome[KeyState]:
    """The automated callback call is answered: say what it is about and ask 1/2/3."""
    return Outcome(KeyState(ask=Ask.CALLBACK), (Reply(m.VOICE_CALLBACK_INTRO, {"item": item}),
                                                Reply(m.VOICE_CALLBACK_MENU)))


def closed(key: str) -> Outcome[KeyState]:
    """Nothing to rate on this call (rated already, or the rater barred): say why and hang up."""
    return Outcome(None, (Reply(key),))


def press(state: KeyState, digits: str | None, about: About, rules: KeyRules) -> Outcome[KeyState]:
    """The keys pressed at the current question; None or "" is silence (Gather timed out)."""
    keys = (digits or "").strip().rstrip("#")
    if not keys:
        if state.silences >= MAX_SILENCES:
            return Outcome(None, (Reply(m.VOICE_GOODBYE),))
        nxt = replace(state, silences=state.silences + 1)
        return Outcome(nxt, (Reply(m.VOICE_NO_INPUT), menu(nxt, rules)))
    if keys == REPEAT:
        return Outcome(state, (menu(state, rules),))
    if state.ask is Ask.CALLBACK:
        result = CALLBACK_KEYS.get(keys)
        if result is None or about.work_order_id is None:
            return _invalid(state, rules)
        return Outcome(None, (Reply(m.VOICE_CALLBACK_THANKS),), (RecordCallback(about.work_order_id, result),))
    if state.ask is Ask.GRADE:
        grade = PROMPT_DIGITS.get(keys)
        if grade is None:
            return _invalid(state, rules)
        if not grade.is_bad:
            return Outcome(None, (Reply(m.VOICE_THANKS),), (RecordRating(about.case_id, grade),))
        nxt = KeyState(ask=Ask.REASONS, grade=grade)
        return Outcome(nxt, (menu(nxt, rules),))
    codes = reason_keys(keys, rules)
    if codes is None:
        return _invalid(state, rules)
    assert state.grade is not None
    return Outcome(None, (Reply(m.VOICE_THANKS_BAD),), (RecordRating(about.case_id, state.grade, codes),))


def reason_keys(keys: str, rules: KeyRules) -> tuple[str, ...] | None:
    """"13" is reasons 1 and 3; each key once, in the order pressed. None when any key names no reason."""
    by_key = {str(n): code for n, code in rules.keyed}
    if not keys or any(k not in by_key for k in keys):
        return None
    return tuple(dict.fromkeys(by_key[k] for k in keys))


def _invalid(state: KeyState, rules: KeyRules) -> Outcome[KeyState]:
    if state.invalid + 1 >= MAX_INVALID:
        return Outcome(None, (Reply(m.VOICE_INVALID), Reply(m.VOICE_GOODBYE)))
    nxt = replace(state, invalid=state.invalid + 1)
    return Outcome(nxt, (Reply(m.VOICE_INVALID), menu(nxt, rules)))
