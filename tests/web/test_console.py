"""The agents' console over HTTP, as a browser without JavaScript uses it: log-in with its CSRF
token and throttle, sessions in a signed cookie (SQLite, no Redis) or in Redis, the callback queue
oldest deadline first, revealing the rater's number into the history, recording a callback, the
agency's rectification and appeal forms, and the dashboard's figures."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from console_support import (
    AGENCY_A,
    AGENCY_A_NAME,
    AGENCY_B,
    AGENCY_B_NAME,
    LOGIN_COOKIE,
    PASSWORD,
    SESSION_COOKIE,
    Browser,
    add_user,
    advance,
    alert,
    api_login,
    api_stats,
    csrf,
    dashboard_table,
    flash,
    listed_ids,
    logged_in,
    masked,
    msg,
    national,
    order_at,
    queue_card,
    queue_ids,
    shows_number,
    stored,
    update_user,
)
from helpers import PUBLIC_URL, Hcp
from servers import BACKENDS

from bot.infra.runtime import open_runtime
from bot.web.app import build_app
from bot.work_orders import users
from store import users as user_store

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
EVIL = "https://evil.example"


async def reviewed_order(hcp: Hcp, text: str = "窗口人员态度冷淡") -> tuple[str, int]:
    """A case rated dissatisfied on the page, taken through dispatch, rectify and review by the API."""
    case_no, wo_id, _phone = await order_at(hcp, "reviewed", text=text)
    return case_no, wo_id


@on_both
async def test_an_agent_logs_in_reveals_the_number_records_a_callback_and_the_order_leaves_the_queue(hcp):
    case_no, wo_id = await reviewed_order(hcp)
    await add_user(hcp, "agent1", "agent")
    browser = Browser(hcp)

    status, page = await browser.get("/console/")
    assert status == 200 and 'name="password"' in page  # sent to the log-in form

    status, page, _ = await browser.login("agent1")
    assert status == 200 and f'data-work-order="{wo_id}"' in page and "窗口人员态度冷淡" in page
    phone = (await hcp.case(case_no))["applicant"]["phone"]
    assert phone in page and re.search(r"1\d{10}", page) is None  # masked only

    status, page = await browser.get(f"/console/orders/{wo_id}")
    assert status == 200 and "回访话术" in page and "已约谈窗口人员" in page
    status, page, _ = await browser.post(f"/console/orders/{wo_id}/reveal", {"csrf": csrf(page)})
    assert status == 200 and re.search(r'href="tel:\+861\d{10}"', page)
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert [h["actor"] for h in doc["history"] if h["action"] == "reveal"] == ["agent1"]

    status, page, location = await browser.post(f"/console/orders/{wo_id}/act/callback",
                                                {"csrf": csrf(page), "result": "satisfied", "note": "已解决",
                                                 "back": "/console/queue"})
    assert location and location.startswith("/console/queue") and status == 200
    assert f'data-work-order="{wo_id}"' not in page and "回访结果已记录" in page
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert (doc["status"], doc["outcome"]) == ("closed", "satisfied")
    assert doc["history"][-1]["actor"] == "agent1" and doc["history"][-1]["note"] == "已解决"


async def test_pages_render_for_every_role(hcp):
    _case_no, wo_id = await reviewed_order(hcp)
    for name, role in (("l1user", "l1"), ("l2user", "l2"), ("agentx", "agent"), ("boss", "admin")):
        await add_user(hcp, name, role)
        browser = Browser(hcp)
        status, _page, _ = await browser.login(name)
        assert status == 200, role
        for path in ("/console/orders", f"/console/orders/{wo_id}", "/console/dashboard",
                     "/console/orders?status=&overdue=true"):
            status, page = await browser.get(path)
            assert status == 200, (role, path, page[:500])
        status, page = await browser.get("/console/queue")
        assert status == (403 if role == "l2" else 200), role


# --- CSRF ------------------------------------------------------------------------------------------


async def test_console_posts_without_the_sessions_token_or_from_another_origin_are_refused_and_change_nothing(hcp):
    _case_no, wo_id, phone = await order_at(hcp, "reviewed")
    agent = await logged_in(hcp, "agent1", "agent")
    token = await agent.token(f"/console/orders/{wo_id}")
    before = await stored(hcp, wo_id)
    other = await logged_in(hcp, "agent2", "agent")
    foreign_token = await other.token()  # a genuine token, of another session

    forms = ((f"/console/orders/{wo_id}/act/callback",
              {"result": "satisfied", "note": "伪造", "back": "/console/queue"}),
             (f"/console/orders/{wo_id}/reveal", {}),
             ("/console/logout", {}))
    attempts = (({}, {}),  # no csrf field
                ({"csrf": ""}, {}),
                ({"csrf": token[:-1] + ("A" if token[-1] != "A" else "B")}, {}),
                ({"csrf": foreign_token}, {}),
                ({"csrf": token}, {"Origin": EVIL}),
                ({"csrf": token}, {"Origin": "null"}),
                ({"csrf": token}, {"Referer": EVIL + "/page"}),
                ({"csrf": token}, {"Origin": "http://hcp.example.gov.cn"}))  # not the https origin
    for path, fields in forms:
        for extra, headers in attempts:
            status, text, response = await agent.request("POST", path, {**fields, **extra}, headers)
            assert status == 403, (path, extra, headers, status)
            assert "tel:" not in text and not shows_number(text, phone)
            assert not any(c.startswith(SESSION_COOKIE) for c in response.headers.getall("Set-Cookie", [])), path

    # Without a session: sent to the log-in, nothing done.
    for path, fields in forms[:2]:
        status, _text, response = await Browser(hcp).request("POST", path, {**fields, "csrf": token})
        assert status == 303 and response.headers["Location"].startswith("/console/login?"), path
    # The JSON API takes no cookie: a session cannot act there (where no CSRF token is asked).
    for method, path, body in (("POST", f"/api/v1/work-orders/{wo_id}/callback", {"result": "satisfied"}),
                               ("GET", f"/api/v1/work-orders/{wo_id}", None), ("GET", "/api/v1/work-orders", None)):
        status, _text, _response = await agent.request(method, path, json.dumps(body) if body else None,
                                                       {"Content-Type": "application/json"})
        assert status == 401, (method, path)

    after = await stored(hcp, wo_id)
    assert after["history"] == before["history"] and (after["status"], after["outcome"]) == ("reviewed", None)
    # The refused log-out ended nothing: the session still works.
    status, page = await agent.get("/console/queue")
    assert status == 200 and f'data-work-order="{wo_id}"' in page

    # The same forms with the session's own token, from this origin (or with no Origin at all), work.
    status, page, _ = await agent.post(f"/console/orders/{wo_id}/reveal", {"csrf": token},
                                       headers={"Origin": PUBLIC_URL})
    assert status == 200 and f'href="tel:+86{phone}"' in page
    status, _page, location = await agent.post(f"/console/orders/{wo_id}/act/callback",
                                               {"csrf": token, "result": "satisfied", "back": "/console/queue"},
                                               follow=False)
    assert status == 303 and location == "/console/queue?done=callback"
    doc = await stored(hcp, wo_id)
    assert [h["action"] for h in doc["history"][len(before["history"]):]] == ["reveal", "callback"]


async def test_the_login_form_needs_its_cookie_and_token_pair_and_this_origin(hcp):
    await add_user(hcp, "agent1", "agent")

    async def refused(browser: Browser, form: dict[str, str], headers: dict[str, str] | None = None) -> None:
        status, page, _location = await browser.post("/console/login", form, follow=False, headers=headers)
        assert status == 403, (form, headers, status)
        assert alert(page) == msg(hcp, "console.login_stale")
        assert SESSION_COOKIE not in browser.set_cookies and SESSION_COOKIE not in browser.cookies
        assert await browser.redirected_to_login()

    right = {"username": "agent1", "password": PASSWORD}
    # No cookie at all (a form posted from another site, or a token made up).
    await refused(Browser(hcp), {**right, "csrf": "made-up-token"})
    await refused(Browser(hcp), right)
    # The cookie, but the form's token missing, or another form's.
    browser = Browser(hcp)
    _status, page = await browser.get("/console/login")
    token = csrf(page)
    await refused(browser, right)
    _status, other_page = await Browser(hcp).get("/console/login")
    await refused(browser, {**right, "csrf": csrf(other_page)})
    # The token of the form, but no cookie with it.
    cookieless = Browser(hcp)
    await refused(cookieless, {**right, "csrf": token})
    # The pair, from another site.
    browser = Browser(hcp)
    _status, page = await browser.get("/console/login")
    await refused(browser, {**right, "csrf": csrf(page)}, {"Origin": EVIL})

    # The pair from this origin logs in; none of the refusals counted as a failed password.
    browser = Browser(hcp)
    _status, page = await browser.get("/console/login")
    status, _page, location = await browser.post("/console/login", {**right, "csrf": csrf(page)}, follow=False,
                                                 headers={"Origin": PUBLIC_URL})
    assert status == 303 and location == "/console/" and SESSION_COOKIE in browser.cookies
    assert LOGIN_COOKIE not in browser.cookies  # the log-in form's cookie is spent
    form_cookie = Browser(hcp)
    await form_cookie.get("/console/login")
    morsel = form_cookie.set_cookies[LOGIN_COOKIE]
    assert morsel["httponly"] is True and morsel["secure"] is True and morsel["samesite"] == "Strict"


# --- log-in ----------------------------------------------------------------------------------------


async def test_a_wrong_password_is_a_401_page_with_an_alert_and_no_session(hcp):
    await add_user(hcp, "agent1", "agent")
    browser = Browser(hcp)
    for name, password in (("agent1", "wrong password 123"), ("nobody", PASSWORD), ("agent1", "")):
        status, page, location = await browser.login(name, password, follow=False)
        expected = 422 if not password else 401
        assert (status, location) == (expected, None), (name, password)
        assert alert(page) == msg(hcp, "console.login_missing" if not password else "console.login_failed")
        assert f'value="{name}"' in page  # the name stays in the form
        assert SESSION_COOKIE not in browser.cookies
    assert await browser.redirected_to_login()


@on_both
async def test_failures_for_a_name_make_it_wait_on_both_doors_even_with_the_right_password(hcp):
    await add_user(hcp, "agent1", "agent")
    await add_user(hcp, "agent2", "agent")
    browser = Browser(hcp)
    for _ in range(3):
        status, page, _ = await browser.login("agent1", "wrong password 123", follow=False)
        assert status == 401 and alert(page) == msg(hcp, "console.login_failed")
    status, doc, _headers = await api_login(hcp, "agent1", "wrong password 123")
    assert status == 401, doc
    # Four failures, shared: the right password still works on either door (and clears them).
    status, _page, _ = await Browser(hcp).login("agent1", follow=False)
    assert status == 303
    status, doc, _headers = await api_login(hcp, "agent1", PASSWORD)
    assert status == 200 and doc["token"]
    # Five failures, three at the console and two at the API, make the name wait at both doors.
    for _ in range(3):
        status, _page, _ = await Browser(hcp).login("agent1", "wrong password 123", follow=False)
        assert status == 401
    for _ in range(2):
        status, _doc, _headers = await api_login(hcp, "agent1", "wrong password 123")
        assert status == 401
    wait = users.backoff(users.FREE_FAILURES)
    browser = Browser(hcp)
    status, page, location = await browser.login("agent1", follow=False)
    assert (status, location) == (429, None)
    assert alert(page) == msg(hcp, "console.login_throttled", wait=f"{wait}秒钟")
    assert int(browser.last.headers["Retry-After"]) == wait
    assert SESSION_COOKIE not in browser.cookies and await browser.redirected_to_login()
    status, doc, headers = await api_login(hcp, "agent1", PASSWORD)
    assert status == 429 and int(headers["Retry-After"]) == wait and "token" not in doc
    # Per name: another user of the same seat is not held up.
    status, _page, _ = await Browser(hcp).login("agent2", follow=False)
    assert status == 303
    # The wait over, the right password works again.
    hcp.clock.advance(seconds=wait)
    status, _page, _ = await Browser(hcp).login("agent1", follow=False)
    assert status == 303


async def test_failures_at_the_console_count_at_the_api(hcp):
    await add_user(hcp, "agent1", "agent")
    for _ in range(users.FREE_FAILURES):
        status, _page, _ = await Browser(hcp).login("agent1", "wrong password 123", follow=False)
        assert status == 401
    status, _doc, headers = await api_login(hcp, "agent1", PASSWORD)
    assert status == 429 and "Retry-After" in headers


async def test_the_login_returns_only_to_a_console_path(hcp):
    await add_user(hcp, "agent1", "agent")
    # Sent to the log-in from a page, the user lands back on that page.
    browser = Browser(hcp)
    status, _text, response = await browser.request("GET", "/console/orders/5?status=open")
    assert status == 303
    status, page = await browser.get(response.headers["Location"])
    assert status == 200 and 'name="next" value="/console/orders/5?status=open"' in page
    status, _page, location = await browser.post(
        "/console/login", {"username": "agent1", "password": PASSWORD, "csrf": csrf(page),
                           "next": "/console/orders/5?status=open"}, follow=False)
    assert (status, location) == (303, "/console/orders/5?status=open")
    status, _page, location = await Browser(hcp).login("agent1", follow=False, next="/console/orders/5")
    assert (status, location) == (303, "/console/orders/5")

    for evil in ("//evil.example/x", EVIL, "https://evil.example/console/", "/\\evil.example", "///evil.example",
                 "/console/\\\\evil.example", "javascript:alert(1)", " //evil.example"):
        browser = Browser(hcp)
        status, text, _response = await browser.request("GET", "/console/login?" + _query(next=evil))
        assert status == 200 and 'name="next" value="/console/"' in text, evil
        status, _page, location = await browser.post(
            "/console/login", {"username": "agent1", "password": PASSWORD, "csrf": csrf(text), "next": evil},
            follow=False)
        assert (status, location) == (303, "/console/"), evil
        # Logged in already, the log-in form sends the user on: not to another site either.
        status, _text, response = await browser.request("GET", "/console/login?" + _query(next=evil))
        assert (status, response.headers["Location"]) == (303, "/console/"), evil


async def test_the_login_target_survives_a_mistyped_password(hcp):
    await add_user(hcp, "agent1", "agent")
    browser = Browser(hcp)
    status, page = await browser.get("/console/orders/5")  # sent to the log-in form
    assert status == 200 and 'name="next" value="/console/orders/5"' in page
    status, page, _ = await browser.post("/console/login", {"username": "agent1", "password": "wrong password 123",
                                                            "csrf": csrf(page), "next": "/console/orders/5"})
    assert status == 401
    assert 'name="next" value="/console/orders/5"' in page
    status, _page, location = await browser.post("/console/login", {"username": "agent1", "password": PASSWORD,
                                                                    "csrf": csrf(page), "next": "/console/orders/5"},
                                                 follow=False)
    assert (status, location) == (303, "/console/orders/5")


def _query(**params: str) -> str:
    return urlencode(params)


# --- sessions --------------------------------------------------------------------------------------


@on_both
async def test_the_session_cookie_is_locked_down_and_a_tampered_one_is_no_session(hcp):
    agent = await logged_in(hcp, "agent1", "agent")
    morsel = agent.set_cookies[SESSION_COOKIE]
    assert morsel["httponly"] is True and morsel["secure"] is True
    assert morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert int(morsel["max-age"]) == 12 * 3600
    value = agent.cookies[SESSION_COOKIE]

    # The same value in another client is the same session (a bearer): the control for what follows.
    assert not await Browser(hcp, {SESSION_COOKIE: value}).redirected_to_login("/console/queue")
    for i in (0, len(value) // 2, len(value) - 1):
        tampered = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:]
        intruder = Browser(hcp, {SESSION_COOKIE: tampered})
        assert await intruder.redirected_to_login("/console/queue"), i
        status, _text, _response = await intruder.request("GET", "/api/v1/stats")
        assert status == 401, i
    junk_values = ["", ".", "x" * 2000, value + "x", value[:-1]]
    if "." in value:  # the signed cookie: its payload without the signature, the signature alone
        junk_values += [value.partition(".")[0], "." + value.partition(".")[2]]
    for junk in junk_values:
        assert await Browser(hcp, {SESSION_COOKIE: junk}).redirected_to_login("/console/queue"), junk


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_cookie_tampered_with_a_non_ascii_character_is_no_session_either(hcp):
    agent = await logged_in(hcp, "agent1", "agent")
    value = agent.cookies[SESSION_COOKIE]
    for i in (len(value) // 2, len(value) - 1):
        for char in ("é", "中"):
            tampered = value[:i] + char + value[i + 1:]
            # The bytes a client may send (UTF-8), as aiohttp's client passes a latin-1 header through.
            cookie = f"{SESSION_COOKIE}={tampered}".encode().decode("latin-1")
            response = await hcp.client.get("/console/queue", allow_redirects=False, headers={"Cookie": cookie})
            assert response.status == 303 and response.headers["Location"].startswith("/console/login?"), (i, char)
            response = await hcp.client.get("/api/v1/stats", headers={"Cookie": cookie})
            assert response.status == 401, (i, char)


async def test_a_signed_cookie_cannot_be_rewritten_to_another_user_or_a_later_expiry(hcp):
    await add_user(hcp, "boss", "admin")
    agent = await logged_in(hcp, "agent1", "agent", AGENCY_A)
    payload, _, mac = agent.cookies[SESSION_COOKIE].partition(".")
    assert mac, "the cookie (no Redis) holds the session and its signature"
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    async with hcp.rt.db.read() as session:
        boss = await user_store.by_name(session, "boss")
    for change in ({"uid": boss.id}, {"exp": doc["exp"] + 86400}):
        forged = base64.urlsafe_b64encode(json.dumps({**doc, **change}).encode()).decode().rstrip("=")
        assert await Browser(hcp, {SESSION_COOKIE: f"{forged}.{mac}"}).redirected_to_login("/console/queue"), change


@on_both
async def test_logging_out_ends_the_session_for_the_old_cookie_too(hcp):
    agent = await logged_in(hcp, "agent1", "agent")
    old = agent.cookies[SESSION_COOKIE]
    status, _text, response = await agent.request("POST", "/console/logout", {"csrf": await agent.token()})
    assert (status, response.headers["Location"]) == (303, "/console/login")
    assert agent.set_cookies[SESSION_COOKIE]["max-age"] == "0" and SESSION_COOKIE not in agent.cookies
    assert await agent.redirected_to_login()
    replay = Browser(hcp, {SESSION_COOKIE: old})
    assert await replay.redirected_to_login("/console/queue")
    status, _text, _response = await replay.request("GET", "/api/v1/stats")
    assert status == 401
    # The replayed cookie cannot post either.
    status, _text, response = await replay.request("POST", "/console/logout", {"csrf": "x"})
    assert status == 303
    # A new log-in is a new session.
    status, _page, _ = await agent.login("agent1", follow=False)
    assert status == 303 and agent.cookies[SESSION_COOKIE] != old
    assert not await agent.redirected_to_login("/console/queue")


async def test_a_logged_out_session_stays_ended_after_a_restart(hcp, settings, clock, aiohttp_client):
    stays = await logged_in(hcp, "agent2", "agent")
    agent = await logged_in(hcp, "agent1", "agent")
    old = agent.cookies[SESSION_COOKIE]
    status, _text, _response = await agent.request("POST", "/console/logout", {"csrf": await agent.token()})
    assert status == 303 and await Browser(hcp, {SESSION_COOKIE: old}).redirected_to_login("/console/queue")

    restarted = await open_runtime(settings)
    restarted.clock = clock
    try:
        again = Hcp(rt=restarted, client=await aiohttp_client(build_app(restarted)), twilio=hcp.twilio, clock=clock)
        # A restart logs nobody out (the design: the session is in the cookie, signed with the stored key) ...
        assert not await Browser(again, dict(stays.cookies)).redirected_to_login("/console/queue")
        # ... and must not log anybody back in.
        assert await Browser(again, {SESSION_COOKIE: old}).redirected_to_login("/console/queue")
    finally:
        await restarted.close()


@on_both
async def test_a_new_password_or_a_disabled_user_ends_the_sessions(hcp):
    agent = await logged_in(hcp, "agent1", "agent")
    second = await logged_in(hcp, "agent2", "agent")
    await update_user(hcp, "agent1", password_hash=users.hash_password("a brand new password"))
    assert await agent.redirected_to_login("/console/queue")
    status, _page, _ = await Browser(hcp).login("agent1", follow=False)
    assert status == 401  # the old password is gone
    status, _page, _ = await Browser(hcp).login("agent1", "a brand new password", follow=False)
    assert status == 303

    assert not await second.redirected_to_login("/console/queue")
    await update_user(hcp, "agent2", disabled_at=hcp.clock())
    assert await second.redirected_to_login("/console/queue")
    status, _text, _response = await second.request("GET", "/api/v1/stats")
    assert status == 401
    status, page, _ = await Browser(hcp).login("agent2", follow=False)
    assert status == 401 and alert(page) == msg(hcp, "console.login_failed")


@on_both
async def test_a_session_expires_after_twelve_hours(hcp):
    start = hcp.clock()
    agent = await logged_in(hcp, "agent1", "agent")
    hcp.clock.set(start + timedelta(hours=11, minutes=59))
    assert not await agent.redirected_to_login("/console/queue")
    hcp.clock.set(start + timedelta(hours=12))
    assert await agent.redirected_to_login("/console/queue")
    status, _text, _response = await agent.request("GET", "/api/v1/stats")
    assert status == 401


# --- jurisdiction and roles ------------------------------------------------------------------------


async def test_an_agency_sees_only_its_own_work_orders_and_never_the_raters_number(hcp):
    case_a, wo_a, _phone_a = await order_at(hcp, "reviewed")
    case_b, wo_b, phone_b = await order_at(hcp, "reviewed", agency=(AGENCY_B, AGENCY_B_NAME), text="收费不透明")
    before_a, before_b = await stored(hcp, wo_a), await stored(hcp, wo_b)
    l2 = await logged_in(hcp, "l2b", "l2", AGENCY_B)

    for path in ("/console/orders", "/console/orders?status=", "/console/orders?status=reviewed"):
        status, page = await l2.get(path)
        assert status == 200 and listed_ids(page) == [wo_b], path
        assert case_a not in page and AGENCY_A_NAME not in page
    status, page = await l2.get(f"/console/orders/{wo_a}")
    assert status == 404 and alert(page) == msg(hcp, "console.not_found")
    assert case_a not in page and "窗口人员态度冷淡" not in page
    status, page = await l2.get("/console/orders/999999")
    assert status == 404 and alert(page) == msg(hcp, "console.not_found")  # the same as missing

    token = await l2.token()
    for path, form in ((f"/console/orders/{wo_a}/act/appeal", {"reason": "不是我们的"}),
                       (f"/console/orders/{wo_a}/reveal", {})):
        status, page, _ = await l2.post(path, {**form, "csrf": token})
        assert status == 404 and alert(page) == msg(hcp, "console.not_found") and case_a not in page, path
    assert await stored(hcp, wo_a) == before_a

    # Its own work order: no rater section, no number, no reveal form; revealing is refused.
    status, page = await l2.get(f"/console/orders/{wo_b}")
    assert status == 200 and case_b in page and "收费不透明" in page
    assert 'id="rater"' not in page and "/reveal" not in page and masked(phone_b) not in page
    assert not shows_number(page, phone_b)
    status, page, _ = await l2.post(f"/console/orders/{wo_b}/reveal", {"csrf": token})
    assert status == 403 and alert(page) == msg(hcp, "console.reveal_refused")
    assert "tel:" not in page and not shows_number(page, phone_b)
    assert await stored(hcp, wo_b) == before_b

    # No queue for an agency, and no link to it.
    status, page = await l2.get("/console/queue")
    assert status == 403 and alert(page) == msg(hcp, "console.not_your_role") and "data-work-order" not in page
    assert 'href="/console/queue"' not in page
    status, _text, response = await l2.request("GET", "/console/")
    assert (status, response.headers["Location"]) == (303, "/console/orders")

    # An agent of agency A has only A's orders in the queue, and B's order is not found.
    agent = await logged_in(hcp, "agent_a", "agent", AGENCY_A)
    status, page = await agent.get("/console/queue")
    assert status == 200 and [i for i, _o in queue_ids(page)] == [wo_a]
    status, page = await agent.get(f"/console/orders/{wo_b}")
    assert status == 404
    status, page, _ = await agent.post(f"/console/orders/{wo_b}/reveal", {"csrf": await agent.token()})
    assert status == 404 and "tel:" not in page and not shows_number(page, phone_b)
    assert await stored(hcp, wo_b) == before_b

    # A change of the user's jurisdiction or role holds from the next request of the same session.
    await update_user(hcp, "l2b", agencies=[AGENCY_A])
    status, page = await l2.get("/console/orders")
    assert status == 200 and listed_ids(page) == [wo_a]
    await update_user(hcp, "l2b", role="agent")
    status, page = await l2.get("/console/queue")
    assert status == 200 and [i for i, _o in queue_ids(page)] == [wo_a]


async def test_a_work_order_path_that_is_no_id_is_not_found(hcp):
    agent = await logged_in(hcp, "agent1", "agent")
    token = await agent.token()
    for text in ("abc", "-1", "1.5", "0", "9999999999999", "%D9%A1"):
        status, _page, _response = await agent.request("GET", f"/console/orders/{text}")
        assert status == 404, text
        status, _page, _response = await agent.request("POST", f"/console/orders/{text}/reveal", {"csrf": token})
        assert status == 404, text


async def test_a_superscript_digit_is_not_a_work_order_id(hcp):
    agent = await logged_in(hcp, "agent1", "agent")
    status, _page, _response = await agent.request("GET", "/console/orders/%C2%B2")
    assert status == 404


# --- the queue -------------------------------------------------------------------------------------


async def test_the_queue_lists_the_callback_step_by_deadline_and_marks_the_overdue(hcp):
    made = {}
    for name in ("x", "y", "z", "dispatched", "closed"):
        made[name] = await order_at(hcp, "rectified" if name != "dispatched" else "dispatched", text=f"差评{name}")
    ids = {name: wo_id for name, (_c, wo_id, _p) in made.items()}
    # Reviewed on three working days, in an order other than their ids': z first, then x, then y.
    for day, name in (("2026-11-23", "z"), ("2026-11-24", "x"), ("2026-11-25", "y"), ("2026-11-25", "closed")):
        hcp.clock.set(f"{day}T10:00:00+08:00")
        await advance(hcp, ids[name], "reviewed")
    await advance(hcp, ids["closed"], "closed")
    due = {name: datetime.fromisoformat((await stored(hcp, ids[name]))["due_at"]) for name in ("x", "y", "z")}
    assert due["z"] < due["x"] < due["y"]

    agent = await logged_in(hcp, "agent1", "agent")
    status, page = await agent.get("/console/queue")
    assert status == 200
    assert queue_ids(page) == [(ids["z"], False), (ids["x"], False), (ids["y"], False)]
    assert msg(hcp, "console.overdue") not in page

    # z's deadline passes: the tick marks it, the queue shows it.
    late = due["z"] + timedelta(minutes=1)
    assert late < due["x"]
    await hcp.tick(late)
    hcp.clock.set(late)
    assert (await stored(hcp, ids["z"]))["overdue"] is True and (await stored(hcp, ids["x"]))["overdue"] is False
    status, _page, _ = await agent.login("agent1", follow=False)  # a new day, a new session
    assert status == 303
    status, page = await agent.get("/console/queue")
    assert status == 200
    assert queue_ids(page) == [(ids["z"], True), (ids["x"], False), (ids["y"], False)]
    assert msg(hcp, "console.overdue") in queue_card(page, ids["z"])
    assert msg(hcp, "console.overdue") not in queue_card(page, ids["x"])
    status, page = await agent.get("/console/orders?status=&overdue=true")
    assert status == 200 and listed_ids(page) == [ids["z"]]
    status, page = await agent.get("/console/orders")  # the open ones, by deadline
    assert status == 200 and listed_ids(page)[:3] == [ids["z"], ids["x"], ids["y"]]
    assert ids["closed"] not in listed_ids(page) and ids["dispatched"] in listed_ids(page)


# --- revealing the number --------------------------------------------------------------------------


async def test_the_full_number_is_shown_only_in_the_reveal_answer_and_each_reveal_is_recorded(hcp):
    _case, wo_id, phone = await order_at(hcp, "reviewed")
    _case2, early_id, early_phone = await order_at(hcp, "dispatched")
    agent = await logged_in(hcp, "agent1", "agent")
    l1 = await logged_in(hcp, "l1user", "l1")
    pages = ("/console/queue", "/console/orders", "/console/orders?status=", f"/console/orders/{wo_id}",
             f"/console/orders/{early_id}")

    async def nowhere_else() -> None:
        for path in pages:
            status, page = await agent.get(path)
            assert status == 200 and not shows_number(page, phone) and not shows_number(page, early_phone), path
            assert "tel:" not in page, path
        status, page = await agent.get(f"/console/orders/{wo_id}")
        assert masked(phone) in page

    await nowhere_else()
    token = await agent.token()
    # Not at the callback step: refused, nothing recorded.
    status, page, _ = await agent.post(f"/console/orders/{early_id}/reveal", {"csrf": token})
    assert status == 403 and alert(page) == msg(hcp, "console.reveal_refused")
    assert "tel:" not in page and not shows_number(page, early_phone)
    assert [h for h in (await stored(hcp, early_id))["history"] if h["action"] == "reveal"] == []

    status, page, _ = await agent.post(f"/console/orders/{wo_id}/reveal", {"csrf": token})
    assert status == 200
    assert re.findall(r'href="tel:([^"]*)"', page) == [f"+86{phone}"]
    assert page.count(phone) == 1 and page.count(national(phone)) == 1
    assert msg(hcp, "console.event.reveal") in page  # the page's history has it already
    await nowhere_else()

    status, page, _ = await agent.post(f"/console/orders/{wo_id}/reveal", {"csrf": token})
    assert status == 200 and f'href="tel:+86{phone}"' in page
    status, page, _ = await l1.post(f"/console/orders/{wo_id}/reveal", {"csrf": await l1.token()})
    assert status == 200 and f'href="tel:+86{phone}"' in page
    doc = await stored(hcp, wo_id)
    reveals = [h for h in doc["history"] if h["action"] == "reveal"]
    assert [h["actor"] for h in reveals] == ["agent1", "agent1", "l1user"]
    assert all(h["data"] == {"masked": masked(phone)} and h["note"] is None for h in reveals)
    assert all(h["from"] == h["to"] == "reviewed" for h in reveals)
    assert phone not in json.dumps(doc, ensure_ascii=False)
    await nowhere_else()

    # Closed, the number is no longer revealed.
    await advance(hcp, wo_id, "closed")
    status, page, _ = await agent.post(f"/console/orders/{wo_id}/reveal", {"csrf": token})
    assert status == 403 and "tel:" not in page and not shows_number(page, phone)
    assert len([h for h in (await stored(hcp, wo_id))["history"] if h["action"] == "reveal"]) == 3


# --- acting through the console --------------------------------------------------------------------


async def test_the_work_order_steps_through_the_console_forms(hcp):
    _case, wo_id, _phone = await order_at(hcp, "created")
    l1 = await logged_in(hcp, "l1user", "l1")
    l2 = await logged_in(hcp, "l2a", "l2", AGENCY_A)
    agent = await logged_in(hcp, "agent1", "agent")
    order = f"/console/orders/{wo_id}"

    async def act(browser: Browser, action: str, follow: bool = True, **form: str) -> tuple[int, str, str | None]:
        return await browser.post(f"{order}/act/{action}", {"csrf": await browser.token(order), **form},
                                  follow=follow)

    # Not the agency's step.
    status, page, _ = await act(l2, "dispatch")
    assert status == 403 and alert(page).startswith(msg(hcp, "console.refused_role"))
    assert (await stored(hcp, wo_id))["status"] == "created"

    status, page = await l1.get(order)
    assert f'action="{order}/act/dispatch"' in page
    status, page, location = await act(l1, "dispatch", back=order)
    assert location == f"{order}?done=dispatch" and status == 200 and flash(page) == msg(hcp, "console.done.dispatch")
    doc = await stored(hcp, wo_id)
    assert doc["status"] == "dispatched" and (doc["history"][-1]["action"], doc["history"][-1]["actor"]) == (
        "dispatch", "l1user")

    # Not now: a 409 page that says so, and nothing changes.
    status, page, _ = await act(l1, "review")
    assert status == 409 and alert(page).startswith(msg(hcp, "console.refused_state"))
    assert msg(hcp, "console.status.dispatched") in alert(page)  # the status it is in, in words
    assert (await stored(hcp, wo_id))["status"] == "dispatched"

    # The rectification needs its note.
    status, page = await l2.get(order)
    assert f'action="{order}/act/rectify"' in page and f'action="{order}/act/appeal"' in page
    for blank in ("", "   "):
        status, page, _ = await act(l2, "rectify", note=blank)
        assert status == 422 and alert(page).startswith(msg(hcp, "console.refused_input")), blank
    doc = await stored(hcp, wo_id)
    assert doc["status"] == "dispatched" and "rectify" not in [h["action"] for h in doc["history"]]
    status, page, location = await act(l2, "rectify", note="已对窗口人员进行批评教育并整改")
    assert location == f"{order}?done=rectify" and status == 200
    assert re.search(rf"<dt>{msg(hcp, 'console.rectification')}</dt><dd>已对窗口人员进行批评教育并整改</dd>", page)
    doc = await stored(hcp, wo_id)
    assert doc["status"] == "rectified"
    assert (doc["history"][-1]["actor"], doc["history"][-1]["note"]) == ("l2a", "已对窗口人员进行批评教育并整改")

    status, page, _ = await act(l1, "review", back="/console/queue")
    assert status == 200 and flash(page) == msg(hcp, "console.done.review")
    doc = await stored(hcp, wo_id)
    assert doc["status"] == "reviewed" and doc["callback"]["agent_queue"] is True

    # Unreachable: still in the queue, with the count.
    status, page, location = await act(agent, "callback", result="unreachable", back="/console/queue")
    assert location == "/console/queue?done=callback" and status == 200
    card = queue_card(page, wo_id)
    assert msg(hcp, "console.unreachable_count", count=1) in card and "未接通 1 次" in card
    doc = await stored(hcp, wo_id)
    assert (doc["status"], doc["unreachable"]) == ("reviewed", 1)

    # Dissatisfied: back to the agency, out of the queue.
    status, page, _ = await act(agent, "callback", result="dissatisfied", note="仍不满意", back="/console/queue")
    assert status == 200 and wo_id not in [i for i, _o in queue_ids(page)]
    doc = await stored(hcp, wo_id)
    assert (doc["status"], doc["reopened"]) == ("dispatched", 1)
    assert (doc["history"][-1]["action"], doc["history"][-1]["actor"]) == ("reopen", "agent1")
    status, page = await l2.get(order)
    assert msg(hcp, "console.reopened", count=1) in page and f'action="{order}/act/rectify"' in page

    # A form's way back is the console's own.
    status, _page, location = await act(l2, "rectify", follow=False, note="再次整改", back=EVIL)
    assert (status, location) == (303, f"{order}?done=rectify")


async def test_an_agency_appeals_and_the_centre_upholds_it(hcp):
    case_no, wo_id, _phone = await order_at(hcp, "dispatched")
    l1 = await logged_in(hcp, "l1user", "l1")
    l2 = await logged_in(hcp, "l2a", "l2", AGENCY_A)
    order = f"/console/orders/{wo_id}"
    token1, token2 = await l1.token(), await l2.token()

    status, page, _ = await l2.post(f"{order}/act/appeal", {"csrf": token2, "reason": " "})
    assert status == 422 and alert(page).startswith(msg(hcp, "console.refused_input"))
    assert (await stored(hcp, wo_id))["appeal"] is None
    status, page, _ = await l1.post(f"{order}/act/appeal", {"csrf": token1, "reason": "代为申诉"})
    assert status == 403
    status, page, location = await l2.post(f"{order}/act/appeal", {"csrf": token2, "reason": "评价人所述与事实不符"})
    assert location == f"{order}?done=appeal" and status == 200 and "评价人所述与事实不符" in page
    assert msg(hcp, "console.appeal.pending") in page
    doc = await stored(hcp, wo_id)
    assert doc["appeal"]["status"] == "pending" and doc["appeal"]["by"] == "l2a"

    # The agency does not decide its own appeal.
    status, page, _ = await l2.post(f"{order}/act/decide-appeal", {"csrf": token2, "upheld": "true"})
    assert status == 403 and (await stored(hcp, wo_id))["appeal"]["status"] == "pending"
    status, page = await l1.get(order)
    assert f'action="{order}/act/decide-appeal"' in page
    status, page, _ = await l1.post(f"{order}/act/decide-appeal", {"csrf": token1, "upheld": "maybe"})
    assert status == 422 and (await stored(hcp, wo_id))["appeal"]["status"] == "pending"
    status, page, location = await l1.post(f"{order}/act/decide-appeal",
                                           {"csrf": token1, "upheld": "true", "note": "核实属实"})
    assert location == f"{order}?done=decide-appeal" and status == 200
    assert msg(hcp, "console.outcome.excluded") in page and msg(hcp, "console.appeal.upheld") in page
    doc = await stored(hcp, wo_id)
    assert (doc["status"], doc["outcome"], doc["appeal"]["status"]) == ("closed", "excluded", "upheld")
    assert (doc["history"][-1]["action"], doc["history"][-1]["actor"]) == ("decide-appeal", "l1user")
    [evaluation] = (await hcp.case(case_no))["evaluations"]
    assert evaluation["status"] == "excluded"
    # Closed: nothing more to do, and the page offers nothing.
    status, page, _ = await l2.post(f"{order}/act/rectify", {"csrf": token2, "note": "迟到的整改"})
    assert status == 409 and (await stored(hcp, wo_id))["status"] == "closed"
    assert "/act/" not in page


# --- the dashboard and the stats API ---------------------------------------------------------------


CHANNEL_KEYS = {None: "console.unrated", "web": "console.channel.web", "sms": "console.channel.sms",
                "wechat": "console.channel.wechat", "default": "console.channel.default",
                "callback": "console.channel.callback"}


def _cells(g: dict[str, Any]) -> list[str]:
    def rate(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.1f}%"

    return [str(g["cases"]), str(g["to_rate"]), str(g["rated"]), rate(g["participation_rate"]),
            "-" if g["mean_score"] is None else f"{g['mean_score']:.2f}", str(g["bad_reviews"]),
            rate(g["rectification_rate"]), str(g["overdue"]),
            "-" if g["composite_score"] is None else f"{g['composite_score']:.2f}"]


def _expected(hcp: Hcp, by: str, groups: list[dict[str, Any]]) -> dict[str, list[str]]:
    if by == "agency":
        return {g["name"]: _cells(g) for g in groups}
    return {msg(hcp, CHANNEL_KEYS[g["key"]]): _cells(g) for g in groups}


async def _stats_data(hcp: Hcp) -> None:
    """Agency A: a bad review by the web page (its work order overdue), a good one by SMS, one unrated;
    agency B: a very bad one by WeChat (its work order dispatched, not overdue)."""
    b = {"agency_code": AGENCY_B, "agency_name": AGENCY_B_NAME}
    a1 = await hcp.post_case(completed_at="2026-11-16T10:00:00+08:00", phone=hcp.new_phone())
    a2 = await hcp.post_case(completed_at="2026-11-17T10:00:00+08:00", phone=hcp.new_phone())
    await hcp.post_case(completed_at="2026-11-20T10:00:00+08:00")
    b1 = await hcp.post_case(completed_at="2026-11-17T15:00:00+08:00", phone=hcp.new_phone(), **b)
    await hcp.rate(a1["case_no"], "dissatisfied", reasons=["efficiency"])
    await hcp.rate(a2["case_no"], "satisfied", channel="sms")
    await hcp.rate(b1["case_no"], "very_dissatisfied", channel="wechat", reasons=["fees"])
    [wo_b] = (await hcp.case(b1["case_no"]))["work_orders"]
    await advance(hcp, wo_b["id"], "dispatched")
    [wo_a] = (await hcp.case(a1["case_no"]))["work_orders"]
    late = datetime.fromisoformat(wo_a["due_at"]) + timedelta(minutes=1)
    await hcp.tick(late)
    hcp.clock.set(late)


async def test_the_dashboard_shows_the_stats_apis_figures_and_its_filters_narrow_them(hcp):
    await _stats_data(hcp)
    l1 = await logged_in(hcp, "l1user", "l1")

    for query in ({}, {"from": "2026-11-17", "to": "2026-11-17"}, {"from": "2026-11-17"}, {"to": "2026-11-16"}):
        status, page = await l1.get("/console/dashboard?" + _query(**query))
        assert status == 200, query
        for by in ("agency", "channel"):
            api = await api_stats(hcp, by=by, **query)
            assert dashboard_table(page, by) == _expected(hcp, by, api["groups"]), (query, by)
        for name, value in query.items():
            assert f'name="{name}" value="{value}"' in page

    # The figures themselves, not only their agreement.
    status, page = await l1.get("/console/dashboard")
    agencies = dashboard_table(page, "agency")
    # composite: A (40×55 + 30×0 + 20×66.67) / 90 = 39.26; B (40×0 + 30×0 + 20×100) / 90 = 22.22
    assert agencies == {AGENCY_A_NAME: ["3", "3", "2", "66.7%", "5.50", "1", "0.0%", "1", "39.26"],
                        AGENCY_B_NAME: ["1", "1", "1", "100.0%", "0.00", "1", "0.0%", "0", "22.22"]}
    ranking = re.search(r'aria-labelledby="ranking">(.*?)</section>', page, re.S)
    assert ranking and re.findall(r'<td class="num">(\d+)</td><th scope="row">(.*?)</th>', ranking.group(1)) == [
        ("1", AGENCY_A_NAME), ("2", AGENCY_B_NAME)]
    channels = dashboard_table(page, "channel")
    assert channels[msg(hcp, "console.channel.web")][5] == channels[msg(hcp, "console.channel.wechat")][5] == "1"
    assert channels[msg(hcp, "console.channel.sms")][4] == "8.00"
    status, page = await l1.get("/console/dashboard?from=2026-11-17&to=2026-11-17")
    assert dashboard_table(page, "agency") == {
        AGENCY_A_NAME: ["1", "1", "1", "100.0%", "8.00", "0", "-", "0", "86.67"],
        AGENCY_B_NAME: ["1", "1", "1", "100.0%", "0.00", "1", "0.0%", "0", "22.22"]}
    status, page = await l1.get("/console/dashboard?from=2026-12-01")
    assert dashboard_table(page, "agency") == {} and msg(hcp, "console.no_data") in page


async def test_the_stats_api_reads_the_consoles_session_within_its_jurisdiction(hcp):
    await _stats_data(hcp)
    l2 = await logged_in(hcp, "l2b", "l2", AGENCY_B)
    l1 = await logged_in(hcp, "l1user", "l1")

    status, text, response = await l2.request("GET", "/api/v1/stats")
    assert status == 200 and response.content_type == "application/json"
    doc = json.loads(text)
    assert [g["key"] for g in doc["groups"]] == [AGENCY_B]
    assert doc["groups"][0]["cases"] == 1 and doc["groups"][0]["bad_reviews"] == 1
    status, text, _response = await l2.request("GET", "/api/v1/stats?by=channel")
    assert status == 200 and [g["key"] for g in json.loads(text)["groups"]] == ["wechat"]
    status, page = await l2.get("/console/dashboard")
    assert list(dashboard_table(page, "agency")) == [AGENCY_B_NAME] and AGENCY_A_NAME not in page

    status, text, _response = await l1.request("GET", "/api/v1/stats")
    assert status == 200 and sorted(g["key"] for g in json.loads(text)["groups"]) == sorted([AGENCY_A, AGENCY_B])

    # No session and no token: 401; a bearer header is read as a bearer even beside a session cookie.
    status, _text, _response = await Browser(hcp).request("GET", "/api/v1/stats")
    assert status == 401
    status, _text, _response = await l2.request("GET", "/api/v1/stats", headers={"Authorization": "Bearer nope"})
    assert status == 401


# --- headers of every page -------------------------------------------------------------------------


async def test_every_console_page_forbids_inline_scripts_and_framing(hcp):
    _case, wo_id, _phone = await order_at(hcp, "reviewed")
    _case2, early_id, _phone2 = await order_at(hcp, "dispatched")
    browsers = []
    anonymous = Browser(hcp)
    await anonymous.get("/console/")
    await anonymous.login("nobody", "wrong password 123")
    browsers.append(anonymous)
    for name, role in (("agent1", "agent"), ("l2a", "l2"), ("l1user", "l1")):
        browser = await logged_in(hcp, name, role, AGENCY_A)
        browsers.append(browser)
        for path in ("/console/", "/console/queue", "/console/orders", "/console/orders?status=&overdue=true",
                     f"/console/orders/{wo_id}", f"/console/orders/{early_id}", "/console/orders/999999",
                     "/console/dashboard", "/console/dashboard?from=2026-11-01&to=2026-11-30",
                     "/console/login", "/console/orders?lang=en"):
            await browser.get(path)
        token = await browser.token()
        await browser.post(f"/console/orders/{wo_id}/reveal", {"csrf": token})
        await browser.post(f"/console/orders/{early_id}/act/review", {"csrf": token})  # 409 or 403
        await browser.post(f"/console/orders/{early_id}/act/rectify", {"csrf": token})  # 422 or 403

    statuses = set()
    for browser in browsers:
        for method, path, status, headers, text in browser.seen:
            if status in (301, 302, 303, 307, 308):
                continue
            statuses.add(status)
            where = (method, path, status)
            assert headers.get("Content-Type", "").startswith("text/html"), where
            policy = headers.get("Content-Security-Policy", "")
            directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
            assert directives.get("script-src") == ["'self'"], (where, policy)
            assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, (where, policy)
            assert directives.get("frame-ancestors") == ["'none'"], (where, policy)
            assert headers.get("X-Frame-Options") == "DENY", where
            # Nothing in the page that such a policy would block.
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), where
            assert not re.search(r"\son[a-z]+\s*=", text) and " style=" not in text, where
    assert {200, 401, 403, 404, 409, 422} <= statuses
