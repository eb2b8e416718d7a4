"""Chinese first (issue 19): every page the service has speaks the reader's language, and nothing else.

Each page is fetched as a browser asks for it (Accept-Language: zh-CN, zh-TW, en-US) and read as its reader
reads it: the text of its elements, without scripts, styles, <code> (code shown as code: the audit's action
codes and stored details), attribute values, and what is marked as written in another language (the language
switch names each language in its own words). From what remains the data the test created is taken out
(case numbers, item and agency names, user names, what people typed), with URLs and paths, e-mail addresses
and the codes that hold a digit (case numbers, agency codes, masked numbers, ids). Then a Chinese page holds
no Latin word but the names of file types in brackets after what the file holds (工单（XLSX）), an English page
no Chinese, and no page a time with seconds (a deadline at midnight reads 2026年11月28日 00:00).

The tour goes through every page: the rating page behind a reminder's link (the form, each refusal of a form,
the thanks, the follow-up, used, expired, barred, a tampered link), the console (the log-in and its refusals,
the queue, the work orders list, a work order at every status with its history written by the service, the
business systems, agents and a rater's SMS, the callback script, a revealed number, each refused action, a stale
form, the dashboard, the audit table, the pages that are not there), the service's home page and the simulator
page, and the hall's (a window's and a terminal's device, a window's code, the console's hall page). The
mini-program's words are the catalogs' (scripts/mp_strings.py; its pages are tested under jest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from console_support import (
    AGENCY_A,
    AGENCY_A_NAME,
    AGENCY_B,
    AGENCY_B_NAME,
    PASSWORD,
    Browser,
    add_user,
    csrf,
    order_at,
)
from helpers import PUBLIC_URL, TOKEN, Hcp, without_providers

from bot.infra.limits import shown
from store import contacts as contact_store
from store import signals as signal_store
from store import supervision as supervision_store
from store import work_orders as work_order_store
from store.models import Case, Signal, SupervisionDraw

LANGUAGES = {"zh_Hans": "zh-CN,zh;q=0.9,en;q=0.5", "zh_Hant": "zh-TW,zh;q=0.9,en;q=0.5", "en": "en-US,en;q=0.9"}
CHINESE = ("zh_Hans", "zh_Hant")
# The Latin a Chinese page may hold besides data: the names of file types, which Chinese writes so too, in
# brackets after what the file holds (导出工单（XLSX）): never a word glued to the next label.
LATIN_IN_CHINESE = ("（CSV）", "（XLSX）")
# A callback asked by SMS as well as by an agent: a rater's answer is in a work order's history.
POLICY = 'callback = { by = ["agent", "sms"] }\n'

LATIN = re.compile(r"[A-Za-z]+")
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")
SECONDS = re.compile(r"\d{1,2}:\d{2}:\d{2}")
URL = re.compile(r"https?://[^\s\"'<>]+")
EMAIL = re.compile(r"[A-Za-z0-9_.+-]+@[A-Za-z0-9_.-]+")
PATH = re.compile(r"(?<![A-Za-z0-9_.-])/[A-Za-z0-9_.{}/?=&%:-]+")
CODE = re.compile(r"[A-Za-z0-9_.+*-]*\d[A-Za-z0-9_.+*-]*")  # a code with a digit: case numbers, ids, masks
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                  "wbr"})
UNREAD = frozenset({"script", "style", "code", "template"})


class Visible(HTMLParser):
    """The text a reader of a page reads in the page's language."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.open: list[tuple[str, bool]] = []  # (tag, unread)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        lang = (dict(attrs).get("lang") or "").lower()
        if tag == "html":
            self.lang = lang
            return
        if tag not in VOID:
            self.open.append((tag, tag in UNREAD or bool(lang and lang != self.lang)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i][0] == tag:
                del self.open[i:]
                return

    def handle_data(self, data: str) -> None:
        if not any(unread for _tag, unread in self.open):
            self.parts.append(data)


@dataclass
class Page:
    name: str
    status: int
    content_type: str
    body: str

    def text(self) -> str:
        """What the reader reads: the visible text of a page, the whole of any other answer (text/plain)."""
        if self.content_type != "text/html":
            return self.body
        parser = Visible()
        parser.feed(self.body)
        parser.close()
        return " ".join(" ".join(parser.parts).split())


class Reader(Browser):
    """The console's cookie-keeping browser, in one language."""

    def __init__(self, hcp: Hcp, accept: str) -> None:
        super().__init__(hcp)
        self.accept = accept

    async def request(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, str, Any]:
        return await super().request(method, path, data, {"Accept-Language": self.accept, **(headers or {})})


@dataclass
class Tour:
    hcp: Hcp
    language: str
    pages: list[Page] = field(default_factory=list)
    data: set[str] = field(default_factory=lambda: {
        "居民身份证换领", "440500-000-XK-0001", AGENCY_A, AGENCY_A_NAME, AGENCY_B, AGENCY_B_NAME, "李四", "G1024",
        "张三", "窗口人员态度冷淡", "已约谈窗口人员"})
    later: list[tuple[str, str, str]] = field(default_factory=list)  # pages to see once the clock moved on

    def reader(self) -> Reader:
        return Reader(self.hcp, LANGUAGES[self.language])

    def keep(self, name: str, browser: Browser, status: int, text: str, expect: int, has: str | None) -> str:
        assert status == expect, (name, status, text[:500])
        assert has is None or has in text, (name, has, text[:2000])
        self.pages.append(Page(name, status, browser.last.content_type, text))
        return text

    async def get(self, name: str, path: str, who: Browser | None = None, expect: int = 200,
                  has: str | None = None) -> str:
        browser = who or self.reader()
        status, text = await browser.get(path)
        return self.keep(name, browser, status, text, expect, has)

    async def post(self, name: str, path: str, form: dict[str, str], who: Browser | None = None,
                   expect: int = 200, has: str | None = None) -> str:
        browser = who or self.reader()
        status, text, _location = await browser.post(path, form)
        return self.keep(name, browser, status, text, expect, has)

    async def user(self, name: str, role: str, *agencies: str) -> Reader:
        await add_user(self.hcp, name, role, *agencies)
        self.data.add(name)
        browser = self.reader()
        status, _page, _location = await browser.login(name, follow=False)
        assert status == 303, (name, status)
        return browser

    async def order(self, step: str, **kw: Any) -> tuple[int, str]:
        case_no, wo_id, phone = await order_at(self.hcp, step, **kw)
        self.data.add(case_no)
        return wo_id, phone

    async def act(self, who: Browser, wo_id: int, action: str, name: str | None = None, expect: int = 200,
                  **form: str) -> str:
        path = f"/console/orders/{wo_id}"
        token = await who.token(path)
        self.data.update(v for k, v in form.items() if k in ("note", "reason"))
        if name is None:
            status, _text, _location = await who.post(f"{path}/act/{action}", {"csrf": token, **form})
            assert status == expect, (action, status)
            return ""
        return await self.post(name, f"{path}/act/{action}", {"csrf": token, **form}, who, expect)


async def rating_pages(tour: Tour) -> None:
    hcp = tour.hcp
    case_no, _phone, sms = await hcp.reminded()
    tour.data.add(case_no)
    [token] = re.findall(re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9._-]+)", sms["body"])
    link = f"/r/{token}"
    await tour.get("rating: the form", link, has='name="grade"')
    await tour.post("rating: no grade", link, {}, expect=422, has='role="alert"')
    await tour.post("rating: a bad grade without a reason", link, {"grade": "very_dissatisfied"}, expect=422)
    await tour.post("rating: other without words", link, {"grade": "dissatisfied", "reasons": "other"}, expect=422)
    typed = "态度\x07差"
    tour.data.add(shown(typed))
    await tour.post("rating: control characters", link, {"grade": "dissatisfied", "reasons": "attitude",
                                                        "text": typed}, expect=422)
    await tour.post("rating: thanks, a follow-up to come", link, {"grade": "basically_satisfied"},
                    has=f'href="{link}"')
    await tour.get("rating: the follow-up form", link, has='name="grade"')
    await tour.post("rating: thanks", link, {"grade": "very_satisfied"})
    await tour.get("rating: used", link, has="notice-used")
    await tour.post("rating: used, posted", link, {"grade": "satisfied"}, expect=409)
    await tour.get("rating: a tampered link", link[:-2] + ("AA" if not link.endswith("AA") else "BB"), expect=404)

    # An item of a 一件事 (Shantou art. 31): this item only, or the whole matter, with the items listed.
    items = [await hcp.post_case(bundle_no="YJS-LANG", phone=hcp.new_phone(), **agency)
             for agency in ({}, {"agency_code": AGENCY_B, "agency_name": AGENCY_B_NAME})]
    tour.data.update(doc["case_no"] for doc in items)
    item_link = f"/r/{hcp.rt.links.token(items[0]['id'])}"
    await tour.get("rating: an item of a bundle", item_link, has='name="scope"')
    await tour.post("rating: the whole bundle, refused", item_link, {"scope": "bundle"}, expect=422,
                    has='name="scope"')
    await tour.post("rating: the whole bundle", item_link, {"scope": "bundle", "grade": "satisfied"})

    # A case its rater never rated: the default is applied when the window is over.
    old = await hcp.post_case(completed_at="2026-11-02T10:00:00+08:00", phone=hcp.new_phone())
    tour.data.add(old["case_no"])
    counts = await hcp.tick(hcp.clock())
    assert counts["defaults"] >= 1, counts
    tour.later.append(("rating: expired", f"/r/{hcp.rt.links.token(old['id'])}", "notice-expired"))

    # A barred rater (the blacklist's bar, set as the tick sets it).
    barred = await hcp.post_case(phone=hcp.new_phone())
    tour.data.add(barred["case_no"])
    async with hcp.rt.db.write() as session:
        case = await session.get(Case, barred["id"])
        await contact_store.bar(session, case.phone_contact_id, hcp.clock() + timedelta(days=30))
    await tour.get("rating: barred", f"/r/{hcp.rt.links.token(barred['id'])}", expect=403, has="notice-barred")


