"""The reminder sweep: every case whose reminder is due gets one, once, unless it must wait.

The channel is chosen per case: a mini-program subscribe message when the case has an mp_openid
and the mini-program is configured (no conversation to wait for there), otherwise SMS. An SMS
reminder waits while the person is in another conversation (one at a time); a refused subscribe
message (43101) brings the case back here, and then it goes by SMS. Nothing is sent inside the quiet
hours, nor to a person who opted out (that is recorded as a skipped reminder).

The outbox's unique dedupe key makes "once per case per channel, ever" hold even when two
processes sweep at the same moment; the conditional write of the conversation makes "one
conversation at a time" hold the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.inbound.conversation import case_view
from bot.infra.runtime import Runtime
from dialogs import rating
from store import cases as case_store
from store import contacts, conversations, outbox
from store.cases import DueCase
from store.contacts import Reach

BATCH = 1000
OVERLAP = 2  # batches in flight at once where rows are locked: one writing while the next is read and planned


@dataclass
class _Plan:
    """What one batch of due cases comes to, written set by set (a statement each, not one per case)."""

    opens: list[tuple[int, int, dict[str, Any], datetime]] = field(default_factory=list)
    by_sms: dict[int, dict[str, Any]] = field(default_factory=dict)  # contact id -> its reminder, if it opens
    messages: list[dict[str, Any]] = field(default_factory=list)  # mini-program reminders and skipped ones
    done: list[int] = field(default_factory=list)  # cases whose reminder is settled whatever the writes find


async def sweep(rt: Runtime, now: datetime) -> int:
    """Queue every due reminder, a batch per transaction. Where rows are locked (PostgreSQL, MySQL), the next
    batch is read and planned while the last one's writes run: the database works while Python renders, not
    in turns (SQLite has one writer, so its batches go one after another)."""
    if rt.timing.quiet(now):
        return 0
    depth = OVERLAP if rt.db.locks_rows else 1
    gate = asyncio.Semaphore(depth)
    running: list[asyncio.Task[int]] = []
    cursor: case_store.Cursor = None
    try:
        while True:
            await gate.acquire()
            if any(task.done() and not task.cancelled() and task.exception() is not None for task in running):
                gate.release()
                break  # a batch failed: no more are started, and its error is raised below
            read: asyncio.Future[case_store.Cursor | bool] = asyncio.get_running_loop().create_future()
            running.append(asyncio.create_task(_batch(rt, now, cursor, read, gate)))
            found = await read
            if found is False:
                break
            cursor = found  # type: ignore[assignment]
    finally:
        counts = await asyncio.gather(*running, return_exceptions=True)
    for count in counts:
        if isinstance(count, BaseException):
            raise count
    return sum(counts)  # type: ignore[arg-type]


async def _batch(rt: Runtime, now: datetime, cursor: case_store.Cursor,
                 read: asyncio.Future[case_store.Cursor | bool], gate: asyncio.Semaphore) -> int:
    """One batch in one transaction: `read` learns where the next batch starts as soon as this one's cases are
    read (False when none were due), so the next can begin while this one writes."""
    dialect = rt.db.dialect
    try:
        async with rt.db.write() as session:
            due = await case_store.due_reminders(session, now, cursor, BATCH, skip_locked=rt.db.locks_rows)
            if not due:
                read.set_result(False)
                return 0
            last = due[-1]
            assert last.remind_at is not None and last.id is not None
            read.set_result((last.remind_at, last.id))
            ids = [c.id for c in due if c.id is not None]
            reachable = [i for c in due for i in (c.phone_contact_id, c.mp_contact_id) if i]
            people = await contacts.reach_of(session, reachable)
            refused_mp = await outbox.cases_with(session, ids, "reminder", "miniprogram")
            plan = _plan(rt, due, people, refused_mp, now)
            opened = await conversations.open_many(session, dialect, plan.opens, now)  # in contact order
            sms = [plan.by_sms[contact_id] for contact_id in sorted(opened)]
            added = set(await outbox.enqueue_many(session, dialect, plan.messages + sms))
            queued = sum(1 for row in plan.messages + sms if row["status"] == "pending" and row["case_id"] in added)
            settled = plan.done + [row["case_id"] for row in sms]
            if settled:
                await case_store.reminded(session, settled, dialect)
        return queued
    except BaseException as exc:
        if not read.done():
            read.set_exception(exc)
        raise
    finally:
        gate.release()


def _plan(rt: Runtime, due: list[DueCase], people: dict[int, Reach], refused_mp: set[int], now: datetime) -> _Plan:
    plan = _Plan()
    for case in due:
        assert case.id is not None
        mp = people.get(case.mp_contact_id) if case.mp_contact_id else None
        phone = people.get(case.phone_contact_id) if case.phone_contact_id else None
        if mp is not None and rt.mp_api is not None and case.id not in refused_mp and not mp.subscription_refused:
            plan.messages.append(_miniprogram_row(rt, case, mp, now))
            plan.done.append(case.id)
        elif phone is None:
            plan.done.append(case.id)  # no way to reach the person
        elif phone.opted_out_at is not None or (phone.barred_until is not None and phone.barred_until > now):
            # no reminder to one who cannot or will not answer; recorded as skipped
            barred = phone.barred_until is not None and phone.barred_until > now
            plan.messages.append(_row(case, phone, "sms", "", now, status="skipped",
                                      error="barred" if barred else "opted out"))
            plan.done.append(case.id)
        elif phone.id not in plan.by_sms:  # a second case of the same person waits for a later sweep
            assert phone.id is not None
            outcome = rating.remind(case_view(rt, case), rt.rules, now)
            assert outcome.state is not None
            plan.opens.append((phone.id, case.id, outcome.state.to_json(), outcome.state.expires_at))
            plan.by_sms[phone.id] = _row(case, phone, "sms", rt.render(outcome.replies[0], case.locale), now,
                                         provider=rt.sms.name, payload=rt.sms_payload(outcome.replies[0], case.locale))
    return plan


def _row(case: DueCase, contact: Reach, channel: str, body: str, now: datetime, *, status: str = "pending",
         error: str | None = None, payload: dict[str, Any] | None = None, provider: str | None = None
         ) -> dict[str, Any]:
    """Every column of an outbox row, so that rows of any kind go in one multi-row insert."""
    return {
        "kind": "reminder", "channel": channel, "case_id": case.id, "contact_id": contact.id,
        "dedupe_key": f"reminder:{channel}:{case.id}", "body": body, "payload": payload, "status": status,
        "attempts": 0, "next_attempt_at": now if status == "pending" else None, "lease_until": None,
        "attempted_at": None, "unsure_since": None, "provider": provider, "provider_id": None, "error": error,
        "created_at": now, "sent_at": None, "updated_at": now,
    }


def _miniprogram_row(rt: Runtime, case: DueCase, contact: Reach, now: datetime) -> dict[str, Any]:
    assert case.id is not None
    settings, fields = rt.settings, rt.policy.miniprogram_fields
    token = rt.links.token(case.id)
    page = f"{settings.wechat_mp_page}?token={token}" if settings.wechat_mp_page else None
    local = case.completed_at.astimezone(rt.policy.tz)
    values = {"item": case.item_name, "agency": case.agency_name, "completed_at": local.strftime("%Y-%m-%d %H:%M")}
    data = {field: {"value": values[name]} for name, field in fields.items() if name in values}
    return _row(case, contact, "miniprogram", case.item_name, now, provider="wechat",
                payload={"template_id": settings.wechat_mp_template_id, "page": page, "data": data})
