"""A 承诺件's clerk is rated at each window visit, its item at completion (issue 21 item 5).

Shantou art. 22: 线上线下相结合或非当场办结的承诺件,评价人每次到窗口办理后均可对服务人员进行1次评价,
事项办结后可对服务事项进行1次评价; art. 28 (承诺件) and art. 29 (联办件): 接受申请材料时评价窗口人员.
A visit rating (`scope` "visit") rates the clerk who served that visit only: it is not the case's rating
(the reminder, the default, the one rating and its follow-up go on), one per visit, counted only in the
staff figures, and a bad one opens a work order naming that clerk.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_support import fields
from helpers import Hcp
from servers import BACKENDS

from store import stats

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

COMPLETED = "2026-11-20T10:00:00+08:00"  # a Friday
DEFAULT = "2026-11-28T00:00:00+08:00"  # five working days later


def visit(case_no: str, grade: str, visit_id: str, **more: Any) -> dict[str, Any]:
    return {"case_no": case_no, "grade": grade, "channel": "hall", "scope": "visit", "visit_id": visit_id, **more}


async def staff_figures(hcp: Hcp) -> dict[str | None, dict[str, Any]]:
    status, doc = await hcp.api("GET", "/api/v1/stats?by=staff")
    assert status == 200, doc
    return {g["key"]: g for g in doc["groups"]}


@both_backends
async def test_a_promised_case_rates_the_clerk_at_each_visit_apart_from_its_own_rating(hcp: Hcp) -> None:
    """Shantou art. 22: each window visit of a 承诺件 takes one rating of its clerk; the item is rated once done."""
    doc = await hcp.post_case(kind="promised", phone=hcp.new_phone(), completed_at=COMPLETED)
    no = doc["case_no"]
    status, first = await hcp.api("POST", "/api/v1/evaluations",
                                  visit(no, "satisfied", "V-ACCEPT", staff_id="G2048", staff_name="王五"))
    assert status == 201, first
    assert (first["scope"], first["visit_id"], first["staff_id"], first["staff_name"]) == \
        ("visit", "V-ACCEPT", "G2048", "王五")
    status, again = await hcp.api("POST", "/api/v1/evaluations", visit(no, "very_satisfied", "V-ACCEPT"))
    assert status == 409 and "one rating per visit" in again["error"], again
    status, second = await hcp.api("POST", "/api/v1/evaluations", visit(no, "very_satisfied", "V-SUPPLEMENT"))
    assert status == 201 and second["staff_id"] == "G1024" and second["staff_name"] == "李四", second  # the case's
    case = await hcp.case(no)
    assert case["rated"] is False and case["evaluations"] == [] and case["remind_at"] is not None
    assert [v["visit_id"] for v in case["visits"]] == ["V-ACCEPT", "V-SUPPLEMENT"]
    own = await hcp.rate(no, "basically_satisfied")  # the item, at completion: the first rating, no follow-up
    assert own["is_followup"] is False and own["scope"] == "case" and own["visit_id"] is None
    case = await hcp.case(no)
    assert case["rated"] is True and [e["grade"] for e in case["evaluations"]] == ["basically_satisfied"]
    assert len(case["visits"]) == 2


@both_backends
async def test_a_visit_rating_leaves_the_default_and_counts_only_for_its_clerk(hcp: Hcp) -> None:
    """Shantou art. 22, 28: the visit rates the clerk; the case still takes its default (Hainan: 5 working days),
    and only the staff figures hold the visit, under the clerk who served it."""
    doc = await hcp.post_case(kind="promised", phone=hcp.new_phone(), completed_at=COMPLETED,
                              agency_code="AG-V", agency_name="局V")
    no = doc["case_no"]
    await hcp.rate(no, "very_satisfied", channel="hall", scope="visit", visit_id="V1", staff_id="G2048")
    await hcp.rate(no, "satisfied", channel="hall", scope="visit", visit_id="V2", staff_id="G2048")
    await hcp.tick(DEFAULT)
    case = await hcp.case(no)
    assert [(e["grade"], e["is_default"]) for e in case["evaluations"]] == [("basically_satisfied", True)]
    by_staff = await staff_figures(hcp)
    assert by_staff["G2048"]["cases"] == 0 and by_staff["G2048"]["mean_score"] == 9.0  # (10 + 8) / 2
    assert by_staff["G1024"]["cases"] == 1 and by_staff["G1024"]["mean_score"] == 6.0  # the case's default
    _status, by_agency = await hcp.api("GET", "/api/v1/stats?by=agency")
    agency = next(g for g in by_agency["groups"] if g["key"] == "AG-V")
    assert agency["mean_score"] == 6.0 and agency["rated"] == 0 and agency["bad_reviews"] == 0
    async with hcp.rt.db.read() as session:  # the daily figures say the same as the live ones
        for by in stats.GROUPS:
            assert await stats.figures(session, by, None, None, dialect=hcp.rt.db.dialect) == \
                await stats.figures(session, by, None, None, dialect=""), by


@both_backends
async def test_a_bad_visit_rating_opens_a_work_order_naming_the_visits_clerk(hcp: Hcp) -> None:
    """Shantou art. 35: every bad review is a work order; at a visit only the clerk was rated (art. 28), so it
    names that clerk whatever the reasons. It is the clerk's bad review, not the item's (art. 33)."""
    doc = await hcp.post_case(kind="joint", completed_at=COMPLETED, agency_code="AG-W", agency_name="局W",
                              joint_agencies=[{"code": "AG-X", "name": "局X"}])
    no = doc["case_no"]
    rating = await hcp.rate(no, "dissatisfied", channel="hall", scope="visit", visit_id="V1", staff_id="G4096",
                            staff_name="赵六", reasons=["efficiency"])
    case = await hcp.case(no)
    [order] = case["work_orders"]
    assert (order["staff_id"], order["staff_name"], order["grade"]) == ("G4096", "赵六", "dissatisfied")
    assert order["rated_at"] == rating["created_at"]
    by_staff = await staff_figures(hcp)
    assert (by_staff["G4096"]["bad_reviews"], by_staff["G4096"]["mean_score"]) == (1, 3.0)
    assert by_staff["G1024"]["bad_reviews"] == 0
    _status, by_agency = await hcp.api("GET", "/api/v1/stats?by=agency")
    agency = next(g for g in by_agency["groups"] if g["key"] == "AG-W")
    assert agency["bad_reviews"] == 0 and agency["rectification_rate"] is None


@both_backends
async def test_a_satisfied_callback_on_a_visits_work_order_is_the_visits_latest_rating(hcp: Hcp) -> None:
    """Hainan art. 15: a satisfied callback answer is the rater's latest rating of what they rated: here the
    visit's clerk, not the case."""
    doc = await hcp.post_case(kind="promised", completed_at=COMPLETED)
    no = doc["case_no"]
    await hcp.rate(no, "very_dissatisfied", channel="hall", scope="visit", visit_id="V1", staff_id="G2048",
                   reasons=["attitude"])
    [order] = (await hcp.case(no))["work_orders"]
    for action, body in (("dispatch", {}), ("rectify", {"note": "已约谈"}), ("review", {}),
                         ("callback", {"result": "satisfied"})):
        status, answer = await hcp.api("POST", f"/api/v1/work-orders/{order['id']}/{action}", body)
        assert status == 200, (action, answer)
    case = await hcp.case(no)
    assert case["evaluations"] == [] and case["rated"] is False
    assert [(v["grade"], v["via"], v["staff_id"]) for v in case["visits"]] == \
        [("very_dissatisfied", None, "G2048"), ("satisfied", "callback", "G2048")]
    by_staff = await staff_figures(hcp)
    assert by_staff["G2048"]["mean_score"] == 8.0 and by_staff["G2048"]["bad_reviews"] == 1
    assert by_staff["G2048"]["rectification_rate"] == 1.0


