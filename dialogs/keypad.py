"""The 12345 after-call rating on a telephone keypad (Shantou art. 20): see keypad.md for its states.

A call has no conversation row: the whole state (which question, the grade chosen, how many silences
and wrong keys so far) rides in the query of the next `<Gather action=…>` URL, which the provider
signs on every request. A flushed Redis or a restarted worker therefore loses nothing of a call, and
a hang-up leaves nothing to clean up: an unfinished rating was never stored (CONTRACT).

`press(state, digits, rules)` is pure: it returns what to say, which question to ask next (if any)
and the rating to store when the caller has finished.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dialogs import messages as m
from dialogs.grades import PROMPT_DIGITS, Grade
from dialogs.types import Reply

REPEAT = "0"
MAX_SILENCES = 1  # "asked once more, then goodbye"
MAX_INVALID = 3  # wrong keys: re-prompted, three times at most, then goodbye
MAX_REASON_KEYS = 9  # one key per reason: a tenth reason has no key of its own


class Ask(StrEnum):
    GRADE = "grade"
    REASONS = "reasons"
    CALLBACK = "callback"  # the automated callback call: satisfied with the rectification? 1/2/3


# The callback call's keys, as its prompt states them (CONTRACT "callback results").
CALLBACK_KEYS: dict[str, str] = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}


@dataclass(frozen=True, slots=True)
class KeyState:
    ask: Ask = Ask.GRADE
    grade: Grade | None = None
    silences: int = 0
    invalid: int = 0


@dataclass(frozen=True, slots=True)
class KeyRules:
    reasons: tuple[str, ...]  # reason codes in the policy's order; key n = reason n (n ≤ 9)

    @property
    def keyed(self) -> tuple[tuple[int, str], ...]:
        return tuple((i + 1, code) for i, code in enumerate(self.reasons[:MAX_REASON_KEYS]))


@dataclass(frozen=True, slots=True)
class KeyOutcome:
    says: tuple[Reply, ...]
    ask: KeyState | None  # the next question (gathered with this state), or None: hang up
    grade: Grade | None = None  # a finished rating to store before answering
    reasons: tuple[str, ...] = ()
    result: str | None = None  # a callback result to store before answering

    @property
    def rating(self) -> bool:
        return self.grade is not None


def menu(state: KeyState, rules: KeyRules) -> Reply:
    if state.ask is Ask.GRADE:
        return Reply(m.VOICE_GRADE_MENU)
    if state.ask is Ask.CALLBACK:
        return Reply(m.VOICE_CALLBACK_MENU)
    return Reply(m.VOICE_REASONS_MENU, {"key_reasons": rules.keyed})


def start() -> KeyOutcome:
    """The call is handed over: greet and ask for the grade."""
    state = KeyState()
    return KeyOutcome((Reply(m.VOICE_WELCOME), Reply(m.VOICE_GRADE_MENU)), state)


def start_callback(item: str) -> KeyOutcome:
    """The automated callback call is answered: say what it is about and ask 1/2/3."""
    return KeyOutcome((Reply(m.VOICE_CALLBACK_INTRO, {"item": item}), Reply(m.VOICE_CALLBACK_MENU)),
                      KeyState(ask=Ask.CALLBACK))


def closed(key: str) -> KeyOutcome:
    """Nothing to rate on this call (rated already, or the rater barred): say why and hang up."""
    return KeyOutcome((Reply(key),), None)


def press(state: KeyState, digits: str | None, rules: KeyRules) -> KeyOutcome:
    """The keys pressed at the current question; None or "" is silence (Gather timed out)."""
    keys = (digits or "").strip().rstrip("#")
    if not keys:
        if state.silences >= MAX_SILENCES:
            return KeyOutcome((Reply(m.VOICE_GOODBYE),), None)
        nxt = replace(state, silences=state.silences + 1)
        return KeyOutcome((Reply(m.VOICE_NO_INPUT), menu(nxt, rules)), nxt)
    if keys == REPEAT:
        return KeyOutcome((menu(state, rules),), state)
    if state.ask is Ask.CALLBACK:
        result = CALLBACK_KEYS.get(keys)
        if result is None:
            return _invalid(state, rules)
        return KeyOutcome((Reply(m.VOICE_CALLBACK_THANKS),), None, result=result)
    if state.ask is Ask.GRADE:
        grade = PROMPT_DIGITS.get(keys)
        if grade is None:
            return _invalid(state, rules)
        if not grade.is_bad:
            return KeyOutcome((Reply(m.VOICE_THANKS),), None, grade)
        nxt = KeyState(ask=Ask.REASONS, grade=grade)
        return KeyOutcome((menu(nxt, rules),), nxt)
    codes = reason_keys(keys, rules)
    if codes is None:
        return _invalid(state, rules)
    assert state.grade is not None
    return KeyOutcome((Reply(m.VOICE_THANKS_BAD),), None, state.grade, codes)


def reason_keys(keys: str, rules: KeyRules) -> tuple[str, ...] | None:
    """"13" is reasons 1 and 3; each key once, in the order pressed. None when any key names no reason."""
    by_key = {str(n): code for n, code in rules.keyed}
    if not keys or any(k not in by_key for k in keys):
        return None
    return tuple(dict.fromkeys(by_key[k] for k in keys))


def _invalid(state: KeyState, rules: KeyRules) -> KeyOutcome:
    if state.invalid + 1 >= MAX_INVALID:
        return KeyOutcome((Reply(m.VOICE_INVALID), Reply(m.VOICE_GOODBYE)), None)
    nxt = replace(state, invalid=state.invalid + 1)
    return KeyOutcome((Reply(m.VOICE_INVALID), menu(nxt, rules)), nxt)
