"""Every dialog's state is a JSON envelope whose `dialog` field names the dialog that reads it back: one
registry, so the application stores and loads a state without knowing whose it is, and a new dialog is
one line here (goflow reads its waits back the same way: flows/routers/waits/base.go).

`answer` is one message in whatever conversation dialog is open (the rating dialog when none is): the
inbound road calls it and applies the typed effects of the `Outcome`, whichever dialog answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialogs import callback, keypad, rating
from dialogs.keywords import KINDS, keyword
from dialogs.types import Context, ConversationState, DialogState, Inbound, Outcome


@dataclass(frozen=True, slots=True)
class Dialog:
    name: str
    read: Callable[[dict[str, Any]], DialogState]
    # One text message at the open state: None for a dialog that is not held in a conversation (the keypad).
    answer: Callable[[Any, Inbound, Context, rating.Rules, datetime], Outcome[Any]] | None = None


DIALOGS: dict[str, Dialog] = {d.name: d for d in (
    Dialog(rating.DIALOG, rating.State.from_json, rating.step),
    Dialog(callback.DIALOG, callback.CallbackState.from_json, callback.step),
    Dialog(keypad.DIALOG, keypad.KeyState.from_json),
)}

LEGACY = rating.DIALOG  # states stored before the envelope named its dialog were all the rating dialog's


def read(data: dict[str, Any] | None) -> DialogState | None:
    """The state a JSON envelope holds; None for nothing, an unknown dialog or a malformed envelope (a
    state nobody can read is no conversation: the person starts afresh rather than being stuck)."""
    if not data:
        return None
    dialog = DIALOGS.get(str(data.get("dialog") or LEGACY))
    if dialog is None:
        return None
    try:
        return dialog.read(data)
    except (KeyError, TypeError, ValueError):
        return None


def read_conversation(data: dict[str, Any] | None) -> ConversationState | None:
    """A state held in a conversation: one whose dialog answers text messages."""
    state = read(data)
    if state is None or DIALOGS[state.DIALOG].answer is None:
        return None
    return state  # type: ignore[return-value]


def answer(state: ConversationState | None, inbound: Inbound, ctx: Context, rules: rating.Rules,
           now: datetime) -> Outcome[Any]:
    """One message from the person, in the dialog that is open; the provider's keywords act in any."""
    if inbound.kind in KINDS:
        return keyword(inbound.kind, state)
    dialog = DIALOGS[state.DIALOG if state is not None else rating.DIALOG]
    assert dialog.answer is not None
    return dialog.answer(state, inbound, ctx, rules, now)
