"""Tests for dialogs.callback: the SMS callback question as a pure dialog (see dialogs/callback.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialogs import callback
from dialogs import messages as m
from dialogs.types import Context, Inbound, OptOut, RecordCallback, Reply

NOW = datetime(2026, 11, 21, 10, tzinfo=UTC)
COMPLETED = datetime(2026, 11, 2, 9, tzinfo=UTC)
CTX = Context(None, None)
WO, CASE = 9, 41


def msg(text: str) -> Inbound:
    return Inbound(channel="sms", address="+8613800138000", text=text, message_id=None, received_at=NOW)


def asked(misses: int = 0) -> callback.CallbackState:
    return callback.CallbackState(WO, CASE, NOW + timedelta(hours=24), misses)


def test_ask_opens_the_question_with_the_item() -> None:
    out = callback.ask(WO, CASE, "营业执照变更", COMPLETED, timedelta(hours=24), NOW)

    assert out.state == asked()
    assert out.replies == (Reply(m.CALLBACK_ASK, {"item": "营业执照变更", "completed_at": COMPLETED}),)
    assert out.effects == ()


@pytest.mark.parametrize(("text", "result"), [("1", "satisfied"), ("2", "basically_satisfied"),
                                              ("3", "dissatisfied"), ("满意", "satisfied")])
def test_an_answer_is_recorded_for_the_work_order(text: str, result: str) -> None:
    out = callback.step(asked(), msg(text), CTX, None, NOW)

    assert out.state is None and out.replies == (Reply(m.CALLBACK_THANKS),)
    assert out.effects == (RecordCallback(WO, result),)


def test_an_unreadable_answer_is_asked_again_twice_then_left_to_an_agent() -> None:
    first = callback.step(asked(), msg("嗯"), CTX, None, NOW)
    second = callback.step(first.state, msg("嗯"), CTX, None, NOW)
    third = callback.step(second.state, msg("嗯"), CTX, None, NOW)

    assert [o.state.misses if o.state else None for o in (first, second, third)] == [1, 2, None]
    assert all(o.replies == (Reply(m.CALLBACK_REPROMPT),) and o.effects == () for o in (first, second, third))


def test_opting_out_ends_the_question() -> None:
    out = callback.step(asked(), msg("退订"), CTX, None, NOW)

    assert out.state is None and out.effects == (OptOut(),) and out.replies == (Reply(m.OPTED_OUT),)
