"""The agents' console over HTTP, as a browser without JavaScript uses it: log-in with its CSRF
token and throttle, sessions in a signed cookie (SQLite, no Redis) or in Redis, the callback queue
oldest deadline first, revealing the rater's number into the history, recording a callback, the
agency's rectification and appeal forms, and the dashboard's figures."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from conftest import BACKENDS
from helpers import Hcp

from bot import users

PASSWORD = "correct horse battery staple"
AGENCY_A = "11440500MB2C01234X"  # Hcp.case_body's agency
on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


class Browser:
    """A cookie-keeping client of the console that sends what a form would (Secure cookies included:
    the service's public URL is https, the test server is plain http)."""

    def __init__(self, hcp: Hcp) -> None:
        self.hcp = hcp
        self.cookies: dict[str, str] = {}

    def _keep(self, response: Any) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def request(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, str, Any]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.hcp.client.request(method, path, data=data, allow_redirects=False,
                                                 headers={**({"Cookie": cookie} if cookie else {}), **(headers or {})})
        self._keep(response)
        return response.status, await response.text(), response

    async def get(self, path: str) -> tuple[int, str]:
        status, text, response = await self.request("GET", path)
        hops = 0
        while status in (301, 302, 303, 307, 308) and hops < 5:
            status, text, response = await self.request("GET", response.headers["Location"])
            hops += 1
        return status, text

    async def post(self, path: str, data: Any, follow: bool = True) -> tuple[int, str, str | None]:
        status, text, response = await self.request("POST", path, data)
        location = response.headers.get("Location")
        if follow and status == 303 and location:
            status, text = await self.get(location)
        return status, text, location

    async def login(self, username: str, password: str = PASSWORD) -> tuple[int, str, str | None]:
        _status, page = await self.get("/console/login")
        token = csrf(page)
        return await self.post("/console/login", {"username": username, "password": password, "csrf": token})


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def add_user(hcp: Hcp, name: str, role: str, *agencies: str) -> None:
    async with hcp.rt.db.write() as session:
        await users.create(session, name, role, list(agencies) or ["*"], PASSWORD, hcp.clock())


async def reviewed_order(hcp: Hcp, text: str = "窗口人员态度冷淡") -> tuple[str, int]:
    """A case rated dissatisfied on the page, taken through dispatch, rectify and review by the API."""
    doc = await hcp.post_case(completed_at="2026-11-16T10:00:00+08:00", phone=hcp.new_phone())
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["attitude"], text=text)
    [wo] = (await hcp.case(doc["case_no"]))["work_orders"]
    for action, body in (("dispatch", {}), ("rectify", {"note": "已约谈窗口人员"}), ("review", {})):
        status, answer = await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/{action}", body)
        assert status == 200, answer
    return doc["case_no"], wo["id"]


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
