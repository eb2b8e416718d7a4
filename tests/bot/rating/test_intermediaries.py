"""Intermediary services (中介服务): the project owner's ratings and complaints, Hainan 中介服务 art. 21–25
(seeds/000, 海南省行政审批中介服务平台管理办法, chapters 4 and 5).

- Art. 21: one rating a completed project (一事一评), on 服务质量, 服务时效, 服务态度, 服务收费, 服务规范.
- Art. 22, 23: a complaint about quality, time limit or contract performance, within 10 working days after the
  contract was fulfilled.
- Art. 25: the centre answers within 5 working days of receipt; `tick` marks an unanswered one overdue.

Real databases (a SQLite file, and PostgreSQL where parametrized), the API with its token, time moved by the
`clock` and `tick`; the working days are China's official calendar of 2026 (calendars/2026.toml).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import chinese_calendar
import pytest
from api_support import fields
from helpers import TOKEN, Hcp, cst
from servers import BACKENDS

from bot.policy.rules import Policy, PolicyError, parse_policy
from bot.rating import intermediaries
from store import intermediaries as store
from store.models import IntermediaryRating

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

RATINGS = "/api/v1/intermediary-ratings"
COMPLAINTS = "/api/v1/intermediary-complaints"
STATS = "/api/v1/intermediaries/stats"
FULFILLED = "2026-09-28T10:00:00+08:00"  # a Monday, three days before National Day (国庆节, 1–7 October)
WINDOW_CLOSES = "2026-10-17T00:00:00+08:00"  # 29, 30 Sep, 8, 9, 10 (调休 Saturday), 12–16 Oct: 10 working days
PHONE = "13800138000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALL_GOOD = {"quality": "satisfied", "timeliness": "satisfied", "attitude": "satisfied", "fees": "satisfied",
            "conduct": "satisfied"}


def rating_body(project_no: str = "ZJ-2026-0001", **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project_no": project_no, "intermediary_code": "91460000MA5T000001",
        "intermediary_name": "海南某工程咨询有限公司",
        "agency_code": "11460000MB0000001X", "agency_name": "海南省发展和改革委员会", "service": "节能评估报告编制",
        "fulfilled_at": FULFILLED, "scores": dict(ALL_GOOD), "channel": "web", "rater": {"phone": PHONE},
    }
    body.update(more)
    return body


async def rate(hcp: Hcp, expect: int = 201, **more: Any) -> dict[str, Any]:
    status, doc = await hcp.api("POST", RATINGS, rating_body(**more))
    assert status == expect, (status, doc)
    return doc


async def complain(hcp: Hcp, expect: int = 201, **body: Any) -> dict[str, Any]:
    status, doc = await hcp.api("POST", COMPLAINTS, {"project_no": "ZJ-2026-0001", "about": "quality",
                                                     "text": "报告数据有误，多次修改仍不合格", **body})
    assert status == expect, (status, doc)
    return doc


async def complaints(hcp: Hcp, query: str = "") -> list[dict[str, Any]]:
    status, doc = await hcp.api("GET", f"{COMPLAINTS}{query}")
    assert status == 200, doc
    return doc["complaints"]


# --- art. 21: the rating ------------------------------------------------------------------------------------


@both_backends
async def test_hainan_art_21_a_project_is_rated_once_on_five_dimensions_and_the_phone_never_leaves(hcp):
    """Hainan 中介服务 art. 21: 一事一评, five dimensions. The phone is sealed, hashed and masked like a contact's."""
    hcp.clock.set("2026-09-29T09:00:00+08:00")
    doc = await rate(hcp, text="联系我 13900139001", scores={**ALL_GOOD, "fees": "dissatisfied"})
    assert doc["project_no"] == "ZJ-2026-0001" and doc["intermediary_code"] == "91460000MA5T000001"
    assert doc["scores"] == {**ALL_GOOD, "fees": "dissatisfied"}
    assert (doc["score_sum"], doc["mean_score"], doc["bad"]) == (35, 7.0, True)  # 8 * 4 + 3
    assert doc["rater"] == {"phone": "138****8000"} and doc["text"] == "联系我 139****9001"
    assert (doc["fulfilled_at"], doc["created_at"]) == (FULFILLED, "2026-09-29T09:00:00+08:00")
    assert doc["complaint_window_closes_at"] == WINDOW_CLOSES
    assert PHONE not in json.dumps(doc) and "13900139001" not in json.dumps(doc)

    async with hcp.rt.db.read() as session:
        row = await store.rating_by_project(session, "ZJ-2026-0001")
    assert isinstance(row, IntermediaryRating)
    assert PHONE not in (row.rater_phone_sealed or "")
    assert hcp.rt.sealer.open(row.rater_phone_sealed or "") == "+86" + PHONE
    assert row.rater_phone_hash == hcp.rt.sealer.lookup_hash("phone", "+86" + PHONE)  # meets the contacts' hash
    assert row.text == "联系我 13900139001"  # stored as written; only what leaves is masked

    again = await rate(hcp, 409, scores={**ALL_GOOD, "fees": "very_satisfied"})
    assert "one rating a project" in again["error"] and again["rating_id"] == doc["id"]
    status, listed = await hcp.api("GET", f"{RATINGS}?intermediary_code=91460000MA5T000001")
    assert status == 200 and listed["ratings"] == [doc]
    status, listed = await hcp.api("GET", f"{RATINGS}?intermediary_code=nobody")
    assert status == 200 and listed["ratings"] == []


