"""Tests for dialogs.registry: every dialog's state as a JSON envelope read back through one registry, and one
message answered by whichever dialog is open."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogs import callback, keypad, rating, registry
from dialogs import messages as m
from dialogs.grades import Grade
from dialogs.types import Context, Inbound, OptIn, OptOut, RecordCallback, Reply

NOW = datetime(2026, 11, 21, 10, tzinfo=UTC)
RULES = rating.Rules(reasons=("attitude", "other"), labels=("服务态度差", "其他"))
WHEN = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
IDS = st.integers(1, 2**53)

STATES = st.one_of(
    st.builds(rating.State, case_id=IDS, step=st.sampled_from(rating.Step), expires_at=WHEN,
              grade=st.none() | st.sampled_from(Grade), reasons=st.just(("attitude",)), misses=st.integers(0, 9)),
    st.builds(callback.CallbackState, work_order_id=IDS, case_id=IDS, expires_at=WHEN, misses=st.integers(0, 9)),
    st.builds(keypad.KeyState, ask=st.sampled_from(keypad.Ask), grade=st.none() | st.sampled_from(Grade),
              silences=st.integers(0, 9), invalid=st.integers(0, 9)),
)


@given(STATES)
def test_every_dialogs_state_comes_back_through_the_registry(state: Any) -> None:
    data = json.loads(json.dumps(state.to_json()))

    assert data["dialog"] == state.DIALOG
    assert registry.read(data) == state


def test_every_dialog_is_registered_once_under_its_own_name() -> None:
    assert set(registry.DIALOGS) == {rating.DIALOG, callback.DIALOG, keypad.DIALOG}
    assert all(name == dialog.name for name, dialog in registry.DIALOGS.items())


def test_a_state_stored_before_the_envelope_named_its_dialog_is_the_rating_dialogs() -> None:
    old = {"case_id": 41, "step": "reasons", "expires_at": "2026-11-22T10:00:00+00:00", "grade": "dissatisfied",
           "reasons": [], "misses": 1}

    assert registry.read(old) == rating.State(41, rating.Step.REASONS, datetime(2026, 11, 22, 10, tzinfo=UTC),
                                              Grade.DISSATISFIED, (), 1)


@pytest.mark.parametrize("data", [
    None, {}, {"dialog": "survey", "case_id": 1}, {"dialog": "rating", "case_id": 1},
    {"dialog": "callback", "work_order_id": "x", "case_id": 1, "expires_at": "2026-11-22T10:00:00+00:00"},
    {"dialog": "rating", "case_id": 1, "step": "dance", "expires_at": "2026-11-22T10:00:00+00:00"},
    {"dialog": "keypad", "ask": "dance"},
])
def test_what_no_dialog_can_read_is_no_state(data: dict[str, Any] | None) -> None:
    assert registry.read(data) is None


def test_a_keypad_state_is_no_conversation() -> None:
    key_state = keypad.KeyState().to_json()

    assert registry.read(key_state) == keypad.KeyState()
    assert registry.read_conversation(key_state) is None


def msg(text: str, kind: str = "text") -> Inbound:
    return Inbound(channel="sms", address="+8613800138000", text=text, message_id=None, received_at=NOW, kind=kind)


def test_the_open_dialog_answers() -> None:
    open_callback = callback.CallbackState(9, 41, NOW + timedelta(hours=1))
    nothing = Context(None, None, known=True)

    assert registry.answer(open_callback, msg("1"), nothing, RULES, NOW).effects == (RecordCallback(9, "satisfied"),)
    assert registry.answer(None, msg("1"), nothing, RULES, NOW).replies == (Reply(m.NOTHING_TO_RATE),)


@pytest.mark.parametrize("state", [None, callback.CallbackState(9, 41, NOW + timedelta(hours=1)),
                                   rating.State(41, rating.Step.GRADE, NOW + timedelta(hours=1))])
def test_the_providers_keywords_act_in_any_dialog(state: Any) -> None:
    ctx = Context(None, None, known=True)

    stop = registry.answer(state, msg("", "stop"), ctx, RULES, NOW)
    start = registry.answer(state, msg("", "start"), ctx, RULES, NOW)
    help_ = registry.answer(state, msg("", "help"), ctx, RULES, NOW)

    assert (stop.state, stop.replies, stop.effects) == (None, (), (OptOut(),))
    assert (start.state, start.replies, start.effects) == (state, (), (OptIn(),))
    assert (help_.state, help_.replies, help_.effects) == (state, (Reply(m.HELP),), ())
