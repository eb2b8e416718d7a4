"""The SMS callback (回访) dialog: after the rectification is reviewed, the rater is asked by text
whether it satisfied them (1 满意, 2 基本满意, 3 不满意). See callback.md for its states.

Pure like the rating dialog: `step(state, text, now)` gives the next state (None when over), the
replies and the result to record (bot/ stores it as the work order's callback result).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from dialogs import messages as m
from dialogs.parse import is_opt_out, parse_callback_result
from dialogs.types import OptOut, Reply

DIALOG = "callback"
MAX_REPROMPTS = 2


@dataclass(frozen=True, slots=True)
class CallbackState:
    work_order_id: int
    case_id: int
    expires_at: datetime
    misses: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"dialog": DIALOG, "work_order_id": self.work_order_id, "case_id": self.case_id,
                "expires_at": self.expires_at.isoformat(), "misses": self.misses}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallbackState:
        return cls(work_order_id=int(data["work_order_id"]), case_id=int(data["case_id"]),
                   expires_at=datetime.fromisoformat(data["expires_at"]), misses=int(data.get("misses") or 0))


def is_callback(data: dict[str, Any] | None) -> bool:
    return bool(data) and data.get("dialog") == DIALOG  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    state: CallbackState | None
    replies: tuple[Reply, ...]
    result: str | None = None
    opt_out: OptOut | None = None


def ask(work_order_id: int, case_id: int, item: str, completed_at: datetime, ttl: timedelta,
        now: datetime) -> CallbackOutcome:
    state = CallbackState(work_order_id, case_id, now + ttl)
    return CallbackOutcome(state, (Reply(m.CALLBACK_ASK, {"item": item, "completed_at": completed_at}),))


def step(state: CallbackState, text: str, now: datetime) -> CallbackOutcome:
    if is_opt_out(text):
        return CallbackOutcome(None, (Reply(m.OPTED_OUT),), opt_out=OptOut())
    result = parse_callback_result(text)
    if result is not None:
        return CallbackOutcome(None, (Reply(m.CALLBACK_THANKS),), result)
    if state.misses >= MAX_REPROMPTS:
        return CallbackOutcome(None, (Reply(m.CALLBACK_REPROMPT),))  # a 12345 agent will call instead
    return CallbackOutcome(replace(state, misses=state.misses + 1), (Reply(m.CALLBACK_REPROMPT),))
