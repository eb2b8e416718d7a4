"""Several `haochaping serve` workers on one PostgreSQL database and one Redis: every reminder reaches
Twilio exactly once.

Why real processes: the guarantees under test ("two sweeps at once cannot both send", "a worker that
dies holding a lease leaves its messages to another, which does not send them twice") live in the
interplay of separate processes, PostgreSQL's row locks (FOR UPDATE SKIP LOCKED), the outbox lease on
the wall clock and the provider's own record of what it accepted. In one process with one event loop
none of that can go wrong, so nothing here runs in-process: the console script `haochaping serve` is
started as it is deployed (scheduler on, a short HAOCHAPING_TICK_INTERVAL), cases come in through
`POST /api/v1/cases:bulk`, and the real twilio client talks to the fake Twilio server in this test's
event loop. The fake's record of accepted messages is the truth about what people received.

Business time is the wall clock here (that is what `serve` runs on): the cases were completed 25 hours
ago, so their reminders are due now, and the policy switches the quiet hours off so that the result
does not depend on the hour the suite runs. Nothing sleeps to move time; the tests wait (polling a
condition, with a deadline) for the processes to finish their work.

"Finished" needs care: the outbox can look settled (every row `sent`) while a live worker still holds
older rows in memory and is about to send them. So before a worker is stopped the test waits until it
is idle: its scheduler has completed a pass that began after the outbox settled (the pass count of its
GET /metrics). Stopping it earlier would cancel those sends and hide a duplicate.

The machine need not be idle: the suite shares PostgreSQL (max_connections 100) and the cores with
whatever else runs. So each worker's pool is bounded (HAOCHAPING_DB_POOL_SIZE + _MAX_OVERFLOW: at most
10 connections a worker), the waits are generous but finite (WORK_SECONDS), and a PostgreSQL that
refuses connections anyway ("too many clients") is something the workers must get through: the lines
they log about it are counted apart (Worker.refusals), not taken for errors, and one test puts a gate
in front of PostgreSQL that refuses every connection past 8 (tests/fakes/pg_gate.py).

Every test needs PostgreSQL and Redis (fails under CI=true when one is missing, as conftest's
`unavailable` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
from fakes.pg_gate import PgGate
from fakes.twilio_api import FakeTwilio
from helpers import PUBLIC_URL, TOKEN, Hcp
from prometheus_client.parser import text_string_to_metric_families
from servers import REDIS_URL, free_port, truncate

from bot.delivery.sender import BATCH, CONCURRENCY
from bot.infra.config import KEYS

pytestmark = pytest.mark.slow

SMS_FROM = "+8610690012345"
HAOCHAPING = Path(sys.executable).with_name("haochaping")  # the console script, as deployed
STARTUP_SECONDS = 30.0
STOP_SECONDS = 20.0
# How long the workers may take for all the work of a test: a bound, not an expectation (10,000 reminders
# take ~60 s on 2 cores loaded by other suites; the rest of the bound is for a machine busier still).
WORK_SECONDS = 300.0
# Connections each worker may hold (HAOCHAPING_DB_POOL_SIZE + _MAX_OVERFLOW): two workers and the test's
# own stay far below the shared server's 100.
POOL_SIZE, MAX_OVERFLOW = 5, 5
# What a worker logs when PostgreSQL refuses it a connection (bot/duties/scheduler.py, bot/delivery/sender.py, the web
# middleware): a condition of the machine it runs on, which it must get through, not an error of its own.
REFUSED = re.compile(r"no database connection|database unavailable|database busy|could not be renewed|"
                     r"recording \d+ outbox results failed")


# --- the workers ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _append(path: Path) -> Iterator[Any]:
    with open(path, "ab") as out:
        yield out


@dataclass
class Worker:
    """One `haochaping serve` process; its stdout and stderr go to `log`."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Lines logged at ERROR or above, and tracebacks: a scheduler pass that failed, a crash. A refused
        database connection (REFUSED) is not one: see refusals()."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines()
                if (re.search(r" (ERROR|CRITICAL) ", line) or line.startswith("Traceback"))
                and not REFUSED.search(line)]

    def refusals(self) -> int:
        """Lines it logged about PostgreSQL refusing it a connection."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return sum(1 for line in text.splitlines() if REFUSED.search(line))

    async def metrics(self) -> dict[str, float]:
        """Its GET /metrics, as {'name{label="value",…}': value} (labels sorted)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(self.url + "/metrics") as resp:
                assert resp.status == 200, resp.status
                text = await resp.text()
        return {sample.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items())) + "}":
                sample.value for family in text_string_to_metric_families(text) for sample in family.samples}

    async def passes(self) -> float:
        """Scheduler passes it has completed."""
        return (await self.metrics()).get("haochaping_tick_seconds_count{}", 0.0)

    async def sent(self) -> float:
        """SMS sends of its own that ended `sent` (the provider has the message)."""
        return (await self.metrics()).get('haochaping_outbox_sends_total{channel="sms",result="sent"}', 0.0)


