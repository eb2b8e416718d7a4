"""The SMS callback (回访) dialog: after the rectification is reviewed, the rater is asked by text
whether it satisfied them (1 满意, 2 基本满意, 3 不满意). See callback.md for its states.

Pure like the rating dialog and answering in the same `Outcome`: `step(state, inbound, ctx, rules, now)` gives
the next state (None when over), the replies and a `RecordCallback` effect (bot/ stores it as the work order's
callback result, exactly as an agent's).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from dialogs import messages as m
from dialogs.parse import is_opt_out, parse_callback_result
from dialogs.types import Context, Inbound, OptOut, Outcome, RecordCallback, Reply

DIALOG = "callback"
MAX_REPROMPTS = 2


@dataclass(frozen=True, slots=True)
class CallbackState:
    DIALOG: ClassVar[str] = DIALOG

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

    # The case was rated long ago: the answer goes to its work order, whose own lock orders the writes
    # (the case is locked after the work order there, never before: bot/work_orders/lifecycle.py).
    locks_case: ClassVar[bool] = False
    blocks_rating: ClassVar[bool] = False
    hands_over: ClassVar[bool] = False  # the question wants its answer; other cases wait


def ask(work_order_id: int, case_id: int, item: str, completed_at: datetime, ttl: timedelta,
        now: datetime) -> Outcome[CallbackState]:
    state = CallbackState(work_order_id, case_id, now + ttl)
    return Outcome(state, (Reply(m.CALLBACK_ASK, {"item": item, "completed_at": completed_at}),))


def step(state: CallbackState, inbound: Inbound, ctx: Context, rules: object, now: datetime) -> Outcome[CallbackState]:
    """The rater's answer; `ctx` and `rules` are the rating dialog's and say nothing to this one."""
    text = inbound.text
    if is_opt_out(text):
        return Outcome(None, (Reply(m.OPTED_OUT),), (OptOut(),))
    result = parse_callback_result(text)
    if result is not None:
        return Outcome(None, (Reply(m.CALLBACK_THANKS),), (RecordCallback(state.work_order_id, result),))
    if state.misses >= MAX_REPROMPTS:
        return Outcome(None, (Reply(m.CALLBACK_REPROMPT),))  # a 12345 agent will call instead
    return Outcome(replace(state, misses=state.misses + 1), (Reply(m.CALLBACK_REPROMPT),))