async def console_pages(tour: Tour) -> None:
    hcp = tour.hcp
    boss = await tour.user("boss", "admin")
    l1 = await tour.user("l1user", "l1")
    l2 = await tour.user("l2a", "l2", AGENCY_A)
    agent = await tour.user("agent1", "agent")

    created, _ = await tour.order("created")
    dispatched, _ = await tour.order("dispatched")
    rectified, _ = await tour.order("rectified")
    reviewed, _ = await tour.order("reviewed")
    closed, _ = await tour.order("closed")
    elsewhere, _ = await tour.order("dispatched", agency=(AGENCY_B, AGENCY_B_NAME))
    pending, _ = await tour.order("dispatched")
    await tour.act(l2, pending, "appeal", reason="评价人所述与事实不符")
    decided, _ = await tour.order("dispatched")
    await tour.act(l2, decided, "appeal", reason="当天系统故障")
    await tour.act(l1, decided, "decide-appeal", upheld="true", note="情况属实")
    # An extension asked and granted, and one refused for its date (Fujian art. 16).
    extended, _ = await tour.order("dispatched")
    await tour.act(l2, extended, "request-extension", "work order: extension asked", reason="需协调住建部门现场核查",
                   due_at="2026-12-31")
    await tour.act(l1, extended, "decide-extension", "work order: extension granted", approved="true", note="同意延期")
    await tour.act(l2, extended, "request-extension", "refused: no new deadline", expect=422, reason="还需时间")
    reopened, _ = await tour.order("reviewed")
    await tour.act(agent, reopened, "callback", result="dissatisfied", note="仍不满意")
    answered, phone = await tour.order("reviewed")
    counts = await hcp.tick(hcp.clock())  # the SMS questions of the callbacks go out
    assert counts["sent"] >= 1, counts
    reply = await hcp.sms(phone, "1")
    assert reply.status == 200, reply

    # The log-in.
    anonymous = tour.reader()
    page = await tour.get("log-in", "/console/login", anonymous, has='name="password"')
    await tour.post("log-in: wrong password", "/console/login",
                    {"username": "l1user", "password": "wrong-password", "csrf": csrf(page)}, anonymous, expect=401)
    page = await tour.get("log-in, again", "/console/login", anonymous)
    await tour.post("log-in: missing", "/console/login", {"username": "", "password": "", "csrf": csrf(page)},
                    who=anonymous, expect=422)
    await tour.post("log-in: stale form", "/console/login", {"username": "l1user", "password": PASSWORD},
                    expect=403)
    guesser = tour.reader()
    tour.data.add("ghost")
    for _ in range(8):
        _status, page = await guesser.get("/console/login")
        status, text, _location = await guesser.post("/console/login", {"username": "ghost", "password": "x" * 12,
                                                                         "csrf": csrf(page)})
        if status == 429:
            tour.keep("log-in: throttled", guesser, status, text, 429, None)
            break
    else:
        pytest.fail("the log-in was never throttled")

    # The queue, the list, the work orders.
    await tour.get("queue", "/console/queue", agent, has=f'data-work-order="{reviewed}"')
    await tour.get("queue: done", "/console/queue?done=callback", agent)
    await tour.get("queue: not for this role", "/console/queue", l2, expect=403)
    await tour.get("orders", "/console/orders", l1)
    await tour.get("orders: all", "/console/orders?status=", l1)
    for status in ("created", "dispatched", "rectified", "reviewed", "closed"):
        await tour.get(f"orders: {status}", f"/console/orders?status={status}", l1)
    await tour.get("orders: done", "/console/orders?done=dispatch", l1)
    for name, wo_id in (("created", created), ("dispatched", dispatched), ("rectified", rectified),
                        ("reviewed", reviewed), ("closed", closed), ("appeal pending", pending),
                        ("appeal upheld", decided), ("reopened", reopened), ("answered by SMS", answered)):
        await tour.get(f"work order: {name}", f"/console/orders/{wo_id}", l1, has='class="history"')
    await tour.get("work order: the callback script", f"/console/orders/{reviewed}", agent, has='class="script"')
    await tour.post("work order: the number revealed", f"/console/orders/{reviewed}/reveal",
                    {"csrf": await agent.token(f"/console/orders/{reviewed}")}, agent, has='href="tel:')
    await tour.act(l2, created, "dispatch", "refused: not this role", expect=403)
    await tour.act(l1, dispatched, "review", "refused: not now", expect=409)
    await tour.act(l2, dispatched, "rectify", "refused: no note", expect=422, note=" ")
    await tour.act(l1, dispatched, "undo", "refused: no such action", expect=404)
    await tour.post("refused: a stale form", f"/console/orders/{dispatched}/act/dispatch", {"csrf": "stale"}, l1,
                    expect=403)
    await tour.get("work order: another agency's", f"/console/orders/{elsewhere}", l2, expect=404)
    await tour.get("work order: none", "/console/orders/999999", l1, expect=404)
    await tour.get("work order: not an id", "/console/orders/abc", l1, expect=404)

    # The statistics and the audit table, after the deadlines passed: overdue work orders.
    hcp.clock.set(hcp.clock() + timedelta(days=30))
    counts = await hcp.tick(hcp.clock())
    assert counts["overdue"] >= 1, counts
    for browser, name in ((l1, "l1user"), (boss, "boss")):  # their sessions ended meanwhile
        status, _page, _location = await browser.login(name, follow=False)
        assert status == 303, (name, status)
    await tour.get("work order: overdue", f"/console/orders/{created}", l1, has="badge overdue")
    await tour.get("work order: appeal overdue", f"/console/orders/{pending}", l1, has="data-appeal-overdue")
    await tour.get("orders: overdue", "/console/orders?status=&overdue=true", l1)
    await tour.get("dashboard", "/console/dashboard", l1, has="data-chart")
    await tour.get("dashboard: a period", "/console/dashboard?from=2026-11-01&to=2026-12-31", boss)
    await tour.get("audit", "/console/audit", boss, has="data-audit")
    await tour.get("audit: user.create", "/console/audit?action=user.create", boss, has="data-audit")
    await tour.get("audit: admins only", "/console/audit", l1, expect=403)
    await supervision_pages(tour, l1, l2, agent)


