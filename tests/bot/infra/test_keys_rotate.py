"""`haochaping keys rotate` (issue 26): the personal data moves to a new key, and from AES to SM4, in resumable
batches while the service runs with both keys; afterwards every look-up is answered under the new key alone and
nothing is left that the old key opens."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.exceptions import InvalidTag
from helpers import TOKEN, Hcp
from servers import ALL_BACKENDS
from sqlmodel import select

from bot.cli import keys
from bot.cli import main as cli
from bot.infra.config import ConfigError, Settings
from bot.infra.runtime import Runtime, open_runtime
from bot.web.app import build_app
from store import settings as stored
from store.models import Case, Contact, IntermediaryRating, Setting
from store.resealing import TABLES, Unopenable, reseal_batch
from store.sealing import Sealer

NEW = "rotated-online-" + "k" * 40
THIRD = "a-third-key-" + "z" * 40
FULFILLED_NEXT_DAY = "2026-09-29T10:00:00+08:00"


def intermediary_rating(project_no: str, phone: str) -> dict[str, Any]:
    good = {d: "satisfied" for d in ("quality", "timeliness", "attitude", "fees", "conduct")}
    return {"project_no": project_no, "intermediary_code": "91460000MA5T000001",
            "intermediary_name": "海南某工程咨询有限公司", "agency_code": "11460000MB0000001X",
            "agency_name": "海南省发展和改革委员会", "service": "节能评估报告编制",
            "fulfilled_at": "2026-09-28T10:00:00+08:00", "scores": good, "channel": "web", "rater": {"phone": phone}}


async def sealed_rows(rt: Runtime) -> tuple[list[Contact], list[str], list[str]]:
    async with rt.db.read() as session:
        contacts = list((await session.exec(select(Contact))).all())
        names = [n for n in (await session.exec(select(Case.applicant_name_sealed))).all() if n]
        raters = [r for r in (await session.exec(select(IntermediaryRating.rater_phone_sealed))).all() if r]
    return contacts, names, raters


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
async def test_an_online_rotation_to_sm4_reseals_everything_while_people_rate_and_cases_arrive(
        hcp: Hcp, settings: Settings) -> None:
    phones = [hcp.new_phone() for _ in range(6)]
    reminded = [await hcp.reminded(phone=p, applicant={"name": f"王{i}", "locale": "zh-CN"})
                for i, p in enumerate(phones)]
    back = hcp.clock()
    hcp.clock.set(FULFILLED_NEXT_DAY)
    status, doc = await hcp.api("POST", "/api/v1/intermediary-ratings", intermediary_rating("ZJ-1", phones[0]))
    assert status == 201, doc
    hcp.clock.set(back)
    old_key = settings.secret_key or await stored.get(hcp.rt.db, stored.SECRET_KEY)
    assert old_key
    await hcp.rt.close()
    # Every process restarts with the new key and the old one as the previous: the rotation begins.
    during = dataclasses.replace(settings, secret_key=NEW, crypto="sm", previous_secret_key=old_key,
                                 previous_crypto=settings.crypto)
    rt = await open_runtime(during)
    try:
        assert rt.sealer.previous is not None
        with pytest.raises(ConfigError, match="another key"):  # no process may rotate to a third key meanwhile
            await open_runtime(dataclasses.replace(during, secret_key=THIRD))
        first = await keys.rotate(during, batch=2, batches=1)  # stopped after one batch: half-rotated
        assert first["done"] is False and first["resealed"]["contacts"] == 2, first
        assert (await keys.status(during))["rotating"] is True
        rt.clock = hcp.clock
        async with TestClient(TestServer(build_app(rt))) as client:
            again = Hcp(rt=rt, client=client, twilio=hcp.twilio, clock=hcp.clock, wechat=hcp.wechat)

            # Half-rotated: two people re-sealed, four not; each is found, by the new hash or the old.
            replies = [await again.sms(p, "1") for p in phones]
            lines = [json.dumps(again.case_body(phone=p, applicant={"name": "赵六", "locale": "zh-CN"}),
                                ensure_ascii=False) for p in phones]  # in bulk too: ids found by either hash
            bulk = await client.post("/api/v1/cases:bulk", data="\n".join(lines).encode(), headers={
                "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
            assert bulk.status == 200 and (await bulk.json())["created"] == len(phones)

            async def traffic() -> None:  # new cases of the same people while the rotation goes on
                for p in phones:
                    await again.post_case(phone=p, applicant={"name": "赵六", "locale": "zh-CN"})
                await again.post_case(phone=again.new_phone())  # a new person, sealed with the new key only

            _, finished = await asyncio.gather(traffic(), keys.rotate(during, batch=1, pause=0.005))
            cases = [await again.case(case_no) for case_no, _, _ in reminded]
        assert all(r.status == 200 and "感谢" in r.text for r in replies)
        assert all([e["grade"] for e in c["evaluations"]] == ["very_satisfied"] for c in cases)
        assert finished["done"] is True, finished
    finally:
        await rt.close()

    after = await _opened(dataclasses.replace(settings, secret_key=NEW, crypto="sm"))
    try:
        contacts, names, raters = await sealed_rows(after)
    finally:
        await after.close()
    sm, old = Sealer(NEW, "sm"), Sealer(old_key, settings.crypto)
    addresses: Counter[tuple[str, str]] = Counter()
    for contact in contacts:  # every value opens with the new key and is found by its HMAC-SM3; none with the old
        address = sm.open_own(contact.address_sealed)
        assert contact.address_hash == sm.lookup_hash(contact.channel, address)
        with pytest.raises(InvalidTag):
            old.open_own(contact.address_sealed)
        addresses[(contact.channel, address)] += 1
    assert max(addresses.values()) == 1  # nobody was taken for a stranger and given a second contact
    assert len(addresses) == len(phones) + 1
    assert {sm.open_own(n) for n in names} == {f"王{i}" for i in range(len(phones))} | {"赵六", "张三"}
    assert [sm.open_own(r) for r in raters] == ["+86" + phones[0]]
    for value in names + raters:
        with pytest.raises(InvalidTag):
            old.open_own(value)


async def _opened(settings: Settings) -> Runtime:
    """The service after the rotation, started with the new key alone."""
    rt = await open_runtime(settings)
    assert rt.sealer.previous is None
    status = await keys.status(settings)
    assert status["sealed_with"] == "this key" and status["rotating"] is False
    async with rt.db.read() as session:
        assert await stored.get(rt.db, stored.ROTATING_TO) is None
        assert not [k for k in (await session.exec(select(Setting.key))).all()
                    if k.startswith(stored.ROTATED_UP_TO)]
    await rt.close()
    with pytest.raises(ConfigError):  # the old key is no longer the data's
        await open_runtime(dataclasses.replace(settings, secret_key="rotated-online-" + "x" * 40))
    return await open_runtime(settings)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_keys_rotate_resumes_where_it_stopped_and_refuses_a_wrong_previous_key(
        hcp: Hcp, settings: Settings, monkeypatch, capsys, keep_logging) -> None:
    for _ in range(5):
        await hcp.post_case(phone=hcp.new_phone())
    old_key = settings.secret_key or await stored.get(hcp.rt.db, stored.SECRET_KEY)
    assert old_key
    await hcp.rt.close()
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HAOCHAPING_SECRET_KEY", NEW)
    monkeypatch.setenv("HAOCHAPING_PREVIOUS_SECRET_KEY", old_key)

    def run(*args: str) -> tuple[int, Any]:
        code = cli.main(["keys", *args])
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 else err

    steps = []
    while True:
        code, out = await asyncio.to_thread(run, "rotate", "--batch", "2", "--batches", "2")
        assert code == 0, out
        steps.append(out)
        if out["done"]:
            break
        code, status = await asyncio.to_thread(run, "status")
        assert status["rotating"] is True and status["rotating_to"] == "this key"
    contacts = [s["resealed"]["contacts"] for s in steps]
    assert contacts[:2] == [4, 1] and sum(contacts) == 5  # two batches of two, then the fifth: each row once
    assert steps[-1]["stored_key_removed"] is (settings.secret_key is None)
    assert sum(s["resealed"]["cases"] for s in steps) == 5
    code, status = await asyncio.to_thread(run, "status")
    assert status == {"crypto": settings.crypto, "sealed_with": "this key", "rotating": False, "rotating_to": None,
                      "progress": None}
    code, again = await asyncio.to_thread(run, "rotate")  # a run after the end changes nothing
    assert code == 0 and again["done"] is True and again["resealed"] == {}
    code, err = await asyncio.to_thread(run, "rotate", "--batch", "0")
    assert code == 2 and "--batch" in err
    # The next rotation, given a previous key that is not the data's: refused, nothing changed.
    monkeypatch.setenv("HAOCHAPING_SECRET_KEY", THIRD)
    monkeypatch.setenv("HAOCHAPING_PREVIOUS_SECRET_KEY", "not-the-key-" + "q" * 30)
    code, err = await asyncio.to_thread(run, "rotate")
    assert code == 2 and "nothing was changed" in err
    code, status = await asyncio.to_thread(run, "status")
    assert status["sealed_with"] == "another key" and status["rotating"] is False


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_value_neither_key_opens_stops_the_batch_with_its_row_named(hcp: Hcp, settings: Settings) -> None:
    await hcp.post_case(phone=hcp.new_phone())
    old_key = settings.secret_key or await stored.get(hcp.rt.db, stored.SECRET_KEY)
    assert old_key
    async with hcp.rt.db.write() as session:
        contact = (await session.exec(select(Contact))).one()
        contact.address_sealed = Sealer(THIRD).seal("+8613800138000")
        session.add(contact)
        contact_id = contact.id
    ring = Sealer(NEW).rotating_from(Sealer(old_key, settings.crypto))
    async with hcp.rt.db.write() as session:
        with pytest.raises(Unopenable, match=f"contacts {contact_id}"):
            await reseal_batch(session, TABLES[0], ring, 0)
