"""Issue 21, the deadlines missing beside the work-order steps (item 7) and the smaller rules (item 8).

- Shantou art. 37 (seeds/003): an appeal is decided within 5 working days of its receipt; a pending appeal
  past that is marked overdue by `tick`, once.
- Fujian art. 16 (seeds/001): an agency that cannot rectify in time states its reasons and a new deadline;
  an L1 approves (the step's deadline moves, an overdue mark is lifted) or refuses; each is an event.
- Shandong art. 14 (seeds/004): with `work_order.contact`, the agency records its contact with the rater
  within that many working days of taking the work order on, before it rectifies; otherwise overdue.
- Shantou art. 23 (seeds/003): 其他 opens a text: the API, the rating page and the dialogs all want the words
  when `other` is among the reasons; the online form has a box for 意见和建议 after a good grade.
- Shantou art. 40 (seeds/003) and Fujian art. 16: statistics and a ranking by staff, within the reader's
  jurisdiction; the built-in clerk reasons exist among the built-in reasons.

Real databases (SQLite files, PostgreSQL where parametrized), time moved by `now` and `tick`.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from console_support import AGENCY_A, AGENCY_B, PASSWORD, add_user, logged_in
from helpers import TOKEN, Hcp, cst
from servers import BACKENDS

from bot.cli import main as cli
from bot.infra.i18n import local_time
from bot.policy.rules import DEFAULT_CLERK_REASONS, DEFAULT_REASONS, Policy, PolicyError, parse_policy

pytestmark = pytest.mark.usefixtures("keep_logging")  # `haochaping tick` runs in-process below

PG = [p for p in BACKENDS if p.id == "postgres-redis"]
on_pg = pytest.mark.parametrize("backend", PG, indirect=True)
on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
SHANGHAI = ZoneInfo("Asia/Shanghai")
ONE_SECOND = timedelta(seconds=1)
CONTACT_POLICY = "work_order = { contact = 1 }\n"


@pytest.fixture
def policy_path(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The built-in policy, or the text a test gives with `with_policy`."""
    text = getattr(request, "param", None)
    if text is None:
        return None
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def with_policy(text: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("policy_path", [text], indirect=True)


# --- helpers -----------------------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def working_deadline(start: datetime, n: int) -> datetime:
    """00:00 Shanghai after the n-th official working day after start's local date (chinesecalendar itself)."""
    day = start.astimezone(SHANGHAI).date()
    while n:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            n -= 1
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


async def act(hcp: Hcp, wo_id: int, action: str, body: dict[str, Any] | None = None, token: str | None = TOKEN,
              expect: int = 200) -> dict[str, Any]:
    status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body or {}, token=token)
    assert status == expect, (action, status, doc)
    return doc


async def get_wo(hcp: Hcp, wo_id: int, token: str | None = TOKEN) -> dict[str, Any]:
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}", token=token)
    assert status == 200, (status, doc)
    return doc


async def bad_case(hcp: Hcp, rated_at: str, completed_at: str | None = None, **kw: Any) -> tuple[str, dict[str, Any]]:
    """A case rated dissatisfied at `rated_at` through the API: (case_no, its one work order)."""
    completed = completed_at or (at(rated_at) - timedelta(days=1)).isoformat()
    doc = await hcp.post_case(completed_at=completed, **kw)
    hcp.clock.set(rated_at)
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["efficiency"])
    [wo] = (await hcp.case(doc["case_no"]))["work_orders"]
    return doc["case_no"], wo


async def user_token(hcp: Hcp, name: str, role: str, *agencies: str) -> str:
    await add_user(hcp, name, role, *agencies)
    status, doc = await hcp.api("POST", "/api/v1/login", {"username": name, "password": PASSWORD}, token=None)
    assert status == 200, (status, doc)
    return str(doc["token"])


def actions(doc: dict[str, Any]) -> list[str]:
    return [e["action"] for e in doc["history"]]


# --- 7a. the appeal's decision (Shantou art. 37) -----------------------------------------------------------


