"""The reminder sweep over many batches: where rows are locked (PostgreSQL) the next batch is read and planned
while the last one writes, so two transactions of one sweep (and of two sweeps) meet on the same people.

Each person is reminded of one case at a time, whatever batch their cases fall in; the others stay due; no
deadlock between batches that open conversations for the same people in opposite orders; a failed batch
stops the sweep with its error and loses nothing (the next sweep takes what it left).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from helpers import TOKEN, Hcp
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.delivery import reminders
from store import conversations

BOTH = pytest.mark.parametrize("backend", [("sqlite", "memory"), ("postgres", "memory"), ("mariadb", "memory")],
                               indirect=True, ids=["sqlite", "postgres", "mariadb"])
DUE = datetime.fromisoformat("2026-11-21T12:00:00+08:00")


async def post_rounds(hcp: Hcp, people: int, rounds: int) -> list[str]:
    """`rounds` cases for each of `people` phones, completed one minute apart: round by round, every other
    round in the opposite order of people, so that consecutive batches hold the same people in opposite
    orders. The phones, in the order of the first round."""
    phones = [hcp.new_phone() for _ in range(people)]
    first = datetime.fromisoformat("2026-11-20T09:00:00+08:00")
    lines = []
    for r in range(rounds):
        order = phones if r % 2 == 0 else phones[::-1]
        for k, phone in enumerate(order):
            at = first + timedelta(minutes=r * people + k)
            lines.append(json.dumps(hcp.case_body(completed_at=at.isoformat(), phone=phone), ensure_ascii=False))
    resp = await hcp.client.post("/api/v1/cases:bulk", data="\n".join(lines).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
    doc = await resp.json()
    assert resp.status == 200 and doc["created"] == people * rounds, doc
    return phones


async def scalar(hcp: Hcp, sql: str) -> Any:
    async with hcp.rt.db.read() as session:
        return (await (await session.connection()).execute(text(sql))).scalar_one()


async def reminders_by_contact(hcp: Hcp) -> Counter[int]:
    async with hcp.rt.db.read() as session:
        rows = (await (await session.connection()).execute(text(
            "SELECT contact_id FROM outbox WHERE kind = 'reminder' AND channel = 'sms'"))).all()
    return Counter(row[0] for row in rows)


@BOTH
async def test_a_sweep_of_many_batches_reminds_each_person_of_one_case_and_leaves_the_others_due(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """12 people with 4 cases each, batches of 5: every batch after the first holds people whose conversation an
    earlier batch (maybe still writing) opened. Each person gets one reminder; their 36 other cases stay due."""
    monkeypatch.setattr(reminders, "BATCH", 5)
    await post_rounds(hcp, people=12, rounds=4)

    assert await reminders.sweep(hcp.rt, DUE) == 12
    by_contact = await reminders_by_contact(hcp)
    assert len(by_contact) == 12 and set(by_contact.values()) == {1}, by_contact
    assert await scalar(hcp, "SELECT COUNT(*) FROM cases WHERE remind_at IS NOT NULL") == 36
    assert await scalar(hcp, "SELECT COUNT(*) FROM conversations WHERE case_id IS NOT NULL") == 12
    # each open conversation is about the case its reminder named
    assert await scalar(hcp, "SELECT COUNT(*) FROM conversations v JOIN outbox o ON o.contact_id = v.contact_id"
                             " AND o.case_id = v.case_id AND o.kind = 'reminder'") == 12
    assert await reminders.sweep(hcp.rt, DUE) == 0  # all twelve are in a conversation still
    # Once their conversations have run out, the next sweep opens them again (rows there and free, not new ones).
    later = DUE + timedelta(days=hcp.rt.policy.conversation_hours // 24 + 1)
    assert await reminders.sweep(hcp.rt, later) == 12
    assert set((await reminders_by_contact(hcp)).values()) == {2}
    assert await scalar(hcp, "SELECT COUNT(*) FROM conversations v JOIN outbox o ON o.contact_id = v.contact_id"
                             " AND o.case_id = v.case_id AND o.kind = 'reminder'") == 12
    assert await scalar(hcp, "SELECT COUNT(*) FROM cases WHERE remind_at IS NOT NULL") == 24


@BOTH
async def test_two_sweeps_at_once_remind_each_person_once(hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sweeps at the same instant (two workers' schedulers), each with two batches in flight: four
    transactions opening conversations for the same 20 people, whose cases come in opposite orders batch to
    batch. None of them may fail (a deadlock is an error here), and each person is reminded once."""
    monkeypatch.setattr(reminders, "BATCH", 7)
    await post_rounds(hcp, people=20, rounds=3)

    counts = await asyncio.gather(reminders.sweep(hcp.rt, DUE), reminders.sweep(hcp.rt, DUE))
    assert sum(counts) == 20, counts
    by_contact = await reminders_by_contact(hcp)
    assert len(by_contact) == 20 and set(by_contact.values()) == {1}, by_contact
    assert await scalar(hcp, "SELECT COUNT(*) FROM cases WHERE remind_at IS NOT NULL") == 40


