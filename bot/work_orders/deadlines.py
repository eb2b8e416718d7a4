"""Deadlines beside a work order's steps (issue 21): the decision on an appeal (Shantou art. 37), the
rectification extension asked with reasons and a new deadline (Fujian art. 16), and the optional contact with
the rater (Shandong art. 14).

None of them has a column of its own. What each needs (when the agency took the work order on, when it
contacted the rater, the extension asked and its decision, an overdue mark already made) is in the work
order's history, which is written in the same transaction as every change and never rewritten, so it is read
back from there (`facts_from`). bot/work_orders/lifecycle.py keeps the steps and their transition table; it hands these
actions to `take` and lets `adjust` add them to what it allows.

- Appeal decision: `appeal_decision` (policy; 5 working days) counted from the appeal. A pending appeal past
  it gets one `appeal-overdue` event from `tick`; the mark stays after a late decision, as its record.
- Extension: while `dispatched`, the agency (L2) asks with `request-extension` `{"reason", "due_at"}`; an L1
  answers with `decide-extension` `{"approved", "note"?}`. Approved, the step's `due_at` is the new deadline,
  and an overdue mark of the step is lifted when the new deadline is still ahead. A request still pending when
  the step ends (rectified, or closed on appeal) lapses.
- Contact: with `work_order.contact` above 0, each time the work order comes to the agency (dispatch, and
  each reopen) the agency records `contact` `{"note"}` within that many working days, and only then
  rectifies; a round past its contact deadline without one gets one `contact-overdue` event from `tick`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.limits import instant_problem
from bot.infra.refusals import Invalid, NotFound
from bot.infra.runtime import Runtime
from bot.policy.spans import DaySpan
from bot.work_orders.actors import SYSTEM, Actor, text_field
from store import work_orders as store
from store.models import WorkOrder, WorkOrderEvent

ACTIONS = ("request-extension", "decide-extension", "contact")
ROUND_STARTS = ("dispatch", "reopen")  # the events that hand a work order to the agency
APPEAL_OVERDUE = "appeal-overdue"
CONTACT_OVERDUE = "contact-overdue"
BATCH = 500
DUE_AT_HELP = "a date (2026-12-10: through that local day) or an ISO-8601 instant with an offset"

ExtensionStatus = Literal["pending", "approved", "refused", "lapsed"]


@dataclass(frozen=True)
class Extension:
    """The latest extension asked for: its reasons and proposed deadline, and what became of it."""

    status: ExtensionStatus
    reason: str | None
    due_at: datetime
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the history says beyond the work order's columns."""

    round_start: datetime | None = None  # when the agency last took the work order on (dispatch, reopen)
    contacted_at: datetime | None = None  # the contact recorded in that round
    contact_overdue: bool = False  # that round's contact deadline was marked passed
    extension: Extension | None = None
    appeal_overdue: bool = False

    @property
    def extension_pending(self) -> bool:
        return self.extension is not None and self.extension.status == "pending"


NO_FACTS = Facts()


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def facts_from(events: Sequence[WorkOrderEvent]) -> Facts:
    """The facts of a history given in order (by id)."""
    facts = NO_FACTS
    for e in events:
        data = e.data or {}
        if e.action in ROUND_STARTS:
            facts = replace(facts, round_start=e.at, contacted_at=None, contact_overdue=False)
        elif e.action == "contact" and facts.contacted_at is None:
            facts = replace(facts, contacted_at=e.at)
        elif e.action == CONTACT_OVERDUE:
            facts = replace(facts, contact_overdue=True)
        elif e.action == APPEAL_OVERDUE:
            facts = replace(facts, appeal_overdue=True)
        elif e.action == "request-extension":
            due = _instant(data.get("due_at"))
            if due is not None:
                facts = replace(facts, extension=Extension("pending", e.note, due, e.actor, e.at))
        elif e.action == "decide-extension" and facts.extension_pending:
            assert facts.extension is not None
            facts = replace(facts, extension=replace(
                facts.extension, status="approved" if data.get("approved") else "refused", decided_by=e.actor,
                decided_at=e.at, note=e.note))
        if e.from_status != e.to_status and facts.extension_pending:  # the step ended before the decision
            assert facts.extension is not None
            facts = replace(facts, extension=replace(facts.extension, status="lapsed"))
    return facts


async def facts_of(session: AsyncSession, wo: WorkOrder) -> Facts:
    return facts_from(await store.events(session, wo.id)) if wo.id is not None else NO_FACTS


async def facts_for(session: AsyncSession, orders: Sequence[WorkOrder]) -> dict[int, Facts]:
    """The facts of a page of work orders, in one query."""
    histories = await store.events_for(session, [wo.id for wo in orders if wo.id is not None])
    return {wo_id: facts_from(events) for wo_id, events in histories.items()}