@on_both
async def test_an_appeal_is_decided_within_5_working_days_else_tick_marks_it_overdue_once(hcp: Hcp) -> None:
    """Shantou art. 37 (003): 各级政务服务机构要在收到申诉申辩后5个工作日内对其进行认真核实 — counted from the
    appeal across the 2026 National Day week, shown in the API, marked once by tick and counted."""
    _case_no, wo = await bad_case(hcp, "2026-09-30T10:00:00+08:00")
    late_case, late = await bad_case(hcp, "2026-09-30T11:00:00+08:00")
    appealed = cst("2026-10-08T09:30")  # the first working day after the holiday week
    hcp.clock.set(appealed)
    doc = await act(hcp, wo["id"], "appeal", {"reason": "评价人所述与事实不符"})
    await act(hcp, late["id"], "appeal", {"reason": "恶意差评"})
    decide_by = working_deadline(appealed, 5)
    assert decide_by == cst("2026-10-15T00:00")  # 9, 10 (a make-up Saturday), 12, 13, 14 October
    assert (at(doc["appeal"]["decide_by"]), doc["appeal"]["overdue"]) == (decide_by, False)
    assert doc["appeal"]["decide_by"].endswith("+08:00")

    assert (await hcp.tick(decide_by - ONE_SECOND))["appeals_overdue"] == 0
    hcp.clock.set(decide_by - timedelta(hours=1))
    await act(hcp, wo["id"], "decide-appeal", {"upheld": False, "note": "经核实，差评属实"})  # decided in time
    counts = await hcp.tick(decide_by)
    assert counts["appeals_overdue"] == 1, counts
    assert (await hcp.tick(decide_by))["appeals_overdue"] == 0  # repeated
    assert (await hcp.tick(decide_by + timedelta(days=3)))["appeals_overdue"] == 0  # later
    assert (await hcp.tick(decide_by - timedelta(days=1)))["appeals_overdue"] == 0  # earlier

    hcp.clock.set(decide_by + timedelta(hours=2))
    doc = await get_wo(hcp, late["id"])
    assert (doc["appeal"]["status"], doc["appeal"]["overdue"]) == ("pending", True)
    [mark] = [e for e in doc["history"] if e["action"] == "appeal-overdue"]
    assert (mark["actor"], at(mark["at"]), at(mark["data"]["decide_by"])) == ("system", decide_by, decide_by)
    assert "decide-appeal" in doc["allowed"]  # late, still to be decided
    decided = await act(hcp, late["id"], "decide-appeal", {"upheld": False})
    assert (decided["appeal"]["status"], decided["appeal"]["overdue"]) == ("rejected", True)  # it came late
    in_time = await get_wo(hcp, wo["id"])
    assert in_time["appeal"]["overdue"] is False and "appeal-overdue" not in actions(in_time)
    assert (await hcp.case(late_case))["work_orders"][0]["appeal"]["overdue"] is True


@on_pg
@with_policy('appeal_decision = { days = 2, unit = "natural" }\n')
async def test_the_appeal_decision_deadline_is_policy_and_haochaping_tick_counts_it(
        hcp: Hcp, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], policy_path: str) -> None:
    """Shantou art. 37 (003), as policy (`appeal_decision`); a pending appeal of a work order whose steps ran
    ahead (closed) is still marked; `haochaping tick --now` prints the count."""
    _case_no, wo = await bad_case(hcp, "2026-11-23T09:00:00+08:00")
    hcp.clock.set("2026-11-23T10:00:00+08:00")
    doc = await act(hcp, wo["id"], "appeal", {"reason": "误评"})
    assert at(doc["appeal"]["decide_by"]) == cst("2026-11-26T00:00")  # 24 and 25 November, natural days
    for action, body in (("dispatch", {}), ("rectify", {"note": "已整改"}), ("review", {})):
        await act(hcp, wo["id"], action, body)
    doc = await act(hcp, wo["id"], "callback", {"result": "satisfied"})
    assert (doc["status"], doc["appeal"]["status"]) == ("closed", "pending")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", database_url)
    monkeypatch.setenv("HAOCHAPING_POLICY", policy_path)
    capsys.readouterr()

    async def tick(now: str) -> dict[str, int]:
        assert await asyncio.to_thread(cli.main, ["tick", "--now", now]) == 0
        return json.loads(capsys.readouterr().out)

    assert (await tick("2026-11-25T23:59:59+08:00"))["appeals_overdue"] == 0
    assert (await tick("2026-11-26T00:00:00+08:00"))["appeals_overdue"] == 1
    assert (await tick("2026-11-26T00:00:00+08:00"))["appeals_overdue"] == 0
    doc = await get_wo(hcp, wo["id"])
    assert doc["appeal"]["overdue"] is True and actions(doc)[-1] == "appeal-overdue"


# --- 7b. the extension of the rectification (Fujian art. 16) -----------------------------------------------


