"""Pushing the queued reports to the upstream platforms, with retries and backoff.

As the SMS sender does (bot/delivery/sender.py): reports are claimed in one short transaction, pushed outside
any transaction (a slow upstream must not hold database locks, nor delay a rating), and their
outcomes recorded in another. Exactly once, from the upstream's point of view, rests on the
idempotency key: every attempt of a report carries the same key, so a push whose answer was lost
(a timeout, a worker that died) is simply pushed again and the upstream keeps the first.

An upstream that fails a whole round, or leaves any request of a round unanswered, is left alone for
the rest of the pass: the next tick probes it again, so a platform that is down or hangs costs each
tick at most one timeout, not one per queued report.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.figures.reporting.queue import profiles as enabled_profiles
from bot.infra.privacy import mask_numbers
from bot.infra.runtime import Runtime
from bot.policy.reporting_profiles import Auth, MissingSecret, ReportingProfile
from store import reports

log = logging.getLogger("haochaping.reporting")

CONCURRENCY = 32  # requests in flight at once; one claim is one round of them
LIMIT = 2000  # attempts per pass at most: a backlog drains over several ticks, not in one
ERROR_BODY = 200  # characters of the upstream's answer kept with a rejection
ANSWER_LIMIT = 64 * 1024  # bytes of an answer read at most (its body's verdict, when the profile reads one)
# Statuses that say "try again later" rather than "this report is wrong".
RETRYABLE = frozenset({408, 425, 429})

Result = Literal["sent", "duplicate", "retry", "rejected"]


@dataclass(frozen=True)
class Outcome:
    result: Result
    error: str | None = None
    unanswered: bool = False  # no answer at all (a time-out, no connection): the upstream is unwell


@dataclass(frozen=True)
class Job:
    id: int
    profile: ReportingProfile
    key: str
    record: dict[str, Any]
    attempts: int
    lease: datetime


async def push(rt: Runtime, now: datetime, limit: int = LIMIT) -> int:
    """Push the reports due at `now`; how many the upstreams now hold."""
    by_name = {p.name: p for p in enabled_profiles(rt)}
    if not by_name:
        return 0
    sent = attempted = 0
    down: set[str] = set()
    # The lease outlives the longest request, so no other worker takes a report over mid-request.
    lease_for = timedelta(seconds=max(rt.settings.send_lease, 2 * max(p.timeout_seconds for p in by_name.values())))
    gate = asyncio.Semaphore(CONCURRENCY)
    while attempted < limit:
        live = [name for name in by_name if name not in down]
        wall = datetime.now(UTC)  # the lease is a lock on real time, not business time
        async with rt.db.write() as session:
            claimed = await reports.claim_due(session, now, min(CONCURRENCY, limit - attempted), wall + lease_for,
                                              wall, profiles=live, skip_locked=rt.db.locks_rows)
            jobs = [Job(r.id, by_name[r.profile], r.idempotency_key, r.record, r.attempts, r.lease_until)  # type: ignore[arg-type]
                    for r in claimed]
        if not jobs:
            break
        attempted += len(jobs)
        outcomes = await asyncio.gather(*(_attempt(rt, gate, job) for job in jobs))
        async with rt.db.write() as session:
            for job, outcome in zip(jobs, outcomes, strict=True):
                sent += await _record(session, rt, job, outcome, now)
        for name in {job.profile.name for job in jobs}:
            mine = [o for job, o in zip(jobs, outcomes, strict=True) if job.profile.name == name]
            # One request left unanswered is enough: an upstream that hangs on some requests would
            # otherwise cost a whole time-out each round, and the pass (so every duty of the next one) waits.
            if all(o.result == "retry" for o in mine) or any(o.unanswered for o in mine):
                down.add(name)
    await refresh_gauges(rt, now)
    return sent


async def _attempt(rt: Runtime, gate: asyncio.Semaphore, job: Job) -> Outcome:
    async with gate:
        try:
            return await _send(rt.http_client(), job, rt)
        except Exception as exc:  # a bug must not leave the report leased and the pass broken
            log.exception("report %s: the push failed unexpectedly", job.id)
            return Outcome("retry", f"internal error: {type(exc).__name__}")


async def _send(http: aiohttp.ClientSession, job: Job, rt: Runtime) -> Outcome:
    profile = job.profile
    try:
        body = profile.body(job.record, job.key, rt.policy.tz)
    except (KeyError, ValueError) as exc:  # e.g. a channel the profile has no code for: a person must look
        return Outcome("rejected", f"the profile cannot encode this record: {exc}")
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": job.key}
    try:
        headers.update(auth_headers(profile.auth, data))
    except MissingSecret as exc:
        return Outcome("retry", str(exc))
    try:
        # No redirects: aiohttp would follow a 301/302 with a GET without the body (and a 200 to that
        # would mark the report sent), and carry the authentication headers to wherever it points.
        async with http.post(profile.endpoint, data=data, headers=headers, allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=profile.timeout_seconds)) as resp:
            status = resp.status
            raw = await _read_answer(resp)
            answer = raw[:4 * ERROR_BODY].decode("utf-8", "replace")
            if 300 <= status < 400:
                answer = f"redirected to {resp.headers.get('Location', '?')}: fix the profile's endpoint"
    except TimeoutError:
        return Outcome("retry", f"no answer within {profile.timeout_seconds:g} s", unanswered=True)
    except aiohttp.ClientError as exc:
        return Outcome("retry", f"{type(exc).__name__}: {exc}"[:ERROR_BODY], unanswered=True)
    if 200 <= status < 300:
        if profile.success is None:
            return Outcome("sent")
        said, value = profile.success.judge(raw)
        if said != "refused":
            return Outcome(said)
        where = f"{profile.success.field} = {value}" if value is not None else f"no {profile.success.field} in it"
        return Outcome("rejected", f"HTTP {status} but {where}: {answer[:ERROR_BODY]}")
    if status == 409:  # the upstream has this key already: an earlier attempt did arrive
        return Outcome("duplicate")
    error = f"HTTP {status}: {answer[:ERROR_BODY]}"
    if status in RETRYABLE or status >= 500:
        return Outcome("retry", error)
    return Outcome("rejected", error)


async def _read_answer(resp: aiohttp.ClientResponse) -> bytes:
    """The answer's first ANSWER_LIMIT bytes: an upstream that answers without end is not read to its end."""
    raw = b""
    while len(raw) < ANSWER_LIMIT:
        chunk = await resp.content.read(ANSWER_LIMIT - len(raw))
        if not chunk:
            break
        raw += chunk
    return raw


