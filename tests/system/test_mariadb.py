"""MariaDB (the MySQL family, issue 26), the whole loop on it: the schema made by the migrations (and the upgrade's
lock released, so a second process starts at once), a reminder sent by tick, a grade and a bad review by SMS with
its work order, the statistics, an export, the supervision scan finding a burst, and a month's supervisory draw.
Each test has a database of its own on 127.0.0.1:3306 (HCP_TEST_MARIADB)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from helpers import Hcp
from servers import MARIADB_BACKEND
from sqlalchemy import text

from store import migrate
from store.engine import Database


@pytest.mark.parametrize("backend", [MARIADB_BACKEND], indirect=True)
async def test_a_second_process_upgrades_at_once_after_the_first_has_started(hcp: Hcp, database_url: str) -> None:
    async with hcp.rt.db.engine.connect() as conn:  # the running service's pool holds no named lock
        assert (await conn.execute(text("SELECT IS_USED_LOCK('haochaping_migrate')"))).scalar() is None
    other = Database(database_url)
    try:
        started = time.perf_counter()
        await asyncio.wait_for(migrate.upgrade(other), 20)
        assert time.perf_counter() - started < 5
        assert await migrate.current(other) == migrate.head()
    finally:
        await other.close()


@pytest.mark.parametrize("backend", [MARIADB_BACKEND], indirect=True)
async def test_long_words_and_a_frozen_period_fit(hcp: Hcp) -> None:
    """Free text is TEXT on MySQL (migration 0017), not VARCHAR(255): a rater's long words, a snapshot's JSON."""
    doc = await hcp.post_case(phone=hcp.new_phone())
    words = "窗口工作人员态度很好，" * 60  # 660 characters
    await hcp.rate(doc["case_no"], "very_satisfied", text=words)
    [ev] = await hcp.evaluations(doc["case_no"])
    assert len(ev["text"]) == len(words)
    status, snap = await hcp.api("POST", "/api/v1/stats/snapshots", {"from": "2026-11-01", "to": "2026-11-30"})
    assert status == 201, snap


@pytest.mark.parametrize("backend", [MARIADB_BACKEND], indirect=True)
async def test_the_loop_on_mariadb(hcp: Hcp) -> None:
    case_no, phone, sms = await hcp.reminded()
    assert "居民身份证换领" in sms["body"]
    reply = await hcp.sms(phone, "1")
    assert reply.status == 200 and "感谢" in reply.text
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]

    bad_no, bad_phone, _ = await hcp.reminded()
    await hcp.sms(bad_phone, "5")
    reply = await hcp.sms(bad_phone, "1")
    assert reply.status == 200
    [ev] = await hcp.evaluations(bad_no)
    assert ev["grade"] == "very_dissatisfied"
    status, doc = await hcp.api("GET", "/api/v1/work-orders")
    assert status == 200 and [w["case_no"] for w in doc["work_orders"]] == [bad_no]

    await hcp.tick(hcp.clock())
    status, stats = await hcp.api("GET", "/api/v1/stats?by=agency")
    assert status == 200 and stats["groups"][0]["rated"] == 2 and stats["groups"][0]["bad_reviews"] == 1
    resp = await hcp.client.get("/api/v1/exports/evaluations.csv",
                                headers={"Authorization": "Bearer " + hcp.rt.settings.api_token})
    assert resp.status == 200 and bad_no in await resp.text()

    # The supervision scan: a tablet rates nine cases 非常满意 from one hall window in four minutes.
    for _ in range(9):
        doc = await hcp.post_case(phone=hcp.new_phone(), hall_code="H1", staff_id="S1")
        hcp.clock.advance(seconds=25)
        await hcp.rate(doc["case_no"], "very_satisfied", channel="hall")
    counts = await hcp.tick(hcp.clock())
    assert counts["signals"] >= 1, counts
    status, doc = await hcp.api("GET", "/api/v1/signals?kind=good_burst")
    assert status == 200 and len(doc["signals"]) == 1 and len(doc["signals"][0]["cases"]) == 9
    status, doc = await hcp.api("POST", f"/api/v1/signals/{doc['signals'][0]['id']}/decide", {"decision": "dismissed"})
    assert status == 200 and doc["status"] == "dismissed"

    # The month's supervisory draw.
    counts = await hcp.tick(datetime.fromisoformat("2026-12-01T00:30:00+08:00"))
    assert counts["supervisory_calls"] >= 5, counts
    status, doc = await hcp.api("GET", "/api/v1/supervision/draws?period=2026-11")
    assert status == 200 and doc["draws"] and doc["draws"][0]["population"] >= 10
