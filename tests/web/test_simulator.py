"""The simulator over its JSON API, as its page's script uses it: a sample case, the clock moved
past 24 hours, the reminder on the simulated phone, a bad grade with reasons, the stored rating; the
WeChat chat and the 12345 keypad through the same dialog code; and never with a real provider."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from helpers import PUBLIC_URL, TOKEN, Hcp, without_providers
from servers import BACKENDS
from simulator_support import Sim, sms_reminders, world_case, world_evaluations

from bot.infra.config import Settings, load_settings
from bot.infra.runtime import open_runtime
from bot.web import simulator
from bot.web.app import build_app
from dialogs.addresses import mask_openid, mask_phone

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

PHONE_RUN = re.compile(r"(?<!\d)1\d{10}(?!\d)")  # a whole Chinese mobile number
ACTIONS = ("case", "clock", "text", "call", "keys", "hangup", "reset")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The embedded default's providers: none at all (the local provider), so the simulator is on."""
    return without_providers(settings)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def last_counts(doc: dict[str, Any]) -> dict[str, int]:
    return [e for e in doc["sms"] if e["channel"] == "clock"][-1]["counts"]


def fields(evaluation: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(evaluation[k] for k in ("grade", "score", "reasons", "text", "channel", "is_default",
                                          "is_followup", "status", "via"))


# --- SMS ---------------------------------------------------------------------------------------------


@on_both
async def test_the_whole_sms_conversation(hcp):
    sim = Sim(hcp)
    page = await sim.open()
    assert 'src="/static/simulator.js' in page
    doc = await sim.do("case", {"channel": "sms"})
    [case] = doc["cases"]
    assert case["reminders"] == [] and case["remind_at"]

    doc = await sim.do("clock", {"hours": 24})
    reminders = sms_reminders(doc)
    assert len(reminders) == 1 and "1" in reminders[0]["text"] and "5" in reminders[0]["text"]

    doc = await sim.do("text", {"channel": "sms", "text": "4"})
    assert doc["sms"][-1]["dir"] == "out" and "1" in doc["sms"][-1]["text"]
    doc = await sim.do("text", {"channel": "sms", "text": "1 3"})
    [evaluation] = doc["cases"][0]["evaluations"]
    assert (evaluation["grade"], evaluation["reasons"], evaluation["channel"]) == (
        "dissatisfied", ["attitude", "process"], "sms")
    assert len(doc["cases"][0]["work_orders"]) == 1
    assert "+86" not in str(doc) and doc["phone"].count("*") == 4


# --- WeChat ------------------------------------------------------------------------------------------


@on_both
async def test_wechat_ratings_are_stored_as_wechat(hcp):
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("case", {"channel": "wechat"})
    [case] = doc["cases"]
    case_no = case["case_no"]
    assert case["applicant"]["phone"] is None and case["applicant"]["wechat_openid"] == doc["openid"]

    doc = await sim.do("text", {"channel": "wechat", "text": "2"})
    chat = doc["wechat"]
    asked = [i for i, e in enumerate(chat) if (e["dir"], e["text"]) == ("in", "2")]
    assert len(asked) == 1, chat
    answers = [e for e in chat[asked[0] + 1:] if e["dir"] == "out"]
    assert answers and all(e["channel"] == "wechat" and e["text"] for e in answers), chat
    assert [e for e in doc["sms"] if e["channel"] == "sms"] == []  # nothing went by SMS
    stored = await world_case(hcp, case_no)
    [evaluation] = stored["evaluations"]
    assert stored["rated"] is True
    assert (evaluation["grade"], evaluation["reasons"], evaluation["channel"], evaluation["is_default"]) == (
        "satisfied", [], "wechat", False)
    assert stored["work_orders"] == []

    # A bad grade by WeChat, then its reasons: stored only once the reasons came.
    doc = await sim.do("case", {"channel": "wechat"})
    second = doc["cases"][-1]["case_no"]
    assert second != case_no
    doc = await sim.do("text", {"channel": "wechat", "text": "4"})
    assert doc["wechat"][-1]["dir"] == "out" and doc["wechat"][-1]["text"]
    assert await world_evaluations(hcp, second) == []
    doc = await sim.do("text", {"channel": "wechat", "text": "2 5"})
    stored = await world_case(hcp, second)
    [evaluation] = stored["evaluations"]
    assert (evaluation["grade"], evaluation["reasons"], evaluation["channel"]) == (
        "dissatisfied", ["efficiency", "trips"], "wechat")
    assert len(stored["work_orders"]) == 1 and stored["work_orders"][0]["reasons"] == ["efficiency", "trips"]
    assert len(await world_evaluations(hcp, case_no)) == 1  # the first case kept its one rating
    assert [e["text"] for e in doc["wechat"] if e["dir"] == "in"] == ["2", "4", "2 5"]


# --- the 12345 keypad --------------------------------------------------------------------------------


@on_both
async def test_a_bad_keypad_rating_with_its_reason(hcp):
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("call")
    assert doc["call"] == {"multi": False}
    [ticket_case] = doc["cases"]
    ticket = ticket_case["case_no"]
    assert ticket_case["item_code"] == "12345" and ticket_case["applicant"]["phone"] == doc["phone"]
    assert doc["phone_log"][0]["dir"] == "system" and doc["phone_log"][0]["case_no"] == ticket
    assert [e for e in doc["phone_log"] if e["dir"] == "out"], "the keypad said nothing"

    doc = await sim.do("keys", {"digits": "4"})
    assert doc["call"] == {"multi": True}  # the reasons question: several keys at once
    assert await world_evaluations(hcp, ticket) == []
    doc = await sim.do("keys", {"digits": "2#"})
    assert doc["call"] is None
    assert doc["phone_log"][-1]["dir"] == "system" and doc["phone_log"][-1]["key"] == "sim.log.call_ended"
    assert [e["text"] for e in doc["phone_log"] if e["dir"] == "in"] == ["4", "2#"]
    assert ticket in [c["case_no"] for c in doc["cases"]]

    stored = await world_case(hcp, ticket)
    [evaluation] = stored["evaluations"]
    assert (evaluation["grade"], evaluation["reasons"], evaluation["channel"], evaluation["is_default"]) == (
        "dissatisfied", ["efficiency"], "phone", False)
    assert len(stored["work_orders"]) == 1
    # The call is over: keys now are refused, and nothing more is stored.
    assert "call" in (await sim.do("keys", {"digits": "1"}, expect=422))["error"]
    assert len(await world_evaluations(hcp, ticket)) == 1


@on_both
async def test_silence_twice_ends_the_call_and_stores_nothing(hcp):
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("call")
    ticket = doc["cases"][0]["case_no"]
    doc = await sim.do("keys", {"digits": None})
    assert doc["call"] == {"multi": False}  # asked once more
    assert doc["phone_log"][-1]["dir"] == "out"
    assert [e for e in doc["phone_log"] if e["dir"] == "in"][-1]["silence"] is True
    doc = await sim.do("keys", {"digits": None})
    assert doc["call"] is None
    assert doc["phone_log"][-1]["key"] == "sim.log.call_ended"
    stored = await world_case(hcp, ticket)
    assert stored["evaluations"] == [] and stored["rated"] is False and stored["work_orders"] == []


async def test_keys_need_a_call_and_keypad_digits(hcp):
    sim = Sim(hcp)
    await sim.open()
    error = await sim.do("keys", {"digits": "1"}, expect=422)
    assert error["error"] == "no call in progress"
    assert (await sim.state())["phone_log"] == []  # the refused keys left no line

    doc = await sim.do("call")
    ticket = doc["cases"][0]["case_no"]
    for digits in ("4a", "x", "12345678901", "1 2", "+4"):
        error = await sim.do("keys", {"digits": digits}, expect=422)
        assert "digits" in error["error"], digits
    doc = await sim.state()
    assert doc["call"] == {"multi": False}  # still at the grade question
    assert [e for e in doc["phone_log"] if e["dir"] == "in"] == []
    assert await world_evaluations(hcp, ticket) == []

    doc = await sim.do("keys", {"digits": "3"})  # the call goes on as if nothing happened
    assert doc["call"] is None
    [evaluation] = await world_evaluations(hcp, ticket)
    assert (evaluation["grade"], evaluation["channel"]) == ("basically_satisfied", "phone")


async def test_hanging_up_stores_nothing(hcp):
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("call")
    ticket = doc["cases"][0]["case_no"]
    doc = await sim.do("keys", {"digits": "5"})
    assert doc["call"] == {"multi": True}
    doc = await sim.do("hangup")
    assert doc["call"] is None and doc["phone_log"][-1]["key"] == "sim.log.hung_up"
    assert await world_evaluations(hcp, ticket) == []
    assert (await sim.do("keys", {"digits": "1"}, expect=422))["error"] == "no call in progress"


# --- the clock ---------------------------------------------------------------------------------------


@on_both
async def test_the_clock_moves_forward_only(hcp):
    hcp.clock.set("2026-11-20T10:00:00+08:00")
    sim = Sim(hcp)
    await sim.open()
    await sim.do("case", {"channel": "sms"})
    before = await sim.state()
    assert at(before["now"]) == at("2026-11-20T10:00:00+08:00")
    refused = [
        {"to": "2026-11-20T09:59:59+08:00"},  # earlier than now
        {"to": "2026-11-20T01:59:59+00:00"},  # the same, in another offset
        {"hours": -1},
        {"hours": -0.001},
        {},  # neither hours nor to
        {"hours": None},
        {"hours": "24"},
        {"to": None},
        {"to": 1763000000},
        {"to": "2026-11-21T10:00:00"},  # no offset
        {"to": "2026-11-21"},  # a date, no offset
        {"to": "tomorrow"},
        {"hours": 24 * 401},  # more than 400 days at once
    ]
    for body in refused:
        error = await sim.do("clock", body, expect=422)
        assert error["error"], body
    assert await sim.state() == before  # nothing moved, nothing ticked, nothing logged
    assert [e for e in before["sms"] if e["channel"] == "clock"] == []

    doc = await sim.do("clock", {"hours": 1.5})
    assert at(doc["now"]) == at("2026-11-20T11:30:00+08:00")
    # nothing due; the day of the simulated person's case is counted into the daily statistics
    assert last_counts(doc) == {"reminders": 0, "defaults": 0, "overdue": 0, "sent": 0, "calls": 0, "stats_days": 1,
                                "published": 0, "reported": 0, "signals": 0, "supervisory_calls": 0,
                                "appeals_overdue": 0, "contacts_overdue": 0}
    doc = await sim.do("clock", {"to": "2026-11-20T04:00:00Z"})  # 12:00 in Shanghai
    assert doc["now"] == "2026-11-20T12:00:00+08:00"
    assert hcp.rt.clock() == at("2026-11-20T10:00:00+08:00")  # the service's own clock never moves
    assert "hours or to" in (await sim.do("clock", {}, expect=422))["error"]
    assert "offset" in (await sim.do("clock", {"to": "2026-11-21T10:00:00"}, expect=422))["error"]


@pytest.mark.parametrize("hours", [1e10, 1e300])
async def test_a_huge_jump_is_refused_not_a_crash(hcp, hours):
    sim = Sim(hcp)
    await sim.open()
    before = await sim.state()
    status, _, error = await sim.raw("clock", {"hours": hours})
    assert status == 422, error
    assert await sim.state() == before


@on_both
async def test_a_jump_to_next_due_reminds_exactly_then(hcp):
    """Completed at 20:30: reminded 24 hours later, at 20:30 the next evening (before the quiet hours)."""
    hcp.clock.set("2026-11-20T20:30:00+08:00")
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("case", {"channel": "sms"})
    due = doc["next_due"]
    assert at(due) == at("2026-11-21T20:30:00+08:00") == at(doc["cases"][0]["remind_at"])

    doc = await sim.do("clock", {"to": (at(due) - timedelta(seconds=1)).isoformat()})
    assert sms_reminders(doc) == [] and last_counts(doc)["reminders"] == 0 and doc["next_due"] == due
    doc = await sim.do("clock", {"to": due})
    assert at(doc["now"]) == at(due) and last_counts(doc)["reminders"] == 1 and last_counts(doc)["sent"] == 1
    [reminder] = sms_reminders(doc)
    assert at(reminder["at"]) == at(due) and reminder["status"] == "sent"
    [stored] = (await world_case(hcp, doc["cases"][0]["case_no"]))["reminders"]
    assert (stored["channel"], stored["status"]) == ("sms", "sent")
    assert at(stored["created_at"]) == at(stored["sent_at"]) == at(due)
    assert doc["next_due"] is None and doc["cases"][0]["remind_at"] is None
    doc = await sim.do("clock", {"hours": 48})
    assert len(sms_reminders(doc)) == 1  # once


@on_both
async def test_a_reminder_due_in_the_quiet_hours_waits_for_eight(hcp):
    """Completed at 20:30; the clock jumps past the reminder into the quiet hours (21:00-08:00): the
    reminder waits, and goes at the first tick at or after 08:00."""
    hcp.clock.set("2026-11-20T20:30:00+08:00")
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("case", {"channel": "sms"})
    case_no = doc["cases"][0]["case_no"]
    assert at(doc["next_due"]) == at("2026-11-21T20:30:00+08:00")

    for when in ("2026-11-21T21:30:00+08:00", "2026-11-22T02:00:00+08:00", "2026-11-22T07:59:59+08:00"):
        doc = await sim.do("clock", {"to": when})
        assert last_counts(doc)["reminders"] == 0 and sms_reminders(doc) == [], when
        assert at(doc["next_due"]) == at("2026-11-21T20:30:00+08:00")  # still due, waiting
    assert (await world_case(hcp, case_no))["reminders"] == []

    doc = await sim.do("clock", {"to": "2026-11-22T08:00:00+08:00"})
    assert last_counts(doc)["reminders"] == 1
    [reminder] = sms_reminders(doc)
    assert at(reminder["at"]) == at("2026-11-22T08:00:00+08:00")
    [stored] = (await world_case(hcp, case_no))["reminders"]
    assert at(stored["sent_at"]) == at("2026-11-22T08:00:00+08:00")


async def test_a_reminder_that_would_fall_in_the_quiet_hours_is_due_at_eight(hcp):
    hcp.clock.set("2026-11-20T21:30:00+08:00")
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("case", {"channel": "sms"})
    assert at(doc["next_due"]) == at("2026-11-22T08:00:00+08:00")
    doc = await sim.do("clock", {"to": "2026-11-22T07:59:59+08:00"})
    assert sms_reminders(doc) == []
    doc = await sim.do("clock", {"to": doc["next_due"]})
    [reminder] = sms_reminders(doc)
    assert at(reminder["at"]) == at("2026-11-22T08:00:00+08:00")


# --- sessions ----------------------------------------------------------------------------------------


@on_both
async def test_two_sessions_are_two_people(hcp):
    alice, bob = Sim(hcp), Sim(hcp)
    await alice.open()
    await bob.open()
    assert alice.cookie != bob.cookie
    a_person, b_person = await alice.person(), await bob.person()
    assert a_person.phone != b_person.phone and a_person.openid != b_person.openid

    doc = await alice.do("case", {"channel": "sms"})
    a_case = doc["cases"][0]["case_no"]
    await alice.do("text", {"channel": "sms", "text": "hello"})
    await alice.do("case", {"channel": "wechat"})
    await alice.do("text", {"channel": "wechat", "text": "2"})
    a_view = await alice.do("call")
    a_cases = [c["case_no"] for c in a_view["cases"]]
    assert len(a_cases) == 3

    b_view = await bob.state()
    assert a_view["phone"] == mask_phone(a_person.phone) and b_view["phone"] == mask_phone(b_person.phone)
    assert a_view["openid"] != b_view["openid"]
    assert (b_view["sms"], b_view["wechat"], b_view["phone_log"], b_view["cases"]) == ([], [], [], [])
    assert b_view["call"] is None and b_view["next_due"] is None

    b_view = await bob.do("case", {"channel": "sms"})
    [b_case] = [c["case_no"] for c in b_view["cases"]]
    assert b_case not in a_cases
    assert not any(n in json.dumps(b_view) for n in a_cases)
    assert "hello" not in json.dumps(b_view)
    a_view = await alice.state()
    assert [c["case_no"] for c in a_view["cases"]] == a_cases and b_case not in json.dumps(a_view)
    assert a_view["call"] == {"multi": False}  # Alice's call goes on; Bob has none
    assert (await bob.do("keys", {"digits": "1"}, expect=422))["error"] == "no call in progress"
    # Bob's "2" rates nothing of Alice's.
    await bob.do("text", {"channel": "sms", "text": "2"})
    assert await world_evaluations(hcp, a_case) == []


@on_both
async def test_reset_gives_a_new_person(hcp):
    sim = Sim(hcp)
    await sim.open()
    await sim.do("case", {"channel": "sms"})
    before = await sim.do("call")
    old_cookie, old_person = sim.cookie, await sim.person()

    doc = await sim.do("reset")
    assert sim.cookie != old_cookie
    person = await sim.person()
    assert person.phone != old_person.phone and person.openid != old_person.openid
    assert doc["phone"] == mask_phone(person.phone) and doc["openid"] == mask_openid(person.openid)
    assert (doc["sms"], doc["wechat"], doc["phone_log"], doc["cases"], doc["call"], doc["next_due"]) == (
        [], [], [], [], None, None)
    assert await sim.state() == doc
    assert before["cases"] and before["phone_log"]  # the old person had something to forget


async def test_state_without_a_session_is_409(hcp):
    sim = Sim(hcp)
    for cookie in ("", "no-such-session", "x" * 65):
        sim.cookie = cookie
        error = await sim.state(expect=409)
        assert "/simulator/" in error["error"]
    await sim.open()
    assert (await sim.state())["cases"] == []
    # An action without a session (or with a stale one) starts a new person instead.
    sim.cookie = "stale"
    doc = await sim.do("case", {"channel": "sms"})
    assert sim.cookie != "stale" and len(doc["cases"]) == 1


@on_both
async def test_the_session_survives_across_requests(hcp, backend, settings, aiohttp_client):
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("case", {"channel": "sms"})
    case_no = doc["cases"][0]["case_no"]
    doc = await sim.do("text", {"channel": "wechat", "text": "hi"})
    doc = await sim.do("call")
    assert await sim.state() == doc
    person = await sim.person()
    assert person.cases == [case_no, doc["cases"][-1]["case_no"]] and person.call is not None
    doc = await sim.do("keys", {"digits": "1"})  # the call's state came back from the session
    [evaluation] = await world_evaluations(hcp, person.cases[-1])
    assert evaluation["grade"] == "very_satisfied"

    # Another instance of the service on the same database and state: with Redis it knows the person (their
    # transcript); with the in-process state (the embedded default) only this process does. The simulated
    # world is each process's own (a temporary database), so the other instance shows none of its cases.
    other = await open_runtime(settings)
    other.clock = hcp.clock
    try:
        client = await aiohttp_client(build_app(other))
        response = await client.get("/simulator/api/state", headers={"Cookie": f"hcp_sim={sim.cookie}"})
        if backend[1] == "redis":
            assert response.status == 200
            theirs, ours = await response.json(), await sim.state()
            assert theirs["cases"] == [] and ours["cases"]
            assert {k: v for k, v in theirs.items() if k not in ("cases", "next_due")} == {
                k: v for k, v in ours.items() if k not in ("cases", "next_due")}
            import redis.asyncio as aioredis

            r = aioredis.Redis.from_url(settings.redis_url)
            try:
                ttl = await r.ttl(f"{settings.redis_prefix}val:sim:{sim.cookie}")
            finally:
                await r.aclose()
            assert 0 < ttl <= simulator.TTL
        else:
            assert response.status == 409
    finally:
        await other.close()


# --- guards ------------------------------------------------------------------------------------------


@on_both
async def test_only_json_from_the_page_itself(hcp):
    sim = Sim(hcp)
    await sim.open()
    before = await sim.state()
    status, _, _ = await sim.request("POST", "/simulator/api/case", data={"channel": "sms"},
                                     headers=sim.headers())  # a form, as another site's page can send
    assert status == 403
    status, _, _ = await sim.request("POST", "/simulator/api/case", data=json.dumps({"channel": "sms"}),
                                     headers=sim.headers(**{"Content-Type": "text/plain"}))
    assert status == 403
    for header in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                   {"Referer": "https://evil.example/simulator/"}, {"Origin": "http://hcp.example.gov.cn"}):
        status, _, error = await sim.raw("case", {"channel": "sms"}, **header)
        assert status == 403 and error["error"], header
    status, _, _ = await sim.raw("reset", {}, Origin="https://evil.example")
    assert status == 403
    assert await sim.state() == before  # nothing was done, not even a reset

    assert "no such action" in (await sim.do("explode", {}, expect=422))["error"]
    assert (await sim.do("case", [1, 2], expect=422))["errors"][0]["field"] == "body"
    assert (await sim.do("case", {"channel": "phone"}, expect=422))["error"]
    assert (await sim.do("case", {}, expect=422))["error"]
    assert (await sim.do("text", {"channel": "phone", "text": "2"}, expect=422))["error"]
    assert (await sim.do("text", {"channel": "sms", "text": "   "}, expect=422))["error"]
    status, _, _ = await sim.request("POST", "/simulator/api/case", data=b"{not json",
                                     headers=sim.headers(**{"Content-Type": "application/json"}))
    assert status == 400
    assert await sim.state() == before

    doc = await sim.do("case", {"channel": "sms"}, Origin=PUBLIC_URL)  # the page's own origin
    assert len(doc["cases"]) == 1


