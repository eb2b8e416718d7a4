"""Hostile input (issue 18, findings 6, 7, the log lines of 8 and the small ones of 14): what an attack on
the running service sent, replayed black-box through the HTTP client, on SQLite and on PostgreSQL.

Why: PostgreSQL answered bad input as an outage (a NUL byte anywhere was 503 with Retry-After, so clients
retried for ever, and one such line failed a whole bulk import; an id beyond INTEGER was 503); extreme dates
were 500 (an export started 200 and was cut off); a %0a in a URL wrote a forged line into the log, a client
that went away was logged as "database unavailable"; a 5,000-digit Twilio ErrorCode and /static/%00 were 500;
a U+202E in a rater's words turned the console's text around. The contract's rules of detail: control
characters (tab, CR and LF aside) in the API and the pages are 422 naming the field, removed from a citizen's
message; instants outside 2000-01-01 … 2099-12-31 are 422, periods outside are clamped; ids beyond the
store's range are 404; never a 5xx.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from aiohttp import web
from console_support import AGENCY_A, Browser, add_user, alert, csrf, dashboard_table, logged_in, msg, order_at
from helpers import TOKEN, Hcp
from servers import BACKENDS
from yarl import URL

from bot.infra.i18n import SOURCE
from bot.infra.logs import setup_logging
from bot.web.app import build_app

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

NUL = "\x00"
# Every text field of POST /api/v1/cases, with a value that is fine without the NUL.
CASE_FIELDS = ("case_no", "item_code", "item_name", "agency_code", "agency_name", "staff_id", "staff_name",
               "hall_code", "hall_name", "district_code", "district_name", "batch_no", "bundle_no",
               "applicant.name", "applicant.locale", "applicant.wechat_openid", "applicant.mp_openid",
               "applicant.phone", "completed_at", "kind")
GOOD = {"hall_code": "H-1", "hall_name": "金平大厅", "district_code": "440511", "district_name": "金平区",
        "batch_no": "B-1", "bundle_no": "BU-1", "applicant.wechat_openid": "o" + "a" * 27,
        "applicant.mp_openid": "o" + "b" * 27, "applicant.phone": "13800138000"}
FORGED = "2026-11-21 10:00:00,000 INFO haochaping.exports unmasked export by admin (admin): evaluations.csv"
BIG_IDS = (2**31, 999_999_999_999, 10**12, 2**63, 2**64)


def with_value(body: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    if field.startswith("applicant."):
        body.setdefault("applicant", {})[field.split(".", 1)[1]] = value
    else:
        body[field] = value
    return body


def poisoned(hcp: Hcp, field: str, bad: str = NUL) -> dict[str, Any]:
    """A case body whose `field` holds a control character in the middle of an otherwise good value."""
    body = hcp.case_body()
    current = GOOD.get(field) or (body.get("applicant", {}).get(field.split(".", 1)[1]) if "." in field
                                  else body.get(field))
    current = current or "zh-CN"
    return with_value(body, field, current[:2] + bad + current[2:])


def named(doc: Any, field: str) -> bool:
    return isinstance(doc, dict) and any(e.get("field") == field for e in doc.get("errors", []))


async def bulk(hcp: Hcp, lines: list[str]) -> tuple[int, Any]:
    resp = await hcp.client.post("/api/v1/cases:bulk", data="\n".join(lines).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
    return resp.status, (await resp.json() if resp.content_type == "application/json" else await resp.text())


# --- NUL bytes and other control characters: 422 naming the field ------------------------------------------


@on_both
async def test_a_nul_in_any_text_field_of_a_case_is_422_naming_that_field_and_nothing_is_stored(hcp):
    for field in CASE_FIELDS:
        body = poisoned(hcp, field)
        status, doc = await hcp.api("POST", "/api/v1/cases", body)
        assert status == 422 and named(doc, field), (field, status, doc)
        if field != "case_no":
            status, _ = await hcp.api("GET", f"/api/v1/cases/{body['case_no']}")
            assert status == 404, field
    for bad in ("\x1b[31m", "\x07", "\x7f", "\x85", "\x0b"):  # other controls: escape, bell, DEL, C1, VT
        status, doc = await hcp.api("POST", "/api/v1/cases", poisoned(hcp, "item_name", bad))
        assert status == 422 and named(doc, "item_name"), (bad, status, doc)
    # tab, CR and LF are text
    doc = await hcp.post_case(item_name="居民身份证\t换领\r\n（补领）")
    assert doc["item_name"] == "居民身份证\t换领\r\n（补领）"


@on_both
async def test_a_bulk_import_reports_each_poisoned_line_and_stores_every_good_one(hcp):
    good = [hcp.case_body() for _ in range(3)]
    lines = [json.dumps(good[0]), json.dumps(poisoned(hcp, "item_name")), json.dumps(good[1]),
             json.dumps(poisoned(hcp, "applicant.name")), json.dumps(poisoned(hcp, "case_no", "\x1b")),
             json.dumps(hcp.case_body(completed_at="9999-12-31T10:00:00+08:00")), json.dumps(good[2])]
    status, doc = await bulk(hcp, lines)
    assert status == 200, (status, doc)
    assert doc["created"] == 3 and doc["existing"] == 0, doc
    assert [(e["line"], [f["field"] for f in e["errors"]]) for e in doc["errors"]] == [
        (2, ["item_name"]), (4, ["applicant.name"]), (5, ["case_no"]), (6, ["completed_at"])], doc
    for body in good:
        assert (await hcp.case(body["case_no"]))["item_name"] == body["item_name"]


@on_both
async def test_a_nul_in_a_rating_is_422_naming_the_field(hcp):
    doc = await hcp.post_case()
    status, err = await hcp.api("POST", "/api/v1/evaluations", {"case_no": doc["case_no"], "grade": "dissatisfied",
                                                               "reasons": ["attitude"], "text": "态度\x00差",
                                                               "channel": "web"})
    assert status == 422 and named(err, "text"), (status, err)
    status, err = await hcp.api("POST", "/api/v1/evaluations", {"case_no": doc["case_no"] + NUL,
                                                               "grade": "satisfied", "channel": "web"})
    assert status == 422 and named(err, "case_no"), (status, err)
    assert await hcp.evaluations(doc["case_no"]) == []
    # a path that names a case with a control character names none
    status, _ = await hcp.api("GET", f"/api/v1/cases/{doc['case_no']}%00")
    assert status in (404, 422), status
    rated = await hcp.rate(doc["case_no"], "dissatisfied", reasons=["attitude"], text="第一行\n第二行\t完")
    assert rated["text"] == "第一行\n第二行\t完"


@on_both
async def test_a_nul_in_a_work_order_note_or_appeal_reason_is_422_naming_the_field(hcp):
    _case_no, wo_id, _phone = await order_at(hcp, "created")
    for action, body, field in (("dispatch", {"note": "已\x00派"}, "note"),
                                ("appeal", {"reason": "虚假\x00评价"}, "reason")):
        status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body)
        assert status == 422 and named(doc, field), (action, status, doc)
    status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/dispatch", {})
    assert status == 200 and doc["status"] == "dispatched", doc
    status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/rectify", {"note": "整改\x1b[2J完毕"})
    assert status == 422 and named(doc, "note"), (status, doc)
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert status == 200 and doc["status"] == "dispatched" and not any(
        "\x00" in (h.get("note") or "") for h in doc["history"]), doc


@on_both
async def test_a_nul_in_the_consoles_forms_is_422_naming_the_field(hcp):
    _case_no, wo_id, _phone = await order_at(hcp, "dispatched")
    l2 = await logged_in(hcp, "l2a", "l2", AGENCY_A)
    order = f"/console/orders/{wo_id}"
    status, page = await l2.get(order)
    status, page, _ = await l2.post(f"{order}/act/rectify", {"csrf": csrf(page), "note": "整改\x00完毕"})
    named_field = msg(hcp, "page.control_characters", field=msg(hcp, "console.field.rectify_note"))
    assert status == 422 and named_field in (alert(page) or ""), (status, alert(page))  # the field, in words
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert doc["status"] == "dispatched", doc
    # the log-in form
    await add_user(hcp, "agent1", "agent")
    browser = Browser(hcp)
    status, page, _ = await browser.login("agent1\x00")
    assert status == 422 and msg(hcp, "console.username") in (alert(page) or ""), (status, alert(page))
    status, doc = await hcp.api("POST", "/api/v1/login", {"username": "agent1\x00", "password": "x" * 12})
    assert status == 422 and named(doc, "username"), (status, doc)


@on_both
async def test_a_nul_in_the_rating_pages_words_is_422(hcp):
    case_no, _phone, sms = await hcp.reminded()
    path = re.search(r"/r/[A-Za-z0-9._-]+", sms["body"]).group(0)
    resp = await hcp.client.post(path, data={"grade": "dissatisfied", "reasons": "attitude", "text": "态度\x00差"},
                                 allow_redirects=False)
    assert resp.status == 422, (resp.status, (await resp.text())[:300])
    assert msg(hcp, "page.control_characters", field=hcp.rt.catalogs.text(SOURCE, "page.text")) in await resp.text()
    assert await hcp.evaluations(case_no) == []


@on_both
async def test_a_nul_in_an_sms_is_removed_and_the_rating_stored(hcp):
    case_no, phone, _ = await hcp.reminded()
    reply = await hcp.sms(phone, "5\x00")
    assert reply.status == 200 and reply.messages, reply.raw
    reply = await hcp.sms(phone, "1，窗口\x00态度\x07太差了")
    assert reply.status == 200 and reply.messages, reply.raw
    [evaluation] = await hcp.evaluations(case_no)
    assert evaluation["grade"] == "very_dissatisfied" and evaluation["reasons"] == ["attitude"], evaluation
    assert evaluation["text"] == "窗口态度太差了", evaluation


# --- ids beyond the store's range: 404 ------------------------------------------------------------------


@on_both
async def test_a_work_order_id_beyond_the_stores_range_is_404(hcp):
    await order_at(hcp, "created")
    l1 = await logged_in(hcp, "l1user", "l1")
    for big in BIG_IDS:
        status, doc = await hcp.api("GET", f"/api/v1/work-orders/{big}")
        assert status == 404, (big, status, doc)
        status, doc = await hcp.api("POST", f"/api/v1/work-orders/{big}/dispatch", {})
        assert status == 404, (big, status, doc)
        status, _page = await l1.get(f"/console/orders/{big}")
        assert status == 404, (big, status)
    status, doc = await hcp.api("GET", f"/api/v1/work-orders?after={2**31}")
    assert status == 422 or (status == 200 and doc["work_orders"] == []), (status, doc)
    status, doc = await hcp.api("GET", "/api/v1/work-orders", token=f"hcpu.{2**31}.9999999999.xx")
    assert status == 401, (status, doc)


# --- dates: instants outside 2000–2099 are 422, periods are clamped ----------------------------------------


@on_both
async def test_completed_at_outside_2000_to_2099_is_422(hcp):
    for instant in ("9999-12-31T10:00:00+08:00", "0001-01-01T00:00:00+08:00", "1999-12-31T23:59:59+08:00",
                    "2100-01-01T00:00:00+08:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        status, doc = await hcp.api("POST", "/api/v1/cases", hcp.case_body(completed_at=instant))
        assert status == 422 and named(doc, "completed_at"), (instant, status, doc)
    for instant in ("2000-01-01T00:00:00+08:00", "2099-12-31T23:59:59+08:00"):
        await hcp.post_case(completed_at=instant)


async def _rated_cases(hcp: Hcp) -> None:
    await hcp.post_case(case_no="H-1", completed_at="2026-11-20T10:00:00+08:00")
    await hcp.post_case(case_no="H-2", completed_at="2026-11-20T11:00:00+08:00")
    await hcp.rate("H-1", "satisfied")
    await hcp.rate("H-2", "dissatisfied", reasons=["attitude"], text="态度差")


WIDE = ("from=0001-01-01&to=9999-12-31", "from=0001-01-01T00:00:00%2B14:00&to=9999-12-31T23:59:59-12:00",
        "to=9999-12-31", "from=0001-01-01")


@on_both
async def test_stats_and_rankings_over_a_period_beyond_the_range_are_the_whole_range(hcp):
    await _rated_cases(hcp)
    for path in ("/api/v1/stats?by=agency", "/api/v1/stats?by=channel", "/api/v1/rankings?of=agency"):
        status, whole = await hcp.api("GET", path)
        assert status == 200, (path, whole)
        for period in WIDE:
            status, doc = await hcp.api("GET", f"{path}&{period}")
            assert status == 200 and doc == whole, (path, period, status, doc)
    status, doc = await hcp.api("GET", "/api/v1/stats?by=agency&from=9999-01-01&to=9999-12-31")
    assert status == 200 and doc["groups"] == [], (status, doc)


@on_both
async def test_exports_over_a_period_beyond_the_range_are_complete(hcp):
    await _rated_cases(hcp)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for kind, rows in (("evaluations", 2), ("work-orders", 1)):
        for period in WIDE:
            resp = await hcp.client.get(f"/api/v1/exports/{kind}.csv?{period}", headers=headers)
            body = await resp.read()
            assert resp.status == 200, (kind, period, resp.status, body[:300])
            table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
            assert len(table) == 1 + rows, (kind, period, table)
            resp = await hcp.client.get(f"/api/v1/exports/{kind}.xlsx?{period}", headers=headers)
            body = await resp.read()
            assert resp.status == 200, (kind, period, resp.status, body[:300])
            book = openpyxl.load_workbook(io.BytesIO(body))
            assert sum(1 for s in book.worksheets for _ in s.iter_rows()) == 1 + rows, (kind, period)


@on_both
async def test_the_dashboard_over_a_period_beyond_the_range_is_the_whole_range(hcp):
    await _rated_cases(hcp)
    l1 = await logged_in(hcp, "l1user", "l1")
    status, whole = await l1.get("/console/dashboard")
    assert status == 200
    for period in ("from=0001-01-01&to=9999-12-31", "to=9999-12-31", "from=0001-01-01"):
        status, page = await l1.get(f"/console/dashboard?{period}")
        assert status == 200, (period, status, page[:300])
        assert dashboard_table(page, "agency") == dashboard_table(whole, "agency"), period


async def test_the_cli_clamps_a_period_beyond_the_range(hcp, keep_logging, monkeypatch, capsys):
    from bot.cli import main as cli

    await _rated_cases(hcp)
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", hcp.rt.settings.database_url)

    async def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = await asyncio.to_thread(cli.main, list(args))
        return status, capsys.readouterr().out

    status, whole = await run("stats")
    assert status == 0
    status, out = await run("stats", "--from", "0001-01-01", "--to", "9999-12-31")
    assert status == 0 and json.loads(out) == json.loads(whole), out
    status, out = await run("stats", "rankings", "--from", "0001-01-01T00:00:00+14:00", "--to", "9999-12-31")
    assert status == 0 and json.loads(out)["rankings"], out
    status, _ = await run("tick", "--now", "9999-12-31T00:00:00+08:00")
    assert status == 2


# --- log lines cannot be forged ------------------------------------------------------------------------


class Lines(logging.Handler):
    """Counts the records the root logger writes; the app's own handler writes them to `stream`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.stream = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return self.stream.getvalue()

    def one_line_each(self) -> list[str]:
        """The written lines, checked to be exactly one per record (no record here has a traceback)."""
        lines = self.text().splitlines()
        assert len(lines) == len(self.records), (len(self.records), lines)
        return lines


