"""Timed duties: one pass at an instant (`tick`), and the loop inside `serve` that repeats it.

Due-ness is read from the stored rows at the instant given, never from a "last tick" mark, so a
tick at any instant does what is due then and a repeated tick does nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from bot.delivery import reminders, sender
from bot.duties import callback_calls, official_calendar
from bot.figures import snapshots
from bot.figures.reporting import push
from bot.inbound import ivr
from bot.infra.runtime import Runtime
from bot.rating import defaults, intermediaries
from bot.supervision import draws as supervisory_draws
from bot.supervision import scan as supervision
from bot.work_orders import lifecycle as work_orders
from bot.work_orders.deadlines import mark_overdue as mark_deadlines_overdue
from store import outbox, stats
from store import work_orders as work_order_store
from store.engine import refused

log = logging.getLogger("haochaping.scheduler")


async def tick(rt: Runtime, now: datetime) -> dict[str, int]:
    started = time.perf_counter()
    # The calendar years another process imported; nothing due past a year nobody described is applied.
    await official_calendar.refresh(rt)
    official_calendar.log_warning(rt, now)
    waiting = rt.timing.calendar.waiting_spans(now, rt.policy.tz)
    # Defaults first: a case whose default is due must not be reminded a moment before it is rated.
    applied = await defaults.apply(rt, now, waiting=waiting)
    reminded = await reminders.sweep(rt, now)
    delivery = await sender.deliver_due(rt, now)
    sent = delivery.sent
    if delivery.fallbacks:  # mini-program reminders refused: their SMS go in this same tick
        reminded += await reminders.sweep(rt, now)
        sent += (await sender.deliver_due(rt, now)).sent
    overdue = await work_orders.mark_overdue(rt, now, waiting=waiting)
    late = await mark_deadlines_overdue(rt, now)  # appeals to decide, raters to contact
    await intermediaries.mark_overdue(rt, now)  # complaints unanswered past due (logged, not in the counts)
    calls = await callback_calls.sweep(rt, now)
    await ivr.prune(rt, now)  # the JSON keypad dialog's finished calls (not counted: housekeeping)
    days = await stats.refresh(rt.db)  # the daily statistics of the days changed since the last pass
    signals = await supervision.scan(rt, now)  # signs of fake praise and malicious reviews in the new ratings
    drawn = await supervisory_draws.draw_due(rt, now)  # the last ended period's random supervisory calls
    published = await snapshots.publish_due(rt, now)  # after the defaults and the daily figures of this pass
    # Last: the ratings this very pass made (defaults) go up at once; a slow upstream delays nothing else.
    reported = await push.push(rt, now)
    await _gauges(rt, now)
    counts = {"reminders": reminded, "defaults": applied, "overdue": overdue, "sent": sent, "calls": calls,
              "stats_days": days, "published": published, "reported": reported, "signals": signals,
              "supervisory_calls": drawn, **late}
    rt.metrics.tick.observe(time.perf_counter() - started)
    return counts


async def _gauges(rt: Runtime, now: datetime) -> None:
    """What waits after the pass, for /metrics (the alert rules of deploy/alerts.yml)."""
    async with rt.db.read() as session:
        rt.metrics.outbox_due.set(await outbox.due_count(session, now))
        rt.metrics.work_orders_overdue.set(await work_order_store.overdue_count(session))


async def loop(rt: Runtime) -> None:
    """Runs until cancelled; a failing pass is logged and retried at the next interval."""
    interval = rt.settings.tick_interval
    while True:
        try:
            counts = await tick(rt, datetime.now(UTC))
            if any(counts.values()):
                log.info("tick %s", counts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if refused(exc):  # PostgreSQL full, or down: one line a pass, not a traceback
                log.error("scheduler pass failed: no database connection (%s: %s); again in %g s",
                          type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", interval)
            else:
                log.exception("scheduler pass failed")
        await asyncio.sleep(interval)