async def test_the_simulator_is_404_when_switched_off(hcp, settings, tmp_path: Path):
    off = load_settings({"HAOCHAPING_SIMULATOR": "off"}, cwd=tmp_path)
    assert off.simulator is False and not off.twilio_enabled and not off.simulator_enabled
    sim = Sim(hcp)
    await sim.open()  # a session from before the switch
    hcp.rt.settings = dataclasses.replace(settings, simulator=off.simulator)
    assert not hcp.rt.settings.twilio_enabled
    for path in ("/simulator/", "/simulator", "/simulator/api/state"):
        status, _, text = await sim.request("GET", path, headers=sim.headers())
        assert status == 404 and "no provider" in text, path
    for action in (*ACTIONS, "nope"):
        status, _, _ = await sim.raw(action, {"channel": "sms", "hours": 24, "digits": "1", "text": "2"})
        assert status == 404, action
        status, _, _ = await sim.request("POST", f"/simulator/api/{action}", data={"channel": "sms"})
        assert status == 404, action


async def test_the_bare_simulator_path_is_404_when_switched_off(hcp, settings):
    hcp.rt.settings = dataclasses.replace(settings, simulator=False)
    response = await hcp.client.get("/simulator", allow_redirects=False)
    assert response.status == 404


@pytest.mark.parametrize("provider", [
    {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "x" * 32},
    {"wechat_token": "wxtoken-of-a-real-account"},  # the official account alone (issue 18: it was on then)
    {"wechat_mp_app_id": "wxmp-real", "wechat_mp_app_secret": "s" * 32},
    {"sms_provider": "aliyun"}, {"sms_provider": "tencent"}, {"sms_provider": "cmpp"},
], ids=["twilio", "wechat", "miniprogram", "aliyun", "tencent", "cmpp"])
async def test_the_simulator_is_404_with_a_real_provider(hcp, settings, provider):
    hcp.rt.settings = dataclasses.replace(settings, **provider)
    for method, path in (("GET", "/simulator/"), ("GET", "/simulator/api/state"), ("POST", "/simulator/api/case")):
        response = await hcp.client.request(method, path, json={} if method == "POST" else None)
        assert response.status == 404, path