# --- the deadlines ---------------------------------------------------------------------------------------


def contact_days(rt: Runtime) -> int:
    """Working days to contact the rater; 0 when the policy does not ask for it."""
    return rt.policy.work_order.get("contact", 0)


def contact_due(rt: Runtime, facts: Facts) -> datetime | None:
    days = contact_days(rt)
    if not days or facts.round_start is None:
        return None
    return rt.timing.window_end(facts.round_start, DaySpan(days, "working"))


def appeal_decide_by(rt: Runtime, wo: WorkOrder) -> datetime | None:
    return None if wo.appeal_at is None else rt.timing.window_end(wo.appeal_at, rt.policy.appeal_decision)


def adjust(rt: Runtime, wo: WorkOrder, facts: Facts, allowed: list[str]) -> list[str]:
    """The steps bot/work_orders/lifecycle.py allows, with ours: at `dispatched` the contact comes before the
    rectification (when the policy asks for it), and an extension may be asked, or the one asked decided."""
    if wo.status != "dispatched":
        return allowed
    out = list(allowed)
    if contact_days(rt) and facts.contacted_at is None:
        out = ["contact", *(a for a in out if a != "rectify")]
    out.append("decide-extension" if facts.extension_pending else "request-extension")
    return out


# --- acting ------------------------------------------------------------------------------------------------


