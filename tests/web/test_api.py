"""The HTTP API for business systems (CONTRACT "HTTP API for business systems", "Rules of detail").

Cases in (single and bulk), privacy of what comes back and what is stored, body limits, ratings
from other channels with the follow-up window and defaults, statistics, health and metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from api_support import auth, bulk, fields, ndjson, raw
from helpers import TOKEN, Hcp
from prometheus_client.parser import text_string_to_metric_families
from servers import BACKENDS
from sqlalchemy import func, text
from sqlmodel import select

from bot.rating import intake
from store.models import Case, Contact, Evaluation

MIB = 1024 * 1024
REQUIRED = ("case_no", "item_code", "item_name", "agency_code", "agency_name", "completed_at")
GRADES = {"very_satisfied": 10, "satisfied": 8, "basically_satisfied": 6, "dissatisfied": 3,
          "very_dissatisfied": 0}
RATING_CHANNELS = ("web", "qr", "hall", "terminal", "sms", "wechat", "miniprogram", "phone", "callback")
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


# --- helpers ------------------------------------------------------------------------------------
def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def stored(hcp: Hcp) -> dict[str, int]:
    """How many cases, evaluations and contacts the database holds."""
    out = {}
    async with hcp.rt.db.read() as session:
        for name, model in (("cases", Case), ("evaluations", Evaluation), ("contacts", Contact)):
            out[name] = (await session.exec(select(func.count()).select_from(model))).one()
    return out


async def absent(hcp: Hcp, case_no: str) -> None:
    status, doc = await hcp.api("GET", f"/api/v1/cases/{case_no}")
    assert status == 404, (status, doc)


def assert_instants_have_offsets(doc: Any, where: str = "$") -> int:
    """Every ISO instant in an answer carries its offset; every *_at key is such an instant or null."""
    seen = 0
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k.endswith("_at") and v is not None:
                assert isinstance(v, str) and ISO_INSTANT.match(v), (f"{where}.{k}", v)
            seen += assert_instants_have_offsets(v, f"{where}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            seen += assert_instants_have_offsets(v, f"{where}[{i}]")
    elif isinstance(doc, str) and ISO_INSTANT.match(doc):
        parsed = datetime.fromisoformat(doc)
        assert parsed.tzinfo is not None and parsed.utcoffset() is not None, (where, doc)
        seen += 1
    return seen


# --- cases in -----------------------------------------------------------------------------------
@both_backends
async def test_case_created_then_repeat_is_200_with_the_same_case(hcp):
    body = hcp.case_body(phone=hcp.new_phone())
    status, first = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 201, first
    assert first["case_no"] == body["case_no"] and first["item_code"] == body["item_code"]
    assert first["agency_name"] == body["agency_name"] and first["kind"] == "instant"
    assert first["evaluations"] == [] and first["rated"] is False
    # a repeat, even with other details, answers the stored case untouched
    status, again = await hcp.api("POST", "/api/v1/cases", {**body, "item_name": "另一个事项"})
    assert status == 200, again
    assert again["id"] == first["id"]
    assert again["item_name"] == body["item_name"]
    assert (await hcp.case(body["case_no"]))["id"] == first["id"]
    assert (await stored(hcp))["cases"] == 1


@pytest.mark.parametrize("missing", REQUIRED)
async def test_missing_required_field_is_named(hcp, missing):
    body = hcp.case_body()
    del body[missing]
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 422, doc
    assert missing in fields(doc)
    assert (await stored(hcp))["cases"] == 0


@pytest.mark.parametrize("missing", ["item_code", "agency_name"])
async def test_empty_required_text_is_named(hcp, missing):
    body = hcp.case_body(**{missing: ""})
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 422, doc
    assert missing in fields(doc)
    await absent(hcp, body["case_no"])


@both_backends
@pytest.mark.parametrize("phone", ["12345", "1380013800a", "138001380001"])
async def test_invalid_phone_is_422_and_nothing_stored(hcp, phone):
    body = hcp.case_body(phone=phone)
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 422, doc
    assert fields(doc) == ["applicant.phone"]
    assert phone not in json.dumps(doc, ensure_ascii=False)  # the answer does not echo it
    await absent(hcp, body["case_no"])
    assert await stored(hcp) == {"cases": 0, "evaluations": 0, "contacts": 0}


@pytest.mark.parametrize("completed_at", [
    "2026-11-20T10:00:00",  # no offset
    "2026-11-20",  # a date, no instant and no offset
    "2026-02-30T10:00:00+08:00",  # impossible day
    "2026-11-20T25:00:00+08:00",  # impossible hour
    "yesterday afternoon",
    "",
    1763604000,  # a number, not an ISO-8601 string
    None,
])
async def test_bad_completed_at_is_422(hcp, completed_at):
    body = hcp.case_body(completed_at=completed_at)
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 422, doc
    assert "completed_at" in fields(doc)
    await absent(hcp, body["case_no"])


@pytest.mark.parametrize("kind", ["urgent", "Instant", "", 1])
async def test_kind_outside_instant_promised_is_422(hcp, kind):
    body = hcp.case_body(kind=kind)
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 422, doc
    assert fields(doc) == ["kind"]
    await absent(hcp, body["case_no"])


async def test_both_kinds_and_no_kind_are_accepted(hcp):
    for kind in ("instant", "promised"):
        doc = await hcp.post_case(kind=kind)
        assert doc["kind"] == kind
    body = hcp.case_body()
    del body["kind"]
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 201, doc


@both_backends
@pytest.mark.parametrize("payload", ["list", "string", "number", "null", "true"])
async def test_non_object_json_body_is_refused(hcp, payload):
    case = hcp.case_body()
    data = {"list": json.dumps([case]), "string": json.dumps(json.dumps(case)), "number": "42",
            "null": "null", "true": "true"}[payload]
    status, doc = await raw(hcp, "POST", "/api/v1/cases", data.encode())
    assert 400 <= status < 500, (status, doc)
    assert isinstance(doc, dict) and (doc.get("error") or doc.get("errors")), doc
    await absent(hcp, case["case_no"])
    assert (await stored(hcp))["cases"] == 0


@both_backends
@pytest.mark.parametrize("data, content_type", [
    ("case_no={no}&item_code=X&agency_code=Y", "application/x-www-form-urlencoded"),
    ('{{"case_no": "{no}", "item_code": ', "application/json"),
    ("", "application/json"),
    ("\xff\xfe{no}", "application/json"),
])
async def test_non_json_body_is_4xx_with_a_message(hcp, data, content_type):
    no = f"T-{secrets.token_hex(4)}"
    payload = data.format(no=no).encode("latin-1")
    status, doc = await raw(hcp, "POST", "/api/v1/cases", payload, content_type)
    assert 400 <= status < 500, (status, doc)
    assert isinstance(doc, dict) and isinstance(doc.get("error") or doc.get("errors"), (str, list)), doc
    await absent(hcp, no)
    assert (await stored(hcp))["cases"] == 0


# --- the bearer token -----------------------------------------------------------------------------
BAD_TOKENS = [None, "wrong-token", TOKEN + "x", TOKEN[:-1], ""]


@both_backends
async def test_every_endpoint_needs_the_token_and_stores_nothing_without_it(hcp):
    known = await hcp.post_case(phone=hcp.new_phone())
    before = await stored(hcp)
    fresh = hcp.case_body(phone=hcp.new_phone())
    wrong_schemes = [{"Authorization": f"Token {TOKEN}"}, {"Authorization": TOKEN},
                     {"Authorization": f"Basic {TOKEN}"}, {"X-Api-Token": TOKEN}]
    attempts: list[tuple[str, str, Any, str]] = [
        ("POST", "/api/v1/cases", json.dumps(fresh), "application/json"),
        ("POST", "/api/v1/cases:bulk", ndjson(fresh), "application/x-ndjson"),
        ("GET", f"/api/v1/cases/{known['case_no']}", None, "application/json"),
        ("POST", "/api/v1/evaluations",
         json.dumps({"case_no": known["case_no"], "grade": "satisfied", "channel": "web"}), "application/json"),
        ("GET", "/api/v1/work-orders", None, "application/json"),
        ("GET", "/api/v1/work-orders?status=created", None, "application/json"),
        ("GET", "/api/v1/stats?by=agency", None, "application/json"),
    ]
    for method, path, data, ctype in attempts:
        header_sets = [auth(t, **{"Content-Type": ctype}) for t in BAD_TOKENS]
        header_sets += [{**h, "Content-Type": ctype} for h in wrong_schemes]
        for headers in header_sets:
            resp = await hcp.client.request(method, path, data=data, headers=headers)
            text = await resp.text()
            assert resp.status == 401, (method, path, headers, resp.status, text)
            assert known["case_no"] not in text and "applicant" not in text, text
    assert await stored(hcp) == before
    await absent(hcp, fresh["case_no"])
    assert (await hcp.case(known["case_no"]))["evaluations"] == []
    # and the right token, any case of the scheme word, still works
    resp = await hcp.client.get("/api/v1/stats?by=agency", headers={"Authorization": f"bearer {TOKEN}"})
    assert resp.status == 200


# --- contacts, reminders and deadlines ------------------------------------------------------------
@both_backends
@pytest.mark.parametrize("applicant", [None, {"name": "王五"}, {"locale": "en"}, {}])
async def test_case_without_a_contact_is_accepted_and_never_reminded(hcp, applicant):
    body = hcp.case_body(applicant=applicant)
    if applicant is None:
        body.pop("applicant", None)
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 201, doc
    assert doc["remind_at"] is None and doc["reminders"] == []
    assert doc["default_at"] == "2026-11-28T00:00:00+08:00"
    counts = await hcp.tick("2026-11-23T10:00:00+08:00")
    assert counts["reminders"] == 0 and counts["sent"] == 0
    again = await hcp.case(body["case_no"])
    assert again["remind_at"] is None and again["reminders"] == []
    assert hcp.twilio.messages == []


@both_backends
@pytest.mark.parametrize("completed_at, remind_at, default_at", [
    ("2026-11-20T10:00:00+08:00", "2026-11-21T10:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T22:30:00+08:00", "2026-11-22T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T20:59:00+08:00", "2026-11-21T20:59:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T21:00:00+08:00", "2026-11-22T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T08:00:00+08:00", "2026-11-21T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T07:59:00+08:00", "2026-11-21T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T00:00:00+08:00", "2026-11-21T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T23:59:59+08:00", "2026-11-22T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    # given in UTC: the local day (20 November in Shanghai) decides, and answers are still offset-aware
    ("2026-11-19T17:30:00Z", "2026-11-21T08:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    ("2026-11-20T02:00:00+00:00", "2026-11-21T10:00:00+08:00", "2026-11-28T00:00:00+08:00"),
    # Thursday 12 November: 13, 16, 17, 18, 19 November are the five working days
    ("2026-11-12T15:00:00+08:00", "2026-11-13T15:00:00+08:00", "2026-11-20T00:00:00+08:00"),
])
async def test_case_answer_has_remind_at_and_default_at(hcp, completed_at, remind_at, default_at):
    doc = await hcp.post_case(phone=hcp.new_phone(), completed_at=completed_at)
    assert at(doc["completed_at"]) == at(completed_at)
    assert at(doc["remind_at"]) == at(remind_at), doc["remind_at"]
    assert at(doc["default_at"]) == at(default_at), doc["default_at"]
    assert assert_instants_have_offsets(doc) >= 4
    again = await hcp.case(doc["case_no"])
    assert at(again["remind_at"]) == at(remind_at) and at(again["default_at"]) == at(default_at)
    assert assert_instants_have_offsets(again) >= 4


@both_backends
async def test_reminder_is_due_exactly_at_remind_at(hcp):
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    assert (await hcp.tick("2026-11-21T09:59:59+08:00"))["reminders"] == 0
    assert (await hcp.case(doc["case_no"]))["reminders"] == []
    assert (await hcp.tick("2026-11-21T10:00:00+08:00"))["reminders"] == 1
    after = await hcp.case(doc["case_no"])
    assert [r["channel"] for r in after["reminders"]] == ["sms"]
    assert assert_instants_have_offsets(after) >= 3
    assert (await hcp.tick("2026-11-21T10:00:00+08:00"))["reminders"] == 0


# --- privacy --------------------------------------------------------------------------------------
@both_backends
@pytest.mark.parametrize("form", ["national", "e164", "spaced"])
async def test_phone_is_masked_in_answers_and_sealed_in_the_database(hcp, form):
    national = hcp.new_phone()
    given = {"national": national, "e164": "+86" + national,
             "spaced": f"{national[:3]} {national[3:7]} {national[7:]}"}[form]
    name = "欧阳娜娜"
    body = hcp.case_body(phone=given, applicant={"name": name, "locale": "zh-CN"})
    status, posted = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 201, posted
    got = await hcp.case(body["case_no"])
    mask = national[:3] + "****" + national[-4:]
    for doc in (posted, got):
        assert doc["applicant"]["phone"] == mask
        text = json.dumps(doc, ensure_ascii=False)
        assert national not in text and national[-8:] not in text and national[:7] not in text
        assert doc["applicant"]["name"] not in (None, name) and doc["applicant"]["name"].startswith("欧")
        assert "*" in doc["applicant"]["name"] and name not in text and "娜娜" not in text
    async with hcp.rt.db.read() as session:
        contacts = (await session.exec(select(Contact))).all()
        cases = (await session.exec(select(Case))).all()
    assert len(contacts) == 1
    contact = contacts[0]
    assert contact.channel == "phone" and contact.masked == mask
    for secret in (national, "+86" + national, given):
        assert secret not in contact.address_sealed
        assert contact.address_hash != secret and secret not in contact.address_hash
    for row in (*contacts, *cases):
        dump = json.dumps(row.model_dump(), default=str, ensure_ascii=False)
        assert national not in dump and name not in dump, dump
    assert hcp.rt.sealer.open(contact.address_sealed) in (national, "+86" + national)


@both_backends
async def test_national_and_e164_phone_are_one_person(hcp):
    national = hcp.new_phone()
    a = await hcp.post_case(phone=national)
    b = await hcp.post_case(phone="+86" + national)
    assert a["applicant"]["phone"] == b["applicant"]["phone"] == national[:3] + "****" + national[-4:]
    assert (await stored(hcp))["contacts"] == 1
    async with hcp.rt.db.read() as session:
        ids = (await session.exec(select(Case.phone_contact_id))).all()
    assert len(ids) == 2 and ids[0] == ids[1] is not None


@both_backends
@pytest.mark.parametrize("case_no", ["受理〔2026〕第0001号", "A/B-2026", "a b+c", "x?y#z%20", "Ünïcode-ケース"])
async def test_case_no_with_any_characters_round_trips(hcp, case_no):
    doc = await hcp.post_case(case_no=case_no)
    assert doc["case_no"] == case_no
    assert (await hcp.case(case_no))["id"] == doc["id"]
    await hcp.rate(case_no, "satisfied", "web")
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]


@both_backends
async def test_concurrent_posts_of_one_new_case_store_it_once(hcp):
    body = hcp.case_body(phone=hcp.new_phone())
    answers = await asyncio.gather(*(hcp.api("POST", "/api/v1/cases", body) for _ in range(6)))
    statuses = sorted(status for status, _doc in answers)
    assert statuses == [200] * 5 + [201], answers
    assert len({doc["id"] for _s, doc in answers}) == 1
    assert await stored(hcp) == {"cases": 1, "evaluations": 0, "contacts": 1}


@both_backends
async def test_concurrent_ratings_one_first_one_followup_rest_409(hcp):
    case = await hcp.post_case()
    answers = await asyncio.gather(*(
        hcp.api("POST", "/api/v1/evaluations", {"case_no": case["case_no"], "grade": grade, "channel": "web"})
        for grade in ("very_satisfied", "satisfied", "basically_satisfied", "satisfied")))
    assert sorted(status for status, _doc in answers) == [201, 201, 409, 409], answers
    evs = await hcp.evaluations(case["case_no"])
    assert [e["is_followup"] for e in evs] == [False, True]


# --- bulk -----------------------------------------------------------------------------------------
@both_backends
async def test_bulk_counts_and_numbers_error_lines(hcp):
    old = await hcp.post_case()
    first = hcp.case_body(phone=hcp.new_phone())
    twin = {**first, "item_name": "重复的第二行"}
    last = hcp.case_body()
    no_item = hcp.case_body()
    del no_item["item_code"]
    bad_phone = hcp.case_body(phone="12345")
    bad_when = hcp.case_body(completed_at="2026-11-20T10:00:00")
    lines = [
        json.dumps(first, ensure_ascii=False),  # 1 created
        json.dumps(bad_phone, ensure_ascii=False),  # 2 error applicant.phone
        "",  # 3 blank
        json.dumps(hcp.case_body(case_no=old["case_no"])),  # 4 existing (posted before)
        '{"case_no": "BROKEN", "item_code": ',  # 5 broken JSON
        "   ",  # 6 blank (spaces only)
        json.dumps(no_item, ensure_ascii=False),  # 7 error item_code
        json.dumps(twin, ensure_ascii=False),  # 8 existing (same new case_no as line 1)
        "[1, 2, 3]",  # 9 not an object
        json.dumps(bad_when),  # 10 error completed_at
        json.dumps(last, ensure_ascii=False),  # 11 created, no trailing newline
    ]
    status, doc = await bulk(hcp, "\n".join(lines).encode())
    assert status == 200, doc
    assert doc["created"] == 2 and doc["existing"] == 2, doc
    by_line = {e["line"]: e["errors"] for e in doc["errors"]}
    assert sorted(by_line) == [2, 5, 7, 9, 10], doc["errors"]
    assert [e["field"] for e in by_line[2]] == ["applicant.phone"]
    assert [e["field"] for e in by_line[7]] == ["item_code"]
    assert [e["field"] for e in by_line[10]] == ["completed_at"]
    for errs in by_line.values():
        assert errs and all(isinstance(e["field"], str) and e["message"] for e in errs), errs
    assert (await hcp.case(first["case_no"]))["item_name"] == first["item_name"]
    assert (await hcp.case(last["case_no"]))["case_no"] == last["case_no"]
    for gone in (bad_phone, no_item, bad_when):
        await absent(hcp, gone["case_no"])
    await absent(hcp, "BROKEN")
    assert (await stored(hcp))["cases"] == 3
    # the whole body again: nothing new, the same errors
    status, doc = await bulk(hcp, "\n".join(lines).encode())
    assert status == 200 and doc["created"] == 0 and doc["existing"] == 4, doc
    assert sorted(e["line"] for e in doc["errors"]) == [2, 5, 7, 9, 10]


@both_backends
async def test_bulk_case_gets_the_same_timing_as_a_single_post(hcp):
    body = hcp.case_body(phone=hcp.new_phone(), completed_at="2026-11-20T22:30:00+08:00")
    status, doc = await bulk(hcp, ndjson(body).encode())
    assert status == 200 and doc == {"created": 1, "existing": 0, "errors": []}, doc
    got = await hcp.case(body["case_no"])
    assert at(got["remind_at"]) == at("2026-11-22T08:00:00+08:00")
    assert at(got["default_at"]) == at("2026-11-28T00:00:00+08:00")
    assert got["applicant"]["phone"].count("*") == 4


@both_backends
async def test_bulk_one_phone_in_two_forms_is_one_contact(hcp):
    national = hcp.new_phone()
    earlier = await hcp.post_case(phone="+86" + national)
    a, b = hcp.case_body(phone=national), hcp.case_body(phone="+86" + national)
    c = hcp.case_body(phone=f"{national[:3]}-{national[3:7]}-{national[7:]}")
    status, doc = await bulk(hcp, ndjson(a, b, c).encode())
    assert status == 200 and doc == {"created": 3, "existing": 0, "errors": []}, doc
    assert (await stored(hcp))["contacts"] == 1
    async with hcp.rt.db.read() as session:
        ids = set((await session.exec(select(Case.phone_contact_id))).all())
    assert len(ids) == 1
    assert (await hcp.case(c["case_no"]))["applicant"]["phone"] == earlier["applicant"]["phone"]


async def until_blocked(hcp: Hcp) -> None:
    """Until another connection waits for a row lock (PostgreSQL); SQLite writers queue on BEGIN IMMEDIATE."""
    if hcp.rt.db.dialect == "sqlite":
        await asyncio.sleep(0.3)
        return
    for _ in range(100):
        async with hcp.rt.db.read() as session:
            waiting = (await session.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"))).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the request never waited for the other writer")


@pytest.mark.parametrize("backend, endpoint", [
    pytest.param(("sqlite", "memory"), "single", id="sqlite-memory-single"),
    pytest.param(("sqlite", "memory"), "bulk", id="sqlite-memory-bulk"),
    pytest.param(("postgres", "redis"), "single", id="postgres-redis-single"),
    pytest.param(("postgres", "redis"), "bulk", id="postgres-redis-bulk"),
], indirect=["backend"])
async def test_case_racing_another_writer_of_the_same_case_no(hcp, endpoint):
    """Another transaction stores the same case_no while the request is under way: it is "existing"."""
    body = hcp.case_body(phone=hcp.new_phone())
    other = hcp.case_body()
    async with hcp.rt.db.write() as session:
        row = intake.case_row(hcp.rt, intake.CaseIn.model_validate(body), hcp.clock(), {})
        session.add(Case(**row))
        await session.flush()
        if endpoint == "bulk":
            task = asyncio.create_task(bulk(hcp, ndjson(body, other).encode()))
        else:
            task = asyncio.create_task(hcp.api("POST", "/api/v1/cases", body))
        await until_blocked(hcp)
    status, doc = await task
    if endpoint == "bulk":
        assert status == 200 and doc == {"created": 1, "existing": 1, "errors": []}, (status, doc)
        await hcp.case(other["case_no"])
    else:
        assert status == 200 and doc["case_no"] == body["case_no"], (status, doc)
    assert (await stored(hcp))["cases"] == (2 if endpoint == "bulk" else 1)


@pytest.mark.parametrize("separator", ["\r\n", "\n\n"])
async def test_bulk_crlf_and_blank_lines(hcp, separator):
    a, b = hcp.case_body(), hcp.case_body()
    data = separator.join([json.dumps(a), json.dumps(b), "{oops"]) + separator
    status, doc = await bulk(hcp, data.encode())
    assert status == 200, doc
    assert doc["created"] == 2 and doc["existing"] == 0
    assert [e["line"] for e in doc["errors"]] == ([3] if separator == "\r\n" else [5])
    await hcp.case(a["case_no"])
    await hcp.case(b["case_no"])


async def test_bulk_single_line_without_trailing_newline_is_taken(hcp):
    body = hcp.case_body()
    status, doc = await bulk(hcp, json.dumps(body).encode())
    assert status == 200 and doc == {"created": 1, "existing": 0, "errors": []}, doc
    await hcp.case(body["case_no"])


async def test_bulk_empty_body(hcp):
    status, doc = await bulk(hcp, b"")
    assert status == 200 and doc == {"created": 0, "existing": 0, "errors": []}, doc


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@both_backends
@pytest.mark.parametrize("sending", ["content-length", "chunked"])
async def test_bulk_over_one_mib_is_taken_whole(hcp, sending):
    prefix = f"BULK-{secrets.token_hex(3)}-"
    docs = [hcp.case_body(case_no=f"{prefix}{i:05d}", phone=f"139{i:08d}",
                          applicant={"name": "测试申请人" * 2, "locale": "zh-CN"}, batch_no=f"B{i // 100}")
            for i in range(3000)]
    data = ndjson(*docs, docs[0], "{broken").encode()  # line 3001 repeats line 1 (another batch)
    assert len(data) > MIB
    payload: Any = data if sending == "content-length" else chunks(data, 7777)  # lines split across chunks
    status, doc = await bulk(hcp, payload)
    assert status == 200, doc
    assert doc["created"] == 3000 and doc["existing"] == 1, doc
    assert [e["line"] for e in doc["errors"]] == [3002], doc["errors"]
    counts = await stored(hcp)
    assert counts["cases"] == 3000 and counts["contacts"] == 3000
    for i in (0, 499, 500, 1777, 2999):
        got = await hcp.case(f"{prefix}{i:05d}")
        assert got["applicant"]["phone"] == f"139****{i % 10000:04d}"


# --- limits ---------------------------------------------------------------------------------------
def padded_case(hcp: Hcp, size: int) -> tuple[dict[str, Any], bytes]:
    """A valid case whose JSON is exactly `size` bytes (an ignored extra field pads it)."""
    body = hcp.case_body(padding="")
    base = len(json.dumps(body).encode())
    body["padding"] = "x" * (size - base)
    data = json.dumps(body).encode()
    assert len(data) == size
    return body, data


@both_backends
@pytest.mark.parametrize("sending", ["content-length", "chunked"])
async def test_body_over_one_mib_is_413(hcp, sending):
    body, data = padded_case(hcp, MIB + 1)
    payload: Any = data if sending == "content-length" else chunks(data, 64 * 1024)
    resp = await hcp.client.post("/api/v1/cases", data=payload,
                                 headers=auth(**{"Content-Type": "application/json"}))
    text = await resp.text()
    assert resp.status == 413, text
    if sending == "chunked":
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
    await absent(hcp, body["case_no"])
    assert (await stored(hcp))["cases"] == 0
    health = await hcp.client.get("/healthz")
    assert health.status == 200 and (await health.json())["database"] == "ok"


@pytest.mark.parametrize("sending", ["content-length", "chunked"])
async def test_body_of_exactly_one_mib_is_taken(hcp, sending):
    body, data = padded_case(hcp, MIB)
    payload: Any = data if sending == "content-length" else chunks(data, 64 * 1024)
    resp = await hcp.client.post("/api/v1/cases", data=payload,
                                 headers=auth(**{"Content-Type": "application/json"}))
    assert resp.status == 201, await resp.text()
    await hcp.case(body["case_no"])


async def test_oversized_evaluation_body_is_413(hcp):
    case = await hcp.post_case()
    doc = {"case_no": case["case_no"], "grade": "satisfied", "channel": "web", "padding": "x" * MIB}
    status, answer = await raw(hcp, "POST", "/api/v1/evaluations", json.dumps(doc).encode())
    assert status == 413, answer
    assert await hcp.evaluations(case["case_no"]) == []


async def declared_only(hcp: Hcp, path: str, length: int, content_type: str) -> tuple[int, bytes]:
    """Send only the headers of a request that announces `length` bytes; the answer's status and head."""
    host, port = hcp.client.server.host, hcp.client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                      f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()
    return int(head.split(b" ", 2)[1]), head


