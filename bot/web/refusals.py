"""A refusal (bot/infra/refusals.py) said in HTTP: its kind's status, and a JSON body with the message and
whatever it carries (`allowed`, `errors`, more facts)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.infra.refusals import Invalid, NotFound, NotNow, NotYours, Refusal
from bot.web.common import error

STATUS: dict[type[Refusal], int] = {NotFound: 404, NotYours: 403, NotNow: 409, Invalid: 422}


def status_of(exc: Refusal) -> int:
    """The status of the refusal's kind: the first kind in its class's order (a barred rater's refusal is both
    "not now" for the rating rules and "not yours" to say: it says the latter, as it lists it first)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 409


def response(exc: Refusal) -> web.Response:
    more: dict[str, Any] = dict(exc.more)
    if exc.allowed is not None:
        more["allowed"] = exc.allowed
    if exc.errors is not None:
        more["errors"] = exc.errors
    return error(status_of(exc), exc.message, **more)
