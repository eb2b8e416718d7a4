"""Handling types and who a rating rates (issue 21 item 5: Shantou art. 9, 22, 27–30, 32), and the terminal's
number on a self-service terminal's rating (issue 21 item 8: Shantou art. 23).

`kind` takes `instant`, `promised` (the contract's), `joint` (联办件), `online` (全程网办) and `consult` (查询咨询).
A joint case's bad review is the lead agency's one work order, listing the other agencies involved; a
全程网办 case rates the agency only; an online consultation is never reminded, defaulted or counted among
the cases to rate; a hall consultation rates the clerk.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_support import bulk, fields, ndjson
from export_support import read_csv
from helpers import TOKEN, Hcp
from servers import BACKENDS

from store import cases as case_store
from store.models import Case

both_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

COMPLETED = "2026-11-20T10:00:00+08:00"  # a Friday
REMIND = "2026-11-21T10:00:00+08:00"
DEFAULT = "2026-11-28T00:00:00+08:00"  # five working days later
LEAD = {"code": "11440500MB2C01234X", "name": "汕头市公安局金平分局"}
OTHERS = [{"code": "11440500007000000A", "name": "汕头市市场监督管理局"},
          {"code": "11440500007000000B", "name": "汕头市税务局"}]


async def stats(hcp: Hcp, by: str) -> dict[str | None, dict[str, Any]]:
    status, doc = await hcp.api("GET", f"/api/v1/stats?by={by}")
    assert status == 200, doc
    return {g["key"]: g for g in doc["groups"]}


def online_consultation(hcp: Hcp, **more: Any) -> dict[str, Any]:
    """A consultation answered online: neither a hall nor a clerk (Shantou art. 32)."""
    return hcp.case_body(kind="consult", staff_id=None, staff_name=None, **more)


# --- kinds ---------------------------------------------------------------------------------------------

@both_backends
async def test_every_handling_type_is_accepted_and_names_its_targets(hcp):
    """Shantou art. 27–30, 32: the clerk and the agency for instant and promised cases, every agency involved
    for a joint one, the agency only for 全程网办, the clerk only for a hall consultation."""
    want = {
        "instant": {"rated": True, "clerk": True, "agencies": [LEAD]},
        "promised": {"rated": True, "clerk": True, "agencies": [LEAD]},
        "joint": {"rated": True, "clerk": True, "agencies": [LEAD, *OTHERS]},
        "online": {"rated": True, "clerk": False, "agencies": [LEAD]},
        "consult": {"rated": True, "clerk": True, "agencies": []},
    }
    for kind, targets in want.items():
        more = {"joint_agencies": OTHERS} if kind == "joint" else {}
        doc = await hcp.post_case(kind=kind, hall_code="H-JP", **more)
        assert doc["kind"] == kind and doc["targets"] == targets, (kind, doc["targets"])
        assert doc["joint_agencies"] == (OTHERS if kind == "joint" else [])
        assert (await hcp.case(doc["case_no"]))["targets"] == targets
    status, doc = await hcp.api("POST", "/api/v1/cases", online_consultation(hcp))
    assert status == 201 and doc["targets"] == {"rated": False, "clerk": False, "agencies": []}, doc


@pytest.mark.parametrize("more, field", [
    ({"kind": "instant", "joint_agencies": OTHERS}, "joint_agencies"),  # only a joint case has agencies involved
    ({"kind": "joint", "joint_agencies": [LEAD]}, "joint_agencies"),  # the lead is agency_code, not "involved"
    ({"kind": "joint", "joint_agencies": [OTHERS[0], OTHERS[0]]}, "joint_agencies"),
    ({"kind": "joint", "joint_agencies": [{"code": "X"}]}, "joint_agencies.0.name"),
    ({"kind": "joint", "joint_agencies": [{"code": "X\x07", "name": "x"}]}, "joint_agencies.0.code"),
    ({"kind": "joint", "joint_agencies": "X"}, "joint_agencies"),
    ({"kind": "Joint"}, "kind"),
])
async def test_joint_agencies_are_checked_at_intake_single_and_bulk(hcp, more, field):
    """Shantou art. 29 lists the agencies involved: the list must say which other agencies, each once."""
    body = hcp.case_body(**more)
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 422 and fields(doc) == [field], doc
    good = hcp.case_body(kind="joint", joint_agencies=OTHERS)
    status, doc = await bulk(hcp, ndjson(hcp.case_body(**more), good))
    assert status == 200, doc
    assert doc["created"] == 1 and [e["line"] for e in doc["errors"]] == [1], doc
    assert [e["field"] for e in doc["errors"][0]["errors"]] == [field]
    assert (await hcp.case(good["case_no"]))["joint_agencies"] == OTHERS


async def test_a_joint_case_without_its_agencies_is_accepted(hcp):
    """The contract's `joint` alone is enough: the other agencies are ours to take, not to demand."""
    doc = await hcp.post_case(kind="joint", joint_agencies=[])
    assert doc["joint_agencies"] == [] and doc["targets"]["agencies"] == [LEAD]


