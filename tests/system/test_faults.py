"""Faults on PostgreSQL + Redis: Redis flushed or stopped under live conversations, Twilio's webhooks
delivered several times at once, and Twilio's REST API answering 500 or timing out.

Why: docs/architecture.md promises that Redis holds only what may be lost (locks, dedupe keys), that a Redis
outage makes webhooks answer 503 with Retry-After (never a 500, never a lost or doubled rating), and
that every message to a person leaves the outbox exactly once even when Twilio fails or answers too
late. These tests break the real things (a Redis server of the test's own, the fake Twilio server)
and check the promise from the outside: signed webhooks in, the business API and the fake's records out.

Tests that flush, stop or freeze Redis use a PRIVATE redis-server (`private_redis`), never the shared
one at $HCP_TEST_REDIS, which other suites use at the same time. Business time moves with
`now`/`hcp.clock`; wall time passes only where the fault itself is made of it: a Redis stall has to
outlast the service's 5 s socket timeout, the fake Twilio holds requests past the send timeout (both
waited for by polling, with a deadline).

Observed bugs are written as the correct behaviour and marked xfail(strict=True) with what happens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from fakes.twilio_api import FakeTwilio
from fakes.wechat_api import FakeWeChat
from helpers import Clock, Hcp, SmsReply, cst, twiml_texts
from redis.exceptions import RedisError
from servers import BACKENDS, unavailable
from sqlmodel import col, select

from bot.delivery.sender import backoff
from bot.infra.config import Settings
from bot.infra.i18n import SOURCE
from bot.infra.runtime import Runtime, open_runtime
from bot.web.app import build_app
from dialogs import messages as m
from dialogs.rating import numbered
from dialogs.types import Reply
from store.models import OutboxMessage

SMS_PATH = "/webhooks/twilio/sms"
COMPLETED = "2026-11-20T10:00:00+08:00"
DUE = cst("2026-11-21T10:00")  # the reminder instant of a case completed at COMPLETED
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# The database is PostgreSQL; the state is the private Redis of `private_redis`, put in by `phcp`
# (the "memory" half only keeps conftest's `redis_url` from touching the shared Redis).
ON_PRIVATE_REDIS = pytest.mark.parametrize("backend", [("postgres", "memory")], indirect=True,
                                           ids=["postgres-private-redis"])
ON_POSTGRES_REDIS = pytest.mark.parametrize("backend", [("postgres", "redis")], indirect=True,
                                            ids=["postgres-redis"])


# --- a Redis server of the test's own ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server subprocess on 127.0.0.1:`port`, no persistence: stop() and start() again on the
    same port are a Redis restart that lost everything; flushall() is an operator's FLUSHALL."""

    port: int
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, deadline: float = 10.0) -> None:
        assert self.process is None, "already running"
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        until = time.monotonic() + deadline
        while True:
            if self.process.returncode is not None:
                self.process = None
                raise RuntimeError(f"redis-server on port {self.port} exited (port taken?)")
            try:
                await self._admin(lambda r: r.ping())
                return
            except (RedisError, OSError):
                if time.monotonic() > until:
                    raise
                await asyncio.sleep(0.02)  # wall time for a process to start, not business time

    def pause(self) -> None:
        """SIGSTOP: the server hangs (a stall, a frozen VM): connections stay open, nothing is answered,
        and what clients send meanwhile is read and executed once resume() is called."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        self.resume()
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        async with asyncio.timeout(10):
            await process.wait()

    async def flushall(self) -> int:
        """FLUSHALL; how many keys it removed (DBSIZE and FLUSHALL in one MULTI, so none goes uncounted)."""
        async def run(r: aioredis.Redis) -> int:
            async with r.pipeline(transaction=True) as pipe:
                size, _ = await pipe.dbsize().flushall().execute()
            return int(size)

        return int(await self._admin(run))

    async def dbsize(self) -> int:
        return int(await self._admin(lambda r: r.dbsize()))

    async def _admin(self, call: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        client = aioredis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return await call(client)
        finally:
            await client.aclose()


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A private redis-server on a free port (stopped at the end, whatever the test did to it)."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server (on PATH)", "not found")
    server: PrivateRedis | None = None
    for _ in range(3):  # another process may take the free port between the probe and the start
        candidate = PrivateRedis(_free_port())
        try:
            await candidate.start()
        except (RuntimeError, RedisError, OSError):
            await candidate.stop()
            continue
        server = candidate
        break
    if server is None:
        unavailable("a private redis-server", "it did not start on three free ports")
    assert server is not None
    yield server
    await server.stop()


@pytest.fixture
async def prt(settings: Settings, private_redis: PrivateRedis, clock: Clock) -> AsyncIterator[Runtime]:
    """conftest's runtime (PostgreSQL, the fake Twilio and WeChat), its state in the private Redis."""
    runtime = await open_runtime(dataclasses.replace(settings, redis_url=private_redis.url))
    runtime.clock = clock
    yield runtime
    await runtime.close()


