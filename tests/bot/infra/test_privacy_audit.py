"""Issue 18: numbers people write into free text leave the service masked, the reveal rule governs the
console and the exports alike, and every act on personal data or on who may see it is an audit row
that can be neither changed nor deleted (findings 4, 8 and 9 of the attack on the running service)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from console_support import (
    AGENCY_A,
    AGENCY_B,
    AGENCY_B_NAME,
    PASSWORD,
    Browser,
    add_user,
    api_login,
    logged_in,
    masked,
    national,
    order_at,
    queue_card,
    stored,
)
from export_support import both, fetch, read_csv, read_xlsx, xml_of
from helpers import TOKEN, Hcp
from servers import BACKENDS
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.cli import main as cli

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

# What people type, each with a number of its own (ASCII, full-width with +86 and dashes, blanks).
EVAL_TEXT = "窗口态度差，请打我电话13900139001，或者＋８６ １３７-００１３-７００２"
RECTIFY_NOTE = "已电话联系申请人13600136003说明情况"
APPEAL_REASON = "该评价人15800158004此前多次恶意差评"
DECIDE_NOTE = "经核实 15900159005 反映属实"
CALLBACK_NOTE = "无人接听，邻居说改打188 0018 8006"
ANSWER_NOTE = "满意，以后请打13300133008"
PLANTED = ("13900139001", "13700137002", "13600136003", "15800158004", "15900159005", "18800188006",
           "13300133008")
WIDE = str.maketrans("０１２３４５６７８９＋", "0123456789+")


def leaks(doc: Any) -> list[str]:
    """The planted numbers that a text (or a JSON document) still holds whole, in any spelling."""
    raw = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
    flat = raw.translate(WIDE).replace(" ", "").replace("-", "").replace("\u3000", "")
    return [n for n in PLANTED if n in flat]


async def worked_order(hcp: Hcp, *, at: str = "reviewed", agency: tuple[str, str] | None = None,
                       note: str = CALLBACK_NOTE) -> tuple[str, int, str]:
    """A bad review whose text holds two numbers, its work order taken to `at` (rectified, reviewed) by the
    API with a number in every note: the rectification, an appeal and its rejection, an unreachable
    callback. (case_no, work order id, the rater's number)."""
    case_no, wo_id, phone = await order_at(hcp, "created", text=EVAL_TEXT, agency=agency)
    for action, body in (("dispatch", {}), ("rectify", {"note": RECTIFY_NOTE}), ("appeal", {"reason": APPEAL_REASON}),
                         ("decide-appeal", {"upheld": False, "note": DECIDE_NOTE})):
        status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body)
        assert status == 200, (action, status, doc)
    if at == "reviewed":
        status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/review", {})
        assert status == 200, doc
        status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/callback",
                                    {"result": "unreachable", "note": note})
        assert status == 200 and doc["status"] == "reviewed", doc
    return case_no, wo_id, phone


async def audit(hcp: Hcp, query: str = "", token: str | None = TOKEN) -> list[dict[str, Any]]:
    status, doc = await hcp.api("GET", "/api/v1/audit" + (f"?{query}" if query else ""), token=token)
    assert status == 200, (status, doc)
    return list(doc["events"])


async def sql_rows(hcp: Hcp, sql: str) -> list[tuple[Any, ...]]:
    async with hcp.rt.db.read() as session:
        return [tuple(r) for r in (await session.exec(text(sql))).all()]  # type: ignore[call-overload]


async def user_token(hcp: Hcp, name: str, role: str, *agencies: str) -> str:
    await add_user(hcp, name, role, *agencies)
    status, doc, _headers = await api_login(hcp, name, PASSWORD)
    assert status == 200, doc
    return str(doc["token"])


# --- 4. free text leaves masked -----------------------------------------------------------------------------