@on_both
async def test_an_extension_is_asked_with_reasons_and_a_new_deadline_and_decided_by_l1(hcp: Hcp) -> None:
    """Fujian art. 16 (001): 若在期限內無法整改,應說明理由和整改期限 — the agency (L2) asks, an L1 refuses or
    approves; approved, the step's due_at is the new deadline; every request and decision is an event."""
    l1 = await user_token(hcp, "l1a", "l1", AGENCY_A)
    l2 = await user_token(hcp, "l2a", "l2", AGENCY_A)
    _case_no, wo = await bad_case(hcp, "2026-11-02T10:00:00+08:00")
    hcp.clock.set("2026-11-03T09:00:00+08:00")
    doc = await act(hcp, wo["id"], "dispatch", token=l1)
    due = at(doc["due_at"])
    assert due == working_deadline(cst("2026-11-03T09:00"), 10) == cst("2026-11-18T00:00")
    assert doc["extension"] is None and doc["allowed"][-1] == "request-extension"

    hcp.clock.set("2026-11-10T15:00:00+08:00")
    wo_id = wo["id"]
    for body, field in (({"due_at": "2026-11-30"}, "reason"), ({"reason": "需协调住建部门"}, "due_at"),
                        ({"reason": "需协调住建部门", "due_at": "soon"}, "due_at"),
                        ({"reason": "需协调住建部门", "due_at": "2026-11-30T18:00:00"}, "due_at"),  # no offset
                        ({"reason": "需协调住建部门", "due_at": "2026-11-17"}, "due_at"),  # the current deadline
                        ({"reason": "需协调住建部门", "due_at": "2126-01-01"}, "due_at")):
        err = await act(hcp, wo_id, "request-extension", body, token=l2, expect=422)
        assert [e["field"] for e in err["errors"]] == [field], (body, err)
    await act(hcp, wo_id, "request-extension", {"reason": "x", "due_at": "2026-11-30"}, token=l1, expect=403)

    doc = await act(hcp, wo_id, "request-extension", {"reason": "需协调住建部门现场核查", "due_at": "2026-11-30"},
                    token=l2)
    ext = doc["extension"]
    assert (ext["status"], ext["reason"], ext["requested_by"]) == ("pending", "需协调住建部门现场核查", "l2a")
    assert at(ext["due_at"]) == cst("2026-12-01T00:00")  # a date: through that whole local day
    assert at(doc["due_at"]) == due  # unchanged until decided
    assert "decide-extension" in doc["allowed"] and "request-extension" not in doc["allowed"]
    again = await act(hcp, wo_id, "request-extension", {"reason": "再次", "due_at": "2026-12-02"}, token=l2,
                      expect=409)
    assert "decide-extension" in again["allowed"]
    await act(hcp, wo_id, "decide-extension", {"approved": True}, token=l2, expect=403)  # not its own
    err = await act(hcp, wo_id, "decide-extension", {"approved": "yes"}, token=l1, expect=422)
    assert [e["field"] for e in err["errors"]] == ["approved"]

    hcp.clock.set("2026-11-11T09:00:00+08:00")
    doc = await act(hcp, wo_id, "decide-extension", {"approved": False, "note": "理由不充分"}, token=l1)
    assert (doc["extension"]["status"], doc["extension"]["note"], doc["extension"]["decided_by"]) == \
        ("refused", "理由不充分", "l1a")
    assert at(doc["due_at"]) == due and doc["allowed"][-1] == "request-extension"

    doc = await act(hcp, wo_id, "request-extension",
                    {"reason": "现场核查需住建部门排期", "due_at": "2026-11-27T18:00:00+08:00"}, token=l2)
    hcp.clock.set("2026-11-12T09:00:00+08:00")
    doc = await act(hcp, wo_id, "decide-extension", {"approved": True, "note": "同意延期"}, token=l1)
    assert doc["extension"]["status"] == "approved" and doc["status"] == "dispatched"
    assert at(doc["due_at"]) == cst("2026-11-27T18:00")
    history = [(e["action"], e["actor"], e["note"]) for e in doc["history"] if "extension" in e["action"]]
    assert history == [("request-extension", "l2a", "需协调住建部门现场核查"),
                       ("decide-extension", "l1a", "理由不充分"),
                       ("request-extension", "l2a", "现场核查需住建部门排期"),
                       ("decide-extension", "l1a", "同意延期")]
    last = doc["history"][-1]["data"]
    assert (last["approved"], at(last["due_at"]), at(last["previous_due_at"])) == (True, cst("2026-11-27T18:00"), due)

    # The old deadline passes unmarked; the new one is marked from exactly its instant.
    assert (await hcp.tick(due))["overdue"] == 0
    assert (await hcp.tick(cst("2026-11-27T18:00") - ONE_SECOND))["overdue"] == 0
    assert (await hcp.tick(cst("2026-11-27T18:00")))["overdue"] == 1