@pytest.mark.parametrize("path, length, content_type", [
    ("/api/v1/cases", MIB + 1, "application/json"),
    ("/api/v1/evaluations", 50 * MIB, "application/json"),
    ("/api/v1/cases:bulk", 100 * MIB + 1, "application/x-ndjson"),
])
async def test_announced_oversize_body_is_refused_before_it_is_sent(hcp, path, length, content_type):
    status, _head = await declared_only(hcp, path, length, content_type)
    assert status == 413
    assert (await stored(hcp))["cases"] == 0
    assert (await hcp.client.get("/healthz")).status == 200


async def test_bulk_over_100_mib_chunked_is_413(hcp):
    line = b" " * (MIB - 1) + b"\n"  # blank lines: cheap to skip, still counted against the limit

    async def body() -> AsyncIterator[bytes]:
        yield json.dumps(hcp.case_body(case_no="BEFORE-LIMIT")).encode() + b"\n"
        for _ in range(101):
            yield line

    status, doc = await bulk(hcp, body())
    assert status == 413, doc
    assert (await hcp.client.get("/healthz")).status == 200


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/evaluations"])
@pytest.mark.parametrize("closed", [True, False], ids=["valid-json", "unclosed"])
async def test_deeply_nested_json_is_a_client_error(hcp, path, closed):
    data = b"[" * 100_000 + (b"]" * 100_000 if closed else b"")
    status, doc = await raw(hcp, "POST", path, data)
    assert 400 <= status < 500, (status, doc)
    assert isinstance(doc, dict) and (doc.get("error") or doc.get("errors")), doc
    assert (await stored(hcp))["evaluations"] == 0