# What the scan records, one of each kind, with the evidence its detector gives (bot/supervision/detect.py).
EVIDENCE = {
    "good_burst": {"first": "2026-11-20T10:00:00+08:00", "last": "2026-11-20T10:04:00+08:00", "ratings": 12,
                   "source": "device", "densest": 12, "minutes": 10},
    "fast_answer": {"first": "2026-11-20T10:00:00+08:00", "last": "2026-11-21T10:00:00+08:00", "ratings": 3,
                    "seconds": 10, "quickest_seconds": 3.0},
    "shared_rater": {"first": "2026-11-20T10:00:00+08:00", "last": "2026-11-21T10:00:00+08:00", "ratings": 3,
                     "applicants": 3, "channel": "phone"},
    "own_window": {"first": "2026-11-01T10:00:00+08:00", "last": "2026-11-21T10:00:00+08:00", "ratings": 22,
                   "device_share": 1.0, "hall_share": 0.2, "hall_code": "H1"},
    "serial_bad": {"first": "2026-11-20T10:00:00+08:00", "last": "2026-11-21T10:00:00+08:00", "ratings": 3,
                   "bad_reviews": 3, "agencies": 3},
    "repeated_text": {"first": "2026-11-20T10:00:00+08:00", "last": "2026-11-21T10:00:00+08:00", "ratings": 3,
                      "cases": 3},
    "grade_shift": {"recent_bad_share": 0.4, "history_bad_share": 0.03, "recent_ratings": 100,
                    "history_ratings": 1000, "z": 12.3, "direction": "more_bad"},
    "denied_rating": {"call_id": 1, "channel": "sms", "answered_by": "agent1"},
}