@on_pg
async def test_an_approved_extension_lifts_the_steps_overdue_mark_and_a_pending_one_lapses(hcp: Hcp) -> None:
    """Fujian art. 16 (001): an extension approved after the deadline passed lifts the overdue mark when the new
    deadline is still ahead (marked again once that passes); one still pending when the agency rectifies lapses."""
    _case_no, wo = await bad_case(hcp, "2026-11-02T10:00:00+08:00")
    hcp.clock.set("2026-11-03T09:00:00+08:00")
    doc = await act(hcp, wo["id"], "dispatch")
    due = at(doc["due_at"])
    assert (await hcp.tick(due))["overdue"] == 1
    hcp.clock.set(due + timedelta(hours=10))
    doc = await get_wo(hcp, wo["id"])
    assert (doc["overdue"], doc["overdue_steps"]) == (True, 1)

    await act(hcp, wo["id"], "request-extension", {"reason": "材料需补正", "due_at": "2026-11-25"})
    doc = await act(hcp, wo["id"], "decide-extension", {"approved": True})
    assert (doc["overdue"], doc["overdue_steps"], at(doc["due_at"])) == (False, 0, cst("2026-11-26T00:00"))
    assert doc["history"][-1]["data"]["overdue_lifted"] is True
    assert (await hcp.tick(cst("2026-11-26T00:00")))["overdue"] == 1
    doc = await get_wo(hcp, wo["id"])
    assert (doc["overdue"], doc["overdue_steps"]) == (True, 1)

    hcp.clock.set("2026-11-26T09:00:00+08:00")
    await act(hcp, wo["id"], "request-extension", {"reason": "还需一周", "due_at": "2026-12-04"})
    doc = await act(hcp, wo["id"], "rectify", {"note": "已整改完毕"})
    assert (doc["status"], doc["extension"]["status"]) == ("rectified", "lapsed")
    err = await act(hcp, wo["id"], "decide-extension", {"approved": True}, expect=409)
    assert "decide-extension" not in err["allowed"] and "request-extension" not in err["allowed"]


# --- 7c. contacting the rater (Shandong art. 14) -----------------------------------------------------------


@on_pg
async def test_without_the_contact_rule_nothing_changes(hcp: Hcp) -> None:
    """Shandong art. 14 (004) is optional: the built-in policy asks for no contact step."""
    _case_no, wo = await bad_case(hcp, "2026-11-02T10:00:00+08:00")
    hcp.clock.set("2026-11-03T09:00:00+08:00")
    doc = await act(hcp, wo["id"], "dispatch")
    assert doc["contact"] is None and "contact" not in doc["allowed"] and "rectify" in doc["allowed"]
    err = await act(hcp, wo["id"], "contact", {"note": "已联系"}, expect=409)
    assert "contact" not in err["allowed"]
    assert (await hcp.tick(cst("2027-03-01T00:00")))["contacts_overdue"] == 0


@on_both
@with_policy(CONTACT_POLICY)
async def test_the_agency_contacts_the_rater_within_1_working_day_before_it_rectifies(hcp: Hcp) -> None:
    """Shandong art. 14 (004): 要在1个工作日内，主动联系反映问题的评价主体 — with `work_order.contact = 1` each round
    at the agency (dispatch, reopen) needs a `contact` within 1 working day, before the rectification; tick marks
    a missed one overdue, once."""
    l2 = await user_token(hcp, "l2a", "l2", AGENCY_A)
    _case_no, wo = await bad_case(hcp, "2026-11-05T10:00:00+08:00")
    _other_case, other = await bad_case(hcp, "2026-11-05T11:00:00+08:00")
    dispatched = cst("2026-11-06T16:00")  # a Friday: the working day to contact is Monday the 9th
    hcp.clock.set(dispatched)
    doc = await act(hcp, wo["id"], "dispatch")
    await act(hcp, other["id"], "dispatch")
    contact_due = working_deadline(dispatched, 1)
    assert contact_due == cst("2026-11-10T00:00")
    assert (at(doc["contact"]["due_at"]), doc["contact"]["at"], doc["contact"]["overdue"]) == (contact_due, None, False)
    assert sorted(doc["allowed"]) == ["appeal", "contact", "request-extension"]  # no rectify before the contact
    err = await act(hcp, wo["id"], "rectify", {"note": "已整改"}, token=l2, expect=409)
    assert err["allowed"][0] == "contact"
    err = await act(hcp, wo["id"], "contact", {"note": "  "}, token=l2, expect=422)
    assert [e["field"] for e in err["errors"]] == ["note"]

    hcp.clock.set("2026-11-09T17:00:00+08:00")
    doc = await act(hcp, other["id"], "contact", {"note": "已电话联系评价人，约定上门核实"}, token=l2)
    assert at(doc["contact"]["at"]) == cst("2026-11-09T17:00") and "rectify" in doc["allowed"]
    assert (await hcp.tick(contact_due - ONE_SECOND))["contacts_overdue"] == 0
    counts = await hcp.tick(contact_due)
    assert (counts["contacts_overdue"], counts["overdue"]) == (1, 0), counts  # the rectify deadline is another
    assert (await hcp.tick(contact_due))["contacts_overdue"] == 0
    assert (await hcp.tick(contact_due + timedelta(days=2)))["contacts_overdue"] == 0

    hcp.clock.set("2026-11-10T10:00:00+08:00")
    doc = await get_wo(hcp, wo["id"])
    assert (doc["contact"]["overdue"], doc["overdue"], doc["overdue_steps"]) == (True, False, 0)
    assert [(e["actor"], at(e["data"]["due_at"])) for e in doc["history"] if e["action"] == "contact-overdue"] == \
        [("system", contact_due)]
    doc = await act(hcp, wo["id"], "contact", {"note": "联系上评价人，了解情况"}, token=l2)
    assert doc["contact"]["overdue"] is True and doc["history"][-1]["data"]["late"] is True
    assert "contact" not in doc["allowed"]
    assert "contact-overdue" not in actions(await get_wo(hcp, other["id"]))

    # Reopened after a dissatisfied callback: the work order comes back to the agency, a new contact is due.
    for action, body in (("rectify", {"note": "已优化流程"}), ("review", {})):
        await act(hcp, wo["id"], action, body)
    reopened = cst("2026-11-11T10:00")
    hcp.clock.set(reopened)
    doc = await act(hcp, wo["id"], "callback", {"result": "dissatisfied"})
    assert (doc["status"], doc["reopened"]) == ("dispatched", 1)
    assert (at(doc["contact"]["due_at"]), doc["contact"]["at"], doc["contact"]["overdue"]) == \
        (working_deadline(reopened, 1), None, False)
    assert "contact" in doc["allowed"] and "rectify" not in doc["allowed"]
    assert (await hcp.tick(working_deadline(reopened, 1)))["contacts_overdue"] == 1


