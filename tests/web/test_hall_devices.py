"""The hall's window devices (issue 28; Shantou art. 17 (一), 23, 24): registered by an admin, paired by a link,
shown a case completed at their window within two seconds of its posting, rated with channel `hall`, the clerk
and the window; never another window's case; refused at once when revoked; each rating stored once however often
the device sends it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from helpers import TOKEN, Hcp
from servers import BACKENDS

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HALL = "440507-ZW01"


async def register(hcp: Hcp, expect: int = 201, **body: Any) -> dict[str, Any]:
    resp = await hcp.client.post("/api/v1/hall/devices", headers=AUTH,
                                 json={"kind": "window", "hall_code": HALL, **body})
    doc = await resp.json()
    assert resp.status == expect, doc
    return doc


def cookie(device: dict[str, Any]) -> dict[str, str]:
    return {"Cookie": f"hcp_hall={device['token']}"}


class Stream:
    """A device's event stream, read as EventSource reads it."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next(self, within: float = 3.0) -> tuple[str, dict[str, Any]] | None:
        """The next event (name, data), keep-alives skipped; None when none came `within` seconds."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                block = await asyncio.wait_for(self.resp.content.readuntil(b"\n\n"), left)
            except TimeoutError:
                return None
            fields = dict(line.split(": ", 1) for line in block.decode().strip().splitlines()
                          if ": " in line and not line.startswith(":"))
            if "event" in fields:
                return fields["event"], json.loads(fields.get("data") or "{}")
        return None


async def stream(hcp: Hcp, device: dict[str, Any]) -> Stream:
    resp = await hcp.client.get("/hall/device/events", headers=cookie(device))
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    return Stream(resp)


async def post_window_case(hcp: Hcp, window_no: str | None, **more: Any) -> dict[str, Any]:
    return await hcp.post_case(hall_code=HALL, completed_at=hcp.clock().isoformat(), **(
        {"window_no": window_no} if window_no else {}), **more)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_case_completed_at_the_window_is_shown_within_two_seconds_and_rated_as_hall(hcp: Hcp) -> None:
    one = await register(hcp, window_no="3", staff_id="G1024", staff_name="李四", label="3号窗口评价器")
    two = await register(hcp, window_no="4")
    first, second = await stream(hcp, one), await stream(hcp, two)

    started = time.monotonic()
    case = await post_window_case(hcp, "3")
    event = await first.next(2.0)
    took = time.monotonic() - started

    assert event is not None and event[0] == "case", event
    data = event[1]
    assert took < 2.0 and data["case_no"] == case["case_no"] and data["item_name"] == "居民身份证换领"
    assert (data["staff_id"], data["staff_name"], data["window_no"]) == ("G1024", "李四", "3")
    assert await second.next(1.0) is None  # another window's device never sees it
    rated = await hcp.client.post("/hall/device/ratings", headers=cookie(one), json={
        "token": data["token"], "grade": "dissatisfied", "reasons": ["efficiency"], "rating_id": "a1b2c3d4e5f6"})
    again = await hcp.client.post("/hall/device/ratings", headers=cookie(one), json={
        "token": data["token"], "grade": "dissatisfied", "reasons": ["efficiency"], "rating_id": "a1b2c3d4e5f6"})
    other = await hcp.client.post("/hall/device/ratings", headers=cookie(two), json={
        "token": data["token"], "grade": "satisfied", "rating_id": "ffffffff0000"})

    assert rated.status == 201 and (await rated.json())["next"] == "work_order"
    assert again.status == 200 and (await again.json())["repeat"] is True  # the page sent it again: stored once
    assert other.status == 404  # not that device's window
    [stored] = await hcp.evaluations(case["case_no"])
    assert (stored["channel"], stored["window_no"], stored["grade"]) == ("hall", "3", "dissatisfied")
    stored_case = await hcp.case(case["case_no"])
    assert stored_case["staff_id"] == "G1024" and len(stored_case["work_orders"]) == 1


async def test_a_case_naming_only_the_clerk_reaches_the_clerks_window_and_a_batch_is_one_rating(hcp: Hcp) -> None:
    device = await register(hcp, window_no="7", staff_id="G2048", staff_name="王五")
    events = await stream(hcp, device)
    first = await post_window_case(hcp, None, batch_no="B-1", staff_id="G2048", staff_name="王五")
    shown = await events.next()
    second = await post_window_case(hcp, None, batch_no="B-1", staff_id="G2048", staff_name="王五")
    shown_second = await events.next()
    assert shown is not None and shown[1]["case_no"] == first["case_no"]
    assert shown_second is not None and shown_second[1]["case_no"] == second["case_no"]

    resp = await hcp.client.post("/hall/device/ratings", headers=cookie(device), json={
        "token": shown_second[1]["token"], "grade": "very_satisfied", "rating_id": "batch-0001"})

    assert resp.status == 201
    grades = [(e["grade"], e["channel"]) for e in await hcp.evaluations(first["case_no"])]
    assert grades == [("very_satisfied", "hall")]  # the batch's other case, rated by the same one rating


async def test_revoking_a_device_closes_its_stream_and_refuses_its_ratings_at_once(hcp: Hcp) -> None:
    device = await register(hcp, window_no="5")
    events = await stream(hcp, device)
    case = await post_window_case(hcp, "5")
    shown = await events.next()
    assert shown is not None

    revoked = await hcp.client.post(f"/api/v1/hall/devices/{device['id']}/revoke", headers=AUTH)
    closing = await events.next(2.0)
    refused = await hcp.client.post("/hall/device/ratings", headers=cookie(device), json={
        "token": shown[1]["token"], "grade": "satisfied", "rating_id": "late-000001"})
    page = await hcp.client.get("/hall/device", headers=cookie(device))
    listed = await (await hcp.client.get(f"/api/v1/hall/devices?hall_code={HALL}", headers=AUTH)).json()

    assert revoked.status == 200 and closing == ("revoked", {})
    assert refused.status == 401 and page.status == 401 and await hcp.evaluations(case["case_no"]) == []
    assert [d["status"] for d in listed["devices"] if d["id"] == device["id"]] == ["revoked"]


async def test_registration_pairing_and_the_refusals(hcp: Hcp) -> None:
    missing = await register(hcp, expect=422, window_no=None)
    terminal = await register(hcp, kind="terminal", terminal_no="ZD-07")
    anonymous = await hcp.client.post("/api/v1/hall/devices", json={"hall_code": HALL, "window_no": "1"})
    paired = await hcp.client.get(f"/hall/pair?token={terminal['token']}", allow_redirects=False)
    bad_pair = await hcp.client.get("/hall/pair?token=nonsense")
    unpaired = await hcp.client.get("/hall/device")
    page = await hcp.client.get("/hall/device", headers=cookie(terminal))
    bad_body = await hcp.client.post("/hall/device/ratings", headers=cookie(terminal), json={"grade": "great"})

    assert {e["field"] for e in missing["errors"]} == {"window_no"}
    assert terminal["pair_url"].endswith(f"/hall/pair?token={terminal['token']}") and anonymous.status == 401
    assert paired.status == 303 and paired.headers["Location"] == "/hall/device"
    assert "HttpOnly" in paired.headers["Set-Cookie"] and "Path=/hall/" in paired.headers["Set-Cookie"]
    assert bad_pair.status == 401 and unpaired.status == 401 and "尚未登记" in await unpaired.text()
    assert page.status == 200 and "自助终端 ZD-07" in await page.text()
    assert bad_body.status == 422
    assert {e["field"] for e in (await bad_body.json())["errors"]} >= {"grade", "rating_id", "token"}


async def test_the_console_shows_each_devices_status_and_prints_a_windows_code(hcp: Hcp) -> None:
    from console_support import logged_in

    window = await register(hcp, window_no="3", staff_id="G1024", staff_name="李四")
    terminal = await register(hcp, kind="terminal", terminal_no="ZD-07")
    events = await stream(hcp, window)  # connected: online
    assert await events.next(0.3) is None
    await hcp.client.post(f"/api/v1/hall/devices/{terminal['id']}/revoke", headers=AUTH)
    admin = await logged_in(hcp, "admin1", "admin")
    agent = await logged_in(hcp, "agent1", "agent")

    status, page, _ = await admin.request("GET", "/console/hall")
    qr = await admin.request("GET", f"/console/hall/qr?hall_code={HALL}&window_no=3")
    refused, _, _ = await agent.request("GET", "/console/hall")

    assert status == 200 and "3号窗口" in page and "自助终端 ZD-07" in page
    rows = dict(re.findall(r'<tr data-device="(\d+)">.*?<span class="badge">(.*?)</span>', page, re.S))
    assert rows == {str(window["id"]): "在线", str(terminal["id"]): "已停用"}
    assert page.count('href="/console/hall/qr?') == 1  # a window's code; a terminal has none
    assert qr[0] == 200 and "<svg" in qr[1]
    assert refused == 403


@pytest.mark.parametrize("backend", [("postgres", "redis")], indirect=True, ids=["postgres-redis"])
async def test_a_case_posted_to_another_worker_reaches_the_device_through_redis(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes of `serve --workers 2`: the device's stream on one, the business system's post on the other.
    The wake-up crosses through Redis pub/sub, so the screen turns at once: the stream's own look is made rare
    here, so that only the wake-up can bring the case in time."""
    from aiohttp.test_utils import TestClient, TestServer

    from bot.infra.runtime import open_runtime
    from bot.web import hall_devices
    from bot.web.app import build_app

    monkeypatch.setattr(hall_devices, "POLL", 60.0)
    other = await open_runtime(hcp.rt.settings)
    try:
        other.clock = hcp.clock
        async with TestClient(TestServer(build_app(other))) as second:
            device = await register(hcp, window_no="6")
            events = await stream(hcp, device)
            assert await events.next(0.5) is None
            await asyncio.sleep(0.2)  # the other worker's subscription is in place
            started = time.monotonic()
            resp = await second.post("/api/v1/cases", headers=AUTH, json=hcp.case_body(
                hall_code=HALL, window_no="6", completed_at=hcp.clock().isoformat()))
            assert resp.status == 201
            event = await events.next(2.0)
            took = time.monotonic() - started
    finally:
        await other.close()
    assert event is not None and event[0] == "case"
    assert took < 1.0  # woken through Redis, not by the stream's own (now minute-long) look
