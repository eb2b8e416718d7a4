"""Keywords a provider has acted on already (Twilio's Advanced Opt-Out), whatever dialog is open.

The provider answered STOP and START itself, and a message of ours to a stopped number would be refused,
so STOP and START get no words of ours: STOP opts out and ends the open dialog, START opts back in and
leaves it as it was, HELP says what we understand.
"""

from __future__ import annotations

from typing import TypeVar

from dialogs import messages as m
from dialogs.types import OptIn, OptOut, Outcome, Reply

KINDS = ("stop", "start", "help")

S = TypeVar("S")


def keyword(kind: str, state: S | None) -> Outcome[S]:
    if kind == "stop":
        return Outcome(None, (), (OptOut(),))
    if kind == "start":
        return Outcome(state, (), (OptIn(),))
    return Outcome(state, (Reply(m.HELP),))
