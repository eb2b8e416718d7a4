"""The rules of a rating, whatever channel it came by (Shantou ch. 6; CONTRACT "Rules of detail").

One rating per case, then one follow-up (追加评价) inside the follow-up window counted from the first
rating (a default counts as one). A bad grade needs a reason or words. Storing a rating ends every
conversation still asking about the case and cancels its pending reminder and default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Runtime
from dialogs.grades import Grade
from store import conversations
from store import evaluations as evaluation_store
from store.models import Case, Evaluation

CHANNELS = ("sms", "wechat", "miniprogram", "phone", "web", "qr", "hall", "terminal", "callback", "default")


class RatingRefused(Exception):
    """The case cannot take this rating now; `status` is the HTTP answer (409)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


Openness = Literal["first", "followup", "closed"]


def openness(rt: Runtime, existing: list[Evaluation], now: datetime) -> Openness:
    """Whether a case takes its first rating, its one follow-up, or nothing more."""
    if not existing:
        return "first"
    if len(existing) >= 2 or any(e.is_followup for e in existing):
        return "closed"
    closes = rt.timing.window_end(existing[0].created_at, rt.policy.followup_window)
    return "followup" if now < closes else "closed"


async def record(session: AsyncSession, rt: Runtime, case: Case, grade: Grade, reasons: tuple[str, ...],
                 text: str | None, channel: str, now: datetime, *, is_default: bool = False) -> Evaluation:
    """Store a rating of a case whose row the caller holds locked (or, on SQLite, inside BEGIN IMMEDIATE)."""
    assert case.id is not None
    existing = await evaluation_store.for_case(session, case.id)
    state = openness(rt, existing, now)
    if existing and is_default:
        raise RatingRefused("the case is rated already: no default")
    if state == "closed":
        if len(existing) >= 2 or any(e.is_followup for e in existing):
            raise RatingRefused("the case has its rating and its follow-up already")
        closes = rt.timing.window_end(existing[0].created_at, rt.policy.followup_window)
        raise RatingRefused(f"the follow-up window closed at {closes.isoformat()}")
    is_followup = state == "followup"
    evaluation = Evaluation(
        case_id=case.id, grade=grade.value, score=grade.score, reasons=list(reasons), text=text,
        channel=channel, is_default=is_default, is_followup=is_followup, status="valid", created_at=now,
    )
    session.add(evaluation)
    if case.rated_at is None:
        case.rated_at = now
    case.remind_at = None
    case.default_at = None
    session.add(case)
    await conversations.close_for_case(session, case.id, now)
    await session.flush()
    rt.metrics.ratings.labels(channel, grade.value).inc()
    return evaluation