@dataclass
class Cluster:
    """Workers sharing one database, one Redis prefix and one fake Twilio; their environment is built
    from nothing but the keys set here (no HAOCHAPING_*/TWILIO_*/WECHAT_* of the caller's leaks in), and
    they run in tmp_path, where there is no haochaping.toml."""

    tmp_path: Path
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    born: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        """A timeline of the test in its captured output: how long each phase took."""
        print(f"{time.monotonic() - self.born:6.1f} s  {what}")

    async def start(self, name: str) -> Worker:
        port = free_port()
        log = self.tmp_path / f"serve-{name}.log"
        with _append(log) as out:
            process = await asyncio.create_subprocess_exec(
                str(HAOCHAPING), "serve", "--port", str(port), env=self.env, cwd=self.tmp_path,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT)
        worker = Worker(name, process, port, log)
        self.workers.append(worker)
        deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                assert worker.alive(), (f"worker {name} exited with {process.returncode} while starting:\n"
                                        f"{worker.tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(worker.url + "/healthz") as resp:
                        if resp.status == 200:
                            return worker
                assert asyncio.get_running_loop().time() < deadline, (
                    f"worker {name} did not answer /healthz within {STARTUP_SECONDS} s:\n{worker.tail()}")
                await asyncio.sleep(0.1)

    async def idle(self, *workers: Worker) -> None:
        """Wait until each worker has completed a scheduler pass that began after this call: whatever it
        held in memory before (a batch of claimed rows) has been sent and recorded by then."""
        before = {w.name: await w.passes() for w in workers}
        deadline = asyncio.get_running_loop().time() + WORK_SECONDS
        for w in workers:
            while await w.passes() < before[w.name] + 2:  # +1 may be the pass that was under way
                assert asyncio.get_running_loop().time() < deadline, f"worker {w.name} never went idle"
                await asyncio.sleep(0.1)

    @staticmethod
    async def exited(worker: Worker, seconds: float) -> int | None:
        """Its exit code once it has exited, or None after `seconds` (awaited, never blocking: the fake
        Twilio lives in this loop and must keep answering while a worker finishes its requests)."""
        try:
            return await asyncio.wait_for(worker.process.wait(), seconds)
        except TimeoutError:
            return None

    async def stop(self, worker: Worker) -> int:
        """SIGTERM, as a supervisor stops it; SIGKILL if it has not exited in STOP_SECONDS."""
        if worker.alive():
            worker.process.terminate()
        code = await self.exited(worker, STOP_SECONDS)
        if code is None:
            worker.process.kill()
            code = await self.exited(worker, STOP_SECONDS)
        assert code is not None
        return code

    async def kill(self, worker: Worker) -> None:
        """SIGKILL: the worker dies at once, holding whatever it had claimed."""
        os.kill(worker.pid, signal.SIGKILL)  # by its pid: only ever a process this test started
        assert await self.exited(worker, STOP_SECONDS) == -signal.SIGKILL

    async def close(self) -> None:
        for worker in self.workers:
            if worker.alive():
                await self.stop(worker)

    def tails(self) -> str:
        return "\n".join(f"--- worker {w.name} (pid {w.pid}, exit {w.process.returncode}), last lines of "
                         f"{w.log}:\n{w.tail()}" for w in self.workers)

    @contextlib.contextmanager
    def explained(self) -> Iterator[None]:
        """A failure inside prints the workers' last log lines (pytest shows them with the failure)."""
        try:
            yield
        except BaseException:
            print(self.tails())
            raise


@dataclass
class Store:
    """Reads the database the workers write, with plain SQL (the test's own view of the truth)."""

    dsn: str

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def reminders(self) -> Counter[str]:
        """Reminder outbox rows by status."""
        rows = await self.fetch("SELECT status, count(*) AS n FROM outbox WHERE kind = 'reminder' GROUP BY status")
        return Counter({r["status"]: r["n"] for r in rows})

    async def waiting_cases(self) -> int:
        """Cases whose reminder has not been queued yet."""
        return int((await self.fetch("SELECT count(*) AS n FROM cases WHERE remind_at IS NOT NULL"))[0]["n"])

    async def reminder_rows(self) -> list[asyncpg.Record]:
        """(case_no, status, provider_id, attempts) of every reminder."""
        return await self.fetch("SELECT c.case_no, o.status, o.provider_id, o.attempts FROM outbox o "
                                "JOIN cases c ON c.id = o.case_id WHERE o.kind = 'reminder'")


async def until(condition: Callable[[], Awaitable[bool]], seconds: float, what: str,
                state: Callable[[], Awaitable[str]], every: float = 0.2) -> None:
    """Poll `condition` every `every` seconds until it holds; after `seconds`, fail with `what` and the
    state then. The state is printed every 5 s on the way (pytest shows it when the test fails)."""
    loop = asyncio.get_running_loop()
    deadline, shown = loop.time() + seconds, loop.time()
    while not await condition():
        assert loop.time() < deadline, f"{what} within {seconds} s; {await state()}"
        if loop.time() - shown >= 5:
            shown = loop.time()
            print(f"{datetime.now(UTC):%H:%M:%S} waiting: {await state()}")
        await asyncio.sleep(every)


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
async def store(pg_database: str) -> Store:
    """The session's PostgreSQL database, emptied (the migrated schema stays)."""
    await truncate(pg_database)
    return Store(pg_database.replace("postgresql+asyncpg://", "postgresql://", 1))


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """Quiet hours off: `serve` runs on the real clock, and the result must not depend on the hour."""
    path = tmp_path / "policy.toml"
    path.write_text('quiet_hours = ["00:00", "00:00"]\n', encoding="utf-8")
    return path


@pytest.fixture
async def pg_gate(pg_database: str) -> AsyncIterator[PgGate]:
    """A gate in front of the session's PostgreSQL that refuses every connection past 8 at a time, as a
    server whose max_connections are taken does (tests/fakes/pg_gate.py). Ask for it before `cluster`:
    it closes after the workers have stopped."""
    server = urlsplit(pg_database)
    gate = await PgGate(server.hostname or "127.0.0.1", server.port or 5432, limit=8).start()
    try:
        yield gate
    finally:
        await gate.close()


@pytest.fixture
async def cluster(tmp_path: Path, pg_database: str, store: Store, redis_prefix: str, fake_twilio: FakeTwilio,
                  policy_file: Path) -> AsyncIterator[Cluster]:
    """Workers' common environment; every worker still running at the end is stopped, pass or fail
    (before the fake Twilio closes and the Redis keys go: this fixture depends on theirs)."""
    env = {k: v for k, v in os.environ.items()
           if k not in KEYS and not k.startswith(("HAOCHAPING_", "TWILIO_", "WECHAT_"))}
    env.update({
        "HAOCHAPING_DATABASE_URL": pg_database,
        "HAOCHAPING_REDIS_URL": REDIS_URL,
        "HAOCHAPING_REDIS_PREFIX": redis_prefix,
        "HAOCHAPING_PUBLIC_URL": PUBLIC_URL,
        "HAOCHAPING_API_TOKEN": TOKEN,
        "HAOCHAPING_SECRET_KEY": "workers-" + secrets.token_urlsafe(32),  # one key for all: same seals
        "HAOCHAPING_POLICY": str(policy_file),
        "HAOCHAPING_SCHEDULER": "on",
        "HAOCHAPING_TICK_INTERVAL": "0.5",
        "HAOCHAPING_DB_POOL_SIZE": str(POOL_SIZE),
        "HAOCHAPING_DB_MAX_OVERFLOW": str(MAX_OVERFLOW),
        # The shortest lease one attempt allows (2 × the send timeout + 1): rows a worker could not
        # record wait this long at worst, not the 120 s default.
        "HAOCHAPING_SEND_LEASE": "31",
        "HAOCHAPING_SIMULATOR": "off",
        "HAOCHAPING_LOG_LEVEL": "WARNING",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_SMS_FROM": SMS_FROM,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
    })
    group = Cluster(tmp_path, env)
    try:
        yield group
    finally:
        await group.close()


# --- test data and checks -------------------------------------------------------------------------------


def due_cases(n: int, series: str) -> dict[str, str]:
    """n cases, case_no → its applicant's own mobile number (E.164, as Twilio sees it)."""
    return {f"W{series}-{i:05d}": f"+86{series}{i:07d}" for i in range(n)}


async def bulk_post(worker: Worker, cases: dict[str, str]) -> None:
    """POST /api/v1/cases:bulk (NDJSON), completed 25 hours ago: every reminder is due at once. A 503
    (the database refused the worker a connection) is posted again, as a business system does (here a
    fifth of its Retry-After later); a line stored by an earlier try counts as `existing`."""
    completed = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    body = "".join(json.dumps(Hcp.case_body(case_no=no, completed_at=completed, phone=phone), ensure_ascii=False)
                   + "\n" for no, phone in cases.items()).encode()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WORK_SECONDS)) as http:
        for _ in range(20):
            async with http.post(worker.url + "/api/v1/cases:bulk", data=body,
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/x-ndjson"}) as resp:
                doc = await resp.json()
            if resp.status != 503:
                break
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")) / 5)
        assert resp.status == 200, (resp.status, doc)
    assert doc["created"] + doc["existing"] == len(cases) and not doc["errors"], {k: doc[k] for k in
                                                                                 ("created", "existing")}


def list_requests(fake: FakeTwilio) -> int:
    """GET Messages.json: the sender asking Twilio what an attempt of unknown outcome did."""
    return sum(1 for r in fake.requests if r["method"] == "GET" and r["path"].endswith("/Messages.json"))


def settled(store: Store, fake: FakeTwilio, n: int) -> Callable[[], Awaitable[bool]]:
    """Every case's reminder queued and finished (nothing pending or in a worker's hands by the
    database), and Twilio holding at least n messages."""

    async def check() -> bool:
        if len(fake.messages) < n:
            return False
        counts = await store.reminders()
        return (await store.waiting_cases() == 0 and sum(counts.values()) == n
                and counts["pending"] == 0 and counts["sending"] == 0)

    return check


def progress(store: Store, fake: FakeTwilio) -> Callable[[], Awaitable[str]]:
    async def state() -> str:
        return (f"fake Twilio: {len(fake.messages)} messages, {fake.hanging} held, {list_requests(fake)} "
                f"lists; outbox reminders {dict(await store.reminders())}; "
                f"cases not yet queued: {await store.waiting_cases()}")

    return state


def exactly_once(fake: FakeTwilio, cases: dict[str, str]) -> tuple[dict[str, int], set[str]]:
    """(numbers that got more than one message → how many, numbers that got none)."""
    got = Counter(m["to"] for m in fake.messages)
    twice = {to: k for to, k in got.items() if k > 1}
    return twice, set(cases.values()) - set(got)


async def assert_recorded(store: Store, fake: FakeTwilio, cases: dict[str, str]) -> None:
    """Every reminder row is `sent` with the sid of the one message Twilio holds for its number."""
    sid_of = {m["to"]: m["sid"] for m in fake.messages}
    rows = await store.reminder_rows()
    assert len(rows) == len(cases)
    wrong = [(r["case_no"], r["status"], r["provider_id"]) for r in rows
             if r["status"] != "sent" or r["provider_id"] != sid_of.get(cases[r["case_no"]])]
    assert not wrong, f"{len(wrong)} reminder rows not recorded with their Twilio sid, e.g. {wrong[:5]}"


# --- the tests ------------------------------------------------------------------------------------------


async def test_two_workers_send_each_of_10000_due_reminders_exactly_once(
        cluster: Cluster, store: Store, fake_twilio: FakeTwilio, record_property: Callable[[str, object], None],
) -> None:
    """Two `serve` processes sweep and send at once, over the same rows, while the cases arrive: the
    outbox's unique key, the conditional conversation write and the SKIP LOCKED claims must let exactly
    one of them send each reminder. 10,000 cases, each with a number of its own, so a duplicate or a
    loss shows as a number with two messages or none."""
    n = 10_000
    cases = due_cases(n, "1390")
    with cluster.explained():
        a, b = await asyncio.gather(cluster.start("a"), cluster.start("b"))
        cluster.note("two workers up")
        await bulk_post(a, cases)  # both sweep while the cases arrive
        cluster.note(f"{n} cases posted; {len(fake_twilio.messages)} reminders out")
        await until(settled(store, fake_twilio, n), WORK_SECONDS, f"{n} reminders not all sent",
                    progress(store, fake_twilio))
        cluster.note("all reminders out")
        await cluster.idle(a, b)
        split = {w.name: await w.sent() for w in (a, b)}
        cluster.note(f"both idle; sends per worker (their /metrics): {split}")
        record_property("sent_per_worker", json.dumps(split))
        codes = [await cluster.stop(a), await cluster.stop(b)]  # nothing can reach the fake after this

        twice, missing = exactly_once(fake_twilio, cases)
        assert not twice, f"{len(twice)} numbers got more than one reminder, e.g. {sorted(twice.items())[:5]}"
        assert not missing, f"{len(missing)} numbers got no reminder, e.g. {sorted(missing)[:5]}"
        assert len(fake_twilio.messages) == n
        assert {m["from"] for m in fake_twilio.messages} == {SMS_FROM}
        assert len({m["body"] for m in fake_twilio.messages}) == n  # each its own case's rating link
        await assert_recorded(store, fake_twilio, cases)
        # Both were up before the first case came, and claims skip each other's rows: a worker that sent
        # nothing of 10,000 has a scheduler that stopped. Each send counted once between them.
        assert all(split.values()) and sum(split.values()) == n, split
        assert {w.name: w.errors() for w in (a, b)} == {"a": [], "b": []}
        assert codes == [0, 0], f"a SIGTERM should end `serve` cleanly, exit codes {codes}"


async def test_two_workers_on_a_postgresql_that_refuses_connections_send_each_reminder_once_within_the_lease(
        pg_gate: PgGate, cluster: Cluster, store: Store, pg_database: str, fake_twilio: FakeTwilio,
        record_property: Callable[[str, object], None],
) -> None:
    """PostgreSQL full: every connection past 8 at a time is refused ("sorry, too many clients already"),
    while each worker would open up to 12 and the cases come in eight posts at once, and it is full at the
    moment they come (the gate refuses the next two connections whatever the count). Claims, records and the
    posts meet the refusal (lease renewals, which a batch makes only late in its lease, are refused in
    tests/bot/delivery/test_bursts.py). Each reminder must still reach its number once, and all of them
    within the default 120 s lease: a batch whose renewal or record was refused is released or recorded
    again at once, never left `sending` for the lease (what this suite once met under load: 200 rows
    `sending` for the whole lease)."""
    n = 2_000
    cases = due_cases(n, "1360")
    cluster.env.update(HAOCHAPING_DATABASE_URL=pg_gate.url(pg_database), HAOCHAPING_DB_POOL_SIZE="6",
                       HAOCHAPING_DB_MAX_OVERFLOW="6", HAOCHAPING_SEND_LEASE="120")
    within = 100.0  # < the lease: rows left to it would fail this
    with cluster.explained():
        a, b = await asyncio.gather(cluster.start("a"), cluster.start("b"))
        cluster.note("two workers up, behind the gate")
        # the cases in eight posts at once, four to each worker: with the scheduler's claims and records the
        # workers want more connections than they hold, and the server is full at that moment (the first two
        # new connections are refused whatever the count; the load alone may stay within the 8)
        pg_gate.refuse_next(2)
        chunks = [dict(list(cases.items())[k::8]) for k in range(8)]
        await asyncio.gather(*(bulk_post((a, b)[k % 2], chunk) for k, chunk in enumerate(chunks)))
        cluster.note(f"{n} cases posted; {len(fake_twilio.messages)} reminders out; {pg_gate.refused} refused")
        await until(settled(store, fake_twilio, n), within, f"{n} reminders not all sent", progress(store, fake_twilio))
        cluster.note(f"all reminders out; the gate refused {pg_gate.refused} connections, peak {pg_gate.peak}")
        await cluster.idle(a, b)
        refusals = {w.name: w.refusals() for w in (a, b)}
        record_property("refused", json.dumps({"gate": pg_gate.refused, "logged": refusals}))
        for worker in (a, b):
            await cluster.stop(worker)

        assert pg_gate.refused > 0 and pg_gate.peak <= 8, (pg_gate.refused, pg_gate.peak)  # the refusal did happen
        twice, missing = exactly_once(fake_twilio, cases)
        assert not twice, f"{len(twice)} numbers got more than one reminder, e.g. {sorted(twice.items())[:5]}"
        assert not missing, f"{len(missing)} numbers got no reminder, e.g. {sorted(missing)[:5]}"
        await assert_recorded(store, fake_twilio, cases)
        assert {w.name: w.errors() for w in (a, b)} == {"a": [], "b": []}


async def test_a_worker_killed_mid_send_leaves_no_reminder_unsent_and_none_sent_twice(
        cluster: Cluster, store: Store, fake_twilio: FakeTwilio, record_property: Callable[[str, object], None],
) -> None:
    """SIGKILL in the middle of a batch: the worker has claimed up to 200 rows, Twilio has accepted some
    of them, and none of the answers is recorded. After the lease (3 s) a new worker takes the rows
    over; it must send those Twilio never got, and must not send again those Twilio did accept (it asks
    Twilio first: GET Messages.json for that number).

    The kill is made to land mid-send, deterministically: once a third of the reminders are out, the
    fake holds the next request for 0.8 s (then accepts it); while it is held the worker cannot
    record its batch (it records a batch when every send of it has answered), and it is killed then.
    The new worker is started only after the held request was accepted, so everything Twilio will ever
    have from the dead worker is there to be found."""
    n = 5_000
    cases = due_cases(n, "1380")
    cluster.env.update(HAOCHAPING_SEND_LEASE="3", HAOCHAPING_SEND_TIMEOUT="1")
    with cluster.explained():
        first = await cluster.start("first")
        cluster.note("first worker up")
        await bulk_post(first, cases)
        cluster.note(f"{n} cases posted; {len(fake_twilio.messages)} reminders out")
        await until(lambda: _at_least(fake_twilio, n // 3), WORK_SECONDS, f"{n // 3} reminders not out",
                    progress(store, fake_twilio))
        assert first.errors() == []
        fake_twilio.hang_next(1, seconds=0.8)
        await until(lambda: _held(fake_twilio), 30, "no request held by the fake", progress(store, fake_twilio),
                    every=0.01)
        await cluster.kill(first)
        cluster.note(f"first worker killed; {len(fake_twilio.messages)} reminders out")
        await until(lambda: _released(fake_twilio), 10, "the held request not accepted",
                    progress(store, fake_twilio))

        # What the dead worker left: rows it claimed and never recorded, split by what Twilio has.
        accepted = {m["to"] for m in fake_twilio.messages}
        orphans = [r["case_no"] for r in await store.reminder_rows() if r["status"] == "sending"]
        delivered_unrecorded = {no for no in orphans if cases[no] in accepted}
        never_sent = set(orphans) - delivered_unrecorded
        observed = {"sent_before_kill": len(fake_twilio.messages), "orphaned_rows": len(orphans),
                    "accepted_but_unrecorded": len(delivered_unrecorded), "claimed_never_sent": len(never_sent)}
        cluster.note(f"at the kill: {observed}")
        record_property("at_the_kill", json.dumps(observed))
        # The held request at least: accepted by Twilio after its worker died. Else the kill missed the send.
        assert delivered_unrecorded, observed

        second = await cluster.start("second")
        cluster.note("second worker up")
        await until(settled(store, fake_twilio, n), WORK_SECONDS, f"{n} reminders not all sent after the restart",
                    progress(store, fake_twilio))
        await cluster.idle(second)
        cluster.note(f"all reminders out; {list_requests(fake_twilio)} list requests to the fake Twilio")
        record_property("list_requests", list_requests(fake_twilio))
        code = await cluster.stop(second)

        twice, missing = exactly_once(fake_twilio, cases)
        resent = {no for no in delivered_unrecorded if cases[no] in twice}
        assert not twice, (f"{len(twice)} numbers got two reminders ({len(resent)} of the "
                           f"{len(delivered_unrecorded)} Twilio had accepted from the killed worker; "
                           f"{list_requests(fake_twilio)} list requests were made), e.g. {sorted(twice)[:5]}")
        assert not missing, f"{len(missing)} numbers got no reminder, e.g. {sorted(missing)[:5]}"
        assert len(fake_twilio.messages) == n
        await assert_recorded(store, fake_twilio, cases)
        assert second.errors() == []
        assert code == 0, f"a SIGTERM should end `serve` cleanly, exit code {code}"


async def test_a_batch_slower_than_its_lease_is_not_sent_twice_by_another_worker(
        cluster: Cluster, store: Store, fake_twilio: FakeTwilio, record_property: Callable[[str, object], None],
) -> None:
    """A slow Twilio: the first three waves of CONCURRENCY sends of a batch are answered after 2.5 s each,
    and the rest of the batch waits behind them, so the batch outlasts its lease (7 s here; one attempt,
    at most 2 × 3 s, fits in it). The other worker, idle and ticking, takes the waiting rows over once
    the lease has run out, as it should for a dead worker; but the holder is alive. Each reminder must
    still reach its number once: the holder renews a row's lease as its turn comes, and leaves alone a
    row another worker has taken.

    One batch (BATCH cases), so that one worker claims every row and the other has nothing of its own;
    the holder's first wave takes every held request, so the other's requests are answered at once."""
    n = BATCH
    cases = due_cases(n, "1370")
    cluster.env.update(HAOCHAPING_SEND_LEASE="7", HAOCHAPING_SEND_TIMEOUT="3")
    with cluster.explained():
        a, b = await asyncio.gather(cluster.start("a"), cluster.start("b"))
        fake_twilio.hang_next(3 * CONCURRENCY, seconds=2.5)
        await bulk_post(a, cases)
        await until(settled(store, fake_twilio, n), WORK_SECONDS, f"{n} reminders not all sent",
                    progress(store, fake_twilio))
        await cluster.idle(a, b)  # the holder too: it may still have the batch it no longer holds
        split = {w.name: await w.sent() for w in (a, b)}
        cluster.note(f"all reminders out, both idle; sends per worker {split}; "
                     f"{list_requests(fake_twilio)} list requests to the fake Twilio")
        for worker in (a, b):
            await cluster.stop(worker)

        twice, missing = exactly_once(fake_twilio, cases)
        record_property("sent_twice", len(twice))
        assert not twice, (f"{len(twice)} of {n} numbers got two reminders ({len(fake_twilio.messages)} messages, "
                           f"{list_requests(fake_twilio)} list requests, sends per worker {split}), "
                           f"e.g. {sorted(twice)[:5]}")
        assert not missing, f"{len(missing)} numbers got no reminder, e.g. {sorted(missing)[:5]}"


async def _at_least(fake: FakeTwilio, k: int) -> bool:
    return len(fake.messages) >= k


async def _held(fake: FakeTwilio) -> bool:
    return fake.hanging > 0


async def _released(fake: FakeTwilio) -> bool:
    return fake.hanging == 0