@both_backends
async def test_hainan_art_21_two_ratings_of_one_project_at_once_store_one(hcp):
    """一事一评 holds when both requests arrive together (the unique project_no decides); a retry carrying the
    same Idempotency-Key gets the first answer back, not a 409."""
    results = await asyncio.gather(*(hcp.api("POST", RATINGS, rating_body("ZJ-RACE")) for _ in range(4)))
    assert sorted(status for status, _ in results) == [201, 409, 409, 409], results
    key = {"Idempotency-Key": "retry-1"}
    answers = []
    for _ in range(2):
        resp = await hcp.client.post(RATINGS, json=rating_body("ZJ-RETRY"), headers={**key, **AUTH})
        answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1] and answers[0][0] == 201
    status, listed = await hcp.api("GET", RATINGS)
    assert status == 200 and [r["project_no"] for r in listed["ratings"]] == ["ZJ-RACE", "ZJ-RETRY"]




@pytest.mark.parametrize("more, field", [
    ({"project_no": None}, "project_no"),
    ({"project_no": 12345}, "project_no"),
    ({"project_no": "ZJ\x00-1"}, "project_no"),
    ({"project_no": "x" * 101}, "project_no"),
    ({"intermediary_code": "  "}, "intermediary_code"),
    ({"intermediary_name": ["a"]}, "intermediary_name"),
    ({"agency_code": "A\nB"}, "agency_code"),
    ({"agency_name": "厅\x1b[31m"}, "agency_name"),
    ({"service": "x" * 301}, "service"),
    ({"fulfilled_at": None}, "fulfilled_at"),
    ({"fulfilled_at": "2026-09-28T10:00:00"}, "fulfilled_at"),  # no offset
    ({"fulfilled_at": "yesterday"}, "fulfilled_at"),
    ({"fulfilled_at": 1790000000}, "fulfilled_at"),
    ({"fulfilled_at": "1999-12-31T10:00:00+08:00"}, "fulfilled_at"),  # outside the accepted dates
    ({"fulfilled_at": "2026-11-22T10:00:00+08:00"}, "fulfilled_at"),  # not fulfilled yet (art. 21: 完成的项目)
    ({"scores": None}, "scores"),
    ({"scores": "satisfied"}, "scores"),
    ({"scores": {k: v for k, v in ALL_GOOD.items() if k != "fees"}}, "scores.fees"),
    ({"scores": {**ALL_GOOD, "fees": "bad"}}, "scores.fees"),
    ({"scores": {**ALL_GOOD, "fees": 3}}, "scores.fees"),
    ({"scores": {**ALL_GOOD, "conduct": "Satisfied"}}, "scores.conduct"),
    ({"scores": {**ALL_GOOD, "speed": "satisfied"}}, "scores.speed"),  # an unknown dimension
    ({"text": 42}, "text"),
    ({"text": "好\x07"}, "text"),
    ({"text": "x" * 2001}, "text"),
    ({"channel": "fax"}, "channel"),
    ({"channel": "default"}, "channel"),
    ({"rater": "13800138000"}, "rater"),
    ({"rater": {"phone": "12345"}}, "rater.phone"),
    ({"rater": {"phone": 13800138000}}, "rater.phone"),
])
async def test_hainan_art_21_a_bad_rating_body_is_422_naming_the_field(hcp, more, field):
    """Never a 5xx, never a rating stored: wrong types, control characters, a missing or unknown dimension."""
    status, doc = await hcp.api("POST", RATINGS, rating_body(**more))
    assert status == 422 and fields(doc) == [field], (status, doc)
    status, listed = await hcp.api("GET", RATINGS)
    assert status == 200 and listed["ratings"] == []