async def supervision_pages(tour: Tour, l1: Reader, l2: Reader, agent: Reader) -> None:
    """The signals' queue with one signal of each kind, a decision and its refusal; the supervisory calls with a
    number revealed and an answer."""
    hcp = tour.hcp
    for browser, name in ((l2, "l2a"), (agent, "agent1")):  # their sessions ended with the month that passed
        status, _page, _location = await browser.login(name, follow=False)
        assert status == 303, (name, status)
    at = hcp.clock()
    rated = await hcp.post_case(phone=hcp.new_phone())
    tour.data.add(rated["case_no"])
    evaluation = await hcp.rate(rated["case_no"], "satisfied", channel="sms")
    bad_no, bad_order, _phone = await order_at(hcp, "created")  # a bad review: its work order is linked
    tour.data.add(bad_no)
    async with hcp.rt.db.write() as session:
        bad = (await work_order_store.by_id(session, bad_order)).evaluation_id  # type: ignore[union-attr]
        for kind, evidence in EVIDENCE.items():
            case_no, eid = (bad_no, bad) if kind in ("serial_bad", "repeated_text") else (rated["case_no"],
                                                                                          evaluation["id"])
            session.add(Signal(kind=kind, subject=f"lang:{kind}", agency_code=AGENCY_A, staff_id="G1024",
                               cases=[case_no], evaluation_ids=[eid], evidence=evidence, detected_at=at,
                               updated_at=at))
        await supervision_store.add_draw(session, SupervisionDraw(
            period="2020-01", agency_code=AGENCY_A, seed="0" * 32, rule=supervision_store.RULE, population=1,
            population_ids=[evaluation["id"]], drawn_ids=[evaluation["id"]], created_at=at),
            {evaluation["id"]: rated["id"]})
    await tour.get("signals", "/console/signals", l1, has=f'href="/console/orders/{bad_order}"')
    first = await l1.token("/console/signals")
    async with hcp.rt.db.read() as session:
        ids = [s.id for s in await signal_store.listing(session, signal_store.Filters(), 100)]
    tour.data.add("已核实，系窗口人员代评")
    await tour.post("signals: decided", f"/console/signals/{ids[0]}/decide",
                    {"csrf": first, "decision": "confirmed", "note": "已核实，系窗口人员代评"}, l1)
    await tour.post("signals: refused, decided already", f"/console/signals/{ids[0]}/decide",
                    {"csrf": first, "decision": "dismissed"}, l1, expect=409)
    await tour.post("signals: raters called back", f"/console/signals/{ids[1]}/callbacks", {"csrf": first}, l1,
                    has='role="status"')
    await tour.get("signals: confirmed", "/console/signals?status=confirmed", l1, has="data-signal")
    await tour.get("signals: not for this role", "/console/signals", l2, expect=403)
    await tour.get("supervision", "/console/supervision", agent, has="data-supervision-call")
    token = await agent.token("/console/supervision")
    async with hcp.rt.db.read() as session:
        call = (await supervision_store.calls(session, "pending", None, None, 10))[0]
    await tour.post("supervision: the number revealed", f"/console/supervision/{call.call.id}/reveal",
                    {"csrf": token}, agent, has='href="tel:')
    await tour.post("supervision: refused, no answer", f"/console/supervision/{call.call.id}/answer",
                    {"csrf": token}, agent, expect=422)
    await tour.post("supervision: answered", f"/console/supervision/{call.call.id}/answer",
                    {"csrf": token, "answer": "confirmed"}, agent)
    await tour.get("supervision: not for this role", "/console/supervision", l2, expect=403)