# --- targets of a bad review -----------------------------------------------------------------------------

@both_backends
async def test_a_joint_case_bad_review_is_the_lead_agency_work_order_listing_the_others(hcp):
    """Shantou art. 29: 差评时 … 并列出涉及“差评”关联的政务服务机构. One work order, the lead agency's (it
    delivered the case and answers for it, art. 35), naming the clerk for an attitude reason and listing
    every agency involved; the work-order export lists the others too."""
    doc = await hcp.post_case(kind="joint", joint_agencies=OTHERS, phone=hcp.new_phone())
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    await hcp.rate(doc["case_no"], "dissatisfied", "hall", reasons=["attitude", "process"])
    [wo] = (await hcp.case(doc["case_no"]))["work_orders"]
    assert (wo["agency_code"], wo["staff_id"]) == (LEAD["code"], "G1024")
    assert wo["agencies"] == [LEAD, *OTHERS]
    status, listed = await hcp.api("GET", f"/api/v1/work-orders?agency_code={LEAD['code']}")
    assert status == 200 and [w["agencies"] for w in listed["work_orders"]] == [[LEAD, *OTHERS]]
    resp = await hcp.client.get("/api/v1/exports/work-orders.csv?from=2026-11-21&to=2026-11-21",
                                headers={"Authorization": f"Bearer {TOKEN}"})
    rows = read_csv(await resp.read())
    assert dict(zip(rows[0], rows[1], strict=True))["joint_agencies"] == ";".join(a["code"] for a in OTHERS)


@both_backends
async def test_an_online_case_rates_the_agency_only(hcp):
    """Shantou art. 9 and 30: 全程网办 rates only the agency that provides the item. A clerk the business
    system names anyway is neither on the work order (even for an attitude reason) nor in the staff figures."""
    online = await hcp.post_case(kind="online", staff_id="G2048", staff_name="赵六", phone=hcp.new_phone())
    hall = await hcp.post_case(kind="instant", staff_id="G2048", staff_name="赵六", phone=hcp.new_phone())
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    for case in (online, hall):
        await hcp.rate(case["case_no"], "very_dissatisfied", "web", reasons=["attitude"])
    [wo] = (await hcp.case(online["case_no"]))["work_orders"]
    assert (wo["agency_code"], wo["staff_id"], wo["staff_name"]) == (LEAD["code"], None, None)
    assert wo["agencies"] == [LEAD]
    [wo] = (await hcp.case(hall["case_no"]))["work_orders"]
    assert wo["staff_id"] == "G2048"
    for _ in range(2):  # live, then from the daily figures the tick rebuilds
        staff = await stats(hcp, "staff")
        assert staff["G2048"]["cases"] == 1 and staff["G2048"]["bad_reviews"] == 1
        assert (await stats(hcp, "agency"))[LEAD["code"]]["cases"] == 2
        await hcp.tick("2026-11-21T09:00:01+08:00")


@both_backends
async def test_a_hall_consultation_rates_the_clerk(hcp):
    """Shantou art. 32: 查询咨询类业务在实体政务服务大厅办结的, 需评价窗口人员的服务. It is reminded and
    defaulted like any case, and its bad review names the clerk whatever the reason."""
    doc = await hcp.post_case(kind="consult", hall_code="H-JP", phone=hcp.new_phone())
    assert doc["remind_at"] is not None and doc["default_at"] is not None
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    await hcp.rate(doc["case_no"], "dissatisfied", "hall", reasons=["efficiency"])
    [wo] = (await hcp.case(doc["case_no"]))["work_orders"]
    assert (wo["staff_id"], wo["staff_name"]) == ("G1024", "李四")


# --- online consultations --------------------------------------------------------------------------------

