"""Bursts: many signed SMS webhooks at the same instant, and the connection pools they meet.

Why: an attack on the running service (issue 18, finding 13) sent 200 signed SMS webhooks at once on
PostgreSQL + Redis and got 99 answers 503 "redis: Too many connections": redis-py's pool refused the
101st concurrent command at once (redis-py 6 made 100 its default maximum). A burst must wait for a
connection, a bounded wait, and a real outage only is 503 (with Retry-After, so that Twilio retries).

- A real `haochaping serve` (the console script, as deployed) takes 200 webhooks at once, each from
  a person answering a live reminder, on PostgreSQL + Redis and on SQLite + in-process state: every
  answer is 200 and every rating is stored once. The reminders are sent beforehand by `haochaping
  tick` to the fake Twilio in this test's event loop (quiet hours off: the wall clock is the clock).
- The pools are configurable (HAOCHAPING_DB_POOL_*, HAOCHAPING_REDIS_*) and wait, bounded: a Redis pool
  smaller than the burst still serves it; a pool that stays empty past its timeout is StateUnavailable
  (Redis) or 503 + Retry-After (the database) after that timeout, not at once and not forever.
- The sender: a batch whose lease renewals or result records meet a database that refuses connections
  (PostgreSQL's "too many clients") releases what it never sent and records what it did, instead of
  leaving the whole batch `sending` for the lease (with real processes: tests/system/test_workers.py, behind a
  gate that refuses connections). A scheduler pass refused a connection logs one line, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncpg
import pytest
from fakes.twilio_api import FakeTwilio
from helpers import PUBLIC_URL, TOKEN, Hcp
from servers import REDIS_URL, truncate
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import col, select
from twilio.request_validator import RequestValidator

from bot.delivery import reminders, sender
from bot.infra.config import KEYS, ConfigError, Settings, load_settings
from bot.infra.runtime import open_runtime
from bot.infra.state import RedisState, StateUnavailable, open_state
from bot.web.app import build_app
from store.engine import refused
from store.models import OutboxMessage

HAOCHAPING = Path(sys.executable).with_name("haochaping")  # the console script, as deployed
SMS_PATH = "/webhooks/twilio/sms"
SMS_FROM = "+8610690012345"
BURST = 200
STARTUP_SECONDS = 30.0
# Bounds, not expectations: 200 ratings take ~2 s on 2 idle cores; a loaded machine may take several times that.
SETUP_SECONDS = 180.0
BURST_SECONDS = 120.0


# --- a `serve` process and the burst ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Served:
    url: str
    env: dict[str, str]
    cwd: Path
    log: Path

    def tail(self, lines: int = 40) -> str:
        text_ = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text_.splitlines()[-lines:])


def _env(tmp_path: Path, fake: FakeTwilio, database_url: str, redis: tuple[str, str] | None,
         **extra: str) -> dict[str, str]:
    """The process's whole configuration: nothing of the caller's HAOCHAPING_*/TWILIO_*/WECHAT_* leaks in."""
    policy = tmp_path / "policy.toml"
    policy.write_text('quiet_hours = ["00:00", "00:00"]\n', encoding="utf-8")  # the hour the suite runs at
    env = {k: v for k, v in os.environ.items()
           if k not in KEYS and not k.startswith(("HAOCHAPING_", "TWILIO_", "WECHAT_"))}
    env.update({
        "HAOCHAPING_DATABASE_URL": database_url, "HAOCHAPING_PUBLIC_URL": PUBLIC_URL, "HAOCHAPING_API_TOKEN": TOKEN,
        "HAOCHAPING_SECRET_KEY": "bursts-" + secrets.token_urlsafe(32), "HAOCHAPING_POLICY": str(policy),
        "HAOCHAPING_SIMULATOR": "off", "HAOCHAPING_LOG_LEVEL": "WARNING",
        "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_SMS_FROM": SMS_FROM,
        "TWILIO_API_BASE_URL": fake.base_url, **extra,
    })
    if redis is not None:
        env["HAOCHAPING_REDIS_URL"], env["HAOCHAPING_REDIS_PREFIX"] = redis
    return env


@asynccontextmanager
async def serve(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Served]:
    """`haochaping serve --no-scheduler` on a free port until the block ends (SIGTERM, then SIGKILL)."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            str(HAOCHAPING), "serve", "--port", str(port), "--no-scheduler", env=env, cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", env, tmp_path, log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                assert process.returncode is None, f"serve exited with {process.returncode}:\n{served.tail()}"
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(served.url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                assert time.monotonic() < deadline, f"serve did not answer /healthz in {STARTUP_SECONDS} s"
                await asyncio.sleep(0.1)
        yield served
    finally:
        if process.returncode is None:
            process.terminate()  # by its own handle: only ever the process this test started
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


def people(n: int) -> dict[str, str]:
    """n cases, case_no → its applicant's own mobile number (E.164, as Twilio sees it)."""
    series = secrets.randbelow(900) + 100
    return {f"B{series}-{i:05d}": f"+86139{series}{i:05d}" for i in range(n)}


async def reminded(served: Served, fake: FakeTwilio, cases: dict[str, str]) -> None:
    """The cases posted (completed 25 hours ago) and their reminders sent by one `haochaping tick`: each
    person has a live conversation waiting for a grade."""
    completed = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    body = "".join(json.dumps(Hcp.case_body(case_no=no, completed_at=completed, phone=phone), ensure_ascii=False)
                   + "\n" for no, phone in cases.items()).encode()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SETUP_SECONDS)) as http:
        async with http.post(served.url + "/api/v1/cases:bulk", data=body,
                             headers={"Authorization": f"Bearer {TOKEN}",
                                      "Content-Type": "application/x-ndjson"}) as resp:
            doc = await resp.json()
    assert resp.status == 200 and doc["created"] == len(cases) and not doc["errors"], (resp.status, doc)
    tick = await asyncio.create_subprocess_exec(str(HAOCHAPING), "tick", env=served.env, cwd=served.cwd,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(tick.communicate(), SETUP_SECONDS)  # awaited: the fake lives in this loop
    assert tick.returncode == 0, out
    counts = json.loads(out)
    assert counts["reminders"] == counts["sent"] == len(cases), counts
    assert {m["to"] for m in fake.messages} == set(cases.values())


def signed(fake: FakeTwilio, phone: str, body: str) -> tuple[dict[str, str], str]:
    sid = "SM" + secrets.token_hex(16)
    params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": fake.account_sid, "From": phone, "To": SMS_FROM,
              "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}
    return params, RequestValidator(fake.auth_token).compute_signature(PUBLIC_URL + SMS_PATH, params)


@dataclasses.dataclass
class Burst:
    statuses: dict[int | str, int]
    texts: dict[str, list[str]]  # phone → the TwiML's messages (200 answers)
    first_error: str | None
    seconds: float
    slowest: float


async def burst(url: str, fake: FakeTwilio, phones: list[str], body: str = "1") -> Burst:
    """One signed webhook per phone, all at once: one connection each, no client-side limit, every
    request started before any is answered."""
    requests = [(phone, *signed(fake, phone, body)) for phone in phones]
    statuses: dict[int | str, int] = {}
    texts: dict[str, list[str]] = {}
    errors: list[str] = []
    latencies: list[float] = []
    gate = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=BURST_SECONDS)) as http:
        async def one(phone: str, params: dict[str, str], signature: str) -> None:
            await gate.wait()
            started = time.monotonic()
            try:
                async with http.post(url + SMS_PATH, data=params, headers={"X-Twilio-Signature": signature}) as resp:
                    raw, status = await resp.text(), resp.status
                    retry_after = resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raw, status, retry_after = f"{type(exc).__name__}: {exc}", "exception", None
            latencies.append(time.monotonic() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                texts[phone] = ["".join(m.itertext()) for m in ET.fromstring(raw).iter("Message")]
            elif not errors:
                errors.append(f"{phone}: {status} (Retry-After {retry_after}) {raw[:300]}")

        tasks = [asyncio.create_task(one(*r)) for r in requests]
        await asyncio.sleep(0)  # every task waits at the gate
        started = time.monotonic()
        gate.set()
        await asyncio.gather(*tasks)
    return Burst(statuses, texts, errors[0] if errors else None, time.monotonic() - started, max(latencies))


def assert_all_answered(result: Burst, cases: dict[str, str]) -> None:
    assert result.statuses == {200: len(cases)}, (result.statuses, result.first_error)
    replies = {tuple(t) for t in result.texts.values()}
    assert len(replies) == 1 and all(len(r) == 1 for r in replies), replies  # the same thanks to each


async def ratings_pg(dsn: str) -> dict[str, list[tuple[str, str]]]:
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    try:
        rows = await conn.fetch("SELECT c.case_no, e.grade, e.channel FROM cases c "
                                "LEFT JOIN evaluations e ON e.case_id = c.id")
    finally:
        await conn.close()
    return _by_case([(r["case_no"], r["grade"], r["channel"]) for r in rows])


def ratings_sqlite(path: Path) -> dict[str, list[tuple[str, str]]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT c.case_no, e.grade, e.channel FROM cases c "
                            "LEFT JOIN evaluations e ON e.case_id = c.id").fetchall()
    finally:
        conn.close()
    return _by_case(rows)


def _by_case(rows: list[tuple[str, str | None, str | None]]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for case_no, grade, channel in rows:
        out.setdefault(case_no, [])
        if grade is not None:
            out[case_no].append((grade, channel))  # type: ignore[arg-type]
    return out


def assert_stored_once(stored: dict[str, list[tuple[str, str]]], cases: dict[str, str]) -> None:
    wrong = {no: got for no, got in stored.items() if got != [("very_satisfied", "sms")]}
    assert set(stored) == set(cases) and not wrong, f"{len(wrong)} cases not rated once, e.g. {list(wrong.items())[:5]}"


@pytest.mark.slow
async def test_200_webhooks_at_once_on_postgres_and_redis_all_answer_200_and_each_rating_is_stored_once(
        tmp_path: Path, pg_database: str, redis_prefix: str, fake_twilio: FakeTwilio,
        record_property: Callable[[str, object], None]) -> None:
    """The attack of finding 13, on the defaults (no pool setting given): 99 of these were 503."""
    await truncate(pg_database)
    cases = people(BURST)
    env = _env(tmp_path, fake_twilio, pg_database, (REDIS_URL, redis_prefix))
    async with serve(tmp_path, env) as served:
        await reminded(served, fake_twilio, cases)
        result = await burst(served.url, fake_twilio, list(cases.values()))
        record_property("burst", f"{result.seconds:.2f} s, slowest answer {result.slowest:.2f} s")
        assert_all_answered(result, cases)
        again = await burst(served.url, fake_twilio, list(cases.values()))  # nothing left to rate: still 200
        assert again.statuses == {200: BURST}, (again.statuses, again.first_error)
    assert_stored_once(await ratings_pg(pg_database), cases)


@pytest.mark.slow
async def test_200_webhooks_at_once_on_sqlite_and_in_process_state_all_answer_200_and_each_rating_is_stored_once(
        tmp_path: Path, fake_twilio: FakeTwilio, record_property: Callable[[str, object], None]) -> None:
    """SQLite has one writer at a time: the 200 ratings queue for it, none is refused."""
    path = tmp_path / "haochaping.db"
    cases = people(BURST)
    env = _env(tmp_path, fake_twilio, f"sqlite+aiosqlite:///{path}", None)
    async with serve(tmp_path, env) as served:
        await reminded(served, fake_twilio, cases)
        result = await burst(served.url, fake_twilio, list(cases.values()))
        record_property("burst", f"{result.seconds:.2f} s, slowest answer {result.slowest:.2f} s")
        assert_all_answered(result, cases)
    assert_stored_once(ratings_sqlite(path), cases)


def listen_backlog(url: str) -> int:
    """The accept queue's length of the socket listening at `url` (ss shows it as Send-Q)."""
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    [line] = out.strip().splitlines()
    return int(line.split()[2])


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) not installed")
async def test_serve_keeps_a_burst_of_connections_waiting_in_its_accept_queue(
        tmp_path: Path, fake_twilio: FakeTwilio) -> None:
    """aiohttp listens with a backlog of 128: the SYNs of the rest of a burst would be dropped, and each
    of those clients would retry a second (then 3, 7 s) later. `serve` asks for 1,024 (the kernel caps it
    at net.core.somaxconn)."""
    env = _env(tmp_path, fake_twilio, f"sqlite+aiosqlite:///{tmp_path / 'haochaping.db'}", None)
    async with serve(tmp_path, env) as served:
        assert listen_backlog(served.url) == min(1024, somaxconn())


# --- the settings -------------------------------------------------------------------------------------------


POOL_KEYS = {"HAOCHAPING_DB_POOL_SIZE": "db_pool_size", "HAOCHAPING_DB_MAX_OVERFLOW": "db_max_overflow",
             "HAOCHAPING_DB_POOL_TIMEOUT": "db_pool_timeout", "HAOCHAPING_REDIS_MAX_CONNECTIONS":
             "redis_max_connections", "HAOCHAPING_REDIS_POOL_TIMEOUT": "redis_pool_timeout"}


def test_pool_settings_have_defaults_sized_for_several_processes_on_100_connections(tmp_path: Path) -> None:
    s = load_settings({}, cwd=tmp_path)
    assert (s.db_pool_size, s.db_max_overflow, s.db_pool_timeout) == (10, 5, 10.0)
    assert (s.redis_max_connections, s.redis_pool_timeout) == (50, 5.0)
    # five `serve` processes and a `tick` stay under PostgreSQL's default max_connections (100, 3 reserved)
    assert 6 * (s.db_pool_size + s.db_max_overflow) <= 97
    # a burst's wait ends before Twilio's 15 s: the answer (200 or 503 + Retry-After) still reaches it
    assert s.redis_pool_timeout + s.db_pool_timeout <= 15
    assert set(POOL_KEYS) <= set(KEYS)


def test_pool_settings_are_read_from_the_environment_and_the_file_and_checked(tmp_path: Path) -> None:
    env = {"HAOCHAPING_DB_POOL_SIZE": "4", "HAOCHAPING_DB_MAX_OVERFLOW": "0", "HAOCHAPING_DB_POOL_TIMEOUT": "2.5",
           "HAOCHAPING_REDIS_MAX_CONNECTIONS": "8", "HAOCHAPING_REDIS_POOL_TIMEOUT": "0.5"}
    s = load_settings(env, cwd=tmp_path)
    assert (s.db_pool_size, s.db_max_overflow, s.db_pool_timeout, s.redis_max_connections,
            s.redis_pool_timeout) == (4, 0, 2.5, 8, 0.5)
    (tmp_path / "haochaping.toml").write_text("db_pool_size = 3\nredis_max_connections = 20\n", encoding="utf-8")
    s = load_settings({}, cwd=tmp_path)
    assert (s.db_pool_size, s.redis_max_connections) == (3, 20)
    for key, bad in (("HAOCHAPING_DB_POOL_SIZE", "0"), ("HAOCHAPING_DB_POOL_SIZE", "ten"),
                     ("HAOCHAPING_DB_MAX_OVERFLOW", "-1"), ("HAOCHAPING_DB_POOL_TIMEOUT", "0"),
                     ("HAOCHAPING_REDIS_MAX_CONNECTIONS", "0"), ("HAOCHAPING_REDIS_POOL_TIMEOUT", "never"),
                     ("HAOCHAPING_DB_POOL_SIZE", "2.5")):
        with pytest.raises(ConfigError, match=key):
            load_settings({key: bad}, cwd=tmp_path)


# --- the Redis pool -----------------------------------------------------------------------------------------


async def _hold(state: RedisState, seconds: float) -> None:
    """Keep one pooled connection busy: BLPOP on a key nobody pushes to."""
    await state.redis.blpop([f"{state.prefix}nothing:{secrets.token_hex(4)}"], timeout=seconds)


async def test_a_burst_larger_than_the_redis_pool_waits_for_connections_instead_of_failing(redis_prefix: str) -> None:
    """300 commands at once on the default pool (redis-py's own would refuse the 101st), and 100 at once
    on a pool of 2: every one answered."""
    state = open_state(REDIS_URL, redis_prefix)
    try:
        counts = await asyncio.gather(*(state.hit(f"burst:{i}", 60) for i in range(300)))
        assert counts == [1] * 300
        async with asyncio.timeout(10):
            async with state.lock("burst"):
                pass
    finally:
        await state.close()
    small = RedisState(REDIS_URL, redis_prefix, max_connections=2, pool_timeout=5)
    try:
        found = await asyncio.gather(*(small.get(f"missing:{i}") for i in range(100)))
        assert found == [None] * 100
    finally:
        await small.close()


async def test_a_redis_pool_that_stays_busy_is_state_unavailable_after_its_timeout(redis_prefix: str) -> None:
    """The wait is bounded: with the only connection held for 3 s, a command gives up after the pool's 0.5 s."""
    state = RedisState(REDIS_URL, redis_prefix, max_connections=1, pool_timeout=0.5)
    try:
        holder = asyncio.create_task(_hold(state, 3))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await state.get("anything")
        assert 0.4 <= time.monotonic() - started < 2
        await holder
        assert await state.get("anything") is None  # the connection is back: served at once
    finally:
        await state.close()


@pytest.mark.parametrize("pool_timeout", [30.0])
async def test_a_stopped_redis_is_state_unavailable_at_once_whatever_the_pool_timeout(
        redis_prefix: str, pool_timeout: float) -> None:
    """An outage is not a busy pool: nothing is listening, so no waiting either (a port nobody listens on)."""
    state = RedisState(f"redis://127.0.0.1:{_free_port()}/0", redis_prefix, max_connections=2,
                       pool_timeout=pool_timeout)
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(state.get(f"k{i}") for i in range(20)), return_exceptions=True)
        assert all(isinstance(r, StateUnavailable) for r in results), results
        assert time.monotonic() - started < 3
    finally:
        await state.close()


