"""Work orders from bad reviews (issue: "the whole lifecycle on PostgreSQL with tick --now across a holiday"):
deadlines in official working days across the 2026 National Day week, overdue marking by `tick`, the
transition table and its 409s, reopen-once, unreachable callbacks, appeals upheld and rejected, the
blacklist, follow-ups, batches and bundles, users of the CLI with their login tokens and jurisdictions,
and exactly one work order per bad review whatever the channel.

Every test runs on postgres-redis; the main lifecycle also on sqlite-memory. Users are made with the
real `haochaping users …` entry point (bot.cli.main) against the test's own database.

CONTRACT "Policy file", "Vocabulary", "Rules of detail", "HTTP API for business systems".
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from helpers import TOKEN, Hcp, cst
from servers import BACKENDS

from bot.cli import main as cli
from bot.work_orders import users

pytestmark = pytest.mark.usefixtures("keep_logging")  # the CLI runs in-process: its logging set-up is undone

PG = [p for p in BACKENDS if p.id == "postgres-redis"]
on_pg = pytest.mark.parametrize("backend", PG, indirect=True)
on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

SHANGHAI = ZoneInfo("Asia/Shanghai")
AGENCY_A = "11440500MB2C01234X"  # Hcp.case_body's agency
AGENCY_B = "11440500MB2C05678Y"
PASSWORD = "correct horse battery staple"
ONE_SECOND = timedelta(seconds=1)


# --- helpers ---------------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def working_deadline(start: datetime, n: int) -> datetime:
    """00:00 Shanghai after the n-th official working day strictly after start's local date, from the
    chinesecalendar package directly (not through the project's calendar)."""
    day = start.astimezone(SHANGHAI).date()
    while n:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            n -= 1
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


class Staff:
    """The people who work on work orders, made with `haochaping users …` and logged in over HTTP."""

    def __init__(self, hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hcp = hcp
        self.monkeypatch = monkeypatch

    async def cli(self, *args: str) -> int:
        return await asyncio.to_thread(cli.main, ["users", *args])

    async def add(self, name: str, role: str, *agencies: str) -> None:
        args = ["add", name, "--role", role]
        for agency in agencies:
            args += ["--agency", agency]
        assert await self.cli(*args) == 0, f"haochaping users {' '.join(args)} failed"

    async def disable(self, name: str) -> None:
        assert await self.cli("disable", name) == 0

    async def set_password(self, name: str, password: str) -> None:
        self.monkeypatch.setenv("HAOCHAPING_USER_PASSWORD", password)
        try:
            assert await self.cli("password", name) == 0
        finally:
            self.monkeypatch.setenv("HAOCHAPING_USER_PASSWORD", PASSWORD)

    async def login(self, name: str, password: str = PASSWORD, expect: int = 200) -> Any:
        status, doc = await self.hcp.api("POST", "/api/v1/login", {"username": name, "password": password},
                                         token=None)
        assert status == expect, (status, doc)
        return doc["token"] if status == 200 else doc


@pytest.fixture
def staff(hcp: Hcp, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Staff:
    monkeypatch.chdir(tmp_path)  # no haochaping.toml of anyone else's
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", database_url)
    monkeypatch.setenv("HAOCHAPING_USER_PASSWORD", PASSWORD)
    return Staff(hcp, monkeypatch)


async def act(hcp: Hcp, wo_id: int, action: str, body: dict[str, Any] | None = None, token: str | None = TOKEN,
              expect: int = 200) -> dict[str, Any]:
    status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body or {}, token=token)
    assert status == expect, (action, status, doc)
    return doc


async def get_wo(hcp: Hcp, wo_id: int, token: str | None = TOKEN, expect: int = 200) -> dict[str, Any]:
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}", token=token)
    assert status == expect, (status, doc)
    return doc


async def listing(hcp: Hcp, query: str = "", token: str | None = TOKEN) -> list[dict[str, Any]]:
    status, doc = await hcp.api("GET", "/api/v1/work-orders" + (f"?{query}" if query else ""), token=token)
    assert status == 200, (status, doc)
    return doc["work_orders"]


async def the_work_order(hcp: Hcp, case_no: str) -> dict[str, Any]:
    orders = (await hcp.case(case_no))["work_orders"]
    assert len(orders) == 1, orders
    return orders[0]


async def bad_case(hcp: Hcp, rated_at: str = "2026-09-30T10:00:00+08:00",
                   completed_at: str = "2026-09-29T10:00:00+08:00", reasons: tuple[str, ...] = ("efficiency",),
                   **kw: Any) -> tuple[str, dict[str, Any]]:
    """A case rated dissatisfied at `rated_at` by the web page: (case_no, its one work order)."""
    doc = await hcp.post_case(completed_at=completed_at, **kw)
    hcp.clock.set(rated_at)
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=list(reasons))
    return doc["case_no"], await the_work_order(hcp, doc["case_no"])


async def to_reviewed(hcp: Hcp, wo_id: int, start: datetime) -> datetime:
    """dispatch, rectify and review, a day apart from `start`; the instant of the review."""
    for i, (action, body) in enumerate((("dispatch", {}), ("rectify", {"note": "fixed"}), ("review", {}))):
        hcp.clock.set(start + timedelta(days=i))
        await act(hcp, wo_id, action, body)
    return hcp.clock()


def events(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(e["action"], e["actor"], e["from"], e["to"], e["note"]) for e in doc["history"]]


# --- the calendar the lifecycle relies on ----------------------------------------------------------


