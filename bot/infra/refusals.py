"""What the application refuses, by kind, in its own words: no HTTP here. The web layer says each kind in
HTTP (bot/web/refusals.py), the console in the reader's language, the dialogs politely.

A refusal carries its message, and, when it helps the asker, the actions allowed now (`allowed`), the fields
that were wrong (`errors`), or more facts (`more`: a window's end, the rating that exists already)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Refusal(Exception):
    def __init__(self, message: str, *, allowed: Sequence[str] | None = None,
                 errors: list[dict[str, str]] | None = None, **more: Any) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = list(allowed) if allowed is not None else None
        self.errors = errors
        self.more = more


class NotFound(Refusal):
    """No such thing, or none the asker may know of."""


class NotYours(Refusal):
    """The asker may not: another jurisdiction, a role that does not take this action, a barred rater."""


class NotNow(Refusal):
    """Not in this state: not the current step, a window closed, done already."""


class Invalid(Refusal):
    """The request itself is wrong; `errors` names the fields when it can."""