@pytest.fixture
async def phcp(prt: Runtime, aiohttp_client: Any, fake_twilio: FakeTwilio, fake_wechat: FakeWeChat,
               clock: Clock) -> Hcp:
    client = await aiohttp_client(build_app(prt))
    return Hcp(rt=prt, client=client, twilio=fake_twilio, clock=clock, wechat=fake_wechat)


@pytest.fixture
async def quick_hcp(settings: Settings, aiohttp_client: Any, fake_twilio: FakeTwilio, fake_wechat: FakeWeChat,
                    clock: Clock) -> AsyncIterator[Hcp]:
    """conftest's `hcp` with HAOCHAPING_SEND_TIMEOUT=0.3 (Settings.send_timeout): a held request times out."""
    runtime = await open_runtime(dataclasses.replace(settings, send_timeout=0.3))
    runtime.clock = clock
    client = await aiohttp_client(build_app(runtime))
    yield Hcp(rt=runtime, client=client, twilio=fake_twilio, clock=clock, wechat=fake_wechat)
    await runtime.close()


# --- helpers ------------------------------------------------------------------------------------------------


def said(hcp: Hcp, key: str, **params: Any) -> str:
    """What the service says for a dialog message, in the cases' language (zh-CN → the source catalog)."""
    return hcp.rt.render(Reply(key, params), SOURCE)


def ask_reasons(hcp: Hcp) -> str:
    return said(hcp, m.ASK_REASONS, reasons=numbered(hcp.rt.rules))


async def post_signed(client: TestClient, params: dict[str, str], signature: str) -> tuple[int, Any, str]:
    """One delivery of Twilio's inbound-SMS webhook: (status, headers, body)."""
    resp = await client.post(SMS_PATH, data=params, headers={"X-Twilio-Signature": signature})
    return resp.status, resp.headers, await resp.text()


async def reminded_many(hcp: Hcp, n: int, **case: Any) -> list[tuple[str, str]]:
    """n people, one case each (posted at once), all reminded by one tick: [(case_no, phone)]."""
    phones = [hcp.new_phone() for _ in range(n)]
    docs = await asyncio.gather(*(hcp.post_case(phone=phone, completed_at=COMPLETED, **case) for phone in phones))
    assert {doc["remind_at"] for doc in docs} == {DUE.isoformat()}, docs
    counts = await hcp.tick(DUE + timedelta(minutes=1))
    assert counts["reminders"] == n and counts["sent"] == n, counts
    hcp.clock.set(DUE + timedelta(minutes=5))
    for phone in phones:
        assert len(hcp.twilio.sms_to(phone)) == 1
    return [(doc["case_no"], phone) for doc, phone in zip(docs, phones, strict=True)]


async def outbox_rows(hcp: Hcp, case_ids: list[int]) -> dict[int, OutboxMessage]:
    async with hcp.rt.db.read() as session:
        rows = (await session.exec(select(OutboxMessage).where(col(OutboxMessage.case_id).in_(case_ids)))).all()
    by_case = {row.case_id: row for row in rows}
    assert len(rows) == len(case_ids) == len(by_case), rows
    return by_case  # type: ignore[return-value]