# --- the database pool --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [("postgres", "memory"), ("sqlite", "memory")], indirect=True,
                         ids=["postgres", "sqlite"])
async def test_a_webhook_that_gets_no_database_connection_within_the_pool_timeout_is_503_with_retry_after(
        settings: Settings, aiohttp_client: Any, fake_twilio: FakeTwilio, clock: Any) -> None:
    """One connection, held by someone else for longer than the pool's 1 s: the webhook waits that second,
    then answers 503 with Retry-After (Twilio retries); once the connection is free it is served."""
    rt = await open_runtime(dataclasses.replace(settings, db_pool_size=1, db_max_overflow=0, db_pool_timeout=1.0))
    rt.clock = clock
    try:
        hcp = Hcp(rt=rt, client=await aiohttp_client(build_app(rt)), twilio=fake_twilio, clock=clock)
        case_no, phone, _ = await hcp.reminded()
        async with rt.db.write() as session:  # the pool's only writing connection, held
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            started = time.monotonic()
            params = hcp.sms_params(phone, "1")
            resp = await hcp.client.post(SMS_PATH, data=params,
                                         headers={"X-Twilio-Signature": hcp.sign(SMS_PATH, params)})
            waited = time.monotonic() - started
            assert resp.status == 503, (resp.status, await resp.text())
            assert resp.headers.get("Retry-After", "").isdigit(), dict(resp.headers)
            assert 0.9 <= waited < 5, waited
        reply = await hcp.sms(phone, "1")
        assert reply.status == 200 and reply.messages, reply.raw
        assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]
    finally:
        await rt.close()