# --- the policy's keys -------------------------------------------------------------------------------------


def test_the_policy_takes_the_contact_step_and_the_appeal_decision_and_refuses_wrong_values() -> None:
    """Shandong art. 14 (004) and Shantou art. 37 (003) as policy data: both keys optional, validated by name."""
    base = parse_policy({})
    assert base.work_order == {"dispatch": 2, "rectify": 10, "review": 3} and "contact" not in base.work_order
    assert (base.appeal_decision.days, base.appeal_decision.unit) == (5, "working")
    p = parse_policy({"work_order": {"contact": 1}, "appeal_decision": {"days": 7, "unit": "natural"}})
    assert p.work_order == {"dispatch": 2, "rectify": 10, "review": 3, "contact": 1}
    assert (p.appeal_decision.days, p.appeal_decision.unit) == (7, "natural")
    for doc, name in (({"work_order": {"contact": -1}}, "work_order.contact"),
                      ({"work_order": {"contact": "1"}}, "work_order.contact"),
                      ({"work_order": {"contcat": 1}}, "work_order"),
                      ({"appeal_decision": {"days": 5, "unit": "lunar"}}, "appeal_decision.unit")):
        with pytest.raises(PolicyError, match=re.escape(name)):
            parse_policy(doc)


def test_every_default_clerk_reason_is_a_default_reason_and_unknown_ones_are_refused_by_name() -> None:
    """Shantou art. 27 (003) offers clerk and agency reasons apart: each clerk reason must be a reason a rater
    can give. The built-in list no longer names `conduct`, which the built-in reasons lack."""
    assert set(DEFAULT_CLERK_REASONS) <= set(DEFAULT_REASONS) and Policy().clerk_reasons == ("attitude",)
    assert set(parse_policy({}).clerk_reasons) <= set(DEFAULT_REASONS)
    with pytest.raises(PolicyError, match=r"clerk_reasons: conduct is not among the reasons"):
        parse_policy({"clerk_reasons": ["attitude", "conduct"]})
    with pytest.raises(PolicyError, match=r"clerk_reasons: rude, slow are not among"):
        parse_policy({"clerk_reasons": ["rude", "slow"]})
    own = {"reasons": {"rude": "态度差", "slow": "太慢", "other": "其他"}}
    assert parse_policy({**own, "clerk_reasons": ["rude"]}).clerk_reasons == ("rude",)
    assert parse_policy(own).clerk_reasons == ()  # the built-in clerk reasons this list keeps: none
    with_conduct = {"reasons": {**DEFAULT_REASONS, "conduct": "服务不规范"}, "clerk_reasons": ["attitude", "conduct"]}
    assert parse_policy(with_conduct).clerk_reasons == ("attitude", "conduct")


# --- 8a. 其他 opens a text (Shantou art. 23) ----------------------------------------------------------------