# --- evaluations ----------------------------------------------------------------------------------
@both_backends
async def test_each_channel_is_stored_as_given_with_its_score(hcp):
    grades = list(GRADES)
    hcp.clock.set("2026-11-21T10:00:00+08:00")
    for i, channel in enumerate(RATING_CHANNELS):
        grade = grades[i % len(grades)]
        case = await hcp.post_case()
        more = {"reasons": ["attitude"]} if GRADES[grade] <= 3 else {}
        answer = await hcp.rate(case["case_no"], grade, channel, **more)
        assert answer["channel"] == channel and answer["grade"] == grade and answer["score"] == GRADES[grade]
        assert answer["is_followup"] is False and answer["is_default"] is False
        assert_instants_have_offsets(answer)
        [ev] = await hcp.evaluations(case["case_no"])
        assert ev["channel"] == channel and ev["grade"] == grade and ev["score"] == GRADES[grade]
        assert ev["is_default"] is False and ev["is_followup"] is False and ev["status"] == "valid"
        assert at(ev["created_at"]) == at("2026-11-21T10:00:00+08:00")
        assert ev["reasons"] == more.get("reasons", [])
        assert (await hcp.case(case["case_no"]))["rated"] is True


@both_backends
@pytest.mark.parametrize("channel", ["default", "email", "", None, "WEB"])
async def test_channel_outside_the_list_is_422(hcp, channel):
    case = await hcp.post_case()
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": case["case_no"], "grade": "satisfied", "channel": channel})
    assert status == 422, doc
    assert fields(doc) == ["channel"]
    assert await hcp.evaluations(case["case_no"]) == []