async def test_hainan_art_21_the_body_must_be_an_object_and_the_token_is_required(hcp):
    status, doc = await hcp.api("POST", RATINGS, [rating_body()])
    assert status == 422 and fields(doc) == ["body"]
    for method, path in (("POST", RATINGS), ("GET", RATINGS), ("GET", STATS), ("POST", COMPLAINTS),
                         ("GET", COMPLAINTS), ("POST", f"{COMPLAINTS}/1/answer")):
        status, _ = await hcp.api(method, path, {}, token=None)
        assert status == 401, (method, path)
        status, _ = await hcp.api(method, path, {}, token="wrong")
        assert status == 401, (method, path)


async def test_hainan_art_21_a_good_rating_needs_no_text_nor_a_bad_one_and_no_phone_is_needed(hcp):
    """Our choice: the dimension is the reason of a bad grade (art. 21 asks for no more); the rater may be
    anonymous to us (the platform knows its project owner)."""
    bad = {dim: "very_dissatisfied" for dim in ALL_GOOD}
    doc = await rate(hcp, project_no="ZJ-BAD", scores=bad, rater=None)
    assert (doc["score_sum"], doc["mean_score"], doc["bad"], doc["text"], doc["rater"]) == (
        0, 0.0, True, None, {"phone": None})


# --- art. 21: the figures -----------------------------------------------------------------------------------


@both_backends
async def test_hainan_art_21_the_figures_per_intermediary_are_exact_means_of_each_dimension(hcp):
    """Scores 10/8/6/3/0 (as every grade here); a project is bad when any dimension is dissatisfied or worse."""
    a, b = {"intermediary_code": "IM-A", "intermediary_name": "甲评估公司"}, {"intermediary_code": "IM-B",
                                                                              "intermediary_name": "乙检测公司"}
    await rate(hcp, project_no="P-1", fulfilled_at="2026-09-28T10:00:00+08:00", **a, scores={
        "quality": "very_satisfied", "timeliness": "satisfied", "attitude": "basically_satisfied",
        "fees": "dissatisfied", "conduct": "very_satisfied"})  # 10 + 8 + 6 + 3 + 10 = 37
    await rate(hcp, project_no="P-2", fulfilled_at="2026-10-09T10:00:00+08:00", **a, scores=ALL_GOOD)  # 40
    await rate(hcp, project_no="P-3", fulfilled_at="2026-10-12T10:00:00+08:00", **b,
               scores={**ALL_GOOD, "conduct": "very_dissatisfied"})  # 32

    status, doc = await hcp.api("GET", STATS)
    assert status == 200, doc
    assert doc == {"intermediaries": [
        {"code": "IM-A", "name": "甲评估公司", "projects": 2, "mean_score": 7.7,  # 77 / 10
         "dimensions": {"quality": 9.0, "timeliness": 8.0, "attitude": 7.0, "fees": 5.5, "conduct": 9.0},
         "bad_projects": 1},
        {"code": "IM-B", "name": "乙检测公司", "projects": 1, "mean_score": 6.4,  # 32 / 5
         "dimensions": {"quality": 8.0, "timeliness": 8.0, "attitude": 8.0, "fees": 8.0, "conduct": 0.0},
         "bad_projects": 1},
    ]}
    # from/to filter fulfilled_at: a date is the local day, `to` included
    status, doc = await hcp.api("GET", f"{STATS}?from=2026-10-01&to=2026-10-09")
    assert status == 200 and [(g["code"], g["projects"], g["mean_score"], g["bad_projects"])
                              for g in doc["intermediaries"]] == [("IM-A", 1, 8.0, 0)]
    status, doc = await hcp.api("GET", f"{STATS}?from=2027-01-01")
    assert status == 200 and doc == {"intermediaries": []}
    status, doc = await hcp.api("GET", f"{RATINGS}?from=2026-10-10&to=2026-10-31")
    assert [r["project_no"] for r in doc["ratings"]] == ["P-3"]
    for query, field in (("from=garbage", "from"), ("from=2026-10-09&to=2026-10-01", "to"), ("after=x", "after")):
        status, doc = await hcp.api("GET", f"{RATINGS}?{query}")
        assert status == 422 and fields(doc) == [field], (query, doc)
    status, doc = await hcp.api("GET", f"{STATS}?to=2026-13-45")
    assert status == 422 and fields(doc) == ["to"]


def test_hainan_art_21_nothing_to_divide_is_null() -> None:
    doc = intermediaries.figures_json(store.Figures("IM-Z", "丙", 0, 0, {}, 0))
    assert doc["mean_score"] is None and set(doc["dimensions"].values()) == {None}