@pytest.mark.parametrize("kind", ["instant", "online", "consult"])
async def test_only_promised_and_joint_cases_take_visit_ratings(hcp: Hcp, kind: str) -> None:
    """Shantou art. 22, 27, 30, 32: an on-the-spot case is rated once, an online one has no window visit."""
    doc = await hcp.post_case(kind=kind, hall_code="H1")
    status, answer = await hcp.api("POST", "/api/v1/evaluations", visit(doc["case_no"], "satisfied", "V1"))
    assert status == 422 and fields(answer) == ["scope"], answer
    assert (await hcp.case(doc["case_no"]))["visits"] == []


@pytest.mark.parametrize("more, field", [
    ({"scope": "visit"}, "visit_id"),  # which visit: one rating each
    ({"scope": "visit", "visit_id": ""}, "visit_id"),
    ({"scope": "visit", "visit_id": "V\x00"}, "visit_id"),
    ({"scope": "visit", "visit_id": 7}, "visit_id"),
    ({"scope": "visit", "visit_id": "V" * 101}, "visit_id"),
    ({"visit_id": "V1"}, "visit_id"),  # a visit without the visit scope would rate the case
    ({"staff_id": "G2048"}, "staff_id"),  # a case's rating rates the case's clerk
    ({"scope": "visit", "visit_id": "V1", "staff_id": ["G1"]}, "staff_id"),
    ({"scope": "visit", "visit_id": "V1", "staff_name": "王\x07五"}, "staff_name"),
    ({"scope": "Visit", "visit_id": "V1"}, "scope"),
])
async def test_a_visit_rating_names_its_visit_and_only_it_names_a_clerk(hcp: Hcp, more: dict[str, Any],
                                                                        field: str) -> None:
    doc = await hcp.post_case(kind="promised")
    status, answer = await hcp.api("POST", "/api/v1/evaluations",
                                   {"case_no": doc["case_no"], "grade": "satisfied", "channel": "hall", **more})
    assert status == 422 and field in fields(answer), answer
    case = await hcp.case(doc["case_no"])
    assert case["visits"] == [] and case["evaluations"] == []


async def test_a_visit_of_a_case_without_a_clerk_must_name_one(hcp: Hcp) -> None:
    doc = await hcp.post_case(kind="promised", staff_id=None, staff_name=None)
    status, answer = await hcp.api("POST", "/api/v1/evaluations", visit(doc["case_no"], "satisfied", "V1"))
    assert status == 422 and fields(answer) == ["staff_id"], answer
    await hcp.rate(doc["case_no"], "satisfied", channel="hall", scope="visit", visit_id="V1", staff_id="G8")