@pytest.mark.parametrize("backend", [("postgres", "memory")], indirect=True, ids=["postgres"])
async def test_conversations_opened_for_the_same_people_in_opposite_orders_at_once_do_not_deadlock(hcp: Hcp) -> None:
    """The store's guarantee the overlapping batches rest on: `open_many` writes its rows in contact order, so
    two transactions given the same 150 new people in opposite orders take them in one order; the second
    waits for the first and opens none of them (they are taken), where writing in the order given makes each
    hold a row the other wants and PostgreSQL aborts one. Ten rounds, each on new people."""
    for _ in range(10):
        phones = await post_rounds(hcp, people=150, rounds=1)
        async with hcp.rt.db.read() as session:
            rows = (await (await session.connection()).execute(text(
                "SELECT c.phone_contact_id, c.id FROM cases c WHERE c.remind_at IS NOT NULL ORDER BY c.id"))).all()
        assert len(rows) == len(phones)
        state, expires = {"step": "grade"}, DUE + timedelta(hours=48)
        opens = [(contact_id, case_id, state, expires) for contact_id, case_id in rows]

        async def open_all(order: list[tuple[int, int, dict[str, str], datetime]]) -> set[int]:
            async with hcp.rt.db.write() as session:
                return await conversations.open_many(session, "postgresql", order, DUE)

        first, second = await asyncio.gather(open_all(opens), open_all(opens[::-1]))
        assert not first & second and len(first | second) == len(rows), (len(first), len(second))
        async with hcp.rt.db.write() as session:
            await (await session.connection()).execute(text("UPDATE cases SET remind_at = NULL"))


class FailingThird:
    """`rt.db.write` whose third transaction fails before any statement, as a refused connection does."""

    def __init__(self, write: Any) -> None:
        self.write, self.calls = write, 0

    def __call__(self) -> Any:
        self.calls += 1
        return self._refused() if self.calls == 3 else self.write()

    @asynccontextmanager
    async def _refused(self) -> AsyncIterator[Any]:
        raise OperationalError("connect", None, Exception("sorry, too many clients already"))
        yield  # pragma: no cover


@BOTH
async def test_a_failed_batch_stops_the_sweep_with_its_error_and_the_next_sweep_takes_the_rest(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 people, one case each, batches of 5; the third batch's transaction is refused. The sweep raises that
    error and starts no batch after it; what the batches before it wrote stays, and the next sweep queues
    everything else, each person once."""
    monkeypatch.setattr(reminders, "BATCH", 5)
    await post_rounds(hcp, people=30, rounds=1)
    failing = FailingThird(hcp.rt.db.write)
    monkeypatch.setattr(hcp.rt.db, "write", failing)
    with pytest.raises(OperationalError, match="too many clients"):
        await reminders.sweep(hcp.rt, DUE)
    assert failing.calls == 3  # nothing started after the failure
    monkeypatch.setattr(hcp.rt.db, "write", failing.write)
    before = sum((await reminders_by_contact(hcp)).values())
    assert before == 10  # the two batches before it
    assert await reminders.sweep(hcp.rt, DUE) == 20
    by_contact = await reminders_by_contact(hcp)
    assert len(by_contact) == 30 and set(by_contact.values()) == {1}
    assert await scalar(hcp, "SELECT COUNT(*) FROM cases WHERE remind_at IS NOT NULL") == 0
