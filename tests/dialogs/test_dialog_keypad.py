"""Tests for dialogs.keypad: the keypad dialogs as pure functions (see dialogs/keypad.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dialogs import messages as m
from dialogs.grades import Grade
from dialogs.keypad import (
    CALLBACK_KEYS,
    MAX_INVALID,
    MAX_REASON_KEYS,
    About,
    Ask,
    KeyRules,
    KeyState,
    closed,
    menu,
    reason_keys,
    start,
    start_callback,
)
from dialogs.keypad import press as press_on
from dialogs.types import Outcome, RecordCallback, RecordRating, Reply

G = Grade
CODES = ("attitude", "efficiency", "process", "guide", "trips", "platform", "fees", "other")
RULES = KeyRules(reasons=CODES)
KEYED = tuple(enumerate(CODES, start=1))
GRADE_Q = KeyState()
CALLBACK_Q = KeyState(ask=Ask.CALLBACK)


def reasons_q(grade: Grade = G.DISSATISFIED, **kw: int) -> KeyState:
    return KeyState(ask=Ask.REASONS, grade=grade, **kw)


CASE, WO = 41, 7
CALL = About(CASE)  # the after-call rating of case 41
CALLBACK_CALL = About(CASE, WO)  # the callback call about work order 7 (of case 41)


def press(state: KeyState, digits: str | None, rules: KeyRules) -> Outcome[KeyState]:
    """The keys pressed, on the call the question belongs to."""
    return press_on(state, digits, CALLBACK_CALL if state.ask is Ask.CALLBACK else CALL, rules)


def keys_of(outcome: Outcome[KeyState]) -> list[str]:
    return [r.key for r in outcome.replies]


def rating_of(outcome: Outcome[KeyState]) -> RecordRating | None:
    """The finished rating the outcome asks to store (at most one)."""
    found = [e for e in outcome.effects if isinstance(e, RecordRating)]
    assert len(found) <= 1 and all(e.case_id == CASE for e in found)
    return found[0] if found else None


def result_of(outcome: Outcome[KeyState]) -> str | None:
    found = [e for e in outcome.effects if isinstance(e, RecordCallback)]
    assert len(found) <= 1 and all(e.work_order_id == WO for e in found)
    return found[0].result if found else None


# --- start ---------------------------------------------------------------------------------------------


def test_start_greets_and_asks_for_the_grade():
    outcome = start()

    assert keys_of(outcome) == [m.VOICE_WELCOME, m.VOICE_GRADE_MENU]
    assert outcome.state == KeyState(ask=Ask.GRADE, grade=None, silences=0, invalid=0)
    assert outcome.effects == ()


def test_start_callback_names_the_item_and_asks_one_two_three():
    outcome = start_callback("居民身份证换领")

    assert outcome.replies == (Reply(m.VOICE_CALLBACK_INTRO, {"item": "居民身份证换领"}), Reply(m.VOICE_CALLBACK_MENU))
    assert outcome.state == KeyState(ask=Ask.CALLBACK)
    assert outcome.effects == ()


def test_closed_says_why_and_hangs_up():
    outcome = closed(m.VOICE_RATED)

    assert keys_of(outcome) == [m.VOICE_RATED] and outcome.state is None and rating_of(outcome) is None


# --- the grade question --------------------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "grade"), [("1", G.VERY_SATISFIED), ("2", G.SATISFIED),
                                              ("3", G.BASICALLY_SATISFIED)])
def test_a_good_grade_is_a_finished_rating(digit, grade):
    outcome = press(GRADE_Q, digit, RULES)

    assert rating_of(outcome) == RecordRating(CASE, grade)
    assert outcome.state is None and keys_of(outcome) == [m.VOICE_THANKS]


@pytest.mark.parametrize(("digit", "grade"), [("4", G.DISSATISFIED), ("5", G.VERY_DISSATISFIED)])
def test_a_bad_grade_asks_for_reasons_and_is_not_yet_a_rating(digit, grade):
    outcome = press(GRADE_Q, digit, RULES)

    assert rating_of(outcome) is None
    assert outcome.state == KeyState(ask=Ask.REASONS, grade=grade)
    assert outcome.replies == (Reply(m.VOICE_REASONS_MENU, {"key_reasons": KEYED}),)


def test_a_bad_grade_starts_the_reasons_question_with_fresh_counts():
    outcome = press(KeyState(silences=1, invalid=2), "4", RULES)

    assert outcome.state == KeyState(ask=Ask.REASONS, grade=G.DISSATISFIED, silences=0, invalid=0)


@pytest.mark.parametrize("state", [GRADE_Q, KeyState(invalid=2, silences=1), reasons_q(), reasons_q(invalid=1),
                                   CALLBACK_Q])
def test_zero_repeats_the_question_without_counting_anything(state):
    outcome = press(state, "0", RULES)

    assert outcome.state == state and rating_of(outcome) is None and result_of(outcome) is None
    assert outcome.replies == (menu(state, RULES),)


@pytest.mark.parametrize("digits", ["6", "7", "8", "9", "*", "12", "x"])
def test_a_wrong_key_at_the_grade_question_re_prompts(digits):
    outcome = press(GRADE_Q, digits, RULES)

    assert keys_of(outcome) == [m.VOICE_INVALID, m.VOICE_GRADE_MENU]
    assert outcome.state == KeyState(invalid=1) and rating_of(outcome) is None


@pytest.mark.parametrize("state", [GRADE_Q, reasons_q(), CALLBACK_Q])
def test_the_third_wrong_key_says_goodbye(state):
    outcomes = []
    for _ in range(MAX_INVALID):
        outcome = press(state, "9", RULES)
        outcomes.append(outcome)
        state = outcome.state
        if state is None:
            break

    assert MAX_INVALID == 3 and len(outcomes) == 3
    assert [o.state is None for o in outcomes] == [False, False, True]
    assert keys_of(outcomes[-1]) == [m.VOICE_INVALID, m.VOICE_GOODBYE]
    assert not any(o.effects for o in outcomes)


@pytest.mark.parametrize("state", [GRADE_Q, reasons_q(), CALLBACK_Q])
@pytest.mark.parametrize("silence", [None, "", "#", "  "])
def test_silence_is_asked_once_more_then_goodbye(state, silence):
    once_more = press(state, silence, RULES)
    goodbye = press(once_more.state, silence, RULES)

    assert keys_of(once_more) == [m.VOICE_NO_INPUT, menu(state, RULES).key]
    assert once_more.state == replace(state, silences=1)
    assert goodbye.state is None and keys_of(goodbye) == [m.VOICE_GOODBYE]
    assert once_more.effects == () and goodbye.effects == ()


def test_a_wrong_key_keeps_the_silence_already_counted():
    outcome = press(KeyState(silences=1), "7", RULES)

    assert outcome.state == KeyState(silences=1, invalid=1)
    assert keys_of(press(outcome.state, None, RULES)) == [m.VOICE_GOODBYE]


# --- the reasons question ------------------------------------------------------------------------------


@pytest.mark.parametrize(("digits", "codes"), [
    ("1", ("attitude",)), ("13", ("attitude", "process")), ("13#", ("attitude", "process")),
    ("31#", ("process", "attitude")), ("1331", ("attitude", "process")), ("8#", ("other",)),
    (" 2# ", ("efficiency",)),
])
@pytest.mark.parametrize("grade", [G.DISSATISFIED, G.VERY_DISSATISFIED])
def test_reason_keys_finish_the_bad_rating(grade, digits, codes):
    outcome = press(reasons_q(grade), digits, RULES)

    assert rating_of(outcome) == RecordRating(CASE, grade, codes)
    assert outcome.state is None and keys_of(outcome) == [m.VOICE_THANKS_BAD]


@pytest.mark.parametrize("digits", ["9", "19", "10", "0#1", "1#3", "*", "##"])
def test_a_key_naming_no_reason_re_prompts_with_the_reasons(digits):
    outcome = press(reasons_q(), digits, RULES)

    if digits == "##":  # only the finishing key: no reason at all, as if nothing were pressed
        assert keys_of(outcome)[0] == m.VOICE_NO_INPUT
    else:
        assert keys_of(outcome) == [m.VOICE_INVALID, m.VOICE_REASONS_MENU]
        assert outcome.state == reasons_q(invalid=1)
    assert rating_of(outcome) is None


def test_reason_keys_reads_each_digit_as_one_reason():
    assert reason_keys("13", RULES) == ("attitude", "process")
    assert reason_keys("2", RULES) == ("efficiency",)
    assert reason_keys("87654321", RULES) == tuple(reversed(CODES))
    assert reason_keys("", RULES) is None
    assert reason_keys("9", RULES) is None
    assert reason_keys("0", RULES) is None


def test_only_nine_reasons_have_keys():
    rules = KeyRules(reasons=tuple(f"r{n}" for n in range(1, 12)))

    assert [n for n, _ in rules.keyed] == list(range(1, MAX_REASON_KEYS + 1))
    assert reason_keys("9", rules) == ("r9",)
    assert reason_keys("1", rules) == ("r1",)
    assert reason_keys("10", rules) is None  # not reason ten: a "1" then a key naming nothing


def test_the_reasons_menu_numbers_the_policys_reasons():
    rules = KeyRules(reasons=("queue", "rude"))

    assert menu(reasons_q(), rules) == Reply(m.VOICE_REASONS_MENU, {"key_reasons": ((1, "queue"), (2, "rude"))})
    assert press(reasons_q(), "3", rules).state == reasons_q(invalid=1)
    assert rating_of(press(reasons_q(), "21", rules)) == RecordRating(CASE, G.DISSATISFIED, ("rude", "queue"))


# --- the callback call ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "result"), [("1", "satisfied"), ("2", "basically_satisfied"),
                                               ("3", "dissatisfied"), ("3#", "dissatisfied")])
def test_the_callback_answer_is_a_result_not_a_rating(digit, result):
    outcome = press(CALLBACK_Q, digit, RULES)

    assert result_of(outcome) == result and CALLBACK_KEYS[digit.rstrip("#")] == result
    assert rating_of(outcome) is None
    assert outcome.state is None and keys_of(outcome) == [m.VOICE_CALLBACK_THANKS]


def test_a_callback_answer_is_recorded_for_the_calls_own_work_order_only():
    assert press_on(CALLBACK_Q, "1", About(CASE, 99), RULES).effects == (RecordCallback(99, "satisfied"),)
    lost = press_on(CALLBACK_Q, "1", About(CASE), RULES)  # no work order named: nothing to record it on
    assert lost.effects == () and keys_of(lost)[0] == m.VOICE_INVALID


@pytest.mark.parametrize("digit", ["4", "5", "9", "12"])
def test_a_grade_key_is_no_callback_answer(digit):
    outcome = press(CALLBACK_Q, digit, RULES)

    assert result_of(outcome) is None and rating_of(outcome) is None
    assert keys_of(outcome) == [m.VOICE_INVALID, m.VOICE_CALLBACK_MENU]
    assert outcome.state == KeyState(ask=Ask.CALLBACK, invalid=1)


def test_the_callback_flow_start_then_a_key():
    first = start_callback("营业执照变更")
    again = press(first.state, "0", RULES)
    done = press(again.state, "2", RULES)

    assert keys_of(again) == [m.VOICE_CALLBACK_MENU]
    assert result_of(done) == "basically_satisfied" and done.state is None


# --- properties ----------------------------------------------------------------------------------------

KEY_CHARS = "0123456789*#"
reason_lists = st.lists(st.text(alphabet="abcdefghij_", min_size=1, max_size=8), min_size=1, max_size=12,
                        unique=True).map(tuple)


@given(reason_lists, st.one_of(st.text(alphabet=KEY_CHARS, max_size=12), st.text(max_size=6)))
@example(CODES, "13")
@example(CODES, "9")
@example(CODES, "")
def test_reason_keys_is_none_exactly_when_a_key_names_no_reason(reasons, keys):
    rules = KeyRules(reasons=reasons)
    valid = {str(n) for n in range(1, min(len(reasons), MAX_REASON_KEYS) + 1)}

    codes = reason_keys(keys, rules)

    if not keys or any(k not in valid for k in keys):
        assert codes is None
    else:
        assert codes is not None
        assert len(codes) == len(set(codes))  # each reason once
        expected = []
        for k in keys:  # in the order first pressed
            code = reasons[int(k) - 1]
            if code not in expected:
                expected.append(code)
        assert list(codes) == expected
        assert set(codes) <= set(reasons)


states = st.builds(
    KeyState,
    ask=st.sampled_from(list(Ask)),
    grade=st.sampled_from([G.DISSATISFIED, G.VERY_DISSATISFIED]),
    silences=st.integers(0, 9),
    invalid=st.integers(0, 9),
).map(lambda s: s if s.ask is Ask.REASONS else replace(s, grade=None))


@given(states, st.one_of(st.none(), st.text(max_size=20), st.text(alphabet=KEY_CHARS + " ", max_size=20)),
       reason_lists)
def test_press_never_raises_and_rates_only_when_the_call_ends(state, digits, reasons):
    outcome = press(state, digits, KeyRules(reasons=reasons))

    assert isinstance(outcome, Outcome) and outcome.replies
    assert all(isinstance(r, Reply) for r in outcome.replies)
    rating, result = rating_of(outcome), result_of(outcome)
    assert len(outcome.effects) <= 1
    if outcome.effects:
        assert outcome.state is None
    if rating is not None:
        assert state.ask is not Ask.CALLBACK
        assert rating.grade.is_bad == bool(rating.reasons)
        assert set(rating.reasons) <= set(reasons)
    if result is not None:
        assert state.ask is Ask.CALLBACK and result in CALLBACK_KEYS.values()
    if outcome.state is not None:
        nxt = outcome.state
        assert nxt.ask is state.ask or (state.ask is Ask.GRADE and nxt.ask is Ask.REASONS)
        assert (nxt.ask is Ask.REASONS) == (nxt.grade is not None)


@given(st.lists(st.one_of(st.none(), st.sampled_from(["0", "1", "4", "5", "7", "9", "13#", "#", "2"])),
                max_size=30))
def test_a_call_keyed_at_random_stays_in_the_states_of_the_diagram(presses):
    """Whatever the caller keys, each answer is a question within the limits, or the end with thanks or goodbye."""
    state: KeyState | None = start().state
    for digits in presses:
        if state is None:
            break
        outcome = press(state, digits, RULES)
        if outcome.state is None:
            assert keys_of(outcome)[-1] in (m.VOICE_THANKS, m.VOICE_THANKS_BAD, m.VOICE_GOODBYE)
        state = outcome.state
        if state is not None:
            assert state.silences <= 1 and state.invalid < MAX_INVALID
            assert (state.ask is Ask.REASONS) == (state.grade is not None and state.grade.is_bad)