def message_posts(fake: FakeTwilio) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].endswith("/Messages.json")]


def message_lists(fake: FakeTwilio) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == "GET" and r["path"].endswith("/Messages.json")]


async def until_released(fake: FakeTwilio, deadline: float = 10.0) -> None:
    """Wait (wall time) until the fake Twilio holds no request any more."""
    until = time.monotonic() + deadline
    while fake.hanging:
        assert time.monotonic() < until, f"the fake still holds {fake.hanging} requests after {deadline} s"
        await asyncio.sleep(0.02)


# --- 1. Redis flushed in the middle of 100 conversations ----------------------------------------------------

OTHER_TEXT = "材料清单和窗口说的不一样"
MORE_TEXT = "排队太久，窗口只开了一个"


@dataclass
class Person:
    case_no: str
    phone: str
    script: list[tuple[str, str]]  # (what the person writes, what the service must answer)
    expect: tuple[str, list[str], str | None]  # the stored (grade, reasons, text)
    twice: bool  # every message delivered twice at once (Twilio's retry racing its original)


def scripts(hcp: Hcp, kind: int, item_name: str) -> tuple[list[tuple[str, str]], tuple[str, list[str], str | None]]:
    """Four shapes of conversation (dialogs/rating.md), each three messages long."""
    thanks_text, nothing = said(hcp, m.THANKS_TEXT), said(hcp, m.NOTHING_TO_RATE)
    if kind == 0:  # bad grade, two reasons (stored), then a sentence added to it
        return ([("5", ask_reasons(hcp)), ("1 3", said(hcp, m.THANKS_BAD)), (MORE_TEXT, thanks_text)],
                ("very_dissatisfied", ["attitude", "process"], MORE_TEXT))
    if kind == 1:  # bad grade, only 其他: nothing stored until the words come
        return ([("4", ask_reasons(hcp)), ("8", said(hcp, m.ASK_TEXT)), (OTHER_TEXT, thanks_text)],
                ("dissatisfied", ["other"], OTHER_TEXT))
    if kind == 2:  # bad grade, reasons with a full-width comma, then a bare digit: not a grade, not text
        return ([("5", ask_reasons(hcp)), ("2，4", said(hcp, m.THANKS_BAD)), ("3", nothing)],
                ("very_dissatisfied", ["efficiency", "guide"], None))
    # an unreadable grade, a good grade, then thanks with nothing left to rate
    return ([("？？", said(hcp, m.REPROMPT, item=item_name)), ("2", said(hcp, m.THANKS)), ("谢谢", nothing)],
            ("satisfied", [], None))


