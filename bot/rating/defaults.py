"""Default ratings: a case still unrated when its window closes gets the policy's default grade.

The default is a rating (CONTRACT): it counts for the mean score, not for participation, and a later
active rating becomes the case's follow-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.infra.runtime import Runtime
from bot.rating.ratings import RatingRefused, record
from store import cases as case_store

BATCH = 500


async def apply(rt: Runtime, now: datetime, *, waiting: Sequence[tuple[datetime, datetime]] = ()) -> int:
    """The defaults due at `now`, but those in `waiting` (counted over a year of the calendar nobody described:
    they wait, bot/policy/workdays.py waiting_spans)."""
    applied = 0
    while True:
        async with rt.db.write() as session:
            due = await case_store.due_defaults(session, now, BATCH, skip_locked=rt.db.locks_rows, waiting=waiting)
            if not due:
                return applied
            for case in due:
                try:
                    await record(session, rt, case, rt.policy.default_grade, (), None, "default", now,
                                 is_default=True)
                    applied += 1
                except RatingRefused:
                    case.default_at = None  # rated meanwhile: nothing to default
                    session.add(case)