@both_backends
async def test_an_online_consultation_is_never_reminded_nor_defaulted_nor_to_rate(hcp):
    """Shantou art. 32: 查询咨询类业务在线上办结的, 无需进行评价 (CONTRACT: 201, never reminded or defaulted,
    not among the cases that should be rated). It still counts among the agency's cases."""
    phone = hcp.new_phone()
    status, consult = await hcp.api("POST", "/api/v1/cases", online_consultation(hcp, phone=phone))
    assert status == 201, consult
    assert consult["remind_at"] is None and consult["default_at"] is None
    status, answer = await bulk(hcp, ndjson(online_consultation(hcp, phone=hcp.new_phone()),
                                            hcp.case_body(phone=hcp.new_phone())))
    assert (status, answer["created"], answer["errors"]) == (200, 2, []), answer
    counts = await hcp.tick(REMIND)
    assert counts["reminders"] == 1  # the ordinary case's only
    counts = await hcp.tick(DEFAULT)
    assert counts["defaults"] == 1
    again = await hcp.case(consult["case_no"])
    assert again["reminders"] == [] and again["evaluations"] == []
    for _ in range(2):  # live, then from the daily figures the tick rebuilt
        group = (await stats(hcp, "agency"))[LEAD["code"]]
        assert (group["cases"], group["to_rate"], group["rated"]) == (3, 1, 0), group
        assert group["participation_rate"] == 0
        await hcp.tick(DEFAULT)
    async with hcp.rt.db.read() as session:  # a message from the person opens no menu of it
        case = await case_store.by_no(session, consult["case_no"])
        assert isinstance(case, Case) and case.phone_contact_id is not None
        assert await case_store.unrated_of_contact(session, "phone", case.phone_contact_id) == ([], 0)


@both_backends
async def test_an_online_consultation_rated_anyway_counts_as_rated(hcp):
    """Nothing forbids a rating nobody asked for: it is stored, and the case joins the base it is rated in,
    so participation never exceeds 1."""
    status, consult = await hcp.api("POST", "/api/v1/cases", online_consultation(hcp))
    assert status == 201, consult
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    await hcp.rate(consult["case_no"], "satisfied", "web")
    group = (await stats(hcp, "agency"))[LEAD["code"]]
    assert (group["cases"], group["to_rate"], group["rated"], group["participation_rate"]) == (1, 1, 1, 1)


# --- the terminal's number -------------------------------------------------------------------------------

@both_backends
async def test_a_terminal_rating_carries_the_terminal_number(hcp):
    """Shantou art. 23: 自助终端机评价界面应增设终端机编号信息. The number is stored, shown in the case's
    evaluations and in the evaluations export; the contract's terminal rating without one stays a 201."""
    with_number = await hcp.post_case(phone=hcp.new_phone())
    without = await hcp.post_case(phone=hcp.new_phone())
    on_qr = await hcp.post_case(phone=hcp.new_phone())
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    answer = await hcp.rate(with_number["case_no"], "satisfied", "terminal", terminal_id=" ZZ-JP-007 ")
    assert answer["terminal_id"] == "ZZ-JP-007"
    await hcp.rate(without["case_no"], "satisfied", "terminal")
    await hcp.rate(on_qr["case_no"], "satisfied", "qr", terminal_id="ZZ-JP-008")  # a code stuck on a terminal
    assert [e["terminal_id"] for e in await hcp.evaluations(with_number["case_no"])] == ["ZZ-JP-007"]
    assert [e["terminal_id"] for e in await hcp.evaluations(without["case_no"])] == [None]
    assert [e["terminal_id"] for e in await hcp.evaluations(on_qr["case_no"])] == ["ZZ-JP-008"]
    resp = await hcp.client.get("/api/v1/exports/evaluations.csv?from=2026-11-21&to=2026-11-21",
                                headers={"Authorization": f"Bearer {TOKEN}"})
    rows = read_csv(await resp.read())
    cells = {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert cells[with_number["case_no"]]["terminal_id"] == "ZZ-JP-007"
    assert cells[without["case_no"]]["terminal_id"] == ""


@pytest.mark.parametrize("terminal_id", ["", "  ", 7, ["ZZ"], "ZZ\x00", "Z" * 101])
async def test_a_bad_terminal_number_is_422_and_nothing_stored(hcp, terminal_id):
    doc = await hcp.post_case()
    status, answer = await hcp.api("POST", "/api/v1/evaluations", {
        "case_no": doc["case_no"], "grade": "satisfied", "channel": "terminal", "terminal_id": terminal_id})
    assert status == 422 and fields(answer) == ["terminal_id"], answer
    assert await hcp.evaluations(doc["case_no"]) == []