@ON_PRIVATE_REDIS
async def test_flushing_redis_in_the_middle_of_100_conversations_loses_and_doubles_nothing(
        phcp: Hcp, private_redis: PrivateRedis) -> None:
    """100 people talk at once; Redis is flushed after everyone's first and second message, and again every
    29 deliveries while messages are in flight (the inbound road keeps nothing there any more: the
    serialisation and the dedupe are the conversation row's, so this guards against its coming back). Twilio
    re-delivers each message after a flush (same MessageSid), and for a fifth of the people every
    message arrives twice at once. Every rating must be stored once, as given, and nothing stored
    before a flush may be lost: the conversation and its last message ids live in the database."""
    hcp = phcp
    n = 100
    item_name = hcp.case_body()["item_name"]
    people = []
    for i, (case_no, phone) in enumerate(await reminded_many(hcp, n)):
        script, expect = scripts(hcp, i % 4, item_name)
        people.append(Person(case_no, phone, script, expect, twice=i % 5 == 0))

    statuses: list[int] = []
    flushes: list[asyncio.Task[int]] = []
    delivered = 0

    async def deliver(p: Person, body: str, sid: str) -> SmsReply:
        """One delivery, re-sent with the same MessageSid while the answer is 503 (as Twilio retries)."""
        nonlocal delivered
        delivered += 1
        if delivered % 29 == 0:
            flushes.append(asyncio.create_task(private_redis.flushall()))
        for _ in range(5):
            reply = await hcp.sms(p.phone, body, sid=sid)
            statuses.append(reply.status)
            assert reply.status in (200, 503), (p.case_no, body, reply.status, reply.raw)
            if reply.status == 200:
                return reply
        raise AssertionError(f"{p.case_no}: {body!r} still 503 after 5 deliveries")

    barrier = asyncio.Barrier(n)
    stored_before: dict[str, list[dict[str, Any]]] = {}
    removed: list[int] = []  # keys removed by the flushes at the barriers

    async def flush_point(k: int) -> None:
        """Everyone has sent message k: keep what is stored, then FLUSHALL."""
        if k == 1:
            found = await asyncio.gather(*(hcp.evaluations(p.case_no) for p in people))
            stored_before.update({p.case_no: evs for p, evs in zip(people, found, strict=True)})
        removed.append(await private_redis.flushall())

    async def converse(p: Person) -> None:
        try:
            await steps(p)
        except BaseException:
            barrier.abort()  # the others stop waiting at the barrier: one failure fails the test at once
            raise

    async def steps(p: Person) -> None:
        for k, (body, expected) in enumerate(p.script):
            sid = "SM" + secrets.token_hex(16)
            replies = await asyncio.gather(*(deliver(p, body, sid) for _ in range(2 if p.twice else 1)))
            acted = [r.messages for r in replies if r.messages]
            assert acted == [[expected]], (p.case_no, k, body, [r.raw for r in replies])
            if k < 2:
                if await barrier.wait() == 0:
                    await flush_point(k)
                await barrier.wait()
                again = await deliver(p, body, sid)  # Twilio's retry after the flush
                assert again.messages == [], (p.case_no, k, body, again.raw)

    await asyncio.gather(*(converse(p) for p in people))
    await asyncio.gather(*flushes)

    assert set(statuses) <= {200, 503}, statuses
    assert len(removed) == 2 and len(flushes) >= 10, (removed, len(flushes))
    assert sum(removed) + sum(t.result() for t in flushes) + await private_redis.dbsize() == 0  # nothing kept there
    assert len(hcp.twilio.messages) == n  # one reminder each, nothing else sent
    docs = await asyncio.gather(*(hcp.case(p.case_no) for p in people))
    for p, doc in zip(people, docs, strict=True):
        evaluations = doc["evaluations"]
        assert len(evaluations) == 1, (p.case_no, evaluations)
        [ev] = evaluations
        assert (ev["grade"], ev["reasons"], ev["text"]) == p.expect, (p.case_no, p.script, ev)
        assert doc["rated"] is True
        bad = p.expect[0] in ("dissatisfied", "very_dissatisfied")
        assert len(doc["work_orders"]) == (1 if bad else 0), (p.case_no, doc["work_orders"])
        for before in stored_before[p.case_no]:  # what the second flush found stored is still there
            assert (before["id"], before["grade"], before["reasons"]) == (ev["id"], ev["grade"], ev["reasons"])
    assert sum(bool(v) for v in stored_before.values()) == 3 * n // 4  # all but kind 1 were stored by then


# --- 2. Redis stopped ----------------------------------------------------------------------------------------


