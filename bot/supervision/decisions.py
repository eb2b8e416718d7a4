"""A person's decision on a signal: dismissed (nothing wrong) or confirmed (the pattern is what it looks like).
Signals flag, people decide: a decision changes the signal alone, never a rating or a figure; a confirmed
malicious review is taken on through the appeal path, fake praise through the agency's own discipline. Every
decision is audited (`signal.decide`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.infra import audit
from bot.infra.refusals import NotFound, NotNow, NotYours
from bot.infra.runtime import Runtime
from bot.work_orders.actors import Actor, choice_field, text_field
from store import signals as store
from store.models import Signal

DECISIONS = ("dismissed", "confirmed")
MAY_DECIDE = ("api", "system", "admin", "l1")


async def decide(rt: Runtime, signal_id: int, body: dict[str, Any], who: Actor, now: datetime,
                 address: str | None = None) -> Signal:
    if who.role not in MAY_DECIDE:
        raise NotYours("deciding on a signal needs an L1 supervisor or an admin")
    decision = choice_field(body, "decision", DECISIONS)
    note = text_field(body, "note", required=False)
    async with rt.db.write() as session:
        signal = await store.by_id(session, signal_id, lock=rt.db.locks_rows)
        if signal is None:
            raise NotFound("no such signal")
        if not who.sees(signal.agency_code):
            raise NotYours("not in your jurisdiction")
        if signal.status != "open":
            raise NotNow(f"the signal was decided already ({signal.status})")
        signal.status, signal.note, signal.decided_by, signal.decided_at = decision, note, who.name, now
        signal.updated_at = now
        session.add(signal)
        await audit.record(session, now, who.name, audit.SIGNAL, target=("signal", signal_id),
                           details={"decision": decision, "kind": signal.kind, "agency_code": signal.agency_code,
                                    "note": note}, address=address)
    return signal