# --- privacy -----------------------------------------------------------------------------------------


@on_both
async def test_no_response_holds_a_whole_number_or_openid(hcp):
    sim = Sim(hcp)
    sim.seen.append(await sim.open())
    person = await sim.person()
    national = person.phone.removeprefix("+86")
    assert PHONE_RUN.fullmatch(national)  # the simulated person has a real-looking number to leak
    await sim.do("case", {"channel": "sms"})
    await sim.do("case", {"channel": "wechat"})
    await sim.do("clock", {"hours": 24})
    await sim.do("text", {"channel": "sms", "text": "4"})
    await sim.do("text", {"channel": "sms", "text": "1"})
    await sim.do("text", {"channel": "wechat", "text": "5"})
    await sim.do("text", {"channel": "wechat", "text": "2"})
    await sim.do("call")
    await sim.do("keys", {"digits": "x"}, expect=422)
    await sim.do("keys", {"digits": "2"})
    await sim.do("text", {"channel": "sms", "text": "list"})
    await sim.do("clock", {"hours": -1}, expect=422)
    view = await sim.state()
    await sim.do("reset")
    assert len(view["cases"]) == 3 and all(c["evaluations"] for c in view["cases"]), view["cases"]

    assert view["phone"] == mask_phone(person.phone) and national not in view["phone"]
    assert view["openid"] == mask_openid(person.openid) and view["openid"] != person.openid
    assert view["openid"].count("*") == 4
    for text in sim.seen:
        assert "+86" not in text and national not in text and person.openid not in text
        assert not PHONE_RUN.search(text), PHONE_RUN.search(text)
    # The records beside are masked as the API masks them.
    for case in view["cases"]:
        applicant = case["applicant"]
        assert applicant["phone"] in (None, view["phone"]) and applicant["wechat_openid"] in (None, view["openid"])