def auth_headers(auth: Auth, data: bytes) -> dict[str, str]:
    """The profile's authentication, its secrets read from the environment at each push (a rotated
    token takes effect without a restart)."""
    if auth.type == "bearer":
        return {"Authorization": f"Bearer {auth.secret(auth.token_env)}"}
    if auth.type == "basic":
        pair = f"{auth.username}:{auth.secret(auth.password_env)}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if auth.type == "hmac":
        stamp = str(int(time.time()))  # real time: the upstream checks it against its own clock
        digest = hmac.new(auth.secret(auth.secret_env).encode(), stamp.encode() + b"\n" + data, hashlib.sha256)
        return {"X-Timestamp": stamp, auth.header or "X-Signature": digest.hexdigest()}
    if auth.type == "header":
        assert auth.header is not None
        return {auth.header: auth.secret(auth.value_env)}
    return {}


async def _record(session: AsyncSession, rt: Runtime, job: Job, outcome: Outcome, now: datetime) -> int:
    """Write the outcome (unless the lease ran out meanwhile); 1 when the upstream holds the report now."""
    values: dict[str, Any] = {"updated_at": now}
    if outcome.result in ("sent", "duplicate"):
        values.update(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
    elif outcome.result == "retry":
        delay = timedelta(seconds=job.profile.retry.delay(job.attempts))
        values.update(next_attempt_at=now + delay, last_error=mask_numbers(outcome.error or ""))
    else:
        values.update(status="rejected", next_attempt_at=None, last_error=mask_numbers(outcome.error or ""))
    kept = await reports.record(session, job.id, job.lease, values)
    rt.metrics.report_attempts.labels(job.profile.name, outcome.result).inc()
    if not kept:
        log.error("report %s: its lease ran out during the push; the next pass pushes it again", job.id)
        return 0
    if outcome.result in ("retry", "rejected"):
        log.warning("report %s to %s, attempt %d: %s (%s)", job.id, job.profile.name, job.attempts,
                    outcome.result, outcome.error)
    return int(outcome.result in ("sent", "duplicate"))


async def refresh_gauges(rt: Runtime, now: datetime) -> None:
    """The gauges of /metrics: reports still to resolve per profile, and the age of the oldest pending.

    Sent reports are not counted here (their number only grows; counting them at each pass would cost
    more as the years go by): the attempts counter shows them.
    """
    async with rt.db.read() as session:
        tallies = await reports.tally(session, ("pending", "rejected"))
    names = {p.name for p in rt.policy.reporting} | {t.profile for t in tallies}
    counts = {(t.profile, t.status): t for t in tallies}
    for name in names:
        for status in ("pending", "rejected"):
            tally = counts.get((name, status))
            rt.metrics.reports.labels(name, status).set(tally.count if tally else 0)
        pending = counts.get((name, "pending"))
        oldest = pending.oldest if pending is not None else None
        rt.metrics.report_oldest.labels(name).set(max((now - oldest).total_seconds(), 0) if oldest else 0)