@ON_PRIVATE_REDIS
async def test_with_redis_stopped_sms_and_wechat_ratings_go_on_and_each_copy_is_acted_on_once(
        phcp: Hcp, private_redis: PrivateRedis) -> None:
    """Redis down: /healthz names it. An SMS reply or a WeChat message in safe mode needs no Redis (the person's
    conversation row serialises their messages and remembers the ids acted on), so it is answered and stored
    as always, and a copy of it is still acted on once, before and after Redis is back. (A WeChat message in
    plain mode needs the replay guard of its signed query: without Redis it is 503, WeChat retries;
    tests/bot/inbound/test_replay_idempotency.py.) What needs no Redis keeps working (or says 503), never 500."""
    hcp = phcp
    (mid_no, mid_phone), (new_no, new_phone) = await reminded_many(hcp, 2)
    openid = hcp.new_openid()
    wx_doc = await hcp.post_case(applicant={"wechat_openid": openid, "locale": "zh-CN"},
                                 completed_at="2026-11-19T10:00:00+08:00")
    api_doc = await hcp.post_case(phone=hcp.new_phone(), completed_at="2026-11-19T10:00:00+08:00")
    assert (await hcp.sms(mid_phone, "5")).messages == [ask_reasons(hcp)]  # waiting for the reasons

    await private_redis.stop()

    status, health = await hcp.api("GET", "/healthz")
    assert status == 503, health
    assert health["status"] == "down" and health["database"] == "ok", health
    assert health["redis"].startswith("down: "), health

    deliveries = {
        mid_no: (hcp.sms_params(mid_phone, "2 4"), [said(hcp, m.THANKS_BAD)]),
        new_no: (hcp.sms_params(new_phone, "1"), [said(hcp, m.THANKS)]),
    }
    for no, (params, expected) in deliveries.items():
        signature = hcp.sign(SMS_PATH, params)
        started = time.monotonic()
        status, _, body = await post_signed(hcp.client, params, signature)
        assert (status, twiml_texts(body)) == (200, expected), (no, status, body)
        assert time.monotonic() - started < 2  # no wait on the stopped Redis
        status, _, body = await post_signed(hcp.client, params, signature)  # Twilio's retry: a copy
        assert (status, body) == (200, EMPTY_TWIML), (no, status, body)
    wx_xml = hcp.wx_text(openid, "1")
    status, reply, raw = await hcp.wechat_post(wx_xml)
    assert status == 200 and hcp.reply_content(reply) == said(hcp, m.THANKS), (status, raw)
    status, reply, raw = await hcp.wechat_post(wx_xml)  # WeChat's retry: a copy
    assert (status, raw) == (200, "success")

    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": api_doc["case_no"], "grade": "basically_satisfied", "channel": "web"})
    assert status in (201, 503), (status, doc)
    assert len(await hcp.evaluations(api_doc["case_no"])) == (1 if status == 201 else 0)
    status, doc = await hcp.api("POST", "/api/v1/cases", hcp.case_body(phone=hcp.new_phone()))
    assert status in (201, 503), (status, doc)
    status, doc = await hcp.api("POST", "/api/v1/login", {"username": "nobody", "password": "x" * 12}, token=None)
    assert status in (401, 503), (status, doc)

    await private_redis.start()

    status, health = await hcp.api("GET", "/healthz")
    assert (status, health["status"], health["redis"], health["database"]) == (200, "ok", "ok", "ok"), health
    for params, _ in deliveries.values():  # and a copy after Redis is back is still a copy
        status, _, body = await post_signed(hcp.client, params, hcp.sign(SMS_PATH, params))
        assert (status, body) == (200, EMPTY_TWIML), (status, body)
    status, reply, raw = await hcp.wechat_post(wx_xml)
    assert (status, raw) == (200, "success")

    [ev] = await hcp.evaluations(mid_no)
    assert (ev["grade"], ev["reasons"], ev["channel"]) == ("very_dissatisfied", ["efficiency", "guide"], "sms")
    [ev] = await hcp.evaluations(new_no)
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "sms")
    [ev] = await hcp.evaluations(wx_doc["case_no"])
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "wechat")


@ON_PRIVATE_REDIS
async def test_the_scheduler_needs_no_redis(phcp: Hcp, private_redis: PrivateRedis) -> None:
    """Reminders are the database's and Twilio's business: a tick while Redis is down still sends them
    (exactly once), and the conversation they open answers once Redis is back."""
    hcp = phcp
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at=COMPLETED)
    await private_redis.stop()
    counts = await hcp.tick(DUE)
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    assert (await hcp.tick(DUE + timedelta(minutes=1)))["sent"] == 0
    assert len(hcp.twilio.sms_to(phone)) == 1
    await private_redis.start()
    hcp.clock.set(DUE + timedelta(minutes=5))
    assert (await hcp.sms(phone, "3")).messages == [said(hcp, m.THANKS)]
    assert [e["grade"] for e in await hcp.evaluations(doc["case_no"])] == ["basically_satisfied"]


