"""Supervision end to end (CONTRACT "Supervision"; issue 25): ratings given through the real channels, the tick's
scan raising signals, `GET /api/v1/signals` and its decisions (audited, inside a user's jurisdiction), and the
random supervisory callbacks (a seeded draw an auditor repeats, the calls, their answers, the per-agency figures).
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from console_support import PASSWORD, add_user
from helpers import Hcp
from servers import WITH_MARIADB
from sqlmodel import select

from bot.supervision import scan
from store import cases
from store.models import Evaluation, OutboxMessage, Signal

AGENCY = "11440500MB2C01234X"
OTHER = "11440500MB2C09999Y"


async def signals(hcp: Hcp, query: str = "", token: str | None = None, expect: int = 200) -> Any:
    status, doc = await (hcp.api("GET", "/api/v1/signals" + query) if token is None
                         else hcp.api("GET", "/api/v1/signals" + query, token=token))
    assert status == expect, (status, doc)
    return doc["signals"] if expect == 200 else doc


async def user_token(hcp: Hcp, name: str, role: str, *agencies: str) -> str:
    await add_user(hcp, name, role, *agencies)
    status, doc = await hcp.api("POST", "/api/v1/login", {"username": name, "password": PASSWORD}, token=None)
    assert status == 200, (status, doc)
    return doc["token"]


async def page_rating(hcp: Hcp, case_id: int, grade: str, device: str | None = None) -> str:
    """Rate on the page as a browser does: open the link (which gives a new browser its device cookie), send the
    form with the cookie (by hand: the cookie is Secure, the test client speaks http). The device id."""
    path = "/r/" + hcp.rt.links.url(case_id).rsplit("/r/", 1)[1]
    cookies = {"Cookie": f"hcp_device={device}"} if device else {}
    resp = await hcp.client.get(path, headers=cookies)
    assert resp.status == 200
    given = resp.cookies.get("hcp_device")
    assert (given is None) == (device is not None), resp.headers  # set once, for a browser without one
    device = device or given.value  # type: ignore[union-attr]
    resp = await hcp.client.post(path, data={"grade": grade}, headers={"Cookie": f"hcp_device={device}"},
                                 allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return device


async def _id(hcp: Hcp, case_no: str) -> int:
    async with hcp.rt.db.read() as session:
        case = await cases.by_no(session, case_no)
    assert case is not None and case.id is not None
    return case.id


@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_a_device_tapping_praise_and_a_clerks_phone_are_signalled_and_decided(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-23T10:00:00+08:00")
    # Honest traffic: people rating their own cases on the page, each on their own device, a few minutes apart.
    for i in range(4):
        doc = await hcp.post_case(phone=hcp.new_phone(), applicant={"name": f"路人{i}"})
        hcp.clock.advance(minutes=7)
        await page_rating(hcp, await _id(hcp, doc["case_no"]), "very_satisfied")
    # A tablet at the counter: one device rates ten cases 非常满意 within four minutes.
    burst, tablet = [], None
    for _ in range(10):
        doc = await hcp.post_case(phone=hcp.new_phone())
        burst.append(doc["case_no"])
        hcp.clock.advance(seconds=20)
        tablet = await page_rating(hcp, await _id(hcp, doc["case_no"]), "very_satisfied", tablet)
    # A clerk's own number given for three applicants, each rated by SMS.
    clerk_phone = hcp.new_phone()
    shared = []
    for name in ("陈一", "林二", "黄三"):
        doc = await hcp.post_case(phone=clerk_phone, applicant={"name": name})
        shared.append(doc["case_no"])
        await hcp.rate(doc["case_no"], "very_satisfied", channel="sms")

    await hcp.tick(hcp.clock())
    found = await signals(hcp)
    kinds = {s["kind"]: s for s in found}
    assert set(kinds) == {"good_burst", "shared_rater"}, found
    assert set(kinds["good_burst"]["cases"]) == set(burst) and kinds["good_burst"]["evidence"]["source"] == "device"
    assert kinds["shared_rater"]["cases"] == shared and kinds["shared_rater"]["evidence"]["applicants"] == 3
    assert all(s["status"] == "open" and s["agency_code"] == AGENCY for s in found)
    assert clerk_phone not in str(found) and clerk_phone[-4:] not in str(found)  # hashes and ids, never a number

    # A pass again finds the same patterns in the same ratings: nothing new.
    await hcp.tick(hcp.clock())
    assert len(await signals(hcp)) == 2

    # Filters, and what is wrong with a query is named.
    assert [s["kind"] for s in await signals(hcp, "?kind=good_burst")] == ["good_burst"]
    assert await signals(hcp, f"?agency_code={OTHER}") == []
    assert await signals(hcp, "?from=2026-11-24") == []
    bad = await signals(hcp, "?status=maybe&from=yesterday", expect=422)
    assert {e["field"] for e in bad["errors"]} == {"status", "from"}
    assert (await hcp.api("GET", "/api/v1/signals", token=None))[0] == 401

    # People decide: an L1 of another agency neither sees nor decides; an L2 may not decide.
    sid = kinds["shared_rater"]["id"]
    outsider = await user_token(hcp, "l1-other", "l1", OTHER)
    assert await signals(hcp, token=outsider) == []
    status, _ = await hcp.api("POST", f"/api/v1/signals/{sid}/decide", {"decision": "confirmed"}, token=outsider)
    assert status == 403
    l2 = await user_token(hcp, "l2-here", "l2", AGENCY)
    status, _ = await hcp.api("POST", f"/api/v1/signals/{sid}/decide", {"decision": "confirmed"}, token=l2)
    assert status == 403
    supervisor = await user_token(hcp, "l1-here", "l1", AGENCY)
    assert len(await signals(hcp, token=supervisor)) == 2
    status, doc = await hcp.api("POST", f"/api/v1/signals/{sid}/decide", {"decision": "perhaps"}, token=supervisor)
    assert status == 422 and doc["errors"][0]["field"] == "decision"
    status, doc = await hcp.api("POST", f"/api/v1/signals/{sid}/decide",
                                {"decision": "confirmed", "note": f"核实：申请人均留了窗口人员手机{clerk_phone}"},
                                token=supervisor)
    assert status == 200 and doc["status"] == "confirmed" and doc["decided_by"] == "l1-here"
    assert clerk_phone not in doc["note"] and clerk_phone[:3] in doc["note"]  # masked as it leaves
    status, doc = await hcp.api("POST", f"/api/v1/signals/{sid}/decide", {"decision": "dismissed"}, token=supervisor)
    assert status == 409
    status, doc = await hcp.api("POST", "/api/v1/signals/99999999/decide", {"decision": "dismissed"})
    assert status == 404
    status, audit = await hcp.api("GET", "/api/v1/audit?action=signal.decide")
    assert status == 200 and [e["actor"] for e in audit["events"]] == ["l1-here"], audit

    # The burst's raters are called back: one call per rating with a number, once; an L2 may not ask.
    burst_id = kinds["good_burst"]["id"]
    status, _ = await hcp.api("POST", f"/api/v1/signals/{burst_id}/callbacks", token=l2)
    assert status == 403
    status, doc = await hcp.api("POST", f"/api/v1/signals/{burst_id}/callbacks", token=supervisor)
    assert status == 201 and sorted(c["case_no"] for c in doc["calls"]) == sorted(burst)
    assert {c["signal_id"] for c in doc["calls"]} == {burst_id} and all(c["draw_id"] is None for c in doc["calls"])
    status, doc = await hcp.api("POST", f"/api/v1/signals/{burst_id}/callbacks", token=supervisor)
    assert status == 201 and doc["calls"] == []
    status, doc = await hcp.api("GET", "/api/v1/supervision/calls?status=pending")
    assert status == 200 and len(doc["calls"]) == 10

    # A decision changes no rating: the case still holds its rating as given.
    [ev] = await hcp.evaluations(shared[0])
    assert (ev["grade"], ev["status"]) == ("very_satisfied", "valid")

    # The clerk's number rates a fourth applicant's case: the confirmed signal is not reopened, a new one rises.
    doc = await hcp.post_case(phone=clerk_phone, applicant={"name": "吴四"})
    await hcp.rate(doc["case_no"], "satisfied", channel="sms")
    await hcp.tick(hcp.clock())
    mine = await signals(hcp, "?kind=shared_rater")
    assert [(s["status"], len(s["cases"])) for s in mine] == [("open", 4), ("confirmed", 3)]


@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_a_page_rating_keeps_where_it_came_from_as_hashes(hcp: Hcp) -> None:
    doc = await hcp.post_case(phone=hcp.new_phone())
    await page_rating(hcp, await _id(hcp, doc["case_no"]), "satisfied")
    async with hcp.rt.db.read() as session:
        ev = (await session.exec(select(Evaluation))).one()
    assert ev.device_hash and len(ev.device_hash) == 64 and ev.client_hash and len(ev.client_hash) == 64
    assert ev.client_hash == hcp.rt.sealer.lookup_hash("client", "127.0.0.1")


@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_random_supervisory_callbacks_are_drawn_repeatably_and_answered(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-10T10:00:00+08:00")
    rated = []
    for i in range(30):
        doc = await hcp.post_case(phone=hcp.new_phone(), agency_code=AGENCY if i < 20 else OTHER)
        hcp.clock.advance(minutes=30)
        await hcp.rate(doc["case_no"], "very_satisfied" if i % 5 else "satisfied", channel="sms")
        rated.append(doc["case_no"])
    unreachable = await hcp.post_case(applicant={"name": "无电话"})  # no number: cannot be called back
    await hcp.rate(unreachable["case_no"], "satisfied", channel="hall")

    assert (await hcp.tick(datetime.fromisoformat("2026-11-30T23:00:00+08:00")))["supervisory_calls"] == 0
    counts = await hcp.tick(datetime.fromisoformat("2026-12-01T00:30:00+08:00"))
    assert counts["supervisory_calls"] == 10  # at least 5 per agency (2 % of 20 and of 10 is less)
    assert (await hcp.tick(datetime.fromisoformat("2026-12-01T01:30:00+08:00")))["supervisory_calls"] == 0

    status, doc = await hcp.api("GET", "/api/v1/supervision/draws?period=2026-11")
    assert status == 200 and len(doc["draws"]) == 2
    for draw in doc["draws"]:
        assert draw["population"] == (20 if draw["agency_code"] == AGENCY else 10)
        again = sorted(random.Random(draw["seed"]).sample(draw["population_ids"], len(draw["drawn_ids"])))
        assert again == draw["drawn_ids"] and len(again) == 5  # an auditor repeats the draw from the record

    status, doc = await hcp.api("GET", f"/api/v1/supervision/calls?status=pending&agency_code={AGENCY}")
    assert status == 200 and len(doc["calls"]) == 5
    calls = doc["calls"]
    assert all(c["phone"] and "****" in c["phone"] and c["case_no"] in rated for c in calls)
    agent = await user_token(hcp, "agent-1", "agent", AGENCY)
    answers = ["confirmed", "confirmed", "confirmed", "not_mine", "unreachable"]
    for call, answer in zip(calls, answers, strict=True):
        status, doc = await hcp.api("POST", f"/api/v1/supervision/calls/{call['id']}",
                                    {"answer": answer, "note": "已回访"}, token=agent)
        assert status == 200 and doc["answer"] == answer and doc["answered_by"] == "agent-1", doc
    status, doc = await hcp.api("POST", f"/api/v1/supervision/calls/{calls[0]['id']}", {"answer": "different"},
                                token=agent)
    assert status == 409
    status, doc = await hcp.api("POST", f"/api/v1/supervision/calls/{calls[0]['id']}", {"answer": "yes"})
    assert status == 422 and doc["errors"][0]["field"] == "answer"
    outsider = await user_token(hcp, "agent-2", "agent", OTHER)
    status, _ = await hcp.api("POST", f"/api/v1/supervision/calls/{calls[1]['id']}", {"answer": "confirmed"},
                              token=outsider)
    assert status == 403
    status, _ = await hcp.api("POST", "/api/v1/supervision/calls/99999999", {"answer": "confirmed"})
    assert status == 404
    status, doc = await hcp.api("GET", "/api/v1/supervision/calls", token=outsider)
    assert status == 200 and {c["agency_code"] for c in doc["calls"]} == {OTHER}

    [denied] = await signals(hcp, "?kind=denied_rating")
    assert denied["cases"] == [calls[3]["case_no"]] and denied["status"] == "open"

    status, doc = await hcp.api("GET", "/api/v1/signals/summary?from=2026-11-01&to=2026-12-31")
    assert status == 200
    mine = next(a for a in doc["agencies"] if a["agency_code"] == AGENCY)
    assert mine["calls"] == 5 and mine["answered"] == 5 and mine["answers"]["not_mine"] == 1
    assert mine["confirmation_rate"] == 0.75  # 3 confirmed of 4 reached
    status, audit = await hcp.api("GET", "/api/v1/audit?action=supervision.draw")
    assert status == 200 and len(audit["events"]) == 2



@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_the_scan_finds_a_clerks_own_device_quick_answers_and_a_serial_reviewer_across_passes(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-23T09:00:00+08:00")
    # A hall of three clerks: S2 and S3's cases are rated by SMS, S1's only at the window's device.
    for staff, channel, n in (("S2", "sms", 10), ("S3", "sms", 10), ("S1", "hall", 22)):
        for _ in range(n):
            doc = await hcp.post_case(phone=hcp.new_phone(), hall_code="H1", staff_id=staff)
            hcp.clock.advance(minutes=9)
            await hcp.rate(doc["case_no"], "very_satisfied", channel=channel)
    await hcp.tick(hcp.clock())
    [own] = await signals(hcp, "?kind=own_window")
    assert own["staff_id"] == "S1" and len(own["cases"]) == 22
    assert own["evidence"]["device_share"] == 1.0 and own["evidence"]["hall_share"] == 0.0

    # Three of clerk Q's cases answered 3 s after their reminder went out.
    quick = []
    for _ in range(3):
        case_no, phone, _sms = await hcp.reminded(staff_id="Q7", completed_at="2026-11-22T10:00:00+08:00")
        sent = await reminder_sent(hcp, case_no)
        hcp.clock.set(sent + timedelta(seconds=3))
        reply = await hcp.sms(phone, "1")
        assert reply.status == 200
        assert (await hcp.evaluations(case_no))[0]["channel"] == "sms"
        quick.append(case_no)
    await hcp.tick(hcp.clock())
    [fast] = await signals(hcp, "?kind=fast_answer")
    assert fast["cases"] == quick and fast["evidence"]["quickest_seconds"] == 3.0 and fast["staff_id"] == "Q7"

    # One phone's bad reviews of three agencies, a pass apart each: the third pass finds all three.
    angry = hcp.new_phone()
    agencies = ["AG-1", "AG-2", "AG-3"]
    for agency in agencies:
        doc = await hcp.post_case(phone=angry, agency_code=agency, applicant={"name": "赵某"})
        await hcp.rate(doc["case_no"], "very_dissatisfied", channel="sms", reasons=["attitude"])
        hcp.clock.advance(hours=2)
        await hcp.tick(hcp.clock())
    serial = await signals(hcp, "?kind=serial_bad")
    assert sorted(s["agency_code"] for s in serial) == agencies
    assert all(s["evidence"]["agencies"] == 3 and len(s["cases"]) == 1 for s in serial)


async def reminder_sent(hcp: Hcp, case_no: str) -> datetime:
    async with hcp.rt.db.read() as session:
        case = await cases.by_no(session, case_no)
        assert case is not None
        sent = (await session.exec(select(OutboxMessage.sent_at).where(OutboxMessage.case_id == case.id,
                                                                       OutboxMessage.kind == "reminder"))).one()
    assert sent is not None
    return sent


@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_two_scans_at_once_record_each_signal_once(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-23T10:00:00+08:00")
    tablet = None
    for _ in range(9):
        doc = await hcp.post_case(phone=hcp.new_phone())
        hcp.clock.advance(seconds=30)
        tablet = await page_rating(hcp, await _id(hcp, doc["case_no"]), "very_satisfied", tablet)
    raised = await asyncio.gather(*(scan.scan(hcp.rt, hcp.clock()) for _ in range(3)))
    assert sorted(raised) == [0, 0, 1]
    [burst] = await signals(hcp)
    assert burst["kind"] == "good_burst" and len(burst["cases"]) == 9


@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_one_pasted_text_from_three_phones_is_found_when_the_third_comes(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-23T10:00:00+08:00")
    pasted = "该窗口工作人员长期推诿扯皮，群众办事难，强烈要求问责！"
    cases_rated = []
    for i, agency in enumerate(["AG-7", "AG-8", "AG-7"]):
        doc = await hcp.post_case(phone=hcp.new_phone(), agency_code=agency, applicant={"name": f"钱{i}"})
        await hcp.rate(doc["case_no"], "very_dissatisfied", channel="sms", reasons=["attitude"],
                       text=pasted if i != 1 else pasted.replace("，", ", "))  # the same words, other commas
        cases_rated.append(doc["case_no"])
        hcp.clock.advance(hours=5)
        await hcp.tick(hcp.clock())
        if i < 2:
            assert await signals(hcp, "?kind=repeated_text") == []
    found = await signals(hcp, "?kind=repeated_text")
    assert sorted((s["agency_code"], len(s["cases"])) for s in found) == [("AG-7", 2), ("AG-8", 1)]
    assert pasted not in str(found)  # the evidence names no words


@pytest.mark.parametrize("backend", WITH_MARIADB, indirect=True)
async def test_a_draw_skips_raters_a_supervisor_already_sent_for_a_call(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-10T10:00:00+08:00")
    ids = []
    for _ in range(6):
        doc = await hcp.post_case(phone=hcp.new_phone())
        ids.append((await hcp.rate(doc["case_no"], "very_satisfied", channel="sms"))["id"])
    async with hcp.rt.db.write() as session:
        signal = Signal(kind="good_burst", subject="device:test", agency_code=AGENCY, cases=[],
                        evaluation_ids=ids[:4], evidence={}, detected_at=hcp.clock(), updated_at=hcp.clock())
        session.add(signal)
    status, doc = await hcp.api("POST", f"/api/v1/signals/{signal.id}/callbacks")
    assert status == 201 and len(doc["calls"]) == 4

    counts = await hcp.tick(datetime.fromisoformat("2026-12-01T00:30:00+08:00"))

    status, doc = await hcp.api("GET", "/api/v1/supervision/draws?period=2026-11")
    [draw] = doc["draws"]
    assert len(draw["drawn_ids"]) == 5  # drawn as the record says, whoever was called already
    status, doc = await hcp.api("GET", "/api/v1/supervision/calls")
    by_rating = [c["case_no"] for c in doc["calls"]]
    assert len(by_rating) == len(set(by_rating)) == 4 + counts["supervisory_calls"]
    assert counts["supervisory_calls"] == len(set(draw["drawn_ids"]) - set(ids[:4]))
