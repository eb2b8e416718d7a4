"""Delivering the outbox through the providers, with retries and backoff.

Rows are claimed in one short transaction, sent outside any transaction (a slow provider must not
hold database locks), and their results recorded in another. A worker that dies after claiming
leaves its rows to be claimed again once the lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Runtime
from channels.base import Failed, Retry, SendResult, Sent, Stopped
from store import contacts, outbox
from store.models import OutboxMessage

log = logging.getLogger("haochaping.sender")

BATCH = 200
CONCURRENCY = 32
LEASE = timedelta(minutes=2)
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30),
           timedelta(hours=1), timedelta(hours=2), timedelta(hours=4), timedelta(hours=8))
MAX_ATTEMPTS = len(BACKOFF) + 1


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]


async def deliver_due(rt: Runtime, now: datetime) -> int:
    """Send every message due at `now`; the number accepted by the provider."""
    sent = 0
    while True:
        async with rt.db.write() as session:
            # Reminders keep the quiet hours on every attempt, not only the first.
            quiet = ("reminder",) if rt.timing.quiet(now) else ()
            wall = datetime.now(UTC)  # the lease is a lock on real time, not business time
            claimed = await outbox.claim_due(session, now, BATCH, wall + LEASE, wall, skip_locked=rt.db.locks_rows,
                                             skip_kinds=quiet)
            work = [(m.id, m.channel, rt.sealer.open(c.address_sealed), m.body, m.attempts, c.id)
                    for m, c in claimed]
        if not work:
            return sent
        gate = asyncio.Semaphore(CONCURRENCY)
        results = await asyncio.gather(*(_send(rt, gate, to, body) for _i, _ch, to, body, _a, _c in work))
        async with rt.db.write() as session:
            for (message_id, channel, _to, _body, attempts, contact_id), result in zip(work, results, strict=True):
                sent += await _record(session, rt, message_id, channel, attempts, contact_id, result, now)
            await _apply_early_receipts(session, [r.provider_id for r in results if isinstance(r, Sent)], now)


async def _apply_early_receipts(session: AsyncSession, provider_ids: list[str], now: datetime) -> None:
    """Status callbacks that beat the sender to the database (the provider answered fast)."""
    for receipt in await outbox.receipts_for(session, provider_ids):
        message = await outbox.by_provider_id(session, receipt.provider_id)
        if message is None:
            continue
        outbox.apply_status(message, receipt.status, receipt.error_code, now)
        session.add(message)
        if receipt.stopped:
            await contacts.opt_out(session, message.contact_id, "provider", now)


async def _send(rt: Runtime, gate: asyncio.Semaphore, to: str, body: str) -> SendResult:
    async with gate:
        return await rt.sms.send(to, body)


async def _record(session: AsyncSession, rt: Runtime, message_id: int | None, channel: str, attempts: int,
                  contact_id: int | None, result: SendResult, now: datetime) -> int:
    values: dict[str, object] = {"updated_at": now, "lease_until": None}
    if isinstance(result, Sent):
        values.update(status="sent", provider_id=result.provider_id, sent_at=now, next_attempt_at=None, error=None)
    elif isinstance(result, Retry) and attempts < MAX_ATTEMPTS:
        values.update(status="pending", next_attempt_at=now + backoff(attempts), error=result.error)
    elif isinstance(result, Stopped):
        values.update(status="failed", next_attempt_at=None, error=result.error)
        assert contact_id is not None
        await contacts.opt_out(session, contact_id, "provider", now)
    else:
        assert isinstance(result, Failed | Retry)
        values.update(status="failed", next_attempt_at=None, error=result.error)
    await session.exec(update(OutboxMessage).where(col(OutboxMessage.id) == message_id).values(**values))
    label = type(result).__name__.lower()
    rt.metrics.sends.labels(channel, label).inc()
    if not isinstance(result, Sent):
        log.warning("outbox message %s: %s (%s)", message_id, label, getattr(result, "error", ""))
    return int(isinstance(result, Sent))