@both_backends
@pytest.mark.parametrize("grade", ["great", "Satisfied", "1", 1, "", None, "default"])
async def test_unknown_grade_is_422(hcp, grade):
    case = await hcp.post_case()
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": case["case_no"], "grade": grade, "channel": "web"})
    assert status == 422, doc
    assert fields(doc) == ["grade"]
    assert await hcp.evaluations(case["case_no"]) == []


@both_backends
@pytest.mark.parametrize("grade", ["dissatisfied", "very_dissatisfied"])
@pytest.mark.parametrize("more", [{}, {"reasons": []}, {"text": "   "}, {"reasons": None, "text": None},
                                  {"reasons": [], "text": ""}])
async def test_bad_grade_without_reason_or_text_is_422_and_not_stored(hcp, grade, more):
    case = await hcp.post_case()
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": case["case_no"], "grade": grade, "channel": "web", **more})
    assert status == 422, doc
    fields(doc)
    assert await hcp.evaluations(case["case_no"]) == []
    assert (await stored(hcp))["evaluations"] == 0
    # the case can still be rated afterwards
    await hcp.rate(case["case_no"], grade, reasons=["efficiency"])


@both_backends
async def test_bad_grade_with_text_only_is_stored_with_no_reasons(hcp):
    case = await hcp.post_case()
    answer = await hcp.rate(case["case_no"], "very_dissatisfied", "hall", text="  窗口等了两个小时  ")
    assert answer["reasons"] == [] and answer["score"] == 0
    [ev] = await hcp.evaluations(case["case_no"])
    assert ev["reasons"] == [] and ev["text"] == "窗口等了两个小时" and ev["grade"] == "very_dissatisfied"