@ON_PRIVATE_REDIS
async def test_a_redis_restart_between_two_messages_is_not_seen_by_the_next_one(
        phcp: Hcp, private_redis: PrivateRedis) -> None:
    """Redis restarts (an upgrade, a failover) while no message comes in. The service's pooled
    connections are then dead; the next webhook should reconnect, not fail: Twilio retries a webhook only
    as its URL's connection overrides (#rc, #rp) say, so a needless 503 can cost a rating."""
    hcp = phcp
    [(case_no, phone)] = await reminded_many(hcp, 1)
    assert (await hcp.sms(phone, "5")).messages == [ask_reasons(hcp)]
    await private_redis.stop()
    await private_redis.start()

    reply = await hcp.sms(phone, "2")

    assert (reply.status, reply.messages) == (200, [said(hcp, m.THANKS_BAD)]), reply.raw
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["efficiency"])


async def wait_for_keys(server: PrivateRedis, more_than: int, deadline: float = 1.0) -> None:
    """After a stall: give Redis a moment to execute what it read meanwhile (no assertion: a service
    that leaves nothing behind is what the tests below want)."""
    for _ in range(int(deadline / 0.02)):
        if await server.dbsize() > more_than:
            return
        await asyncio.sleep(0.02)


@ON_PRIVATE_REDIS
async def test_an_sms_during_a_redis_stall_is_answered_at_once_and_its_retry_is_a_copy(
        phcp: Hcp, private_redis: PrivateRedis) -> None:
    """Redis hangs for longer than the service's socket timeout (5 s, bot/infra/state.py). An SMS reply does not
    wait for it (the inbound road keeps nothing in Redis): it is answered and stored at once, and Twilio's
    retry of the same MessageSid, once Redis answers again, is recognised as a copy."""
    hcp = phcp
    [(case_no, phone)] = await reminded_many(hcp, 1)
    assert (await hcp.sms(phone, "5")).messages == [ask_reasons(hcp)]  # (and the service's connections are warm)
    params = hcp.sms_params(phone, "2")
    signature = hcp.sign(SMS_PATH, params)
    private_redis.pause()
    try:
        started = time.monotonic()
        status, _, body = await post_signed(hcp.client, params, signature)
        took = time.monotonic() - started
    finally:
        private_redis.resume()
    assert (status, twiml_texts(body)) == (200, [said(hcp, m.THANKS_BAD)]), body
    assert took < 4, took  # well inside the 5 s a wait on Redis would take

    status, _, body = await post_signed(hcp.client, params, signature)

    assert (status, body) == (200, EMPTY_TWIML), body
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["efficiency"])


@ON_PRIVATE_REDIS
async def test_a_wechat_message_during_a_redis_stall_is_not_lost(phcp: Hcp, private_redis: PrivateRedis) -> None:
    """The same stall on the official account. WeChat retries only a message it got no answer to; after
    "success" it never sends it again. So either the answer must not be "success" (and WeChat's retry is
    then acted on), or the service itself must still act on the message once Redis is back."""
    hcp = phcp
    openid = hcp.new_openid()
    doc = await hcp.post_case(applicant={"wechat_openid": openid, "locale": "zh-CN"}, completed_at=COMPLETED)
    status, _, raw = await hcp.wechat_post(hcp.wx_text(openid, "评价"))  # the list (and warm connections)
    assert status == 200, (status, raw)
    xml = hcp.wx_text(openid, "1")
    keys = await private_redis.dbsize()
    private_redis.pause()
    started = time.monotonic()
    try:
        status, _, raw = await hcp.wechat_post(xml)
        # hold the stall past the socket timeout, so that the work the answer left behind meets it too
        await asyncio.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
    finally:
        private_redis.resume()
    await wait_for_keys(private_redis, keys)
    if (status, raw) == (200, "success"):  # WeChat will not send it again: the service must act on it
        for _ in range(30):  # 1.5 s: a service that acts on it once Redis is back does so at once
            if await hcp.evaluations(doc["case_no"]):
                break
            await asyncio.sleep(0.05)
    else:  # anything but success: WeChat sends it again
        assert status in (200, 503), (status, raw)
        if status == 503:
            status, reply, raw = await hcp.wechat_post(xml)
            assert status == 200 and hcp.reply_content(reply) == said(hcp, m.THANKS), (status, raw)
    evaluations = await hcp.evaluations(doc["case_no"])
    assert [(e["grade"], e["channel"]) for e in evaluations] == [("very_satisfied", "wechat")], (status, raw)


