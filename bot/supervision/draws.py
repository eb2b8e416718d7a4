"""Random supervisory callbacks (Hainan art. 17; Shantou art. 36; Shandong art. 15: "定期按照一定比例随机抽取
评价人，开展回访调查"): once a period has ended, each agency's raters of that period are drawn by a seeded draw that
anyone holding the record can repeat, and the drawn go to the agents as calls asking "did you give this rating, and
is it what you meant?". A "not mine" answer raises a signal (`denied_rating`); nothing an answer says changes the
rating: a person takes it on through the appeal path if it must.

The draw, for an auditor to repeat (Python's own generator, stable across its versions for a text seed):

    k = min(population, max(minimum, ceil(share * population)))
    drawn = sorted(random.Random(seed).sample(population_ids, k))

with `population_ids` ascending as recorded in `supervision_draws`, and `seed` recorded there: a keyed hash of
the period and the agency, so that no one knows who will be drawn before the period ends.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.infra import audit
from bot.infra.limits import day_bound
from bot.infra.refusals import NotFound, NotNow, NotYours
from bot.infra.runtime import Runtime
from bot.policy.supervision import Callbacks
from bot.supervision.decisions import MAY_DECIDE
from bot.work_orders.actors import Actor, choice_field, text_field
from store import settings
from store import signals as signal_store
from store import supervision as store
from store.models import Signal, SupervisionDraw

log = logging.getLogger("haochaping.supervision")

ANSWERS = ("confirmed", "different", "not_mine", "unreachable")
MAY_ANSWER = ("api", "system", "admin", "l1", "agent")
DRAWN = "supervision.drawn"  # settings: the last period drawn for every agency


@dataclass(frozen=True)
class Period:
    label: str
    since: datetime
    until: datetime  # exclusive


def last_ended(rule: Callbacks, now: datetime, tz: Any) -> Period:
    """The latest period (local month or ISO week) that has ended by `now`."""
    today = now.astimezone(tz).date()
    if rule.period == "week":
        monday = today - timedelta(days=today.weekday()) - timedelta(days=7)
        year, week, _ = monday.isocalendar()
        return Period(f"{year}-W{week:02d}", day_bound(monday, tz, end=False),
                      day_bound(monday + timedelta(days=6), tz, end=True))
    first = date(today.year, today.month, 1)
    start = (first - timedelta(days=1)).replace(day=1)
    return Period(f"{start:%Y-%m}", day_bound(start, tz, end=False), day_bound(first, tz, end=False))


def sample_size(rule: Callbacks, population: int) -> int:
    return min(population, max(rule.minimum, math.ceil(rule.share * population)))


def draw(seed: str, population_ids: list[int], k: int) -> list[int]:
    """The draw itself, exactly as the module's docstring gives it."""
    return sorted(random.Random(seed).sample(population_ids, k))


def seed_of(rt: Runtime, period: str, agency_code: str) -> str:
    return rt.sealer.mac(rt.sealer.subkey("supervision-draw"), f"{period}\n{agency_code}".encode()).hex()[:32]


async def draw_due(rt: Runtime, now: datetime) -> int:
    """Draw the last ended period for every agency not drawn for it yet; the calls made."""
    rule = rt.policy.supervision.callbacks
    period = last_ended(rule, now, rt.policy.tz)
    if await settings.get(rt.db, DRAWN) == period.label:  # every pass asks; the population is read once a period
        return 0
    made = 0
    try:
        async with rt.db.write() as session:
            done = await store.drawn_agencies(session, period.label)
            everyone = await store.population(session, period.since, period.until)
            for code, ids in sorted(everyone.items()):
                if code in done:
                    continue
                seed = seed_of(rt, period.label, code)
                drawn = draw(seed, ids, sample_size(rule, len(ids)))
                draw_id, calls = await store.add_draw(session, SupervisionDraw(
                    period=period.label, agency_code=code, seed=seed, rule=store.RULE, population=len(ids),
                    population_ids=ids, drawn_ids=drawn, created_at=now), await store.cases_of(session, drawn))
                await audit.record(session, now, "system", audit.DRAW, target=("supervision_draw", draw_id),
                                   details={"period": period.label, "agency_code": code, "population": len(ids),
                                            "drawn": len(drawn), "calls": calls, "seed": seed})
                made += calls
            await settings.put(session, DRAWN, period.label)
    except IntegrityError:  # another scheduler drew this period at the same moment: theirs stands
        log.info("supervision draw of %s made by another process", period.label)
        return 0
    return made


async def call_back(rt: Runtime, signal_id: int, who: Actor, now: datetime, address: str | None = None) -> list[int]:
    """A supervisor asks for the raters of a signal's ratings to be called back (those with a number and not called
    yet): the calls go to the same queue as the drawn ones. Audited as a draw of the signal (`supervision.draw`)."""
    if who.role not in MAY_DECIDE:
        raise NotYours("asking for supervisory calls needs an L1 supervisor or an admin")
    async with rt.db.write() as session:
        signal = await signal_store.by_id(session, signal_id, lock=rt.db.locks_rows)
        if signal is None:
            raise NotFound("no such signal")
        if not who.sees(signal.agency_code):
            raise NotYours("not in your jurisdiction")
        made = await store.add_signal_calls(session, signal, now)
        await audit.record(session, now, who.name, audit.DRAW, target=("signal", signal_id),
                           details={"kind": signal.kind, "agency_code": signal.agency_code, "calls": len(made)},
                           address=address)
    return made


async def answer(rt: Runtime, call_id: int, body: dict[str, Any], who: Actor, now: datetime,
                 address: str | None = None) -> None:
    """Record the answer of a supervisory call (once); "not_mine" raises a `denied_rating` signal."""
    if who.role not in MAY_ANSWER:
        raise NotYours("recording a supervisory call's answer needs an agent, L1 or admin")
    value = choice_field(body, "answer", ANSWERS)
    note = text_field(body, "note", required=False)
    async with rt.db.write() as session:
        row = await store.call(session, call_id, lock=rt.db.locks_rows)
        if row is None:
            raise NotFound("no such supervisory call")
        if not who.sees(row.call.agency_code):
            raise NotYours("not in your jurisdiction")
        if row.call.status == "answered":
            raise NotNow(f"the call was answered already ({row.call.answer})")
        row.call.status, row.call.answer, row.call.note = "answered", value, note
        row.call.answered_by, row.call.answered_at = who.name, now
        session.add(row.call)
        if value == "not_mine":
            session.add(Signal(kind="denied_rating", subject=f"call:{call_id}", agency_code=row.case.agency_code,
                               staff_id=row.case.staff_id, cases=[row.case.case_no],
                               evaluation_ids=[row.evaluation.id or 0],
                               evidence={"call_id": call_id, "channel": row.evaluation.channel,
                                         "answered_by": who.name},
                               detected_at=now, updated_at=now))
        await audit.record(session, now, who.name, audit.SUPERVISORY_ANSWER, target=("supervision_call", call_id),
                           details={"answer": value, "note": note}, address=address)
