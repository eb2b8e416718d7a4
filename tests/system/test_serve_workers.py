"""`haochaping serve --workers 2` (bot/cli/workers.py): two processes answering on one port.

Real processes, as deployed: the console script started with PostgreSQL and Redis, its scheduler on (in
worker 0 only) with the quiet hours off, so the reminders go out by themselves on the real clock to the fake
Twilio of tests/fakes/twilio_api.py. Replies are signed as Twilio signs them (twilio's own RequestValidator)
and each copy of a reply comes on a connection of its own, so the kernel spreads them over both workers:
what keeps a person's copies apart is then the database (the conversation row, bot/inbound/conversation.py),
not anything one process holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from fakes.twilio_api import FakeTwilio
from helpers import PUBLIC_URL, TOKEN, Hcp, twiml_texts
from servers import REDIS_URL, free_port, truncate
from twilio.request_validator import RequestValidator

from bot.infra.config import KEYS

pytestmark = pytest.mark.slow

HAOCHAPING = Path(sys.executable).with_name("haochaping")
SMS_FROM = "+8610690012345"
SMS_PATH = "/webhooks/twilio/sms"
SECONDS = 60.0  # a bound on each wait, not an expectation


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in task.read_text().split()]
    return sorted(found)


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Served:
    process: asyncio.subprocess.Process
    port: int
    env: dict[str, str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


async def wait_for(condition: object, what: str, served: Served) -> None:
    deadline = time.monotonic() + SECONDS
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {SECONDS} s\n{served.tail()}"
        await asyncio.sleep(0.1)


async def healthy(served: Served) -> bool:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http, \
                http.get(served.url + "/healthz") as resp:
            return resp.status == 200
    return False


@pytest.fixture
async def env(tmp_path: Path, pg_database: str, redis_prefix: str, fake_twilio: FakeTwilio) -> dict[str, str]:
    await truncate(pg_database)
    policy = tmp_path / "policy.toml"
    policy.write_text('quiet_hours = ["00:00", "00:00"]\n', encoding="utf-8")
    base = {k: v for k, v in os.environ.items()
            if k not in KEYS and not k.startswith(("HAOCHAPING_", "TWILIO_", "WECHAT_"))}
    return {**base,
            "HAOCHAPING_DATABASE_URL": pg_database, "HAOCHAPING_REDIS_URL": REDIS_URL,
            "HAOCHAPING_REDIS_PREFIX": redis_prefix, "HAOCHAPING_PUBLIC_URL": PUBLIC_URL,
            "HAOCHAPING_API_TOKEN": TOKEN, "HAOCHAPING_SECRET_KEY": "workers-" + secrets.token_urlsafe(32),
            "HAOCHAPING_POLICY": str(policy), "HAOCHAPING_TICK_INTERVAL": "0.5",
            "HAOCHAPING_DB_POOL_SIZE": "4", "HAOCHAPING_DB_MAX_OVERFLOW": "2", "HAOCHAPING_SIMULATOR": "off",
            "HAOCHAPING_LOG_LEVEL": "INFO",
            "TWILIO_ACCOUNT_SID": fake_twilio.account_sid, "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
            "TWILIO_SMS_FROM": SMS_FROM, "TWILIO_API_BASE_URL": fake_twilio.base_url}


@pytest.fixture
async def served(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[Served]:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            str(HAOCHAPING), "serve", "--port", str(port), "--workers", "2", env=env, cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT)
    s = Served(process, port, env, log)
    try:
        await wait_for(lambda: healthy(s), "serve --workers 2 answered no /healthz", s)
        yield s
    finally:
        if process.returncode is None:  # the test's own SIGTERM did not end it (it asserts so): leave nothing
            for child in children(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            process.kill()
            await process.wait()


async def post_cases(served: Served, cases: dict[str, str]) -> None:
    completed = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    body = "".join(json.dumps(Hcp.case_body(case_no=no, completed_at=completed, phone=phone), ensure_ascii=False)
                   + "\n" for no, phone in cases.items()).encode()
    async with aiohttp.ClientSession() as http, http.post(
            served.url + "/api/v1/cases:bulk", data=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}) as resp:
        doc = await resp.json()
    assert resp.status == 200 and doc["created"] == len(cases), doc


async def reply(served: Served, validator: RequestValidator, params: dict[str, str]) -> tuple[int, str]:
    """One delivery of a reply on a connection of its own (so the kernel picks a worker for it)."""
    signature = validator.compute_signature(PUBLIC_URL + SMS_PATH, params)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http, http.post(
            served.url + SMS_PATH, data=params, headers={"X-Twilio-Signature": signature}) as resp:
        return resp.status, await resp.text()


async def test_two_workers_act_on_each_reply_once_and_outlive_a_killed_worker(
        served: Served, fake_twilio: FakeTwilio, tmp_path: Path) -> None:
    workers = children(served.process.pid)
    assert len(workers) == 2, (workers, served.tail())
    started = time.monotonic()

    # a second service on the same port is refused, not let in to share it
    second = await asyncio.create_subprocess_exec(
        str(HAOCHAPING), "serve", "--port", str(served.port), "--workers", "2", env=served.env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(second.communicate(), SECONDS)
    assert second.returncode == 2 and b"address already in use" in err, (second.returncode, err)

    n = 30
    cases = {f"SW-{i:04d}": f"+86139{i:08d}" for i in range(n)}
    await post_cases(served, cases)

    async def reminded() -> bool:
        return len({m["to"] for m in fake_twilio.messages}) == n

    await wait_for(reminded, f"{n} reminders not all sent by worker 0's scheduler", served)
    assert len(fake_twilio.messages) == n

    validator = RequestValidator(fake_twilio.auth_token)
    before = {pid: cpu_ticks(pid) for pid in workers}

    async def three_copies(phone: str) -> list[tuple[int, str]]:
        sid = "SM" + secrets.token_hex(16)
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": fake_twilio.account_sid, "From": phone,
                  "To": SMS_FROM, "Body": "1", "NumMedia": "0", "ApiVersion": "2010-04-01"}
        return await asyncio.gather(*(reply(served, validator, params) for _ in range(3)))

    answers = await asyncio.gather(*(three_copies(phone) for phone in cases.values()))
    for phone, copies in zip(cases.values(), answers, strict=True):
        assert [status for status, _ in copies] == [200, 200, 200], (phone, copies)
        said = sorted((twiml_texts(raw) for _, raw in copies), key=len)
        assert [len(s) for s in said] == [0, 0, 1], (phone, copies)  # one answer; the copies are empty
    used = {pid: cpu_ticks(pid) - before[pid] for pid in workers}
    assert all(used.values()), f"a worker took none of {3 * n} connections (CPU ticks used: {used})"

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for no in cases:
            async with http.get(f"{served.url}/api/v1/cases/{no}") as resp:
                doc = await resp.json()
            assert [(e["grade"], e["channel"]) for e in doc["evaluations"]] == [("very_satisfied", "sms")], doc

    # a worker killed is started again (after its first seconds: one that dies at once stops the service)
    await asyncio.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
    os.kill(workers[1], signal.SIGKILL)

    async def replaced() -> bool:
        now = children(served.process.pid)
        return len(now) == 2 and workers[1] not in now

    await wait_for(replaced, "the killed worker was not replaced", served)
    assert await healthy(served)
    assert re.search(r"worker 1 \(pid \d+\) exited with -9: starting it again", served.tail()), served.tail()

    # SIGTERM to the parent stops every worker, cleanly
    last = children(served.process.pid)
    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), SECONDS) == 0, served.tail()
    assert not [pid for pid in last if alive(pid)], last


def test_more_than_one_worker_needs_redis_and_a_sane_count(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith("HAOCHAPING_")}
    env = {**base, "HAOCHAPING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/w.db"}
    for args, expected in ((["--workers", "2"], "--workers 2 needs HAOCHAPING_REDIS_URL"),
                           (["--workers", "0"], "expected 1 to 64 processes"),
                           (["--workers", "many"], "expected a number of processes or 'auto'")):
        done = subprocess.run([str(HAOCHAPING), "serve", "--port", str(free_port()), *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and expected in done.stderr, (args, done.returncode, done.stderr)
    assert not (tmp_path / "w.db").exists()  # refused before anything was opened


async def api_once(served: Served, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    """One JSON API request on a connection of its own (so the kernel picks a worker for it)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
            http.post(served.url + path, json=body) as resp:
        return resp.status, await resp.json()