async def test_overlong_or_non_string_text_is_422(hcp):
    case = await hcp.post_case()
    for words in ("字" * 2001, 42, ["x"]):
        status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                    {"case_no": case["case_no"], "grade": "satisfied", "channel": "web", "text": words})
        assert status == 422 and fields(doc) == ["text"], doc
    assert await hcp.evaluations(case["case_no"]) == []
    await hcp.rate(case["case_no"], "satisfied", "web", text="字" * 2000)


@both_backends
async def test_bad_grade_with_reasons_keeps_the_codes_in_order_once(hcp):
    case = await hcp.post_case()
    await hcp.rate(case["case_no"], "dissatisfied", "qr", reasons=["trips", "attitude", "trips"], text="跑了三次")
    [ev] = await hcp.evaluations(case["case_no"])
    assert ev["reasons"] == ["trips", "attitude"] and ev["text"] == "跑了三次" and ev["score"] == 3


@both_backends
@pytest.mark.parametrize("reasons", [["rudeness"], ["attitude", "nope"], ["1"], "attitude", [1], ["ATTITUDE"]])
async def test_unknown_reason_code_is_422(hcp, reasons):
    case = await hcp.post_case()
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": case["case_no"], "grade": "dissatisfied", "channel": "web",
                                 "reasons": reasons, "text": "有意见"})
    assert status == 422, doc
    assert set(fields(doc)) == {"reasons"}
    assert await hcp.evaluations(case["case_no"]) == []