async def hall_pages(tour: Tour) -> None:
    """The hall's pages (docs/hall.md): a window's device (idle), a terminal's, an unpaired device, a window's
    static code's list, and the console's hall page."""
    hcp = tour.hcp
    auth = {"Authorization": f"Bearer {TOKEN}"}
    hall = "440507-ZW01"
    devices = []
    for body in ({"kind": "window", "window_no": "3", "staff_id": "G1024", "staff_name": "李四", "label": "大厅东侧"},
                 {"kind": "terminal", "terminal_no": "ZD-07"}):
        resp = await hcp.client.post("/api/v1/hall/devices", headers=auth, json={"hall_code": hall, **body})
        devices.append(await resp.json())
    tour.data.update({hall, "大厅东侧", "张*"})
    for device, name in zip(devices, ("window", "terminal"), strict=True):
        await tour.get(f"hall: the {name}'s device", f"/hall/pair?token={device['token']}", has='id="hall-data"')
    await tour.get("hall: a device not paired", "/hall/device", expect=401)
    await hcp.post_case(hall_code=hall, window_no="3", completed_at=hcp.clock().isoformat())
    resp = await hcp.client.get(f"/api/v1/hall/windows/qr?hall_code={hall}&window_no=3&format=svg", headers=auth)
    assert resp.status == 200
    from bot.web.hall_windows import window_url

    path = window_url(hcp.rt, hall, "3").split(PUBLIC_URL, 1)[1]
    await tour.get("hall: a window's code", path, has='href="/r/')
    boss = await tour.user("hallboss", "admin")
    await tour.get("hall: the console's devices", "/console/hall", boss, has='data-device=')