def _iso(rt: Runtime, value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(rt.policy.tz).isoformat()


def _refused(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", errors=[{"field": field, "message": message}])


def proposed_deadline(rt: Runtime, value: Any) -> datetime:
    """The new deadline an agency asks for: a local date (the deadline is the end of that day, as every other
    deadline ends at 00:00 after its last day) or an instant with an offset."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _refused("due_at", f"required: {DUE_AT_HELP}")
    if not isinstance(value, str) or len(value) > 64:
        raise _refused("due_at", f"expected {DUE_AT_HELP}")
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        if instant_problem(datetime.combine(day, time(0))):
            raise _refused("due_at", instant_problem(datetime.combine(day, time(0))) or "")
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=rt.policy.tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _refused("due_at", f"expected {DUE_AT_HELP}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _refused("due_at", "the instant has no offset: write it as 2026-12-10T18:00:00+08:00, or a date")
    problem = instant_problem(parsed)
    if problem:
        raise _refused("due_at", problem)
    return parsed


async def take(session: AsyncSession, rt: Runtime, wo: WorkOrder, action: str, body: dict[str, Any], actor: Actor,
               now: datetime, facts: Facts) -> None:
    """One of ACTIONS, already allowed now and to this actor (bot.work_orders.lifecycle.act checked both)."""
    if action == "request-extension":
        reason = text_field(body, "reason", required=True)
        due = proposed_deadline(rt, body.get("due_at"))
        floor = max(now, wo.due_at) if wo.due_at is not None else now
        if due <= floor:  # an extension moves the deadline later, and not into the past
            raise _refused("due_at", f"the new deadline must be later than the current deadline and than now "
                                     f"({_iso(rt, floor)})")
        await store.log(session, wo, action, actor.name, wo.status, wo.status, now, note=reason,
                        data={"due_at": _iso(rt, due), "previous_due_at": _iso(rt, wo.due_at)})
    elif action == "decide-extension":
        approved = body.get("approved")
        if not isinstance(approved, bool):
            raise _refused("approved", "expected true or false")
        note = text_field(body, "note", required=False)
        asked = facts.extension
        assert asked is not None and asked.status == "pending"
        data: dict[str, Any] = {"approved": approved, "due_at": _iso(rt, asked.due_at)}
        if approved:
            data["previous_due_at"] = _iso(rt, wo.due_at)
            wo.due_at = asked.due_at
            if wo.overdue and asked.due_at > now:  # late no more: the step's deadline is the approved one
                wo.overdue = False
                wo.overdue_steps = max(0, wo.overdue_steps - 1)
                data["overdue_lifted"] = True
        await store.log(session, wo, action, actor.name, wo.status, wo.status, now, note=note, data=data)
    elif action == "contact":
        note = text_field(body, "note", required=True)
        due = contact_due(rt, facts)
        await store.log(session, wo, action, actor.name, wo.status, wo.status, now, note=note,
                        data={"due_at": _iso(rt, due), "late": due is not None and now >= due})
    else:  # pragma: no cover - bot.work_orders.lifecycle.act routes only ACTIONS here
        raise NotFound(f"no such action {action!r}")


# --- timed duties ------------------------------------------------------------------------------------------


async def mark_overdue(rt: Runtime, now: datetime, *, due_by: datetime | None = None) -> dict[str, int]:
    """Mark the pending appeals past their decision deadline and the contacts past theirs, each once, by
    `due_by` (now); not one counted over a year of the calendar nobody described (it waits: final)."""
    by = due_by or now
    return {"appeals_overdue": await _mark_appeals(rt, now, by), "contacts_overdue": await _mark_contacts(rt, now, by)}


def final(rt: Runtime, deadline: datetime) -> bool:
    return rt.timing.calendar.is_final(deadline, rt.policy.tz)


def _earliest_start(by: datetime, span_days: int) -> datetime:
    """A deadline of `span_days` days ends at a local midnight more than that many days after its start, so
    only what started by this instant can be due by `by` (a day to spare for a changing UTC offset)."""
    return by - timedelta(days=max(span_days - 1, 0))


async def _locked(session: AsyncSession, rt: Runtime, wo_id: int) -> WorkOrder | None:
    """The row, locked; None when another transaction holds it (it is acting on it: the next tick looks again)."""
    return await store.by_id(session, wo_id, lock=rt.db.locks_rows, skip_locked=True)


async def _mark_appeals(rt: Runtime, now: datetime, by: datetime) -> int:
    marked, after = 0, 0
    while True:
        async with rt.db.read() as session:
            rows = await store.appeals_to_mark(session, _earliest_start(by, rt.policy.appeal_decision.days),
                                               APPEAL_OVERDUE, after, BATCH)
        for candidate in rows:
            deadline = appeal_decide_by(rt, candidate)
            if deadline is None or deadline > by or candidate.id is None or not final(rt, deadline):
                continue
            async with rt.db.write() as session:
                wo = await _locked(session, rt, candidate.id)
                if wo is None or wo.appeal_status != "pending" or (await facts_of(session, wo)).appeal_overdue:
                    continue
                await store.log(session, wo, APPEAL_OVERDUE, SYSTEM.name, wo.status, wo.status, now,
                                data={"decide_by": _iso(rt, deadline)})
                marked += 1
        if len(rows) < BATCH:
            break
        after = rows[-1].id or after
    rt.metrics.work_orders.labels(APPEAL_OVERDUE).inc(marked)
    return marked


async def _mark_contacts(rt: Runtime, now: datetime, by: datetime) -> int:
    days = contact_days(rt)
    if not days:
        return 0
    marked, after = 0, 0
    while True:
        async with rt.db.read() as session:
            rows = await store.rounds_to_mark(session, ROUND_STARTS, ("contact", CONTACT_OVERDUE),
                                              _earliest_start(by, days), after, BATCH)
        for candidate, entered in rows:
            deadline = rt.timing.window_end(entered, DaySpan(days, "working"))
            if deadline > by or candidate.id is None or not final(rt, deadline):
                continue
            async with rt.db.write() as session:
                wo = await _locked(session, rt, candidate.id)
                if wo is None or wo.status != "dispatched":
                    continue
                facts = await facts_of(session, wo)
                if facts.round_start != entered or facts.contacted_at is not None or facts.contact_overdue:
                    continue  # another round began, or the contact (or the mark) came meanwhile
                await store.log(session, wo, CONTACT_OVERDUE, SYSTEM.name, wo.status, wo.status, now,
                                data={"due_at": _iso(rt, deadline)})
                marked += 1
        if len(rows) < BATCH:
            break
        after = rows[-1][0].id or after
    rt.metrics.work_orders.labels(CONTACT_OVERDUE).inc(marked)
    return marked


# --- what the API shows ------------------------------------------------------------------------------------


def json_parts(rt: Runtime, wo: WorkOrder, facts: Facts) -> dict[str, Any]:
    """The fields these deadlines add to a work order's JSON: `appeal_decision` (merged into `appeal`),
    `extension` and `contact`."""
    def iso(value: datetime | None) -> str | None:
        return _iso(rt, value)

    ext = facts.extension
    contact = None
    if contact_days(rt) and facts.round_start is not None:
        contact = {"due_at": iso(contact_due(rt, facts)), "at": iso(facts.contacted_at),
                   "overdue": facts.contact_overdue}
    return {
        "appeal": {"decide_by": iso(appeal_decide_by(rt, wo)), "overdue": facts.appeal_overdue},
        "extension": None if ext is None else {
            "status": ext.status, "reason": ext.reason, "due_at": iso(ext.due_at), "requested_by": ext.requested_by,
            "requested_at": iso(ext.requested_at), "decided_by": ext.decided_by, "decided_at": iso(ext.decided_at),
            "note": ext.note},
        "contact": contact,
    }