@both_backends
@pytest.mark.parametrize("grade", ["very_satisfied", "satisfied", "basically_satisfied"])
async def test_good_grade_keeps_no_reasons(hcp, grade):
    case = await hcp.post_case()
    answer = await hcp.rate(case["case_no"], grade, "terminal", reasons=["attitude", "fees"], text="很好")
    assert answer["reasons"] == []
    [ev] = await hcp.evaluations(case["case_no"])
    assert ev["reasons"] == [] and ev["grade"] == grade and ev["score"] == GRADES[grade] and ev["text"] == "很好"


@both_backends
async def test_rating_an_unknown_case_is_404(hcp):
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": "NO-SUCH-CASE", "grade": "satisfied", "channel": "web"})
    assert status == 404, doc
    assert isinstance(doc, dict) and doc.get("error")
    status, doc = await hcp.api("GET", "/api/v1/cases/NO-SUCH-CASE")
    assert status == 404 and isinstance(doc, dict) and doc.get("error"), doc
    assert (await stored(hcp))["evaluations"] == 0


async def test_evaluation_without_case_no_is_422(hcp):
    status, doc = await hcp.api("POST", "/api/v1/evaluations", {"grade": "satisfied", "channel": "web"})
    assert status == 422 and "case_no" in fields(doc), doc
    status, doc = await raw(hcp, "POST", "/api/v1/evaluations", b"[]")
    assert 400 <= status < 500 and isinstance(doc, dict), (status, doc)


@both_backends
async def test_second_rating_is_the_followup_and_a_third_is_409(hcp):
    case = await hcp.post_case()
    hcp.clock.set("2026-11-21T10:00:00+08:00")
    first = await hcp.rate(case["case_no"], "satisfied", "web")
    assert first["is_followup"] is False
    hcp.clock.advance(hours=30)
    second = await hcp.rate(case["case_no"], "dissatisfied", "sms", reasons=["efficiency"])
    assert second["is_followup"] is True and second["is_default"] is False
    hcp.clock.advance(minutes=1)
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": case["case_no"], "grade": "very_satisfied", "channel": "web"})
    assert status == 409, doc
    evs = await hcp.evaluations(case["case_no"])
    assert [(e["grade"], e["channel"], e["is_followup"]) for e in evs] == [
        ("satisfied", "web", False), ("dissatisfied", "sms", True)]
    assert at(evs[1]["created_at"]) == at("2026-11-22T16:00:00+08:00")


@both_backends
@pytest.mark.parametrize("second_at, expect", [
    ("2026-11-27T23:59:00+08:00", 201),
    ("2026-11-27T23:59:59.999+08:00", 201),
    ("2026-11-28T00:00:00+08:00", 409),
    ("2026-11-27T16:00:00+00:00", 409),  # the same instant as above, written in UTC
    ("2026-12-01T09:00:00+08:00", 409),
])
async def test_followup_window_edges(hcp, second_at, expect):
    # first rating Saturday 21 November: working days 23–27 November, closes 28 November 00:00
    case = await hcp.post_case()
    hcp.clock.set("2026-11-21T10:00:00+08:00")
    await hcp.rate(case["case_no"], "basically_satisfied", "web")
    hcp.clock.set(second_at)
    answer = await hcp.rate(case["case_no"], "very_satisfied", "wechat", expect=expect)
    evs = await hcp.evaluations(case["case_no"])
    if expect == 201:
        assert answer["is_followup"] is True
        assert [e["is_followup"] for e in evs] == [False, True]
    else:
        assert isinstance(answer, dict) and answer.get("error")
        assert [e["grade"] for e in evs] == ["basically_satisfied"]