@on_both
async def test_the_api_refuses_other_without_text_naming_the_text_field(hcp: Hcp) -> None:
    """Shantou art. 23 (003): “其他”选项提供文字输入功能 — a bad rating whose reasons include `other` needs words
    (CONTRACT "Rules of detail"), alone or beside other reasons; nothing is stored until it has them."""
    doc = await hcp.post_case()
    for reasons, text in ((["other"], None), (["attitude", "other"], None), (["other"], "   ")):
        err = await hcp.rate(doc["case_no"], "dissatisfied", reasons=reasons, expect=422,
                             **({"text": text} if text is not None else {}))
        assert [e["field"] for e in err["errors"]] == ["text"] and "other" in err["errors"][0]["message"]
    assert await hcp.evaluations(doc["case_no"]) == []
    stored = await hcp.rate(doc["case_no"], "very_dissatisfied", reasons=["attitude", "other"], text="材料被退回三次")
    assert (stored["reasons"], stored["text"]) == (["attitude", "other"], "材料被退回三次")
    good = await hcp.post_case()
    assert (await hcp.rate(good["case_no"], "satisfied", reasons=["other"]))["reasons"] == []  # a good grade: none


async def test_sms_and_wechat_ask_for_the_words_when_other_is_among_the_reasons(hcp: Hcp) -> None:
    """Shantou art. 23 (003): the dialogs match the API — 其他 beside another reason still asks for the words
    before anything is stored, on SMS and on WeChat alike."""
    case_no, phone, _ = await hcp.reminded()
    await hcp.sms(phone, "4")
    asked = await hcp.sms(phone, "1 8")  # 服务态度差 and 其他
    assert hcp.rt.catalogs.text("zh_Hans", "rating.ask_text") in asked.text
    assert await hcp.evaluations(case_no) == []
    await hcp.sms(phone, "窗口让我回去复印三次")
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"]) == ("dissatisfied", ["attitude", "other"], "窗口让我回去复印三次")

    openid = hcp.new_openid()
    doc = await hcp.post_case(applicant={"name": "王五", "locale": "zh-CN", "wechat_openid": openid})
    await hcp.wechat_post(hcp.wx_text(openid, "非常不满意"))
    _, asked_wx, _ = await hcp.wechat_post(hcp.wx_text(openid, "2、其他"))
    assert hcp.rt.catalogs.text("zh_Hans", "rating.ask_text") in hcp.reply_content(asked_wx)
    assert await hcp.evaluations(doc["case_no"]) == []
    await hcp.wechat_post(hcp.wx_text(openid, "排队排了一上午"))
    [ev] = await hcp.evaluations(doc["case_no"])
    assert (ev["reasons"], ev["text"], ev["channel"]) == (["efficiency", "other"], "排队排了一上午", "wechat")


async def page_post(hcp: Hcp, token: str, data: Any) -> tuple[int, str]:
    resp = await hcp.client.post(f"/r/{token}", data=data)
    return resp.status, await resp.text()


async def test_the_rating_page_wants_words_when_other_is_among_the_reasons(hcp: Hcp) -> None:
    """Shantou art. 23 (003): the page asks what the API asks — `other` with another reason still needs words."""
    case_no, _, _ = await hcp.reminded()
    token = hcp.rt.links.token((await hcp.case(case_no))["id"])
    status, html = await page_post(hcp, token, [("grade", "dissatisfied"), ("reasons", "attitude"),
                                                ("reasons", "other")])
    assert status == 422 and hcp.rt.catalogs.text("zh_Hans", "page.need_text") in html
    assert await hcp.evaluations(case_no) == []
    status, _ = await page_post(hcp, token, [("grade", "dissatisfied"), ("reasons", "attitude"), ("reasons", "other"),
                                             ("text", "窗口让我回去复印三次")])
    assert status == 200
    [ev] = await hcp.evaluations(case_no)
    assert (ev["reasons"], ev["text"]) == (["attitude", "other"], "窗口让我回去复印三次")


# --- 8d. 意见和建议 with a good rating (Shantou art. 23) -----------------------------------------------------


async def test_a_good_rating_carries_a_suggestion_from_the_api_and_the_page(hcp: Hcp) -> None:
    """Shantou art. 23 (003): 线上评价界面可增加“对政务服务的意见和建议”填写栏目 — the API's `text` takes it with a
    good grade; the page offers an optional box for it, stored in the same text field."""
    doc = await hcp.post_case()
    stored = await hcp.rate(doc["case_no"], "very_satisfied", text="建议增加周末窗口")
    assert (stored["grade"], stored["reasons"], stored["text"]) == ("very_satisfied", [], "建议增加周末窗口")

    case_no, _, _ = await hcp.reminded()
    token = hcp.rt.links.token((await hcp.case(case_no))["id"])
    resp = await hcp.client.get(f"/r/{token}")
    html = await resp.text()
    assert 'name="suggestion"' in html and hcp.rt.catalogs.text("zh_Hans", "page.suggestion") in html
    status, html = await page_post(hcp, token, {"grade": "satisfied", "suggestion": "建议\x07增加"})
    assert status == 422 and await hcp.evaluations(case_no) == []
    status, _ = await page_post(hcp, token, {"grade": "satisfied", "suggestion": "  希望能网上预约取号  "})
    assert status == 200
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"]) == ("satisfied", [], "希望能网上预约取号")

    # A bad grade keeps its own words: the suggestion box is for good grades.
    bad_no, _, _ = await hcp.reminded()
    bad_token = hcp.rt.links.token((await hcp.case(bad_no))["id"])
    status, _ = await page_post(hcp, bad_token, [("grade", "dissatisfied"), ("reasons", "trips"),
                                                 ("text", "跑了三次"), ("suggestion", "无")])
    assert status == 200
    [ev] = await hcp.evaluations(bad_no)
    assert (ev["reasons"], ev["text"]) == (["trips"], "跑了三次")