async def test_json_keypad_calls_step_by_step_across_two_workers_store_each_rating_once(served: Served) -> None:
    """The JSON keypad dialog keeps a call's state in the database, so each step may reach either worker: 20 calls,
    every request on a connection of its own, the last step of each posted three times at once. Each call ends
    with one rating and one work order, and the three answers to its last step are the same."""
    workers = children(served.process.pid)
    n = 20
    cases = {f"JK-{i:04d}": f"+86138{i:08d}" for i in range(n)}
    await post_cases(served, cases)
    before = {pid: cpu_ticks(pid) for pid in workers}

    async def one_call(i: int, case_no: str) -> list[tuple[int, dict[str, object]]]:
        call_id = f"fs-{i}-{secrets.token_hex(4)}"
        status, first = await api_once(served, "/api/v1/hotline/calls",
                                       {"call_id": call_id, "caller": cases[case_no], "ticket": case_no})
        assert status == 201 and first["step"] == 1, first
        status, reasons = await api_once(served, f"/api/v1/hotline/calls/{call_id}/keys", {"digits": "4", "step": 1})
        assert status == 200 and reasons["ask"] is not None, reasons
        return await asyncio.gather(*(api_once(served, f"/api/v1/hotline/calls/{call_id}/keys",
                                               {"digits": "13", "step": 2}) for _ in range(3)))

    finals = await asyncio.gather(*(one_call(i, no) for i, no in enumerate(cases)))
    for copies in finals:
        assert [status for status, _ in copies] == [200, 200, 200], copies
        assert copies[0][1]["done"] and all(doc == copies[0][1] for _, doc in copies), copies
    used = {pid: cpu_ticks(pid) - before[pid] for pid in workers}
    assert all(used.values()), f"a worker took none of {5 * n} connections (CPU ticks used: {used})"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for no in cases:
            async with http.get(f"{served.url}/api/v1/cases/{no}") as resp:
                doc = await resp.json()
            assert [(e["grade"], e["reasons"]) for e in doc["evaluations"]] == [("dissatisfied",
                                                                               ["attitude", "process"])], doc
            assert len(doc["work_orders"]) == 1, doc
