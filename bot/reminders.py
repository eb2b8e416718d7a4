"""The reminder sweep: every case whose reminder is due gets one, once, unless it must wait.

A reminder waits while the quiet hours last, and while the person is in another conversation (one
at a time); it is never sent to a person who opted out (that is recorded as a skipped reminder).
The outbox's unique dedupe key makes "once per case per channel, ever" hold even when two
processes sweep at the same moment; the conditional write of the conversation makes "one
conversation at a time" hold the same way.
"""

from __future__ import annotations

from datetime import datetime

from bot.conversation import case_view
from bot.runtime import Runtime
from dialogs import rating
from store import cases as case_store
from store import conversations, outbox
from store.models import OutboxMessage

BATCH = 500


async def sweep(rt: Runtime, now: datetime) -> int:
    if rt.timing.quiet(now):
        return 0
    queued = 0
    cursor: case_store.Cursor = None
    while True:
        async with rt.db.write() as session:
            rows = await case_store.due_reminders(session, now, cursor, BATCH, skip_locked=rt.db.locks_rows)
            if not rows:
                return queued
            last = rows[-1][0]
            assert last.remind_at is not None and last.id is not None
            cursor = (last.remind_at, last.id)
            for case, contact in rows:
                assert case.id is not None and contact.id is not None
                key = f"reminder:sms:{case.id}"
                if contact.opted_out_at is not None:
                    await outbox.enqueue(session, OutboxMessage(
                        kind="reminder", channel="sms", case_id=case.id, contact_id=contact.id, dedupe_key=key,
                        body="", status="skipped", error="opted out", created_at=now, updated_at=now))
                    case.remind_at = None
                    session.add(case)
                    continue
                outcome = rating.remind(case_view(rt, case), rt.rules, now)
                assert outcome.state is not None
                if not await conversations.open_if_free(session, contact.id, case.id, outcome.state.to_json(),
                                                        outcome.state.expires_at, now):
                    continue  # in another conversation: this reminder waits for a later sweep
                body = rt.render(outcome.replies[0], case.locale)
                added = await outbox.enqueue(session, OutboxMessage(
                    kind="reminder", channel="sms", case_id=case.id, contact_id=contact.id, dedupe_key=key,
                    body=body, status="pending", next_attempt_at=now, created_at=now, updated_at=now,
                    provider=rt.sms.name))
                case.remind_at = None
                session.add(case)
                queued += int(added)