@on_both
async def test_numbers_in_free_text_are_masked_in_the_case_and_work_order_apis(hcp):
    case_no, wo_id, phone = await worked_order(hcp)
    # A second case, closed by a satisfied callback whose note becomes the case's latest rating.
    case2, wo2, _phone2 = await order_at(hcp, "reviewed", text="态度一般")
    status, _doc = await hcp.api("POST", f"/api/v1/work-orders/{wo2}/callback",
                                 {"result": "satisfied", "note": ANSWER_NOTE})
    assert status == 200

    doc = await hcp.case(case_no)
    assert not leaks(doc) and phone not in json.dumps(doc)
    [evaluation] = doc["evaluations"]
    assert evaluation["text"] == "窗口态度差，请打我电话139****9001，或者１３７****７００２"
    [wo] = doc["work_orders"]
    assert wo["text"] == evaluation["text"] and wo["appeal"]["reason"] == "该评价人158****8004此前多次恶意差评"
    answer = (await hcp.case(case2))["evaluations"][-1]
    assert answer["channel"] == "callback" and answer["text"] == "满意，以后请打133****3008"

    status, listing = await hcp.api("GET", "/api/v1/work-orders")
    assert status == 200 and len(listing["work_orders"]) == 2 and not leaks(listing)
    one = await stored(hcp, wo_id)
    assert not leaks(one)
    notes = [h["note"] for h in one["history"] if h["note"]]
    assert notes == ["已电话联系申请人136****6003说明情况", "该评价人158****8004此前多次恶意差评",
                     "经核实 159****9005 反映属实", "无人接听，邻居说改打188****8006"]
    # The agency's own user, who never sees who rated: not their words' numbers either.
    l2 = await user_token(hcp, "l2a", "l2", AGENCY_A)
    status, listing = await hcp.api("GET", "/api/v1/work-orders", token=l2)
    assert status == 200 and len(listing["work_orders"]) == 2 and not leaks(listing)
    status, one = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}", token=l2)
    assert status == 200 and not leaks(one)
    # The answer to an action, and to a rating posted with a number in its words, are masked too.
    status, acted = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/callback",
                                  {"result": "unreachable", "note": "再拨13900139001"})
    assert status == 200 and not leaks(acted)
    other = await hcp.post_case(phone=hcp.new_phone())
    posted = await hcp.rate(other["case_no"], "satisfied", text="很好，我的号是13900139001")
    assert posted["text"] == "很好，我的号是139****9001"
    # Stored as written: only what leaves is masked.
    assert await sql_rows(hcp, f"SELECT text FROM evaluations WHERE id = {evaluation['id']}") == [(EVAL_TEXT,)]


@on_both
async def test_the_console_masks_free_text_and_only_the_reveal_answer_shows_it_whole(hcp):
    _case_no, wo_id, phone = await worked_order(hcp)
    agent = await logged_in(hcp, "agent1", "agent")
    status, page = await agent.get("/console/queue")
    card = queue_card(page, wo_id)
    assert status == 200 and not leaks(page) and "请打我电话139****9001" in card
    order = f"/console/orders/{wo_id}"
    status, page = await agent.get(order)
    assert status == 200 and not leaks(page)
    for shown in ("请打我电话139****9001", "已电话联系申请人136****6003说明情况", "该评价人158****8004此前多次恶意差评",
                  "经核实 159****9005 反映属实", "无人接听，邻居说改打188****8006"):
        assert shown in page, shown
    for name, role, agencies in (("l1user", "l1", ()), ("l2user", "l2", (AGENCY_A,)), ("boss", "admin", ())):
        browser = await logged_in(hcp, name, role, *agencies)
        for path in (order, "/console/orders", "/console/queue"):
            status, page = await browser.get(path)
            assert status in (200, 403) and not leaks(page), (role, path)

    # The reveal rule: at the callback step, to an agent of the queue, recorded. That answer alone holds the
    # rater's number and the words whole (the rater may have asked to be called at another number).
    status, page, _ = await agent.post(f"{order}/reveal", {"csrf": await agent.token(order)})
    assert status == 200 and national(phone) in page and EVAL_TEXT in page
    status, page = await agent.get(order)
    assert status == 200 and not leaks(page) and phone not in page and national(phone) not in page


# --- 9. exports: free text masked, whole numbers only where the console would reveal them -------------------