async def test_the_suggestion_box_appears_after_a_good_grade_in_a_browser(hcp: Hcp, page: Any, traffic: Any) -> None:
    """Shantou art. 23 (003), with JavaScript: the 意见和建议 box shows after a good grade, the reasons after a
    bad one, and what is typed there is stored with the good rating."""
    from browser import expect, token_of

    case_no, _, sms = await hcp.reminded()
    await page.goto(f"/r/{token_of(sms['body'])}")
    box = page.get_by_role("textbox", name=re.compile("意见和建议"))
    await expect(box).to_be_hidden()
    await page.get_by_label("非常不满意", exact=True).check()
    await expect(box).to_be_hidden()
    await page.get_by_label("满意", exact=True).check()
    await expect(box).to_be_visible()
    await expect(page.get_by_label("服务态度差")).to_be_hidden()
    await box.fill("窗口引导很清楚")
    await page.get_by_role("button").click()
    await expect(page.locator("body")).to_contain_text("感谢")
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["text"]) == ("satisfied", "窗口引导很清楚")
    traffic.assert_local()


# --- 8c. statistics and a ranking by staff (Shantou art. 40) -----------------------------------------------


async def _staff_cases(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-03T09:00:00+08:00")
    rated = (("s1a", AGENCY_A, "S1", "very_satisfied"), ("s1b", AGENCY_A, "S1", "satisfied"),
             ("s2a", AGENCY_A, "S2", "dissatisfied"), ("s3a", AGENCY_B, "S3", "basically_satisfied"),
             ("none", AGENCY_A, None, "satisfied"))
    for no, agency, staff, grade in rated:
        more: dict[str, Any] = {"agency_code": agency, "agency_name": f"{agency} 局", "staff_id": staff,
                                "staff_name": f"工号{staff}" if staff else None}
        await hcp.post_case(case_no=no, completed_at="2026-11-02T10:00:00+08:00", applicant=None, **more)
        await hcp.rate(no, grade, **({"reasons": ["attitude"]} if grade == "dissatisfied" else {}))


@on_both
async def test_statistics_by_staff_have_the_agencys_figures_within_the_readers_jurisdiction(hcp: Hcp) -> None:
    """Shantou art. 40 (003): the figures by clerk (`by=staff`) are those by agency, for the cases that name a
    clerk (the others in the group `null`), and a user reads only their agencies' clerks."""
    await _staff_cases(hcp)
    status, by_agency = await hcp.api("GET", "/api/v1/stats?by=agency&from=2026-11-01&to=2026-11-30")
    status2, by_staff = await hcp.api("GET", "/api/v1/stats?by=staff&from=2026-11-01&to=2026-11-30")
    assert status == status2 == 200
    assert set(by_staff["groups"][0]) == set(by_agency["groups"][0])  # the same figures
    groups = {g["key"]: g for g in by_staff["groups"]}
    assert set(groups) == {"S1", "S2", "S3", None}
    assert (groups["S1"]["name"], groups["S1"]["cases"], groups["S1"]["mean_score"]) == ("工号S1", 2, 9.0)
    assert (groups["S2"]["bad_reviews"], groups["S2"]["work_orders"], groups["S2"]["mean_score"]) == (1, 1, 3.0)
    assert by_staff["total"]["cases"] == by_agency["total"]["cases"] == 5

    token = await user_token(hcp, "l1a", "l1", AGENCY_A)
    status, mine = await hcp.api("GET", "/api/v1/stats?by=staff", token=token)
    assert status == 200 and {g["key"] for g in mine["groups"]} == {"S1", "S2", None}


@on_both
async def test_the_staff_ranking_puts_the_lowest_last_and_is_not_frozen_into_snapshots(hcp: Hcp) -> None:
    """Shantou art. 40 (003): 连续排名靠后的工作人员 — `GET /api/v1/rankings?of=staff` ranks clerks highest first by
    the composite score (cases without a clerk rank no one), inside the reader's jurisdiction; published snapshots
    keep the three rankings of art. 34 only."""
    await _staff_cases(hcp)
    status, doc = await hcp.api("GET", "/api/v1/rankings?of=staff&from=2026-11-01&to=2026-11-30")
    assert status == 200
    # S1: (40×90 + 20×100) / 60; S3: (40×60 + 20×100) / 60; S2: (40×30 + 30×0 + 20×100) / 90
    assert [(r["key"], r["rank"], r["value"]) for r in doc["rankings"]] == \
        [("S1", 1, 93.33), ("S3", 2, 73.33), ("S2", 3, 35.56)]
    status, doc = await hcp.api("GET", "/api/v1/rankings?of=staff&metric=mean_score")
    assert [r["key"] for r in doc["rankings"]] == ["S1", "S3", "S2"]
    token = await user_token(hcp, "l1a", "l1", AGENCY_A)
    status, mine = await hcp.api("GET", "/api/v1/rankings?of=staff", token=token)
    assert [r["key"] for r in mine["rankings"]] == ["S1", "S2"]

    status, snap = await hcp.api("POST", "/api/v1/stats/snapshots",
                                 {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-30"})
    assert status == 201, snap
    resp = await hcp.client.get("/api/v1/stats/snapshots/2026-11", headers={"Authorization": "Bearer " + TOKEN})
    frozen = json.loads(await resp.text())["content"]
    assert sorted(frozen["rankings"]) == ["agency", "district", "hall"]


# --- the console (the same rules, in the reader's language) ------------------------------------------------


@with_policy(CONTACT_POLICY)
async def test_the_console_records_the_contact_asks_and_decides_an_extension_and_shows_an_overdue_appeal(
        hcp: Hcp) -> None:
    """Shandong art. 14 (004), Fujian art. 16 (001) and Shantou art. 37 (003) through the console's forms."""
    _case_no, wo = await bad_case(hcp, "2026-11-02T10:00:00+08:00")
    hcp.clock.set("2026-11-03T09:00:00+08:00")
    await act(hcp, wo["id"], "dispatch")
    l1 = await logged_in(hcp, "l1user", "l1")
    l2 = await logged_in(hcp, "l2a", "l2", AGENCY_A)
    order = f"/console/orders/{wo['id']}"

    def t(key: str, **params: Any) -> str:
        return hcp.rt.catalogs.text("zh_Hans", key).format(**params)

    def shown(instant: datetime) -> str:
        return local_time(instant, SHANGHAI, "zh_Hans", "short")

    status, page = await l2.get(order)
    assert f'action="{order}/act/contact"' in page and f'action="{order}/act/rectify"' not in page
    assert f'action="{order}/act/request-extension"' in page and "data-contact" in page
    status, page, location = await l2.post(f"{order}/act/contact", {"csrf": await l2.token(order),
                                                                     "note": "已电话联系评价人"})
    assert location == f"{order}?done=contact" and status == 200
    assert t("console.contact_done", date=shown(cst("2026-11-03T09:00"))) in page
    assert f'action="{order}/act/rectify"' in page and t("console.event.contact") in page

    status, page, _ = await l2.post(f"{order}/act/request-extension",
                                    {"csrf": await l2.token(order), "reason": "需协调住建部门", "due_at": "2026-11"})
    assert status == 422 and t("console.field_invalid", field=t("console.field.due_at")) in page
    status, page, location = await l2.post(f"{order}/act/request-extension",
                                           {"csrf": await l2.token(order), "reason": "需协调住建部门",
                                            "due_at": "2026-11-30"})
    assert location == f"{order}?done=request-extension" and 'data-extension="pending"' in page
    status, page = await l1.get(order)
    assert f'action="{order}/act/decide-extension"' in page
    status, page, location = await l1.post(f"{order}/act/decide-extension",
                                           {"csrf": await l1.token(order), "approved": "true", "note": "同意"})
    assert location == f"{order}?done=decide-extension" and 'data-extension="approved"' in page
    assert t("console.extension_granted", until=shown(cst("2026-12-01T00:00"))) in page
    assert (await get_wo(hcp, wo["id"]))["due_at"] == "2026-12-01T00:00:00+08:00"

    status, page, _ = await l2.post(f"{order}/act/appeal", {"csrf": await l2.token(order), "reason": "误评"})
    decide_by = working_deadline(cst("2026-11-03T09:00"), 5)
    assert status == 200 and t("console.appeal_decide_by", date=shown(decide_by)) in page
    assert (await hcp.tick(decide_by))["appeals_overdue"] == 1
    status, page = await l1.get(order)
    assert "data-appeal-overdue" in page and t("console.event.appeal_overdue") in page
    status, page = await l1.get("/console/orders")
    assert t("console.appeal_overdue") in page