def test_national_day_2026_is_a_holiday_week_in_chinesecalendar() -> None:
    """The premise of the deadlines below: 1–7 October 2026 are off, 30 September and 8 October work."""
    assert all(not chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(date(2026, 9, 30)) and chinese_calendar.is_workday(date(2026, 10, 8))
    # two working days after 30 September end after the holiday, not on 2 October
    assert working_deadline(cst("2026-09-30T10:00"), 2) > cst("2026-10-08T00:00")


# --- 1. the lifecycle with exact deadlines across National Day --------------------------------------


@on_both
async def test_lifecycle_across_national_day_with_exact_deadlines_and_history(hcp: Hcp, staff: Staff) -> None:
    await staff.add("l1a", "l1", AGENCY_A)
    await staff.add("l2a", "l2", AGENCY_A)
    await staff.add("agent1", "agent", "*")

    rated = cst("2026-09-30T10:00")
    case_no, wo = await bad_case(hcp, rated_at=rated.isoformat(), reasons=("efficiency",))
    wo_id = wo["id"]
    assert wo["status"] == "created" and wo["outcome"] is None and wo["overdue"] is False
    assert wo["case_no"] == case_no and wo["agency_code"] == AGENCY_A
    assert wo["grade"] == "dissatisfied" and wo["reasons"] == ["efficiency"]
    assert at(wo["rated_at"]) == rated
    due_dispatch = working_deadline(rated, 2)
    assert at(wo["due_at"]) == due_dispatch
    assert wo["due_at"].endswith("+08:00")
    assert sorted(wo["allowed"]) == ["appeal", "dispatch"]

    # dispatch just after midnight local on 8 October: 7 October (a holiday) in UTC, the 8th in Shanghai
    dispatched_at = cst("2026-10-08T00:30")
    hcp.clock.set(dispatched_at)
    token = await staff.login("l1a")
    doc = await act(hcp, wo_id, "dispatch", {"note": "转金平分局窗口"}, token=token)
    assert doc["status"] == "dispatched"
    assert at(doc["due_at"]) == working_deadline(dispatched_at, 10)

    # rectify needs a note
    rectified_at = cst("2026-10-12T15:00")
    hcp.clock.set(rectified_at)
    token = await staff.login("l2a")
    for body in ({}, {"note": "   "}):
        err = await act(hcp, wo_id, "rectify", body, token=token, expect=422)
        assert [e["field"] for e in err["errors"]] == ["note"]
    assert (await get_wo(hcp, wo_id))["status"] == "dispatched"
    doc = await act(hcp, wo_id, "rectify", {"note": "已约谈窗口人员并优化流程"}, token=token)
    assert doc["status"] == "rectified"
    assert at(doc["due_at"]) == working_deadline(rectified_at, 3)

    reviewed_at = cst("2026-10-13T09:00")
    hcp.clock.set(reviewed_at)
    token = await staff.login("l1a")
    doc = await act(hcp, wo_id, "review", {}, token=token)
    assert doc["status"] == "reviewed"
    assert at(doc["due_at"]) == working_deadline(reviewed_at, hcp.rt.policy.callback.days)
    assert "callback" in doc["allowed"]
    before_close = doc["history"]

    closed_at = cst("2026-10-14T11:00")
    hcp.clock.set(closed_at)
    token = await staff.login("agent1")
    doc = await act(hcp, wo_id, "callback", {"result": "satisfied", "note": "群众表示满意"}, token=token)
    assert (doc["status"], doc["outcome"], doc["due_at"], doc["allowed"]) == ("closed", "satisfied", None, [])
    assert at(doc["closed_at"]) == closed_at

    doc = await get_wo(hcp, wo_id)
    assert events(doc) == [
        ("create", "system", None, "created", None),
        ("dispatch", "l1a", "created", "dispatched", "转金平分局窗口"),
        ("rectify", "l2a", "dispatched", "rectified", "已约谈窗口人员并优化流程"),
        ("review", "l1a", "rectified", "reviewed", None),
        ("callback", "agent1", "reviewed", "closed", "群众表示满意"),
    ]
    assert [at(e["at"]) for e in doc["history"]] == [rated, dispatched_at, rectified_at, reviewed_at, closed_at]
    assert doc["history"][:len(before_close)] == before_close  # appended, nothing rewritten
    assert doc["history"][-1]["data"]["outcome"] == "satisfied"

    case = await hcp.case(case_no)
    assert [(e["channel"], e["grade"], e["status"]) for e in case["evaluations"]] == [
        ("web", "dissatisfied", "valid"), ("callback", "satisfied", "valid")]
    [in_case] = case["work_orders"]
    assert (in_case["id"], in_case["status"], in_case["outcome"]) == (wo_id, "closed", "satisfied")


# --- 2. overdue marking by tick --------------------------------------------------------------------


@on_pg
async def test_overdue_is_marked_from_exactly_due_at_once_and_cleared_by_the_next_step(hcp: Hcp) -> None:
    rated = cst("2026-09-30T10:00")
    _case_no, wo = await bad_case(hcp, rated_at=rated.isoformat())
    due = at(wo["due_at"])
    assert due == working_deadline(rated, 2)

    # two natural days would have ended on 3 October: nothing is due inside the holiday week
    assert (await hcp.tick(cst("2026-10-03T00:00")))["overdue"] == 0
    assert (await hcp.tick(cst("2026-10-07T23:59")))["overdue"] == 0
    assert (await hcp.tick(due - ONE_SECOND))["overdue"] == 0
    assert await listing(hcp, "overdue=true") == []

    counts = await hcp.tick(due)
    assert counts["overdue"] == 1, counts
    hcp.clock.set(due + timedelta(hours=9))
    [listed] = await listing(hcp, "overdue=true")
    assert (listed["id"], listed["overdue"], listed["overdue_steps"]) == (wo["id"], True, 1)
    assert await listing(hcp, "overdue=false") == []

    assert (await hcp.tick(due))["overdue"] == 0  # repeated
    assert (await hcp.tick(due + timedelta(days=1)))["overdue"] == 0  # later, same step
    assert (await hcp.tick(due - timedelta(days=1)))["overdue"] == 0  # earlier
    history = (await get_wo(hcp, wo["id"]))["history"]
    assert [e["action"] for e in history] == ["create", "overdue"]
    assert at(history[1]["at"]) == due

    doc = await act(hcp, wo["id"], "dispatch")
    assert doc["overdue"] is False and doc["overdue_steps"] == 1
    assert at(doc["due_at"]) == working_deadline(hcp.clock(), 10)
    assert await listing(hcp, "overdue=true") == []
    assert [o["id"] for o in await listing(hcp, "overdue=false")] == [wo["id"]]
    assert (await hcp.tick(at(doc["due_at"]) - ONE_SECOND))["overdue"] == 0
    assert (await hcp.tick(at(doc["due_at"])))["overdue"] == 1  # the next step is overdue on its own
    assert (await get_wo(hcp, wo["id"]))["overdue_steps"] == 2


@on_pg
async def test_haochaping_tick_now_marks_overdue_on_the_same_database(hcp: Hcp, database_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The command itself (`haochaping tick --now …`), not only its code path, against PostgreSQL."""
    _case_no, wo = await bad_case(hcp)
    due = at(wo["due_at"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", database_url)
    capsys.readouterr()

    async def tick(now: datetime) -> dict[str, int]:
        assert await asyncio.to_thread(cli.main, ["tick", "--now", now.isoformat()]) == 0
        return json.loads(capsys.readouterr().out)

    assert (await tick(due - ONE_SECOND))["overdue"] == 0
    assert (await tick(due))["overdue"] == 1
    assert (await tick(due))["overdue"] == 0
    doc = await get_wo(hcp, wo["id"])
    assert doc["overdue"] is True and [e["action"] for e in doc["history"]] == ["create", "overdue"]


@on_pg
async def test_a_closed_work_order_is_never_marked_overdue(hcp: Hcp) -> None:
    _case_no, wo = await bad_case(hcp)
    reviewed = await to_reviewed(hcp, wo["id"], cst("2026-10-08T09:00"))
    hcp.clock.set(reviewed + timedelta(hours=1))
    await act(hcp, wo["id"], "callback", {"result": "basically_satisfied"})
    assert (await hcp.tick(cst("2027-06-01T00:00")))["overdue"] == 0
    doc = await get_wo(hcp, wo["id"])
    assert (doc["status"], doc["outcome"], doc["overdue"]) == ("closed", "basically_satisfied", False)


# --- 3. the transition table -----------------------------------------------------------------------


@on_pg
async def test_a_step_not_allowed_now_is_409_naming_the_allowed_actions(hcp: Hcp) -> None:
    _case_no, wo = await bad_case(hcp)
    hcp.clock.set(cst("2026-10-08T09:00"))
    for action, body in (("rectify", {"note": "x"}), ("review", {}), ("callback", {"result": "satisfied"}),
                         ("decide-appeal", {"upheld": True})):
        doc = await act(hcp, wo["id"], action, body, expect=409)
        assert sorted(doc["allowed"]) == ["appeal", "dispatch"], (action, doc)

    await act(hcp, wo["id"], "dispatch")
    doc = await act(hcp, wo["id"], "dispatch", expect=409)
    assert sorted(doc["allowed"]) == ["appeal", "rectify", "request-extension"]  # extension: Fujian art. 16
    hcp.clock.set(cst("2026-10-20T09:00"))  # the appeal window has closed
    doc = await act(hcp, wo["id"], "review", expect=409)
    assert doc["allowed"] == ["rectify", "request-extension"]

    assert [e["action"] for e in (await get_wo(hcp, wo["id"]))["history"]] == ["create", "dispatch"]
    await act(hcp, wo["id"], "escalate", expect=404)
    await act(hcp, 999999, "dispatch", expect=404)
    await act(hcp, wo["id"], "rectify", {"note": "x"})
    await act(hcp, wo["id"], "review")
    err = await act(hcp, wo["id"], "callback", {"result": "maybe"}, expect=422)
    assert [e["field"] for e in err["errors"]] == ["result"]
    assert (await get_wo(hcp, wo["id"]))["status"] == "reviewed"
    assert [o["id"] for o in await listing(hcp, "status=reviewed")] == [wo["id"]]
    assert await listing(hcp, "status=created") == []
    status, doc = await hcp.api("GET", "/api/v1/work-orders?status=done")
    assert status == 422, doc


# --- 4. reopen once --------------------------------------------------------------------------------


@on_pg
async def test_dissatisfied_callback_reopens_once_then_closes_unresolved(hcp: Hcp) -> None:
    assert hcp.rt.policy.callback_reopen_limit == 1
    case_no, wo = await bad_case(hcp)
    reviewed = await to_reviewed(hcp, wo["id"], cst("2026-10-08T09:00"))

    first_call = reviewed + timedelta(hours=2)
    hcp.clock.set(first_call)
    doc = await act(hcp, wo["id"], "callback", {"result": "dissatisfied", "note": "问题仍未解决"})
    assert (doc["status"], doc["reopened"], doc["outcome"]) == ("dispatched", 1, None)
    assert at(doc["due_at"]) == working_deadline(first_call, 10)  # the rectify step again, from the callback
    # the appeal window (to 14 October) is still open; an extension may be asked (Fujian art. 16)
    assert sorted(doc["allowed"]) == ["appeal", "rectify", "request-extension"]
    assert doc["history"][-1]["action"] == "reopen"
    assert (doc["history"][-1]["from"], doc["history"][-1]["to"]) == ("reviewed", "dispatched")

    reviewed = await to_reviewed_from_dispatched(hcp, wo["id"], first_call + timedelta(days=1))
    hcp.clock.set(reviewed + timedelta(hours=2))
    doc = await act(hcp, wo["id"], "callback", {"result": "dissatisfied"})
    assert (doc["status"], doc["outcome"], doc["reopened"], doc["allowed"]) == ("closed", "unresolved", 1, [])
    assert [e["action"] for e in doc["history"]] == [
        "create", "dispatch", "rectify", "review", "reopen", "rectify", "review", "callback"]

    # Hainan art. 15: a dissatisfied answer is no rating; the review stands alone, and the answer and its
    # note are in the work order's history (tests/bot/work_orders/test_work_orders_outcomes.py checks the figures)
    evaluations = (await hcp.case(case_no))["evaluations"]
    assert [(e["channel"], e["grade"], e["status"]) for e in evaluations] == [("web", "dissatisfied", "valid")]
    assert evaluations[0]["reasons"] == ["efficiency"]  # the original bad review stays as it was
    reopen = [e for e in doc["history"] if e["action"] == "reopen"]
    assert [(e["data"]["result"], e["note"]) for e in reopen] == [("dissatisfied", "问题仍未解决")]
    # a callback's dissatisfied answer is not a new bad review: still one work order
    assert len((await hcp.case(case_no))["work_orders"]) == 1


async def to_reviewed_from_dispatched(hcp: Hcp, wo_id: int, start: datetime) -> datetime:
    hcp.clock.set(start)
    await act(hcp, wo_id, "rectify", {"note": "再次整改"})
    hcp.clock.set(start + timedelta(days=1))
    await act(hcp, wo_id, "review")
    return hcp.clock()


# --- 5. unreachable --------------------------------------------------------------------------------


@on_pg
async def test_the_third_unreachable_callback_closes_with_outcome_unreachable(hcp: Hcp) -> None:
    case_no, wo = await bad_case(hcp)
    reviewed = await to_reviewed(hcp, wo["id"], cst("2026-10-08T09:00"))
    due_callback = working_deadline(reviewed, hcp.rt.policy.callback.days)
    for n in (1, 2):
        hcp.clock.set(reviewed + timedelta(hours=n))
        doc = await act(hcp, wo["id"], "callback", {"result": "unreachable", "note": f"第{n}次无人接听"})
        assert (doc["status"], doc["unreachable"], doc["outcome"]) == ("reviewed", n, None)
        assert at(doc["due_at"]) == due_callback  # still the callback step, its deadline unchanged
        assert "callback" in doc["allowed"]
    hcp.clock.set(reviewed + timedelta(hours=3))
    doc = await act(hcp, wo["id"], "callback", {"result": "unreachable"})
    assert (doc["status"], doc["outcome"], doc["unreachable"]) == ("closed", "unreachable", 3)
    assert [(e["action"], e["from"], e["to"]) for e in doc["history"][-3:]] == [
        ("callback", "reviewed", "reviewed"), ("callback", "reviewed", "reviewed"), ("callback", "reviewed", "closed")]
    # nobody answered: no callback rating
    assert [e["channel"] for e in (await hcp.case(case_no))["evaluations"]] == ["web"]


# --- 6. appeals ------------------------------------------------------------------------------------


@on_pg
async def test_appeal_upheld_closes_excluded_and_excludes_the_review(hcp: Hcp, staff: Staff) -> None:
    await staff.add("l1a", "l1", AGENCY_A)
    await staff.add("l2a", "l2", AGENCY_A)
    case_no, wo = await bad_case(hcp)
    hcp.clock.set(cst("2026-10-08T09:00"))
    l1, l2 = await staff.login("l1a"), await staff.login("l2a")

    err = await act(hcp, wo["id"], "appeal", {}, token=l2, expect=422)
    assert [e["field"] for e in err["errors"]] == ["reason"]
    assert (await get_wo(hcp, wo["id"]))["appeal"] is None
    await act(hcp, wo["id"], "appeal", {"reason": "恶意"}, token=l1, expect=403)  # L2's step, not L1's

    doc = await act(hcp, wo["id"], "appeal", {"reason": "评价人当日未到窗口办理"}, token=l2)
    assert doc["status"] == "created" and doc["outcome"] is None
    assert doc["appeal"]["status"] == "pending" and doc["appeal"]["reason"] == "评价人当日未到窗口办理"
    assert doc["appeal"]["by"] == "l2a" and at(doc["appeal"]["at"]) == hcp.clock()
    assert sorted(doc["allowed"]) == ["decide-appeal", "dispatch"]
    await act(hcp, wo["id"], "decide-appeal", {"upheld": True}, token=l2, expect=403)  # L1 decides
    err = await act(hcp, wo["id"], "decide-appeal", {"upheld": "yes"}, token=l1, expect=422)
    assert [e["field"] for e in err["errors"]] == ["upheld"]

    hcp.clock.set(cst("2026-10-09T10:00"))
    l1, l2 = await staff.login("l1a"), await staff.login("l2a")  # a token lasts 12 hours
    doc = await act(hcp, wo["id"], "decide-appeal", {"upheld": True, "note": "经核实属实"}, token=l1)
    assert (doc["status"], doc["outcome"], doc["appeal"]["status"]) == ("closed", "excluded", "upheld")
    assert at(doc["appeal"]["decided_at"]) == cst("2026-10-09T10:00")
    assert [(e["action"], e["actor"], e["to"]) for e in doc["history"]] == [
        ("create", "system", "created"), ("appeal", "l2a", "created"), ("decide-appeal", "l1a", "closed")]

    [evaluation] = (await hcp.case(case_no))["evaluations"]
    assert (evaluation["grade"], evaluation["status"]) == ("dissatisfied", "excluded")
    doc = await act(hcp, wo["id"], "appeal", {"reason": "again"}, token=l2, expect=409)
    assert doc["allowed"] == []
    doc = await act(hcp, wo["id"], "dispatch", token=l1, expect=409)
    assert doc["allowed"] == []


@on_pg
async def test_appeal_rejected_changes_nothing_else_and_there_is_no_second(hcp: Hcp) -> None:
    case_no, wo = await bad_case(hcp)
    hcp.clock.set(cst("2026-10-08T09:00"))
    await act(hcp, wo["id"], "dispatch")
    before = await get_wo(hcp, wo["id"])
    await act(hcp, wo["id"], "appeal", {"reason": "评价与事项无关"})
    doc = await act(hcp, wo["id"], "decide-appeal", {"upheld": False})
    assert doc["appeal"]["status"] == "rejected"
    for key in ("status", "outcome", "due_at", "overdue", "reopened", "closed_at"):
        assert doc[key] == before[key], key
    assert doc["status"] == "dispatched"
    [evaluation] = (await hcp.case(case_no))["evaluations"]
    assert evaluation["status"] == "valid"

    doc = await act(hcp, wo["id"], "appeal", {"reason": "再申诉"}, expect=409)
    assert doc["allowed"] == ["rectify", "request-extension"]
    assert (await get_wo(hcp, wo["id"]))["appeal"]["status"] == "rejected"


@on_pg
async def test_appeal_window_is_5_working_days_from_the_bad_rating(hcp: Hcp) -> None:
    rated = cst("2026-09-30T10:00")
    _no1, early = await bad_case(hcp, rated_at=rated.isoformat())
    _no2, late = await bad_case(hcp, rated_at=rated.isoformat())
    closes = working_deadline(rated, 5)
    assert closes > cst("2026-10-13T00:00")  # the holiday week does not count

    hcp.clock.set(closes - ONE_SECOND)
    doc = await act(hcp, early["id"], "appeal", {"reason": "最后一秒"})
    assert doc["appeal"]["status"] == "pending"

    hcp.clock.set(closes)
    assert "appeal" not in (await get_wo(hcp, late["id"]))["allowed"]
    doc = await act(hcp, late["id"], "appeal", {"reason": "太晚了"}, expect=409)
    assert doc["allowed"] == ["dispatch"]
    assert (await get_wo(hcp, late["id"]))["appeal"] is None
    # a pending appeal is still decided after the window
    doc = await act(hcp, early["id"], "decide-appeal", {"upheld": False})
    assert doc["appeal"]["status"] == "rejected"


@on_pg
async def test_a_pending_appeal_can_always_be_decided(hcp: Hcp) -> None:
    case_no, wo = await bad_case(hcp)
    hcp.clock.set(cst("2026-10-08T08:00"))
    await act(hcp, wo["id"], "appeal", {"reason": "评价人并非办事人"})
    # the steps, as far as the service lets them go while the appeal is pending
    for i, (action, body) in enumerate((("dispatch", {}), ("rectify", {"note": "已整改"}), ("review", {}),
                                        ("callback", {"result": "satisfied"}))):
        hcp.clock.set(cst("2026-10-08T09:00") + timedelta(hours=i))
        status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/{action}", body)
        assert status in (200, 409), (action, status, doc)
    doc = await get_wo(hcp, wo["id"])
    assert doc["appeal"]["status"] == "pending"
    assert "decide-appeal" in doc["allowed"], doc["allowed"]
    await act(hcp, wo["id"], "decide-appeal", {"upheld": True})
    assert (await hcp.evaluations(case_no))[0]["status"] == "excluded"


@on_pg
async def test_an_upheld_appeal_excludes_the_whole_batch_rating(hcp: Hcp) -> None:
    nos = [(await hcp.post_case(batch_no="PC-FALSE"))["case_no"] for _ in range(3)]
    await hcp.rate(nos[0], "very_dissatisfied", reasons=["process"])
    wo = await the_work_order(hcp, nos[0])
    await act(hcp, wo["id"], "appeal", {"reason": "恶意差评"})
    doc = await act(hcp, wo["id"], "decide-appeal", {"upheld": True})
    assert doc["outcome"] == "excluded"
    statuses = {no: [e["status"] for e in await hcp.evaluations(no)] for no in nos}
    assert statuses == {no: ["excluded"] for no in nos}


# --- 7. the blacklist ------------------------------------------------------------------------------


@on_pg
class TestBlacklist:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        path = tmp_path / "policy.toml"
        path.write_text("blacklist = { false_reviews = 2, within_days = 365, barred_days = 365 }\n", encoding="utf-8")
        return str(path)

    async def uphold(self, hcp: Hcp, case_no: str) -> dict[str, Any]:
        await hcp.rate(case_no, "very_dissatisfied", reasons=["other"], text="乱评")
        wo = await the_work_order(hcp, case_no)
        await act(hcp, wo["id"], "appeal", {"reason": "恶意差评"})
        return await act(hcp, wo["id"], "decide-appeal", {"upheld": True})

    async def test_two_upheld_false_reviews_bar_the_phone(self, hcp: Hcp) -> None:
        assert hcp.rt.policy.blacklist["false_reviews"] == 2
        phone = hcp.new_phone()
        hcp.clock.set(cst("2026-11-21T09:00"))
        first = await hcp.post_case(phone=phone, completed_at="2026-11-20T09:00:00+08:00")
        second = await hcp.post_case(phone="+86" + phone, completed_at="2026-11-20T09:30:00+08:00")  # E.164: same
        doc = await self.uphold(hcp, first["case_no"])
        assert "blacklist" not in [e["action"] for e in doc["history"]]  # one strike is not enough
        doc = await self.uphold(hcp, second["case_no"])
        assert doc["history"][-1]["action"] == "blacklist"
        assert doc["history"][-1]["data"]["strikes"] == 2

        # the third case of that phone: no reminder goes to one who cannot rate (it is recorded as skipped) …
        third = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
        case_no = third["case_no"]
        counts = await hcp.tick(at(third["remind_at"]))
        assert (counts["reminders"], counts["sent"]) == (0, 0), counts
        assert hcp.twilio.sms_to(phone) == []
        assert [(r["channel"], r["status"]) for r in (await hcp.case(case_no))["reminders"]] == [("sms", "skipped")]
        # … and whatever they send on any road is refused
        hcp.clock.set(at(third["remind_at"]) + timedelta(minutes=5))
        status, body = await hcp.api("POST", "/api/v1/evaluations",
                                     {"case_no": case_no, "grade": "very_satisfied", "channel": "web"})
        assert status == 403, (status, body)
        reply = await hcp.sms(phone, "1")
        assert reply.status == 200 and reply.messages
        assert "暂停" in reply.text and "12345" in reply.text, reply.text
        reply = await hcp.sms(phone, "5")
        assert reply.status == 200 and "暂停" in reply.text
        case = await hcp.case(case_no)
        assert case["evaluations"] == [] and case["work_orders"] == [] and case["rated"] is False

        # someone else still rates
        other = await hcp.post_case(phone=hcp.new_phone(), completed_at="2026-11-20T09:00:00+08:00")
        assert (await hcp.rate(other["case_no"], "satisfied"))["grade"] == "satisfied"

    async def test_a_rejected_appeal_is_no_strike(self, hcp: Hcp) -> None:
        phone = hcp.new_phone()
        hcp.clock.set(cst("2026-11-21T09:00"))
        for _ in range(2):
            doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T09:00:00+08:00")
            await hcp.rate(doc["case_no"], "dissatisfied", reasons=["fees"])
            wo = await the_work_order(hcp, doc["case_no"])
            await act(hcp, wo["id"], "appeal", {"reason": "不实"})
            await act(hcp, wo["id"], "decide-appeal", {"upheld": False})
        third = await hcp.post_case(phone=phone, completed_at="2026-11-20T09:00:00+08:00")
        assert (await hcp.rate(third["case_no"], "satisfied"))["grade"] == "satisfied"


# --- 8. follow-up ----------------------------------------------------------------------------------


@on_pg
async def test_a_dissatisfied_follow_up_opens_its_own_work_order(hcp: Hcp) -> None:
    doc = await hcp.post_case(completed_at="2026-09-29T10:00:00+08:00")
    case_no = doc["case_no"]
    hcp.clock.set(cst("2026-09-30T10:00"))
    first = await hcp.rate(case_no, "satisfied")
    assert first["is_followup"] is False
    assert (await hcp.case(case_no))["work_orders"] == []

    closes = working_deadline(cst("2026-09-30T10:00"), hcp.rt.policy.followup_window.days)
    hcp.clock.set(closes - ONE_SECOND)
    followup = await hcp.rate(case_no, "dissatisfied", reasons=["trips"])
    assert followup["is_followup"] is True
    wo = await the_work_order(hcp, case_no)
    assert (wo["status"], wo["grade"], wo["reasons"]) == ("created", "dissatisfied", ["trips"])
    assert at(wo["rated_at"]) == closes - ONE_SECOND
    assert at(wo["due_at"]) == working_deadline(closes - ONE_SECOND, 2)

    await hcp.rate(case_no, "very_dissatisfied", reasons=["trips"], expect=409)
    assert len((await hcp.case(case_no))["evaluations"]) == 2
    assert len((await hcp.case(case_no))["work_orders"]) == 1


@on_pg
async def test_a_follow_up_after_the_window_is_409_and_opens_nothing(hcp: Hcp) -> None:
    doc = await hcp.post_case(completed_at="2026-09-29T10:00:00+08:00")
    hcp.clock.set(cst("2026-09-30T10:00"))
    await hcp.rate(doc["case_no"], "satisfied")
    hcp.clock.set(working_deadline(cst("2026-09-30T10:00"), hcp.rt.policy.followup_window.days))
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["trips"], expect=409)
    assert (await hcp.case(doc["case_no"]))["work_orders"] == []


# --- 9. batch and bundle ---------------------------------------------------------------------------


@on_pg
async def test_a_batch_is_rated_once_for_all_its_cases(hcp: Hcp) -> None:
    nos = [(await hcp.post_case(batch_no="PC-001"))["case_no"] for _ in range(3)]
    # the same batch_no at another agency is another batch
    stranger = (await hcp.post_case(batch_no="PC-001", agency_code=AGENCY_B, agency_name="另一机构"))["case_no"]
    await hcp.rate(nos[1], "very_satisfied")
    for no in nos:
        [ev] = await hcp.evaluations(no)
        assert (ev["grade"], ev["channel"]) == ("very_satisfied", "web")
        assert ev["via"] == (None if no == nos[1] else "batch"), (no, ev)
    assert await hcp.evaluations(stranger) == []


@on_pg
async def test_a_bad_batch_rating_makes_one_work_order(hcp: Hcp) -> None:
    nos = [(await hcp.post_case(batch_no="PC-BAD"))["case_no"] for _ in range(3)]
    await hcp.rate(nos[2], "very_dissatisfied", reasons=["process"])
    for no in nos:
        [ev] = await hcp.evaluations(no)
        assert ev["grade"] == "very_dissatisfied" and ev["reasons"] == ["process"]
    orders = await listing(hcp, f"agency_code={AGENCY_A}")
    assert len(orders) == 1, orders
    assert orders[0]["case_no"] == nos[2]


@on_pg
async def test_a_bundle_rating_goes_to_the_items_not_rated_apart(hcp: Hcp) -> None:
    """Shantou art. 31 (一件事): an item rated on its own keeps its rating; a rating given with scope "bundle"
    goes to the items not rated yet."""
    apart = (await hcp.post_case(bundle_no="YJS-01", item_code="ITEM-A"))["case_no"]
    await hcp.rate(apart, "very_satisfied")  # the first item, rated on its own when it was done
    rated, third = [(await hcp.post_case(bundle_no="YJS-01", item_code=code,
                                         agency_code=AGENCY_B, agency_name="另一机构"))["case_no"]
                    for code in ("ITEM-B", "ITEM-C")]
    await hcp.rate(rated, "satisfied", scope="bundle")

    [own] = await hcp.evaluations(apart)
    assert (own["grade"], own["via"]) == ("very_satisfied", None)
    [ev] = await hcp.evaluations(rated)
    assert (ev["grade"], ev["via"]) == ("satisfied", None)
    [got] = await hcp.evaluations(third)
    assert (got["grade"], got["via"], got["is_followup"]) == ("satisfied", "bundle", False)


# --- 10. users, tokens and jurisdictions -----------------------------------------------------------


@on_pg
async def test_jurisdiction_roles_and_tokens(hcp: Hcp, staff: Staff) -> None:
    await staff.add("l1a", "l1", AGENCY_A)
    await staff.add("l2a", "l2", AGENCY_A)
    await staff.add("l2b", "l2", AGENCY_B)
    await staff.add("agentx", "agent", AGENCY_A, AGENCY_B)
    _case_no, wo = await bad_case(hcp)
    hcp.clock.set(cst("2026-10-08T09:00"))
    l1a, l2a, l2b, agent = [await staff.login(n) for n in ("l1a", "l2a", "l2b", "agentx")]

    # another agency's user: refused, and sees nothing
    await get_wo(hcp, wo["id"], token=l2b, expect=403)
    for action, body in (("dispatch", {}), ("rectify", {"note": "x"}), ("appeal", {"reason": "x"})):
        await act(hcp, wo["id"], action, body, token=l2b, expect=403)
    assert await listing(hcp, token=l2b) == []
    assert await listing(hcp, f"agency_code={AGENCY_A}", token=l2b) == []
    # their own agency's user sees it; the agent with both agencies too
    assert [o["id"] for o in await listing(hcp, token=l2a)] == [wo["id"]]
    assert [o["id"] for o in await listing(hcp, token=agent)] == [wo["id"]]
    assert (await get_wo(hcp, wo["id"], token=l2a))["status"] == "created"

    # roles: L2 does not dispatch, the agent neither; L1 does
    await act(hcp, wo["id"], "dispatch", token=l2a, expect=403)
    await act(hcp, wo["id"], "dispatch", token=agent, expect=403)
    doc = await act(hcp, wo["id"], "dispatch", token=l1a)
    assert doc["status"] == "dispatched" and doc["history"][-1]["actor"] == "l1a"
    # the 403s left no trace
    assert [e["action"] for e in doc["history"]] == ["create", "dispatch"]

    # no token, a wrong token, a wrong password, an unknown user
    status, _ = await hcp.api("GET", "/api/v1/work-orders", token=None)
    assert status == 401
    status, _ = await hcp.api("GET", f"/api/v1/work-orders/{wo['id']}", token=l1a[:-2] + "xx")
    assert status == 401
    status, _ = await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/rectify", {"note": "x"}, token=None)
    assert status == 401
    await staff.login("l1a", "wrong password!", expect=401)
    await staff.login("nobody", PASSWORD, expect=401)

    # a disabled user's token stops working at once, and they cannot log in again
    await staff.disable("l2a")
    status, _ = await hcp.api("GET", "/api/v1/work-orders", token=l2a)
    assert status == 401
    status, _ = await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/rectify", {"note": "x"}, token=l2a)
    assert status == 401
    await staff.login("l2a", expect=401)
    assert (await get_wo(hcp, wo["id"]))["status"] == "dispatched"

    # a new password ends the old tokens; the new one logs in, the old one no more
    await staff.set_password("l2b", "another long password")
    status, _ = await hcp.api("GET", "/api/v1/work-orders", token=l2b)
    assert status == 401
    await staff.login("l2b", expect=401)
    assert await listing(hcp, token=await staff.login("l2b", "another long password")) == []

    # a user token expires (12 hours); a new login works
    hcp.clock.set(hcp.clock() + users.TOKEN_TTL)
    status, _ = await hcp.api("GET", "/api/v1/work-orders", token=l1a)
    assert status == 401
    assert len(await listing(hcp, token=await staff.login("l1a"))) == 1


@on_pg
async def test_user_tokens_do_not_open_the_business_api(hcp: Hcp, staff: Staff) -> None:
    await staff.add("admin1", "admin", "*")
    doc = await hcp.post_case()
    token = await staff.login("admin1")
    status, _ = await hcp.api("GET", f"/api/v1/cases/{doc['case_no']}", token=token)
    assert status == 401


@on_pg
async def test_the_cli_refuses_bad_users(hcp: Hcp, staff: Staff) -> None:
    assert await staff.cli("add", "x1", "--role", "l1", "--agency", AGENCY_A) == 0
    assert await staff.cli("add", "x1", "--role", "l1", "--agency", AGENCY_A) == 2  # exists already
    assert await staff.cli("disable", "nobody") == 2
    with pytest.raises(SystemExit):  # argparse refuses before any asyncio.run
        cli.main(["users", "add", "x2", "--role", "boss", "--agency", AGENCY_A])
    await staff.login("x1")


def test_passwords_are_scrypt_hashed_and_verified() -> None:
    stored = users.hash_password("s3cret-password", n=2**10)
    assert stored.startswith("scrypt$")
    assert "s3cret-password" not in stored
    assert users.verify_password("s3cret-password", stored) is True
    assert users.verify_password("s3cret-passwore", stored) is False
    assert users.verify_password("", stored) is False
    assert users.hash_password("s3cret-password", n=2**10) != stored  # salted
    assert users.verify_password("s3cret-password", "not-a-hash") is False
    assert users.verify_password("s3cret-password", "bcrypt$1$2$3$4$5") is False
    default_cost = users.hash_password("another password")
    assert default_cost.split("$")[1] == str(users.SCRYPT_N)
    assert users.verify_password("another password", default_cost)


# --- 11. exactly one work order per bad review ------------------------------------------------------


@on_pg
async def test_an_sms_bad_review_makes_exactly_one_work_order(hcp: Hcp) -> None:
    case_no, phone, _sms = await hcp.reminded()
    ask = await hcp.sms(phone, "4")
    assert "服务态度差" in ask.text
    assert (await hcp.case(case_no))["work_orders"] == []  # a bad grade without reasons is not a rating yet
    done = await hcp.sms(phone, "1", sid="SM" + "a" * 32)
    assert done.status == 200 and done.messages
    again = await hcp.sms(phone, "1", sid="SM" + "a" * 32)  # Twilio's retry of the same message
    assert again.status == 200
    await hcp.sms(phone, "窗口工作人员态度很差")  # the optional sentence after the reasons
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["channel"], ev["reasons"]) == ("dissatisfied", "sms", ["attitude"])
    [wo] = case["work_orders"]
    assert (wo["grade"], wo["reasons"], wo["status"]) == ("dissatisfied", ["attitude"], "created")
    assert wo["staff_id"] == "G1024"  # attitude concerns the clerk
    assert [o["case_no"] for o in await listing(hcp)] == [case_no]
    assert phone not in str(await get_wo(hcp, wo["id"]))  # the rater's number never shows


@on_pg
@pytest.mark.parametrize(("reasons", "staff_id"), [(["attitude"], "G1024"), (["fees"], None),
                                                    (["fees", "attitude"], "G1024")])
async def test_a_clerk_reason_names_the_clerk_on_the_work_order(hcp: Hcp, reasons: list[str],
                                                                staff_id: str | None) -> None:
    assert "attitude" in hcp.rt.policy.clerk_reasons and "fees" not in hcp.rt.policy.clerk_reasons
    doc = await hcp.post_case(staff_id="G1024", staff_name="李四")
    await hcp.rate(doc["case_no"], "very_dissatisfied", reasons=reasons, channel="hall")
    wo = await the_work_order(hcp, doc["case_no"])
    assert wo["staff_id"] == staff_id
    assert wo["staff_name"] == ("李四" if staff_id else None)
    assert wo["reasons"] == reasons


@on_pg
async def test_a_clerk_reason_without_a_clerk_names_nobody(hcp: Hcp) -> None:
    body = Hcp.case_body()
    del body["staff_id"], body["staff_name"]
    status, doc = await hcp.api("POST", "/api/v1/cases", body)
    assert status == 201, doc
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["attitude"])
    wo = await the_work_order(hcp, doc["case_no"])
    assert wo["staff_id"] is None


@on_pg
async def test_good_ratings_and_defaults_open_no_work_order(hcp: Hcp) -> None:
    good = await hcp.post_case(completed_at="2026-09-29T10:00:00+08:00")
    hcp.clock.set(cst("2026-09-30T10:00"))
    await hcp.rate(good["case_no"], "basically_satisfied")
    unrated = await hcp.post_case(completed_at="2026-09-29T10:00:00+08:00")
    counts = await hcp.tick(at(unrated["default_at"]))
    assert counts["defaults"] == 1
    assert await listing(hcp) == []