# --- language ----------------------------------------------------------------------------------------


@on_both
async def test_system_lines_in_the_readers_language(hcp):
    sim = Sim(hcp, language="en-US,en;q=0.9")
    page = await sim.open()
    assert '<html lang="en">' in page
    doc = await sim.do("case", {"channel": "sms"})
    assert doc["sms"][0]["text"] == "A business system posted the case"
    doc = await sim.do("call")
    assert doc["phone_log"][0]["text"] == "The 12345 call ended and was handed over for the keypad rating"
    doc = await sim.do("hangup")
    assert doc["phone_log"][-1]["text"] == "Hung up"

    sim.language = "zh-CN,zh;q=0.9"
    doc = await sim.state()  # the same person, read in Chinese
    assert doc["sms"][0]["text"] == "业务系统推送了办件"
    assert doc["phone_log"][0]["text"] == "12345 通话结束，转入按键评价"
    assert doc["phone_log"][-1]["text"] == "已挂断"
    assert doc["sms"][0]["key"] == "sim.log.case_posted"
    sim.language = "en"
    assert (await sim.state())["sms"][0]["text"] == "A business system posted the case"


# --- what is stored equals what a real channel stores ------------------------------------------------


@on_both
async def test_the_simulator_stores_what_a_signed_twilio_webhook_stores(hcp, settings, fake_twilio):
    hcp.clock.set("2026-11-20T10:00:00+08:00")
    sim = Sim(hcp)
    await sim.open()
    sim_case = (await sim.do("case", {"channel": "sms"}))["cases"][0]["case_no"]
    phone = hcp.new_phone()
    real_case = (await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00"))["case_no"]
    hcp.clock.set("2026-11-21T10:00:00+08:00")  # both reminders due; the simulator's offset stays 0
    doc = await sim.do("clock", {"hours": 0})
    assert last_counts(doc)["reminders"] == 1  # its own case only: the simulated world is apart
    assert (await hcp.tick("2026-11-21T10:00:00+08:00"))["reminders"] == 1  # the real one, by the real tick

    sim_replies = []
    for body in ("4", "1 3"):
        doc = await sim.do("text", {"channel": "sms", "text": body})
        sim_replies.append([e["text"] for e in doc["sms"] if e["dir"] == "out" and "kind" not in e][-1])

    # The same replies as Twilio delivers them, to the same store, through a service with Twilio as its SMS
    # provider (only the configured provider's webhooks exist).
    twilio = await open_runtime(dataclasses.replace(settings, twilio_account_sid=fake_twilio.account_sid,
                                                    twilio_auth_token=fake_twilio.auth_token))
    twilio.clock = hcp.clock
    try:
        async with TestClient(TestServer(build_app(twilio))) as client:
            real_service = Hcp(rt=twilio, client=client, twilio=fake_twilio, clock=hcp.clock, wechat=hcp.wechat)
            real_replies = []
            for body in ("4", "1 3"):
                reply = await real_service.sms(phone, body)
                assert reply.status == 200, reply.raw
                real_replies.append(reply.text)
    finally:
        await twilio.close()

    [simulated] = await world_evaluations(hcp, sim_case)
    [real] = await hcp.evaluations(real_case)
    assert fields(simulated) == fields(real)
    assert (simulated["grade"], simulated["reasons"], simulated["channel"], simulated["is_followup"]) == (
        "dissatisfied", ["attitude", "process"], "sms", False)
    assert sim_replies[0] == real_replies[0]  # the same reasons question
    simulated_case, real_case_doc = await world_case(hcp, sim_case), await hcp.case(real_case)
    assert [(w["grade"], w["reasons"], w["status"]) for w in simulated_case["work_orders"]] == [
        (w["grade"], w["reasons"], w["status"]) for w in real_case_doc["work_orders"]]
    assert simulated_case["rated"] is real_case_doc["rated"] is True


# --- isolation: the simulated world never touches the real store (issue 18) ----------------------------


@on_both
async def test_a_simulated_clock_leaves_real_cases_and_work_orders_alone(hcp):
    """An anonymous visitor moved the simulator's clock 400 days: no real default, reminder or overdue mark."""
    phone = hcp.new_phone()
    real = (await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00"))["case_no"]
    bad = (await hcp.post_case(completed_at="2026-11-20T10:00:00+08:00"))["case_no"]
    await hcp.rate(bad, "very_dissatisfied", "web", reasons=["attitude"])
    sim = Sim(hcp)
    await sim.open()
    await sim.do("case", {"channel": "sms"})

    doc = await sim.do("clock", {"hours": 9600})

    assert last_counts(doc)["defaults"] == 1  # the simulated case's own default
    stored = await hcp.case(real)
    assert stored["evaluations"] == [] and stored["reminders"] == []
    assert hcp.twilio.sms_to(phone) == []
    [order] = (await hcp.case(bad))["work_orders"]
    assert order["overdue"] is False


@on_both
async def test_simulated_cases_never_reach_the_real_store_statistics_or_exports(hcp):
    sim = Sim(hcp)
    await sim.open()
    for _ in range(3):
        doc = await sim.do("case", {"channel": "wechat"})
        await sim.do("text", {"channel": "wechat", "text": "1"})
    sim_cases = [c["case_no"] for c in doc["cases"]]

    status, _ = await hcp.api("GET", f"/api/v1/cases/{sim_cases[0]}")
    stats_status, stats = await hcp.api("GET", "/api/v1/stats?by=agency")
    export = await hcp.client.get("/api/v1/exports/evaluations.csv",
                                  headers={"Authorization": f"Bearer {TOKEN}"})

    assert status == 404
    assert stats_status == 200 and stats["groups"] == []
    body = await export.text()
    assert export.status == 200 and not any(c in body for c in sim_cases)


@on_both
async def test_a_simulated_sms_link_opens_the_simulators_own_rating_page(hcp):
    sim = Sim(hcp)
    await sim.open()
    await sim.do("case", {"channel": "sms"})
    doc = await sim.do("clock", {"hours": 24})
    [reminder] = sms_reminders(doc)
    link = re.search(r"https?://\S+/simulator/r/\S+", reminder["text"])
    assert link, reminder["text"]
    path = link.group(0).split(PUBLIC_URL, 1)[1].rstrip("。.，,")

    page = await hcp.client.get(path)
    real = await hcp.client.get(path.replace("/simulator/r/", "/r/"))

    assert page.status == 200 and "居民身份证换领" in await page.text()
    assert real.status != 200  # the service's own rating page knows no simulated case


# --- the simulator's clock on its rating page (issue 19) ------------------------------------------------


async def _simulated_link(sim: Sim) -> str:
    """A simulated SMS case reminded (the clock moved 24 hours): the path of its rating link."""
    await sim.do("case", {"channel": "sms"})
    [reminder] = sms_reminders(await sim.do("clock", {"hours": 24}))
    link = re.search(r"https?://\S+/simulator/r/[A-Za-z0-9._-]+", reminder["text"])
    assert link, reminder["text"]
    return "/simulator/r/" + link.group(0).split("/simulator/r/", 1)[1]


@on_both
async def test_a_rating_on_the_simulated_page_is_stored_at_the_simulated_instant(hcp):
    sim = Sim(hcp)
    await sim.open()
    path = await _simulated_link(sim)
    hours = 30
    doc = await sim.do("clock", {"hours": hours})
    simulated = hcp.clock() + timedelta(hours=24 + hours)  # the service's clock stands still in tests
    assert at(doc["now"]) == simulated and simulated.date() != hcp.clock().date()

    status, _, form = await sim.request("GET", path, headers=sim.headers())
    assert status == 200, form
    [token] = re.findall(r'name="form_token" value="([^"]+)"', form)
    status, _, _ = await sim.request("POST", path, data={"grade": "satisfied", "form_token": token},
                                     headers=sim.headers(), allow_redirects=False)
    assert status == 303

    [case_no] = (await sim.person()).cases
    [ev] = await world_evaluations(hcp, case_no)
    assert (ev["grade"], ev["channel"]) == ("satisfied", "web")
    assert at(ev["created_at"]) == simulated
    status, _, thanks = await sim.request("GET", path + "?thanks=1", headers=sim.headers())
    assert status == 200
    assert re.findall(r'<p class="summary">([^<]*)</p>', thanks) == ["您的评价：满意（2026年11月23日）"]
    [shown] = (await sim.state())["cases"][0]["evaluations"]
    assert at(shown["created_at"]) == simulated


@on_both
async def test_the_simulated_page_decides_at_the_simulated_instant(hcp):
    """Rated by SMS, then 15 simulated days on: the follow-up window (5 working days) is over at the simulated
    instant, so the page says so; at the service's own instant it would still take a follow-up."""
    sim = Sim(hcp)
    await sim.open()
    path = await _simulated_link(sim)
    await sim.do("text", {"channel": "sms", "text": "2"})
    await sim.do("clock", {"hours": 15 * 24})

    status, _, page = await sim.request("GET", path, headers=sim.headers())
    assert status == 200 and "评价期已过" in page and 'name="grade"' not in page

    hcp.client.session.cookie_jar.clear()
    elsewhere = await hcp.client.get(path)  # another browser: no simulator session, the service's clock
    assert elsewhere.status == 200 and 'name="grade"' in await elsewhere.text()