# --- art. 22, 23, 25: complaints ----------------------------------------------------------------------------


def test_the_2026_calendar_around_national_day() -> None:
    """What the expected instants below count over (chinesecalendar and calendars/2026.toml agree)."""
    assert not any(chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # 调休: a Saturday worked
    assert not chinese_calendar.is_workday(date(2026, 10, 11))


@both_backends
async def test_hainan_art_23_a_complaint_is_taken_for_10_working_days_across_national_day(hcp):
    """Hainan 中介服务 art. 23: 应在合同履行完毕后10个工作日内提出; art. 25: 5个工作日内进行答复. Fulfilled on Monday
    28 September, the window runs over the holiday and the make-up Saturday to the end of Friday 16 October."""
    hcp.clock.set("2026-09-29T09:00:00+08:00")
    rating = await rate(hcp)
    hcp.clock.set("2026-09-30T15:00:00+08:00")
    doc = await complain(hcp)
    # 8, 9, 10 (Saturday, 调休), 12, 13 October: the answer is due when 14 October begins
    assert doc["due_at"] == "2026-10-14T00:00:00+08:00"
    assert (doc["rating_id"], doc["about"], doc["status"], doc["overdue"]) == (rating["id"], "quality", "open", False)
    assert (doc["fulfilled_at"], doc["received_at"]) == (FULFILLED, "2026-09-30T15:00:00+08:00")

    hcp.clock.set("2026-10-16T23:59:59+08:00")  # the last moment of the 10th working day
    late = await complain(hcp, about="contract", text="合同约定的现场踏勘未做")
    assert late["due_at"] == "2026-10-24T00:00:00+08:00"  # 19–23 October
    hcp.clock.set(WINDOW_CLOSES)
    refused = await complain(hcp, 409, about="timeliness")
    assert refused["window_closed_at"] == WINDOW_CLOSES and WINDOW_CLOSES in refused["error"]
    assert [c["id"] for c in await complaints(hcp)] == [doc["id"], late["id"]]


async def test_hainan_art_23_a_project_not_rated_here_names_its_fulfilment(hcp):
    """Our choice: a complaint does not need a rating first; without one the body says when the contract was
    fulfilled. With one, the rating's instant is the record and a different one is refused."""
    hcp.clock.set("2026-10-12T09:00:00+08:00")
    refused = await complain(hcp, 422, project_no="ZJ-UNRATED")
    assert fields(refused) == ["fulfilled_at"]
    doc = await complain(hcp, project_no="ZJ-UNRATED", fulfilled_at="2026-09-28T18:00:00+08:00")
    assert (doc["rating_id"], doc["fulfilled_at"], doc["due_at"]) == (
        None, "2026-09-28T18:00:00+08:00", "2026-10-20T00:00:00+08:00")  # 13–16 October, then the 19th
    await rate(hcp, project_no="ZJ-RATED")
    refused = await complain(hcp, 422, project_no="ZJ-RATED", fulfilled_at="2026-10-10T10:00:00+08:00")
    assert fields(refused) == ["fulfilled_at"]
    same = await complain(hcp, project_no="ZJ-RATED", fulfilled_at="2026-09-28T02:00:00Z")  # the same instant
    assert same["fulfilled_at"] == FULFILLED
    hcp.clock.set("2026-11-21T10:00:00+08:00")
    closed = await complain(hcp, 409, project_no="ZJ-OLD", fulfilled_at="2026-10-09T10:00:00+08:00")
    assert closed["window_closed_at"] == "2026-10-23T00:00:00+08:00"  # 10 (调休), 12–16, 19–22 October


@pytest.mark.parametrize("body, field", [
    ({"about": "price"}, "about"),
    ({"about": None}, "about"),
    ({"text": None}, "text"),
    ({"text": "   "}, "text"),
    ({"text": "差\x00"}, "text"),
    ({"text": {"a": 1}}, "text"),
    ({"project_no": 7}, "project_no"),
    ({"fulfilled_at": "2026-09-28"}, "fulfilled_at"),
])
async def test_hainan_art_22_a_bad_complaint_body_is_422_naming_the_field(hcp, body, field):
    refused = await complain(hcp, 422, **body)
    assert fields(refused) == [field]


@both_backends
async def test_hainan_art_25_an_unanswered_complaint_is_marked_overdue_by_the_tick_and_answered_once(hcp):
    """Hainan 中介服务 art. 25: 收到投诉材料后5个工作日内进行答复. `tick` marks it at its deadline (inclusive), once;
    the mark stays after the late answer; the answer is written to the audit log; a second answer is 409."""
    hcp.clock.set("2026-09-29T09:00:00+08:00")
    await rate(hcp)
    hcp.clock.set("2026-09-30T15:00:00+08:00")
    doc = await complain(hcp, text="报告数据有误，请回电 13900139001")
    assert doc["text"] == "报告数据有误，请回电 139****9001"
    cid = doc["id"]

    await hcp.tick(cst("2026-10-13T23:59:59"))
    assert [c["overdue"] for c in await complaints(hcp)] == [False]
    assert await complaints(hcp, "?overdue=true") == []
    await hcp.tick(cst("2026-10-14T00:00"))
    [marked] = await complaints(hcp, "?overdue=true&status=open")
    assert (marked["id"], marked["overdue"], marked["due_at"]) == (cid, True, "2026-10-14T00:00:00+08:00")
    await hcp.tick(cst("2026-10-15T00:00"))  # again: nothing changes
    assert [c["overdue"] for c in await complaints(hcp)] == [True]

    hcp.clock.set("2026-10-15T10:00:00+08:00")
    status, answered = await hcp.api("POST", f"{COMPLAINTS}/{cid}/answer", {"answer": "已责令中介机构重新出具报告"})
    assert status == 200, answered
    assert (answered["status"], answered["answered_at"], answered["answered_by"], answered["overdue"]) == (
        "answered", "2026-10-15T10:00:00+08:00", "api", True)
    status, again = await hcp.api("POST", f"{COMPLAINTS}/{cid}/answer", {"answer": "再答一次"})
    assert status == 409 and again["answered_at"] == "2026-10-15T10:00:00+08:00", again
    assert await complaints(hcp, "?status=open") == []
    answers = [c["answer"] for c in await complaints(hcp, "?status=answered&overdue=true")]
    assert answers == ["已责令中介机构重新出具报告"]

    status, log = await hcp.api("GET", "/api/v1/audit?action=intermediary_complaint.answer")
    assert status == 200, log
    [event] = log["events"]
    assert (event["actor"], event["target"], event["details"]["late"]) == (
        "api", {"kind": "intermediary_complaint", "id": str(cid)}, True)


async def test_hainan_art_25_answers_and_lists_refuse_bad_input_without_a_5xx(hcp):
    hcp.clock.set("2026-09-30T15:00:00+08:00")
    await rate(hcp)
    cid = (await complain(hcp))["id"]
    for path in ("99999999999", str(2**31), "abc", "0", "-1", "１"):
        status, doc = await hcp.api("POST", f"{COMPLAINTS}/{path}/answer", {"answer": "好"})
        assert status == 404, (path, doc)
    for body, field in (({"answer": 5}, "answer"), ({"answer": " "}, "answer"), ({"answer": "a\x08"}, "answer"),
                        ({}, "answer"), ([], "body")):
        status, doc = await hcp.api("POST", f"{COMPLAINTS}/{cid}/answer", body)
        assert status == 422 and fields(doc) == [field], (body, doc)
    for query, field in (("overdue=maybe", "overdue"), ("status=closed", "status"), ("after=-1", "after"),
                         ("after=" + "9" * 13, "after")):
        status, doc = await hcp.api("GET", f"{COMPLAINTS}?{query}")
        assert status == 422 and fields(doc) == [field], (query, doc)
    status, doc = await hcp.api("GET", f"{COMPLAINTS}?after=999999999999")
    assert status == 200 and doc == {"complaints": []}
    status, doc = await hcp.api("GET", f"{COMPLAINTS}?project_no=ZJ-2026-0001&status=open")
    assert status == 200 and [c["id"] for c in doc["complaints"]] == [cid]


# --- the policy -------------------------------------------------------------------------------------------


def test_the_two_periods_are_policy_with_the_articles_numbers_as_defaults() -> None:
    base = Policy()
    assert (base.intermediary_complaint_window.days, base.intermediary_complaint_window.unit) == (10, "working")
    assert (base.intermediary_complaint_answer.days, base.intermediary_complaint_answer.unit) == (5, "working")
    p = parse_policy({"intermediary_complaint_window": {"days": 15, "unit": "natural"},
                      "intermediary_complaint_answer": {"days": 3}})
    assert (p.intermediary_complaint_window.days, p.intermediary_complaint_window.unit) == (15, "natural")
    assert (p.intermediary_complaint_answer.days, p.intermediary_complaint_answer.unit) == (3, "working")
    with pytest.raises(PolicyError, match=r"intermediary_complaint_answer\.days"):
        parse_policy({"intermediary_complaint_answer": {"days": -1}})
