"""Delivering the outbox through the providers, with retries and backoff.

Rows are claimed in one short transaction, sent outside any transaction (a slow provider must not
hold database locks), and their results recorded in another. A worker that dies after claiming
leaves its rows to be claimed again once the lease (HAOCHAPING_SEND_LEASE) runs out.

Exactly once: an attempt whose outcome is unknown (it timed out, or its worker died between the
provider's answer and the record) marks the row unsure. Before sending it again, the sender asks the
provider whether a message with that body reached that number since; if so, that message is
recorded and nothing is sent. A provider that cannot be asked (WeChat) is sent to again.

A database that refuses connections in the middle of a batch (PostgreSQL's "too many clients", a pool
that stays busy) costs no lease: a row whose lease could not be renewed was never sent and is released
at once (pending again, its attempt not counted), and the record of what was sent is tried again a few
times before it is left to the lease. Before this, one refused renewal failed the whole batch: the
other sends went on unrecorded and the batch stayed `sending` until the lease ran out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.runtime import Runtime
from bot.rating import consent
from channels.base import Failed, Outgoing, Retry, SendResult, Sent, Stopped, Unsure
from store import cases as case_store
from store import contacts, outbox

log = logging.getLogger("haochaping.sender")

BATCH = 200
CONCURRENCY = 32
SKEW = timedelta(seconds=5)  # between our wall clock and the provider's, when asking what it has
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30),
           timedelta(hours=1), timedelta(hours=2), timedelta(hours=4), timedelta(hours=8))
MAX_ATTEMPTS = len(BACKOFF) + 1
RECORD_RETRIES = (0.2, 1.0, 3.0)  # seconds between tries of a batch's record (the leases are still ours)


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    channel: str
    case_id: int | None
    contact_id: int
    to: str
    body: str
    payload: dict[str, Any] | None
    attempts: int
    attempted_at: datetime | None
    unsure_since: datetime | None
    lease_until: datetime


@dataclass(frozen=True)
class Untried:
    """The attempt never reached the provider: its lease could not be renewed (the database refused)."""

    error: str


@dataclass
class Delivery:
    sent: int = 0
    fallbacks: int = 0  # mini-program reminders refused, to go by SMS instead


async def deliver_due(rt: Runtime, now: datetime, *, only_kinds: tuple[str, ...] = ()) -> Delivery:
    """Send every message due at `now` (or only those of `only_kinds`)."""
    done = Delivery()
    while True:
        async with rt.db.write() as session:
            # Reminders and callback questions keep the quiet hours on every attempt, not only the first.
            quiet = ("reminder", "callback") if rt.timing.quiet(now) else ()
            wall = datetime.now(UTC)  # the lease is a lock on real time, not business time
            lease = timedelta(seconds=rt.settings.send_lease)
            claimed = await outbox.claim_due(session, now, BATCH, wall + lease, wall, skip_locked=rt.db.locks_rows,
                                             skip_kinds=quiet, only_kinds=only_kinds)
            jobs = [Job(m.id, m.kind, m.channel, m.case_id, c.id, rt.sealer.open(c.address_sealed), m.body,  # type: ignore[arg-type]
                        m.payload, m.attempts, m.attempted_at, m.unsure_since, m.lease_until)  # type: ignore[arg-type]
                    for m, c in claimed]
        if not jobs:
            return done
        gate = asyncio.Semaphore(CONCURRENCY)
        attempts = await asyncio.gather(*(_attempt(rt, gate, job) for job in jobs))
        await _record_batch(rt, jobs, attempts, now, done)
        if any(isinstance(result, Untried) for result, _ in attempts):
            return done  # the database is refusing: the released rows wait for the next pass, not a tight loop


async def _record_batch(rt: Runtime, jobs: list[Job], attempts: list[tuple[SendResult | Untried | None, datetime]],
                        now: datetime, done: Delivery) -> None:
    """Record a batch's results and release its untried rows in one transaction, tried again when the
    database refuses it: the sends happened, and a row left `sending` waits for its whole lease."""
    for pause in (*RECORD_RETRIES, None):
        this = Delivery()
        try:
            async with rt.db.write() as session:
                sent = [(job.id, lease, result.provider_id) for job, (result, lease) in zip(jobs, attempts, strict=True)
                        if isinstance(result, Sent)]
                lost = await outbox.record_sent(session, sent, now)  # the usual result, all in one go
                for message_id in sorted(lost):
                    log.error("outbox message %s: its lease ran out during the attempt (Sent); "
                              "HAOCHAPING_SEND_LEASE is too short", message_id)
                this.sent += len(sent) - len(lost)
                for job, (result, lease) in zip(jobs, attempts, strict=True):
                    if (isinstance(result, Sent) and job.channel == "miniprogram" and job.kind != "reply"
                            and job.id not in lost):  # a subscribe message: one grant used up
                        await contacts.subscription_used(session, job.contact_id)
                    if isinstance(result, Untried):
                        await _release(session, job, lease, now)
                    elif result is not None and not isinstance(result, Sent):
                        await _record(session, rt, job, result, lease, now, this)
                await _apply_early_receipts(session, [r.provider_id for r, _ in attempts if isinstance(r, Sent)],
                                            now)
        except Exception as exc:
            if pause is None:
                raise  # left to the leases: the next claim asks the provider before sending again
            log.warning("recording %d outbox results failed (%s); again in %g s", len(jobs), type(exc).__name__,
                        pause)
            await asyncio.sleep(pause)
            continue
        done.sent += this.sent
        done.fallbacks += this.fallbacks
        for job, (result, _lease) in zip(jobs, attempts, strict=True):
            if result is not None and not isinstance(result, Untried):
                _count(rt, job, result)
        return


async def _attempt(rt: Runtime, gate: asyncio.Semaphore, job: Job) -> tuple[SendResult | Untried | None, datetime]:
    """Renew the job's lease as its turn comes, then send; None when another worker took it over,
    Untried when the lease could not be renewed (nothing was sent).

    A batch's later jobs wait for the earlier ones. Without renewing, a slow batch could outlast the
    lease it was claimed with, and another worker would send what this one is still about to send. A job
    whose lease still covers a whole attempt (asking the provider, then sending: 2 × the send timeout + 1,
    the least lease the settings allow) needs no renewal: nobody can claim it before the attempt is over.
    So a batch that goes quickly costs one transaction to claim and one to record, not one per message.
    """
    async with gate:
        wall = datetime.now(UTC)
        lease = job.lease_until
        if lease - wall < timedelta(seconds=2 * rt.settings.send_timeout + 1):
            lease = wall + timedelta(seconds=rt.settings.send_lease)
            try:
                async with rt.db.write() as session:
                    kept = await outbox.renew_lease(session, job.id, job.lease_until, lease)
            except Exception as exc:  # refused, or the pool stayed busy: not sent, so released at once
                log.warning("outbox message %s: its lease could not be renewed (%s); released for the next pass",
                            job.id, type(exc).__name__)
                return Untried(f"{type(exc).__name__}: {exc}"), lease
            if not kept:
                log.warning("outbox message %s was taken over by another worker before its turn", job.id)
                return None, job.lease_until
        try:
            return await _send(rt, job), lease
        except Exception as exc:  # a provider client that raised instead of answering: sent or not, unknown
            log.exception("outbox message %s: the send failed unexpectedly", job.id)
            return Unsure(f"{type(exc).__name__}: {exc}"), lease


async def _release(session: AsyncSession, job: Job, lease: datetime, now: datetime) -> None:
    """An untried row back to `pending`, due as it was, the attempt not counted. Its lease is the one
    it was claimed with, or the renewed one if the renewal did commit before failing; a row another
    worker holds by now is not touched."""
    await outbox.release(session, job.id, [job.lease_until, lease], max(job.attempts - 1, 0), now)


async def _send(rt: Runtime, job: Job) -> SendResult:
    if job.channel == "sms":
        if job.unsure_since is not None:
            try:
                found = await rt.sms.find_sent(_outgoing(job), job.unsure_since - SKEW)
            except Exception as exc:  # could not ask: better late than twice
                return Unsure(f"could not ask the provider about an earlier attempt: {type(exc).__name__}")
            if found is not None:
                log.info("outbox message %s: an earlier attempt did reach the provider (%s)", job.id, found)
                return Sent(found)
        await rt.sms_rate.take()
        return await rt.sms.send(_outgoing(job))
    if job.channel == "wechat" and rt.wechat_api is not None:
        return await rt.wechat_api.send_text(job.to, job.body)
    if job.channel == "miniprogram" and rt.mp_api is not None and job.kind == "reply":
        return await rt.mp_api.send_text(job.to, job.body)  # the mini-program's customer-service chat
    if job.channel == "miniprogram" and rt.mp_api is not None and job.payload:
        return await rt.mp_api.send_subscribe(job.to, job.payload["template_id"], job.payload.get("page"),
                                              job.payload["data"])
    return Failed(f"no provider configured for channel {job.channel}")


def _outgoing(job: Job) -> Outgoing:
    """An SMS as the provider takes it: the text, our id, and for a template provider its key and values."""
    payload = job.payload or {}
    values = payload.get("values") if isinstance(payload.get("values"), dict) else {}
    key = payload.get("key") if isinstance(payload.get("key"), str) else None
    return Outgoing(to=job.to, body=job.body, outbox_id=job.id, key=key, values={k: str(v) for k, v in values.items()})


async def _record(session: AsyncSession, rt: Runtime, job: Job, result: SendResult, lease: datetime,
                  now: datetime, done: Delivery) -> None:
    """Record an attempt that did not reach the provider (a sent one: outbox.record_sent), unless its lease ran
    out and another worker holds the row now."""
    values: dict[str, object] = {"updated_at": now, "lease_until": None}
    if isinstance(result, Retry | Unsure) and job.attempts < MAX_ATTEMPTS:
        values.update(status="pending", next_attempt_at=now + backoff(job.attempts), error=result.error)
        if isinstance(result, Unsure):
            values["unsure_since"] = job.unsure_since or job.attempted_at
    elif isinstance(result, Stopped) and job.channel == "miniprogram":
        # 43101: no subscription to use. The reminder goes by SMS when the case has a phone.
        values.update(status="refused", next_attempt_at=None, error=result.error)
        if job.kind != "reply":  # a subscribe message: no grant left, whatever we counted
            await contacts.subscription_used(session, job.contact_id, refused=True)
        if job.kind == "reminder" and job.case_id is not None:
            done.fallbacks += await case_store.remind_by_sms_instead(session, job.case_id, now)
    elif isinstance(result, Stopped):
        values.update(status="failed", next_attempt_at=None, error=result.error)
        await consent.opt_out(session, job.contact_id, consent.By.PROVIDER, now)
    else:
        assert isinstance(result, Failed | Retry | Unsure)
        values.update(status="failed", next_attempt_at=None, error=result.error)
    if not await outbox.record_attempt(session, job.id, lease, values):
        log.error("outbox message %s: its lease ran out during the attempt (%s); HAOCHAPING_SEND_LEASE is too "
                  "short", job.id, type(result).__name__)


def _count(rt: Runtime, job: Job, result: SendResult) -> None:
    """The attempt's metric and log line, once its record is committed."""
    label = type(result).__name__.lower()
    rt.metrics.sends.labels(job.channel, label).inc()
    if not isinstance(result, Sent):
        log.warning("outbox message %s (%s): %s (%s)", job.id, job.channel, label, getattr(result, "error", ""))


async def _apply_early_receipts(session: AsyncSession, provider_ids: list[str], now: datetime) -> None:
    """Status callbacks that beat the sender to the database (the provider answered fast)."""
    for receipt in await outbox.receipts_for(session, provider_ids):
        message = await outbox.by_provider_id(session, receipt.provider_id)
        if message is None:
            continue
        outbox.apply_status(message, receipt.status, receipt.error_code, now)
        session.add(message)
        if receipt.stopped:
            await consent.opt_out(session, message.contact_id, consent.By.PROVIDER, now)