async def export_data(hcp: Hcp) -> dict[str, Any]:
    """A review at the callback step (agency A), one whose work order is not (agency B), and a good rating
    with a number in its words."""
    case_r, wo_r, phone_r = await worked_order(hcp)
    case_c, wo_c, phone_c = await order_at(hcp, "created", agency=(AGENCY_B, AGENCY_B_NAME),
                                           text="收费不合理，打13600136003找我")
    good = await hcp.post_case(phone=hcp.new_phone(), applicant={"name": "王小明"})
    await hcp.rate(good["case_no"], "satisfied", text="满意！有事打15800158004")
    return {"reviewed": (case_r, wo_r, phone_r), "created": (case_c, wo_c, phone_c), "good": good["case_no"]}


def by_case(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    return {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}


@on_both
async def test_masked_exports_mask_free_text_in_csv_and_xlsx(hcp):
    data = await export_data(hcp)
    for path in ("/api/v1/exports/evaluations", "/api/v1/exports/work-orders"):
        rows = await both(hcp, path, "")
        assert not leaks(rows), path
        for fmt in ("csv", "xlsx"):
            status, _headers, body = await fetch(hcp, f"{path}.{fmt}?pii=masked")
            raw = (body if fmt == "csv" else xml_of(body)).decode()
            assert status == 200 and not leaks(raw), (path, fmt)
    rows = by_case(await both(hcp, "/api/v1/exports/evaluations", ""))
    assert rows[data["reviewed"][0]]["text"] == "窗口态度差，请打我电话139****9001，或者１３７****７００２"
    assert rows[data["good"]]["text"] == "满意！有事打158****8004"
    # No unmasked export: no audit row.
    assert [e for e in await audit(hcp) if e["action"] == "export.unmasked"] == []


@on_both
async def test_an_agents_pii_full_export_reveals_only_the_callback_step_and_records_it(hcp):
    data = await export_data(hcp)
    case_r, wo_r, phone_r = data["reviewed"]
    case_c, wo_c, phone_c = data["created"]
    agent = await user_token(hcp, "agent-7", "agent", "*")
    for path in ("/api/v1/exports/evaluations", "/api/v1/exports/work-orders"):
        rows = by_case(await both(hcp, path, "pii=full", agent))
        assert rows[case_r]["rater"] == phone_r, path
        assert rows[case_c]["rater"] == masked(phone_c), path
        for fmt in ("csv", "xlsx"):
            status, _headers, body = await fetch(hcp, f"{path}.{fmt}?pii=full", agent)
            raw = (body if fmt == "csv" else xml_of(body)).decode()
            assert status == 200 and phone_c not in raw and "13600136003" not in raw and "15800158004" not in raw
    rows = by_case(await both(hcp, "/api/v1/exports/evaluations", "pii=full", agent))
    # At the callback step the words come whole with the number; elsewhere they stay masked, and so does
    # everything the console never shows an agent (the applicant's name).
    assert rows[case_r]["text"] == EVAL_TEXT and rows[case_r]["applicant"] == "张*"
    assert rows[case_c]["text"] == "收费不合理，打136****6003找我"
    assert rows[data["good"]]["text"] == "满意！有事打158****8004"
    assert rows[data["good"]]["applicant"] == "王**" and "*" in rows[data["good"]]["rater"]

    # Each revealed work order records it, as a reveal at the console does; the others record nothing.
    reveals = [h for h in (await stored(hcp, wo_r))["history"] if h["action"] == "reveal"]
    assert len(reveals) == 10 and {h["actor"] for h in reveals} == {"agent-7"}
    assert all(h["data"] == {"masked": masked(phone_r), "via": "export"} for h in reveals)
    assert [h for h in (await stored(hcp, wo_c))["history"] if h["action"] == "reveal"] == []
    # One audit row per export: who, the period and scope, how many rows, how many whole.
    events = [e for e in await audit(hcp) if e["action"] == "export.unmasked"]
    assert len(events) == 10 and {e["actor"] for e in events} == {"agent-7"}
    latest = events[0]
    assert latest["target"] == {"kind": "export", "id": "evaluations.xlsx"}
    assert latest["details"]["rows"] == 3 and latest["details"]["whole_rows"] == 1
    assert latest["details"]["work_orders"] == [wo_r] and latest["details"]["role"] == "agent"
    assert latest["details"]["from"] is None and latest["details"]["agencies"] == "*"
    assert latest["address"] == "127.0.0.1" and not leaks(events)


@on_both
async def test_an_admins_pii_full_export_stays_whole_and_is_audited(hcp):
    data = await export_data(hcp)
    case_c, _wo_c, phone_c = data["created"]
    admin = await user_token(hcp, "admin-1", "admin", "*")
    rows = by_case(await both(hcp, "/api/v1/exports/evaluations", "from=2026-11-01&to=2026-11-30&pii=full", admin))
    assert rows[case_c]["rater"] == phone_c and rows[case_c]["text"] == "收费不合理，打13600136003找我"
    assert rows[data["good"]]["applicant"] == "王小明"
    [csv_event, xlsx_event] = sorted((e for e in await audit(hcp) if e["action"] == "export.unmasked"),
                                     key=lambda e: e["id"])
    assert csv_event["actor"] == "admin-1" and csv_event["target"]["id"] == "evaluations.csv"
    assert csv_event["details"]["rows"] == csv_event["details"]["whole_rows"] == 3
    assert csv_event["details"]["from"].startswith("2026-11-01T00:00:00")
    assert csv_event["details"]["complete"] is True and xlsx_event["target"]["id"] == "evaluations.xlsx"


@on_both
async def test_the_cli_export_masks_free_text_and_its_unmasked_export_is_audited(hcp, settings, tmp_path):
    data = await export_data(hcp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAOCHAPING_")}
    env.update(HAOCHAPING_DATABASE_URL=settings.database_url)
    haochaping = str(Path(sys.executable).with_name("haochaping"))

    async def export(*args: str) -> bytes:
        proc = await asyncio.create_subprocess_exec(haochaping, "export", *args, cwd=tmp_path, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out

    out = await export("evaluations")
    rows = by_case(read_csv(out))
    assert not leaks(out.decode()) and rows[data["good"]]["text"] == "满意！有事打158****8004"
    target = tmp_path / "e.xlsx"
    await export("evaluations", "--output", str(target))
    assert not leaks(json.dumps(read_xlsx(target.read_bytes()), ensure_ascii=False))
    assert [e for e in await audit(hcp) if e["action"] == "export.unmasked"] == []
    # Whoever runs the CLI holds the database and its key: --unmasked is whole, as an admin's, and audited.
    out = await export("evaluations", "--unmasked", "--from", "2026-11-01", "--to", "2026-11-30")
    assert by_case(read_csv(out))[data["good"]]["text"] == "满意！有事打15800158004"
    [event] = [e for e in await audit(hcp) if e["action"] == "export.unmasked"]
    assert event["actor"].startswith("cli") and event["details"]["rows"] == 3 and event["address"] is None


# --- 8. the audit table ----------------------------------------------------------------------------------


@on_both
async def test_each_event_is_an_audit_row_written_with_its_change(hcp, database_url, monkeypatch, tmp_path,
                                                                 keep_logging):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", database_url)
    monkeypatch.setenv("HAOCHAPING_USER_PASSWORD", PASSWORD)

    async def users_cli(*args: str) -> int:
        return await asyncio.to_thread(cli.main, ["users", *args])

    # Users: created, given a new password, moved to another role and jurisdiction, disabled.
    assert await users_cli("add", "wang", "--role", "l2", "--agency", AGENCY_A) == 0
    assert await users_cli("add", "wang", "--role", "l2", "--agency", AGENCY_A) == 2  # exists: nothing recorded
    monkeypatch.setenv("HAOCHAPING_USER_PASSWORD", "another long password")
    assert await users_cli("password", "wang") == 0
    assert await users_cli("set", "wang", "--role", "l1", "--agency", AGENCY_A, "--agency", AGENCY_B) == 0
    assert await users_cli("disable", "wang") == 0
    events = await audit(hcp)
    assert [e["action"] for e in events] == ["user.disable", "user.update", "user.password", "user.create"]
    assert {e["target"]["kind"] for e in events} == {"user"} and len({e["target"]["id"] for e in events}) == 1
    assert all(e["actor"].startswith("cli") and e["address"] is None for e in events)
    assert events[3]["details"] == {"username": "wang", "role": "l2", "agencies": [AGENCY_A], "display_name": None}
    assert events[1]["details"] == {"username": "wang", "role": ["l2", "l1"],
                                    "agencies": [[AGENCY_A], [AGENCY_A, AGENCY_B]]}
    assert "password" not in json.dumps(events[2]["details"]) and "scrypt" not in json.dumps(events)
    status, _doc, _headers = await api_login(hcp, "wang", "another long password")
    assert status == 401  # disabled

    # A reveal at the console, and an appeal decided there.
    _case_no, wo_id, phone = await order_at(hcp, "reviewed")
    agent = await logged_in(hcp, "agent1", "agent")
    status, _page, _ = await agent.post(f"/console/orders/{wo_id}/reveal", {"csrf": await agent.token()})
    assert status == 200
    _case2, wo2, _phone2 = await order_at(hcp, "dispatched")
    l2 = await logged_in(hcp, "l2a", "l2", AGENCY_A)
    l1 = await logged_in(hcp, "l1a", "l1")
    status, _page, _ = await l2.post(f"/console/orders/{wo2}/act/appeal", {"csrf": await l2.token(), "reason": "x"})
    assert status == 200
    status, _page, _ = await l1.post(f"/console/orders/{wo2}/act/decide-appeal",
                                     {"csrf": await l1.token(), "upheld": "false", "note": "号码13900139001属实"})
    assert status == 200
    # A snapshot published by the API token; the same label again is refused and records nothing.
    body = {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-30"}
    status, snap = await hcp.api("POST", "/api/v1/stats/snapshots", body)
    assert status == 201
    status, _doc = await hcp.api("POST", "/api/v1/stats/snapshots", body)
    assert status == 409

    decided, revealed = (await audit(hcp, "action=appeal.decide"))[0], (await audit(hcp, "action=number.reveal"))[0]
    [published] = await audit(hcp, "action=snapshot.publish")
    assert (revealed["actor"], revealed["target"]) == ("agent1", {"kind": "work_order", "id": str(wo_id)})
    assert revealed["details"]["masked"] == masked(phone) and phone not in json.dumps(revealed)
    assert revealed["address"] == "127.0.0.1"
    assert (decided["actor"], decided["target"]) == ("l1a", {"kind": "work_order", "id": str(wo2)})
    assert decided["details"]["upheld"] is False and decided["details"]["note"] == "号码139****9001属实"
    assert decided["address"] == "127.0.0.1"
    assert (published["actor"], published["target"]) == ("api", {"kind": "snapshot", "id": "2026-11"})
    assert published["details"]["sha256"] == snap["sha256"]
    for event in await audit(hcp):
        assert datetime.fromisoformat(event["at"]).utcoffset() is not None
    # Written in the transaction of the change: a change that rolls back leaves no row.
    # Four user changes, three users of the console, a reveal, a decision, a snapshot.
    assert await sql_rows(hcp, "SELECT count(*) FROM audit_events") == [(10,)]


@on_both
async def test_an_audit_row_rolls_back_with_the_change_it_records(hcp, monkeypatch):
    from bot.work_orders import lifecycle as work_orders

    _case_no, wo_id, _phone = await order_at(hcp, "dispatched")
    status, _doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/appeal", {"reason": "不实"})
    assert status == 200

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the strike could not be written")

    monkeypatch.setattr(work_orders, "_strike", broken)  # the last step of an upheld appeal's transaction
    status, _doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/decide-appeal", {"upheld": True})
    assert status == 500
    assert (await stored(hcp, wo_id))["appeal"]["status"] == "pending"
    assert await audit(hcp, "action=appeal.decide") == []
    monkeypatch.undo()
    status, _doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/decide-appeal", {"upheld": True})
    assert status == 200 and len(await audit(hcp, "action=appeal.decide")) == 1


@on_both
async def test_audit_rows_cannot_be_updated_or_deleted(hcp):
    await add_user(hcp, "someone", "agent")
    [(event_id, actor)] = await sql_rows(hcp, "SELECT id, actor FROM audit_events")
    for sql in (f"UPDATE audit_events SET actor = 'nobody' WHERE id = {event_id}",
                f"UPDATE audit_events SET details = NULL WHERE id = {event_id}",
                f"DELETE FROM audit_events WHERE id = {event_id}", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with hcp.rt.db.write() as session:
                await session.exec(text(sql))  # type: ignore[call-overload]
    assert await sql_rows(hcp, "SELECT id, actor FROM audit_events") == [(event_id, actor)]


@on_both
async def test_the_audit_api_and_page_are_for_admins_newest_first_and_paged(hcp):
    for i in range(5):
        hcp.clock.set(f"2026-11-2{i + 1}T10:00:00+08:00")
        await add_user(hcp, f"user{i}", "agent")
    await add_user(hcp, "boss", "admin")
    everything = await audit(hcp)
    assert [e["details"]["username"] for e in everything] == ["boss", "user4", "user3", "user2", "user1", "user0"]
    assert everything[0]["at"] == "2026-11-25T10:00:00+08:00"
    assert [e["details"]["username"] for e in await audit(hcp, "from=2026-11-22&to=2026-11-23")] == ["user2", "user1"]
    assert await audit(hcp, "action=snapshot.publish") == []
    # Paged: `next` leads to the older rows.
    status, page1 = await hcp.api("GET", "/api/v1/audit?limit=4")
    assert status == 200 and [e["id"] for e in page1["events"]] == [e["id"] for e in everything[:4]]
    status, page2 = await hcp.api("GET", page1["next"])
    assert status == 200 and [e["id"] for e in page2["events"]] == [e["id"] for e in everything[4:]]
    assert "next" not in page2
    for query in ("from=yesterday", "action=" + "x" * 65, "limit=0", "before=abc"):
        status, doc = await hcp.api("GET", f"/api/v1/audit?{query}")
        assert status == 422, (query, doc)

    # Others: 403 with a token or a session; an admin's token and session read it.
    for name, role in (("l1x", "l1"), ("l2x", "l2"), ("agentx", "agent")):
        token = await user_token(hcp, name, role, "*")
        status, _doc = await hcp.api("GET", "/api/v1/audit", token=token)
        assert status == 403, role
        browser = Browser(hcp)
        await browser.login(name)
        status, _text, _r = await browser.request("GET", "/api/v1/audit")
        assert status == 403, role
        status, page = await browser.get("/console/audit")
        assert status == 403 and 'href="/console/audit"' not in page, role
    status, _doc = await hcp.api("GET", "/api/v1/audit", token=None)
    assert status == 401
    status, admin_token, _headers = await api_login(hcp, "boss", PASSWORD)
    assert len(await audit(hcp, token=admin_token["token"])) == 6 + 3  # the three users just made
    admin = Browser(hcp)
    await admin.login("boss")
    status, body, _r = await admin.request("GET", "/api/v1/audit?action=user.create&limit=2")
    assert status == 200 and len(json.loads(body)["events"]) == 2
    status, page = await admin.get("/console/audit")
    assert status == 200 and 'href="/console/audit"' in page
    assert page.index("agentx") < page.index("l2x") < page.index("l1x") < page.index("user4") < page.index("user0")
    status, page = await admin.get("/console/audit?action=user.create&from=2026-11-21&to=2026-11-21")
    assert status == 200 and "user0" in page and "user1" not in page


async def test_details_are_masked_before_they_are_stored(hcp):
    from bot.infra import audit as audit_log

    async with hcp.rt.db.write() as session:
        await audit_log.record(session, datetime(2026, 11, 21, 2, tzinfo=UTC), "api", "number.reveal",
                               target=("work_order", 1), details={"note": "打13900139001", "list": ["13700137002"]})
    [(details,)] = await sql_rows(hcp, "SELECT details FROM audit_events")
    assert not leaks(details) and "139****9001" in details
