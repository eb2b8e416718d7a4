"""Session state: locks and dedupe keys may be lost (Redis flushed, or down) without losing a rating."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets

import pytest
import redis.asyncio as aioredis
from helpers import Hcp

from bot.infra.runtime import open_runtime
from bot.infra.state import MemoryState
from bot.web.app import build_app


async def _flush_prefix(url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    return len(keys)


@pytest.mark.parametrize("backend", [("postgres", "redis"), ("sqlite", "redis")], indirect=True,
                         ids=["postgres-redis", "sqlite-redis"])
async def test_flushing_redis_mid_conversation_loses_nothing(hcp):
    settings = hcp.rt.settings
    case_no, phone, _ = await hcp.reminded()
    sid = "SM" + secrets.token_hex(16)
    await hcp.sms(phone, "5", sid=sid)

    flushed = await _flush_prefix(settings.redis_url, settings.redis_prefix)
    retry = await hcp.sms(phone, "5", sid=sid)  # Twilio's retry, after the flush
    done = await hcp.sms(phone, "2 4")

    assert flushed == 0  # the inbound road keeps nothing in Redis (bot/inbound/conversation.py)
    assert retry.messages == []  # the conversation's durable record of message ids caught it
    assert done.status == 200 and done.messages
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["efficiency", "guide"])


@pytest.mark.parametrize("backend", [("sqlite", "redis")], indirect=True, ids=["sqlite-redis"])
async def test_with_redis_down_an_sms_rating_is_still_taken_once_and_health_names_redis(hcp, aiohttp_client,
                                                                                         clock):
    """The inbound road needs no Redis: the person's conversation row serialises and dedupes their messages."""
    case_no, phone, _ = await hcp.reminded()
    broken = dataclasses.replace(hcp.rt.settings, redis_url="redis://127.0.0.1:1/0")
    rt = await open_runtime(broken)
    rt.clock = clock
    try:
        client = await aiohttp_client(build_app(rt))
        down = Hcp(rt=rt, client=client, twilio=hcp.twilio, clock=clock)

        sid = "SM" + secrets.token_hex(16)
        reply = await down.sms(phone, "1", sid=sid)
        copy = await down.sms(phone, "1", sid=sid)
        status, health = await down.api("GET", "/healthz")

        assert reply.status == 200 and reply.messages, reply
        assert copy.status == 200 and copy.messages == [], copy
        assert status == 503 and health["redis"].startswith("down") and health["database"] == "ok"
    finally:
        await rt.close()
    assert (await hcp.sms(phone, "1", sid=sid)).messages == []  # with Redis back, still a copy
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]


async def test_memory_state_keeps_values_for_their_time_and_serialises_one_key(monkeypatch):
    state = MemoryState()
    clock = [1000.0]
    monkeypatch.setattr("bot.infra.state.time.monotonic", lambda: clock[0])
    await state.put("a", "1", 60)
    assert await state.get("a") == "1"
    await state.delete("a")
    assert await state.get("a") is None
    await state.put("b", "2", 60)
    clock[0] += 61
    assert await state.get("b") is None
    await state.put("c", "3", 60)  # the once-a-minute sweep drops what expired
    assert set(state._values) == {"c"}

    order: list[str] = []

    async def worker(name: str) -> None:
        async with state.lock("person"):
            order.append(f"{name}-in")
            await asyncio.sleep(0)
            order.append(f"{name}-out")

    await asyncio.gather(worker("x"), worker("y"))
    assert order in (["x-in", "x-out", "y-in", "y-out"], ["y-in", "y-out", "x-in", "x-out"])
    assert state._locks == {}  # no lock left behind for a person who is gone