@pytest.fixture
def log_lines(keep_logging: None) -> Iterator[Lines]:
    """The service's own logging set-up (bot.infra.logs.setup_logging), its handler writing to a buffer, and the
    aiohttp access log on."""
    setup_logging("INFO")
    root = logging.getLogger()
    [handler] = root.handlers
    lines = Lines()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(lines.stream)  # type: ignore[arg-type]
    root.addHandler(lines)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    yield lines
    root.removeHandler(lines)


async def settle(hcp: Hcp, route: str, before: int = 0, within: float = 15.0) -> None:
    """Until /metrics counts one more answer of `route` than `before` (the handler is done)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if answered(await (await hcp.client.get("/metrics")).text(), route) > before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{route} never answered")


def answered(metrics: str, route: str) -> int:
    return sum(int(float(m.group(1))) for m in re.finditer(
        rf'haochaping_http_requests_total{{route="{re.escape(route)}",status="[^"]*"}} (\S+)', metrics))


@on_both
async def test_a_newline_in_a_url_path_or_query_writes_one_log_line_with_visible_escapes(hcp, log_lines):
    await hcp.post_case(case_no="H-1")
    forged = "%0A" + FORGED.replace(" ", "%20")
    status, _ = await hcp.api("GET", f"/api/v1/cases/H-1{forged}")
    assert status in (404, 422), status
    status, doc = await hcp.api("GET", f"/api/v1/work-orders?agency_code=A{forged}")
    assert status == 422 and named(doc, "agency_code"), (status, doc)
    status, doc = await hcp.api("GET", f"/api/v1/exports/evaluations.csv?pii=full&agency_code=A{forged}")
    assert status == 422, (status, doc)
    lines = log_lines.one_line_each()
    assert not any(line.startswith(FORGED) for line in lines), lines
    assert sum(1 for line in lines if "\\n" + FORGED in line) >= 3, lines


@on_both
async def test_a_header_or_a_username_writes_one_log_line_with_visible_escapes(hcp, log_lines):
    for agent in ("x\u2028" + FORGED, "x\x85" + FORGED, "x\u202e" + FORGED):
        resp = await hcp.client.get("/healthz", headers={"User-Agent": agent})
        assert resp.status == 200
    status, doc = await hcp.api("POST", "/api/v1/login", {"username": "admin\n" + FORGED, "password": "x" * 12})
    assert status in (401, 422), (status, doc)
    await asyncio.sleep(0.1)  # the access log is written after the response
    lines = log_lines.one_line_each()
    assert not any(line.startswith(FORGED) for line in lines), lines
    assert any("\\u2028" + FORGED in line for line in lines), lines
    assert any("\\x85" + FORGED in line for line in lines), lines
    assert any("\\u202e" + FORGED in line for line in lines), lines
    assert any("admin\\n" + FORGED[:40] in line for line in lines), lines  # the name is logged cut to 64
    assert "\u202e" not in log_lines.text() and "\u2028" not in log_lines.text()


async def go_away_mid_body(hcp: Hcp, host: str, port: int) -> None:
    """A bulk import whose client sends the headers and one line of a 1 MB body, then is gone."""
    route = "/api/v1/cases:bulk"
    before = answered(await (await hcp.client.get("/metrics")).text(), route)
    reader, writer = await asyncio.open_connection(host, port)
    line = json.dumps(hcp.case_body()).encode() + b"\n"
    writer.write(b"POST " + route.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                 + b"\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000000\r\n"
                 + b"Expect: 100-continue\r\n\r\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 100")  # the request is in hand
    writer.write(line)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()  # gone, mid-body
    await settle(hcp, route, before)


@on_both
async def test_a_client_that_goes_away_mid_request_is_not_logged_as_a_database_outage(hcp, log_lines):
    # The test server cancels the handler when its client goes away (handler_cancellation=True) ...
    await go_away_mid_body(hcp, hcp.client.server.host, hcp.client.server.port)
    # ... `haochaping serve` does not: the handler reads on and gets ConnectionResetError.
    runner = web.AppRunner(build_app(hcp.rt), access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        await go_away_mid_body(hcp, host, port)
    finally:
        await runner.cleanup()
    text = log_lines.text()
    assert "unavailable" not in text, text
    assert not [r for r in log_lines.records if r.levelno >= logging.ERROR], text
    assert (await hcp.client.get("/healthz")).status == 200


# --- Twilio's status callback and static files ---------------------------------------------------------------


@on_both
async def test_an_absurd_twilio_error_code_is_not_a_5xx(hcp):
    case_no, _phone, sms = await hcp.reminded()
    path = "/webhooks/twilio/sms/status"
    for code in ("9" * 5000, "30007\x00", "<script>", "-1", "3000" * 10):
        for sid in (sms["sid"], "SM" + secrets.token_hex(16)):
            params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": code,
                      "AccountSid": hcp.twilio.account_sid}
            status, text = await hcp.twilio_post(path, params)
            assert status == 204, (code[:20], status, text[:300])
    [reminder] = (await hcp.case(case_no))["reminders"]
    assert reminder["status"] == "undelivered", reminder


@on_both
async def test_an_absurd_number_in_a_bearer_token_is_401(hcp):
    await add_user(hcp, "l1user", "l1")
    for token in ("hcpu.1." + "9" * 5000 + ".xx", f"hcpu.{2**31}.9999999999.xx", "hcpu.1.-5.xx"):
        status, doc = await hcp.api("GET", "/api/v1/work-orders", token=token)
        assert status == 401, (token[:30], status, doc)


@on_both
async def test_odd_static_paths_are_404(hcp):
    assert (await hcp.client.get("/static/app.css")).status == 200
    for path in ("/static/%00", "/static/app.css%00", "/static/%0a", "/static/..%2f..%2fpyproject.toml",
                 "/static/%2e%2e", "/static/" + "a" * 5000, "/static/..%5capp.css", "/static/%C0%AE%C0%AE",
                 "/static/app.css%2f", "/static/.", "/static/%ff"):
        # sent as written: the client would resolve "/static/%2e%2e" to "/", the service's home page (issue 19)
        resp = await hcp.client.session.get(URL(str(hcp.client.make_url("")) + path, encoded=True))
        assert resp.status == 404, (path[:60], resp.status, (await resp.text())[:200])


# --- the console shows bidi controls neutralised ---------------------------------------------------------------


@on_both
async def test_a_bidi_override_in_a_raters_words_shows_neutralised_on_the_console(hcp):
    text = "请回电\u202e0987-654 队排\u202c谢谢\u2066x\u2069"
    _case_no, wo_id, _phone = await order_at(hcp, "reviewed", text=text)
    agent = await logged_in(hcp, "agent1", "agent")
    for path in (f"/console/orders/{wo_id}", "/console/queue"):
        status, page = await agent.get(path)
        assert status == 200 and "请回电" in page, (path, status)
        for mark in ("\u202e", "\u202c", "\u2066", "\u2069"):
            assert mark not in page, (path, mark)
        assert "U+202E" in page and "U+202C" in page, path