async def tour(hcp: Hcp, language: str) -> Tour:
    the_tour = Tour(hcp, language)
    await the_tour.get("home", "/")
    await rating_pages(the_tour)
    await hall_pages(the_tour)
    await console_pages(the_tour)
    for name, path, has in the_tour.later:
        await the_tour.get(name, path, has=has)
    return the_tour


def without_data(text: str, data: set[str]) -> str:
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    for pattern in (URL, EMAIL, PATH, CODE):
        text = pattern.sub(" ", text)
    return text


def context(text: str, match: re.Match[str]) -> str:
    return text[max(0, match.start() - 24):match.end() + 24]


def latin_words(pages: list[Page], data: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in pages:
        text = without_data(page.text(), data)
        for allowed in LATIN_IN_CHINESE:
            text = text.replace(allowed, " ")
        words = [context(text, m) for m in LATIN.finditer(text)]
        if words:
            found[page.name] = words
    return found


def chinese_words(pages: list[Page], data: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in pages:
        text = without_data(page.text(), data)
        words = [context(text, m) for m in CJK.finditer(text)]
        if words:
            found[page.name] = words
    return found


def times_with_seconds(pages: list[Page]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in pages:
        text = page.text()
        hits = [context(text, m) for m in SECONDS.finditer(text)]
        if hits:
            found[page.name] = hits
    return found


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    return str(path)


@pytest.fixture
def providers() -> bool:
    """Whether SMS, WeChat and voice providers are configured (the simulator needs none)."""
    return True


@pytest.fixture
def settings(settings: Any, providers: bool) -> Any:
    return settings if providers else without_providers(settings)


# One tour per language (a tour is a few seconds of requests) answers both questions of its pages: the
# words of the language, and no time with seconds.


@pytest.mark.parametrize("language", CHINESE)
async def test_a_chinese_page_holds_no_english_word_nor_a_time_with_seconds(hcp, language):
    seen = await tour(hcp, language)
    found = latin_words(seen.pages, seen.data)
    assert not found, f"Latin words on {language} pages: {found}"
    timed = times_with_seconds(seen.pages)
    assert not timed, f"times with seconds on {language} pages: {timed}"


async def test_an_english_page_holds_no_chinese_but_the_data_nor_a_time_with_seconds(hcp):
    seen = await tour(hcp, "en")
    found = chinese_words(seen.pages, seen.data)
    assert not found, f"Chinese on English pages: {found}"
    timed = times_with_seconds(seen.pages)
    assert not timed, f"times with seconds on en pages: {timed}"


@pytest.mark.parametrize("providers", [False])
@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_simulator_page_speaks_the_readers_language(hcp, language):
    the_tour = Tour(hcp, language)
    await the_tour.get("simulator", "/simulator/", has='id="sim"')
    if language in CHINESE:
        assert not latin_words(the_tour.pages, set()), latin_words(the_tour.pages, set())
    else:
        assert not chinese_words(the_tour.pages, set()), chinese_words(the_tour.pages, set())
    assert not times_with_seconds(the_tour.pages)