# --- 3. the same webhook three times at once ------------------------------------------------------------------


async def thrice(hcp: Hcp, phone: str, body: str) -> list[str]:
    """The same delivery (MessageSid, body, signature) posted three times concurrently; the raw answers."""
    params = hcp.sms_params(phone, body)
    signature = hcp.sign(SMS_PATH, params)
    answers = await asyncio.gather(*(post_signed(hcp.client, params, signature) for _ in range(3)))
    assert [status for status, _, _ in answers] == [200, 200, 200], answers
    return [raw for _, _, raw in answers]


def acted_once(answers: list[str], expected: str) -> None:
    """Exactly one answer carries the dialog's reply; the duplicates are empty TwiML (conversation.handle
    answers a delivery it has seen with no message)."""
    replies = [twiml_texts(raw) for raw in answers]
    assert sorted(replies, key=len) == [[], [], [expected]], answers
    assert sorted(answers).count(EMPTY_TWIML) == 2, answers


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_grade_delivered_three_times_at_once_is_stored_once(hcp: Hcp) -> None:
    """Twilio may deliver one message more than once, and the copies may arrive together."""
    case_no, phone, _ = await hcp.reminded()

    acted_once(await thrice(hcp, phone, "2"), said(hcp, m.THANKS))

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("satisfied", "sms")
    assert (await hcp.sms(phone, "2")).messages == [said(hcp, m.NOTHING_TO_RATE)]  # the conversation is over
    assert len(await hcp.evaluations(case_no)) == 1


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_every_step_of_a_bad_rating_delivered_three_times_at_once_moves_one_step(hcp: Hcp) -> None:
    """Each step of grade → reasons → sentence arrives three times at once. A copy acted on would show:
    a second "5" read as reason 5 (多次跑动), a second reasons answer read as the sentence, the sentence
    added three times."""
    case_no, phone, _ = await hcp.reminded()

    acted_once(await thrice(hcp, phone, "5"), ask_reasons(hcp))
    assert await hcp.evaluations(case_no) == []
    acted_once(await thrice(hcp, phone, "2 4"), said(hcp, m.THANKS_BAD))
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"]) == ("very_dissatisfied", ["efficiency", "guide"], None)
    acted_once(await thrice(hcp, phone, MORE_TEXT), said(hcp, m.THANKS_TEXT))

    doc = await hcp.case(case_no)
    [ev] = doc["evaluations"]
    assert (ev["grade"], ev["reasons"], ev["text"]) == ("very_dissatisfied", ["efficiency", "guide"], MORE_TEXT)
    assert len(doc["work_orders"]) == 1


# --- 4. Twilio answering 500, then timing out -------------------------------------------------------------------