@both_backends
async def test_default_applies_from_the_deadline_and_a_later_rating_is_the_followup(hcp):
    case = await hcp.post_case(completed_at="2026-11-20T10:00:00+08:00")
    late = await hcp.post_case(completed_at="2026-11-20T16:00:00+08:00")
    assert (await hcp.tick("2026-11-27T23:59:59+08:00"))["defaults"] == 0
    assert await hcp.evaluations(case["case_no"]) == []
    assert (await hcp.tick("2026-11-28T00:00:00+08:00"))["defaults"] == 2
    assert (await hcp.tick("2026-11-28T00:00:00+08:00"))["defaults"] == 0  # nothing twice
    [default] = await hcp.evaluations(case["case_no"])
    assert default["is_default"] is True and default["channel"] == "default"
    assert default["grade"] == "basically_satisfied" and default["score"] == 6 and default["reasons"] == []
    assert default["is_followup"] is False and default["status"] == "valid"
    assert at(default["created_at"]) == at("2026-11-28T00:00:00+08:00")
    doc = await hcp.case(case["case_no"])
    assert doc["default_at"] is None and doc["remind_at"] is None
    # the follow-up window counts from the default: Sat 28 Nov → 30 Nov–4 Dec → closes 5 Dec 00:00
    hcp.clock.set("2026-12-04T23:59:00+08:00")
    answer = await hcp.rate(case["case_no"], "very_satisfied", "web")
    assert answer["is_followup"] is True and answer["is_default"] is False
    evs = await hcp.evaluations(case["case_no"])
    assert [(e["channel"], e["is_default"], e["is_followup"]) for e in evs] == [
        ("default", True, False), ("web", False, True)]
    hcp.clock.set("2026-12-05T00:00:00+08:00")
    await hcp.rate(late["case_no"], "very_satisfied", "web", expect=409)
    assert [e["channel"] for e in await hcp.evaluations(late["case_no"])] == ["default"]


@both_backends
async def test_rating_after_the_deadline_before_any_tick_is_the_first(hcp):
    case = await hcp.post_case(completed_at="2026-11-20T10:00:00+08:00")
    hcp.clock.set("2026-11-29T10:00:00+08:00")
    answer = await hcp.rate(case["case_no"], "satisfied", "miniprogram")
    assert answer["is_followup"] is False and answer["is_default"] is False
    counts = await hcp.tick("2026-11-29T11:00:00+08:00")
    assert counts["defaults"] == 0
    evs = await hcp.evaluations(case["case_no"])
    assert [(e["channel"], e["is_default"], e["is_followup"]) for e in evs] == [("miniprogram", False, False)]
    # its own follow-up window counts from this rating (Sun 29 Nov → 30 Nov–4 Dec)
    hcp.clock.set("2026-12-04T12:00:00+08:00")
    assert (await hcp.rate(case["case_no"], "very_satisfied", "web"))["is_followup"] is True


# --- statistics -----------------------------------------------------------------------------------
async def stats(hcp: Hcp, query: str) -> dict[str, dict[str, Any]]:
    status, doc = await hcp.api("GET", "/api/v1/stats?" + query)
    assert status == 200, doc
    groups = {g["key"]: g for g in doc["groups"]}
    assert len(groups) == len(doc["groups"]), doc
    for g in doc["groups"]:
        assert set(g) >= {"key", "name", "cases", "rated", "participation_rate", "mean_score", "bad_reviews",
                          "rectification_rate"}, g
    return groups


A = {"agency_code": "AG-A", "agency_name": "甲局"}
B = {"agency_code": "AG-B", "agency_name": "乙局"}


async def stats_world(hcp: Hcp) -> dict[str, str]:
    """Agency A: 10 (web), 3 (sms, bad), a default 6, one unrated; agency B: 8 then a follow-up 0, one unrated."""
    hcp.clock.set("2026-11-21T10:00:00+08:00")
    layout = {  # name: (agency, item code, item name, staff id, staff name, completed_at)
        "a1": (A, "IT-1", "事项一", "S1", "甲", None), "a2": (A, "IT-1", "事项一", "S2", "乙", None),
        "a3": (A, "IT-2", "事项二", "S1", "甲", "2026-11-12T15:00:00+08:00"),
        "a4": (A, "IT-2", "事项二", "S2", "乙", None),
        "b1": (B, "IT-1", "事项一", "S3", "丙", None), "b2": (B, "IT-3", "事项三", "S3", "丙", None),
    }
    nos = {}
    for name, (agency, item_code, item_name, staff_id, staff_name, completed_at) in layout.items():
        more = {"completed_at": completed_at} if completed_at else {}
        doc = await hcp.post_case(**agency, item_code=item_code, item_name=item_name, staff_id=staff_id,
                                  staff_name=staff_name, **more)
        nos[name] = doc["case_no"]
    await hcp.rate(nos["a1"], "very_satisfied", "web")
    await hcp.rate(nos["a2"], "dissatisfied", "sms", reasons=["attitude"])
    assert (await hcp.tick("2026-11-21T00:00:00+08:00"))["defaults"] == 1  # a3 only (due 20 Nov 00:00)
    await hcp.rate(nos["b1"], "satisfied", "web")
    hcp.clock.advance(hours=1)
    await hcp.rate(nos["b1"], "very_dissatisfied", "wechat", text="补充：问题没解决")
    return nos


@both_backends
async def test_stats_by_agency(hcp):
    await stats_world(hcp)
    groups = await stats(hcp, "by=agency")
    assert set(groups) == {"AG-A", "AG-B"}
    a, b = groups["AG-A"], groups["AG-B"]
    assert a["name"] == "甲局" and b["name"] == "乙局"
    assert (a["cases"], a["rated"], a["bad_reviews"]) == (4, 2, 1)
    assert a["participation_rate"] == pytest.approx(0.5)
    assert a["mean_score"] == pytest.approx((10 + 3 + 6) / 3, abs=1e-3)
    assert (b["cases"], b["rated"], b["bad_reviews"]) == (2, 1, 1)
    assert b["participation_rate"] == pytest.approx(0.5)
    assert b["mean_score"] == pytest.approx(0)
    for g in (a, b):
        assert g["rectification_rate"] is None or 0 <= g["rectification_rate"] <= 1
    # the default is the default: the agency is its default when nothing is given
    status, doc = await hcp.api("GET", "/api/v1/stats")
    assert status == 200 and {g["key"] for g in doc["groups"]} == {"AG-A", "AG-B"}