# --- the sender when the database refuses connections -------------------------------------------------------


class Refusing:
    """`rt.db.write` that fails the calls whose numbers (1 = the first) are in `refuse`, before any
    statement, as a PostgreSQL with no connection slot left does ("too many clients")."""

    def __init__(self, write: Callable[[], Any], refuse: set[int]) -> None:
        self.write, self.refuse, self.calls = write, refuse, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls in self.refuse:
            return self._refused()
        return self.write()

    @asynccontextmanager
    async def _refused(self) -> AsyncIterator[Any]:
        raise OperationalError("connect", None, Exception("sorry, too many clients already"))
        yield  # pragma: no cover


async def _outbox(hcp: Hcp) -> list[OutboxMessage]:
    async with hcp.rt.db.read() as session:
        return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


@pytest.mark.parametrize("backend", [("sqlite", "memory"), ("postgres", "memory")], indirect=True,
                         ids=["sqlite", "postgres"])
async def test_rows_whose_lease_renewal_was_refused_are_released_at_once_and_sent_by_the_next_pass(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six reminders in one batch on the shortest lease the settings allow (2 × the send timeout + 1: each
    message's lease is renewed before its send, as a batch slower than its lease needs): the claim (write 1)
    works, two of the six lease renewals (writes 3 and 5) are refused. Those two were never sent: they must
    be pending again, due at once and not counted as an attempt, not `sending` until the lease runs out;
    the other four are sent and recorded."""
    phones = [hcp.new_phone() for _ in range(6)]
    for phone in phones:
        await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    due = datetime.fromisoformat("2026-11-21T10:01:00+08:00")
    assert await reminders.sweep(hcp.rt, due) == 6
    monkeypatch.setattr(hcp.rt, "settings", dataclasses.replace(
        hcp.rt.settings, send_lease=2 * hcp.rt.settings.send_timeout + 1))
    monkeypatch.setattr(hcp.rt.db, "write", Refusing(hcp.rt.db.write, {3, 5}))
    delivery = await sender.deliver_due(hcp.rt, due)
    monkeypatch.undo()

    assert delivery.sent == 4, delivery
    rows = await _outbox(hcp)
    assert sorted(r.status for r in rows) == ["pending", "pending", "sent", "sent", "sent", "sent"]
    for row in rows:
        if row.status == "pending":
            assert row.lease_until is None and row.attempts == 0 and row.next_attempt_at <= due, row
            assert row.unsure_since is None, row
    assert len(hcp.twilio.messages) == 4
    assert (await sender.deliver_due(hcp.rt, due)).sent == 2  # the next pass, at the same instant
    assert sorted(len(hcp.twilio.sms_to(p)) for p in phones) == [1] * 6
    assert {r.status for r in await _outbox(hcp)} == {"sent"}


@pytest.mark.parametrize("backend", [("sqlite", "memory"), ("postgres", "memory")], indirect=True,
                         ids=["sqlite", "postgres"])
async def test_results_whose_record_was_refused_are_recorded_on_a_retry(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three reminders sent, then the write that records them is refused once: the sender tries again
    (it still holds the leases) instead of leaving three delivered messages `sending` for the lease. On the
    default lease a quick batch renews none: the claim is write 1, the record write 2."""
    phones = [hcp.new_phone() for _ in range(3)]
    for phone in phones:
        await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    due = datetime.fromisoformat("2026-11-21T10:01:00+08:00")
    assert await reminders.sweep(hcp.rt, due) == 3
    writes = Refusing(hcp.rt.db.write, {2})
    monkeypatch.setattr(hcp.rt.db, "write", writes)
    delivery = await sender.deliver_due(hcp.rt, due)
    monkeypatch.undo()
    assert writes.calls == 4, writes.calls  # the claim, the refused record, its retry, an empty claim

    assert delivery.sent == 3, delivery
    rows = await _outbox(hcp)
    sids = {m["to"][-11:]: m["sid"] for m in hcp.twilio.messages}
    assert len(sids) == 3 and [r.status for r in rows] == ["sent"] * 3, rows
    assert {r.provider_id for r in rows} == set(sids.values())


# --- what a refused connection looks like in the logs -------------------------------------------------------


def test_refused_tells_a_refused_connection_from_a_statements_own_error() -> None:
    assert refused(PoolTimeout("QueuePool limit of size 1 overflow 0 reached"))
    assert refused(DBAPIError(None, None, Exception("sorry, too many clients already")))  # a failed connect
    assert refused(ConnectionRefusedError(111, "Connect call failed"))
    assert not refused(IntegrityError("INSERT INTO outbox …", {}, Exception("duplicate key")))
    assert not refused(ValueError("a bug"))


async def test_a_scheduler_pass_refused_a_connection_logs_one_line_and_the_next_pass_runs(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL full: a pass that gets no connection says so in one ERROR line (no traceback every
    HAOCHAPING_TICK_INTERVAL), and the loop goes on; any other failure keeps its traceback."""
    from bot.duties import scheduler

    failures: list[Exception] = [DBAPIError(None, None, Exception("sorry, too many clients already")),
                                 IntegrityError("INSERT INTO outbox …", {}, Exception("duplicate key"))]
    passes = asyncio.Event()

    async def tick(_rt: Any, _now: datetime) -> dict[str, int]:
        if failures:
            raise failures.pop(0)
        passes.set()
        return {}

    monkeypatch.setattr(scheduler, "tick", tick)
    rt = SimpleNamespace(settings=SimpleNamespace(tick_interval=0.01))
    with caplog.at_level(logging.ERROR, logger="haochaping.scheduler"):
        loop = asyncio.create_task(scheduler.loop(rt))  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(passes.wait(), 5)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    first, second = [r for r in caplog.records if r.name == "haochaping.scheduler"][:2]
    assert "no database connection" in first.getMessage() and first.exc_info is None, first.getMessage()
    assert "too many clients" in first.getMessage()
    assert second.getMessage() == "scheduler pass failed" and second.exc_info is not None