@ON_POSTGRES_REDIS
async def test_twilio_500s_keep_the_reminders_pending_until_the_backoff_then_each_goes_once(hcp: Hcp) -> None:
    """A Twilio outage (500) loses nothing: the reminders wait in the outbox, counted, until their next
    attempt; then each goes exactly once."""
    people = []
    for _ in range(6):
        phone = hcp.new_phone()
        people.append((await hcp.post_case(phone=phone, completed_at=COMPLETED), phone))
    ids = [doc["id"] for doc, _ in people]
    hcp.twilio.fail_next(4)  # four of the six first attempts fail

    counts = await hcp.tick(DUE)
    assert counts["reminders"] == 6 and counts["sent"] == 2, counts
    rows = await outbox_rows(hcp, ids)
    pending = [row for row in rows.values() if row.status == "pending"]
    assert len(pending) == 4 and len(hcp.twilio.messages) == 2
    for row in pending:
        assert row.attempts == 1 and row.next_attempt_at == DUE + backoff(1), row
        assert row.error and "500" in row.error, row.error
    retried = {row.id for row in pending}
    assert (await hcp.tick(DUE + backoff(1) - timedelta(seconds=1)))["sent"] == 0
    assert len(message_posts(hcp.twilio)) == 6

    counts = await hcp.tick(DUE + backoff(1))
    assert counts["sent"] == 4, counts
    assert (await hcp.tick(DUE + timedelta(hours=2)))["sent"] == 0
    rows = await outbox_rows(hcp, ids)
    for doc, phone in people:
        [sms] = hcp.twilio.sms_to(phone)
        row = rows[doc["id"]]
        assert (row.status, row.provider_id) == ("sent", sms["sid"]), row
        assert row.attempts == (2 if row.id in retried else 1), row
    assert len(message_posts(hcp.twilio)) == 10 and message_lists(hcp.twilio) == []


@ON_POSTGRES_REDIS
async def test_500_then_timeouts_then_each_reminder_reaches_the_person_exactly_once(quick_hcp: Hcp) -> None:
    """Twilio fails (500), then holds every request past the send timeout. Three of the held messages are
    accepted late (Twilio took them; the service never heard), three are not (refused after the hold).
    The next attempt must ask Twilio first (GET Messages.json?To=…&From=…): record the late ones as sent
    with Twilio's sid, send only the others. Each person gets exactly one SMS."""
    hcp = quick_hcp
    people = []
    for _ in range(6):
        phone = hcp.new_phone()
        people.append((await hcp.post_case(phone=phone, completed_at=COMPLETED), phone))
    ids = [doc["id"] for doc, _ in people]

    hcp.twilio.fail_next(6)
    counts = await hcp.tick(DUE)
    assert counts["reminders"] == 6 and counts["sent"] == 0, counts

    # attempt 2: every request held 1.5 s (the timeout is 0.3 s); after the hold, three are refused
    # (the fake checks its queued failures after a hold) and three accepted
    hcp.twilio.hang_next(6, seconds=1.5)
    hcp.twilio.fail_next(3)
    second = DUE + backoff(1)
    started = time.monotonic()
    counts = await hcp.tick(second)
    assert time.monotonic() - started < 1.4  # the tick gave up after the send timeout, not the hold
    assert counts["sent"] == 0, counts
    for row in (await outbox_rows(hcp, ids)).values():
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, second + backoff(2)), row
        assert row.error and "Timeout" in row.error, row.error
    await until_released(hcp.twilio)
    held = message_posts(hcp.twilio)[6:]
    assert sorted(r["status"] for r in held) == [201, 201, 201, 500, 500, 500], held
    late = {phone for _, phone in people if hcp.twilio.sms_to(phone)}
    assert len(late) == 3 and len(hcp.twilio.messages) == 3

    counts = await hcp.tick(second + backoff(2))
    assert counts["sent"] == 6, counts
    assert (await hcp.tick(second + timedelta(hours=3)))["sent"] == 0
    rows = await outbox_rows(hcp, ids)
    for doc, phone in people:
        sms = hcp.twilio.sms_to(phone)
        assert len(sms) == 1, (phone in late, sms)
        row = rows[doc["id"]]
        assert (row.status, row.provider_id, row.attempts) == ("sent", sms[0]["sid"], 3), row
    assert len(message_lists(hcp.twilio)) == 6  # the third attempt asked Twilio about each
    assert len(message_posts(hcp.twilio)) == 6 + 6 + 3  # and sent only the three Twilio never took