@both_backends
async def test_stats_by_item_staff_channel(hcp):
    await stats_world(hcp)
    items = await stats(hcp, "by=item")
    assert set(items) == {"IT-1", "IT-2", "IT-3"}
    assert items["IT-1"]["name"] == "事项一" and items["IT-1"]["cases"] == 3 and items["IT-1"]["rated"] == 3
    assert items["IT-1"]["mean_score"] == pytest.approx((10 + 3 + 0) / 3, abs=1e-3)
    assert items["IT-1"]["bad_reviews"] == 2
    assert items["IT-2"]["cases"] == 2 and items["IT-2"]["rated"] == 0
    assert items["IT-2"]["participation_rate"] == 0 and items["IT-2"]["mean_score"] == pytest.approx(6)
    assert items["IT-3"]["cases"] == 1 and items["IT-3"]["mean_score"] is None
    assert items["IT-3"]["participation_rate"] == 0 and items["IT-3"]["bad_reviews"] == 0
    staff = await stats(hcp, "by=staff")
    assert set(staff) == {"S1", "S2", "S3"}
    assert staff["S1"]["name"] == "甲" and staff["S1"]["cases"] == 2 and staff["S1"]["rated"] == 1
    assert staff["S1"]["mean_score"] == pytest.approx(8)
    assert staff["S2"]["cases"] == 2 and staff["S2"]["bad_reviews"] == 1
    assert staff["S3"]["cases"] == 2 and staff["S3"]["rated"] == 1
    channels = await stats(hcp, "by=channel")
    named = {k for k in channels if k is not None}
    assert named <= {"sms", "wechat", "miniprogram", "phone", "web", "qr", "hall", "terminal", "callback",
                     "default"}, channels
    assert {"web", "sms"} <= named, channels
    assert channels["web"]["rated"] >= 1 and channels["sms"]["bad_reviews"] >= 1, channels
    assert sum(g["cases"] for g in channels.values()) <= 6


@pytest.mark.parametrize("by", ["nonsense", "AGENCY", "case", ""])
async def test_stats_by_unknown_grouping_is_422(hcp, by):
    status, doc = await hcp.api("GET", f"/api/v1/stats?by={by}")
    if by == "":
        assert status in (200, 422), doc
        return
    assert status == 422, doc
    assert fields(doc) == ["by"]


@pytest.mark.parametrize("query, field", [("from=yesterday", "from"), ("to=2026-13-01", "to"),
                                          ("from=2026-11-20T10:00:00", "from")])
async def test_stats_bad_bounds_are_422(hcp, query, field):
    status, doc = await hcp.api("GET", f"/api/v1/stats?by=agency&{query}")
    assert status == 422, doc
    assert fields(doc) == [field]


@both_backends
async def test_stats_period_filters_on_completed_at(hcp):
    when = {
        "before": "2026-11-18T23:59:59+08:00",
        "start": "2026-11-19T00:00:00+08:00",
        "mid": "2026-11-19T23:30:00Z",  # 20 November 07:30 in Shanghai
        "end": "2026-11-20T23:59:59+08:00",
        "after_utc": "2026-11-20T16:00:00Z",  # 21 November 00:00 in Shanghai
        "after": "2026-11-21T09:00:00+08:00",
    }
    for name, completed_at in when.items():
        await hcp.post_case(agency_code=f"AG-{name}", agency_name=name, completed_at=completed_at)
    groups = await stats(hcp, "by=agency&from=2026-11-19&to=2026-11-20")
    assert set(groups) == {"AG-start", "AG-mid", "AG-end"}
    assert all(g["cases"] == 1 and g["rated"] == 0 and g["mean_score"] is None for g in groups.values())
    assert set(await stats(hcp, "by=agency&from=2026-11-21")) == {"AG-after_utc", "AG-after"}
    assert set(await stats(hcp, "by=agency&to=2026-11-18")) == {"AG-before"}
    instants = await stats(hcp, "by=agency&from=2026-11-20T07:30:00%2B08:00&to=2026-11-21T00:00:00%2B08:00")
    assert {"AG-mid", "AG-end"} <= set(instants) <= {"AG-mid", "AG-end", "AG-after_utc"}
    assert await stats(hcp, "by=agency&from=2027-01-01") == {}


@both_backends
async def test_stats_rates_are_null_with_nothing_to_divide_by(hcp):
    assert await stats(hcp, "by=agency") == {}
    await hcp.post_case(**A)
    [g] = (await stats(hcp, "by=agency")).values()
    assert g["cases"] == 1 and g["rated"] == 0 and g["bad_reviews"] == 0
    assert g["participation_rate"] == 0
    assert g["mean_score"] is None
    assert g["rectification_rate"] is None


# --- health and metrics ---------------------------------------------------------------------------
@both_backends
async def test_healthz(hcp, backend):
    resp = await hcp.client.get("/healthz")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["database"] == "ok"
    if backend[1] == "redis":
        assert doc["redis"] == "ok"


@both_backends
async def test_metrics_counts_requests(hcp):
    await hcp.post_case()
    await hcp.api("GET", "/api/v1/cases/NO-SUCH")
    await hcp.api("GET", "/api/v1/stats?by=agency", token=None)
    resp = await hcp.client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "haochaping_http_requests_total"]
    assert samples, text
    by_status = {}
    for s in samples:
        by_status[(s.labels["route"], s.labels["status"])] = s.value
    assert by_status.get(("/api/v1/cases", "201")) == 1, by_status
    assert any(status == "404" for _r, status in by_status) and any(status == "401" for _r, status in by_status)
    assert TOKEN not in text


async def test_bulk_an_endless_line_is_one_error_and_the_rest_is_taken(hcp):
    a, b = hcp.case_body(), hcp.case_body()
    data = (json.dumps(a) + "\n" + "x" * (1024 * 1024 + 5) + "\n" + json.dumps(b) + "\n").encode()

    status, doc = await bulk(hcp, data)

    assert status == 200 and (doc["created"], doc["existing"]) == (2, 0), doc
    assert [e["line"] for e in doc["errors"]] == [2] and "longer than" in doc["errors"][0]["errors"][0]["message"]


async def test_bulk_error_list_is_bounded(hcp, monkeypatch):
    from bot.web import api

    monkeypatch.setattr(api, "MAX_ERRORS", 3)
    good = hcp.case_body()
    data = ("{broken\n" * 5 + json.dumps(good) + "\n").encode()

    status, doc = await bulk(hcp, data)

    assert status == 200 and doc["created"] == 1
    assert [e["line"] for e in doc["errors"]] == [1, 2, 3] and doc["errors_omitted"] == 2
