"""What the console's tests share: a cookie-keeping browser without JavaScript, users, work orders
taken to a given step through the API, and readers for the pages' tables and lists."""

from __future__ import annotations

import re
from http.cookies import Morsel, SimpleCookie
from typing import Any

from helpers import Hcp
from markupsafe import escape

from bot.infra.i18n import SOURCE
from bot.work_orders import users
from store import users as user_store

PASSWORD = "correct horse battery staple"
AGENCY_A = "11440500MB2C01234X"  # Hcp.case_body's agency
AGENCY_A_NAME = "汕头市公安局金平分局"
AGENCY_B = "11440507MB2C05678Y"
AGENCY_B_NAME = "汕头市龙湖区市场监督管理局"
SESSION_COOKIE = "hcp_console"
LOGIN_COOKIE = "hcp_login"
REDIRECTS = (301, 302, 303, 307, 308)
# The steps a work order goes through by the API, in order, with the body of each.
STEPS = (("dispatched", "dispatch", {}), ("rectified", "rectify", {"note": "已约谈窗口人员"}),
         ("reviewed", "review", {}), ("closed", "callback", {"result": "satisfied"}))


class Browser:
    """A cookie-keeping client of the console that sends what a form would (Secure cookies included:
    the service's public URL is https, the test server is plain http). Every response it got is kept
    in `seen` (method, path, status, headers, text) and the last one in `last`."""

    def __init__(self, hcp: Hcp, cookies: dict[str, str] | None = None) -> None:
        self.hcp = hcp
        self.cookies: dict[str, str] = dict(cookies or {})
        self.set_cookies: dict[str, Morsel] = {}  # the last Set-Cookie of each name
        self.seen: list[tuple[str, str, int, Any, str]] = []
        self.last: Any = None

    def _keep(self, response: Any) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.set_cookies[name] = morsel
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
        text = await response.text()
        self.last = response
        self.seen.append((method, path, response.status, response.headers, text))
        return response.status, text, response

    async def get(self, path: str) -> tuple[int, str]:
        status, text, response = await self.request("GET", path)
        hops = 0
        while status in REDIRECTS and hops < 5:
            status, text, response = await self.request("GET", response.headers["Location"])
            hops += 1
        return status, text

    async def post(self, path: str, data: Any, follow: bool = True, headers: dict[str, str] | None = None
                   ) -> tuple[int, str, str | None]:
        status, text, response = await self.request("POST", path, data, headers)
        location = response.headers.get("Location")
        if follow and status == 303 and location:
            status, text = await self.get(location)
        return status, text, location

    async def login(self, username: str, password: str = PASSWORD, follow: bool = True, next: str | None = None
                    ) -> tuple[int, str, str | None]:
        _status, page = await self.get("/console/login")
        form = {"username": username, "password": password, "csrf": csrf(page)}
        if next is not None:
            form["next"] = next
        return await self.post("/console/login", form, follow=follow)

    async def token(self, path: str = "/console/orders") -> str:
        """The session's CSRF token, as a page's forms carry it."""
        status, page = await self.get(path)
        assert status == 200, (status, page[:300])
        return csrf(page)

    async def redirected_to_login(self, path: str = "/console/orders") -> bool:
        """Whether a GET of a console page is sent to the log-in form (that is, there is no session)."""
        status, _text, response = await self.request("GET", path)
        return status == 303 and response.headers["Location"].startswith("/console/login?")


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def msg(hcp: Hcp, key: str, **params: Any) -> str:
    """A catalog text as the (Chinese) page shows it, escaped as Jinja escapes it."""
    text = hcp.rt.catalogs.text(SOURCE, key)
    return str(escape(text.format(**params) if params else text))


def alert(page: str) -> str | None:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    return found.group(1) if found else None


def flash(page: str) -> str | None:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', page, re.S)
    return found.group(1) if found else None


def queue_ids(page: str) -> list[tuple[int, bool]]:
    """(work order id, marked overdue) of each card of the queue, in the page's order."""
    return [(int(m.group(2)), bool(m.group(1)))
            for m in re.finditer(r'<li class="card( overdue)?" data-work-order="(\d+)">', page)]


def queue_card(page: str, wo_id: int) -> str:
    found = re.search(rf'<li class="card[^"]*" data-work-order="{wo_id}">(.*?)</li>', page, re.S)
    assert found, f"work order {wo_id} is not in the queue"
    return found.group(1)


def listed_ids(page: str) -> list[int]:
    """The work orders of the list page (/console/orders), in order."""
    return [int(i) for i in re.findall(r'<tr[^>]*>\s*<td[^>]*><a href="/console/orders/(\d+)">', page)]


def dashboard_table(page: str, by: str) -> dict[str, list[str]]:
    """A dashboard table: row name → its cells (cases, rated, participation, mean score, bad reviews,
    rectification, overdue)."""
    section = re.search(rf'<section class="card" aria-labelledby="by-{by}">(.*?)</section>', page, re.S)
    assert section, f"no table by {by}"
    rows = {}
    for m in re.finditer(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', section.group(1), re.S):
        rows[m.group(1)] = re.findall(r'<td class="num">(.*?)</td>', m.group(2))
    return rows


def national(phone: str) -> str:
    return f"{phone[:3]} {phone[3:7]} {phone[7:]}"


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def shows_number(page: str, phone: str) -> bool:
    """Whether a page holds the rater's full number in any of its forms."""
    return phone in page or national(phone) in page or re.search(r"1\d{10}", page) is not None


async def add_user(hcp: Hcp, name: str, role: str, *agencies: str) -> None:
    async with hcp.rt.db.write() as session:
        await users.create(session, name, role, list(agencies) or ["*"], PASSWORD, hcp.clock())


async def logged_in(hcp: Hcp, name: str, role: str, *agencies: str) -> Browser:
    await add_user(hcp, name, role, *agencies)
    browser = Browser(hcp)
    status, page, location = await browser.login(name, follow=False)
    assert status == 303 and SESSION_COOKIE in browser.cookies, (status, location, page[:300])
    return browser


async def update_user(hcp: Hcp, name: str, **values: Any) -> None:
    async with hcp.rt.db.write() as session:
        user = await user_store.by_name(session, name)
        assert user is not None
        for key, value in values.items():
            setattr(user, key, value)
        session.add(user)


async def order_at(hcp: Hcp, step: str = "reviewed", *, agency: tuple[str, str] | None = None,
                   completed_at: str = "2026-11-16T10:00:00+08:00", text: str = "窗口人员态度冷淡"
                   ) -> tuple[str, int, str]:
    """A case rated dissatisfied by the API, its work order taken to `step` by the API; (case_no, the
    work order's id, the rater's number)."""
    phone = hcp.new_phone()
    more = {"agency_code": agency[0], "agency_name": agency[1]} if agency else {}
    doc = await hcp.post_case(completed_at=completed_at, phone=phone, **more)
    await hcp.rate(doc["case_no"], "dissatisfied", reasons=["attitude"], text=text)
    [wo] = (await hcp.case(doc["case_no"]))["work_orders"]
    if step != "created":
        await advance(hcp, wo["id"], step)
    return doc["case_no"], wo["id"], phone


async def advance(hcp: Hcp, wo_id: int, to: str) -> dict[str, Any]:
    """Take a work order by the API from where it is to `to` (a status of STEPS)."""
    doc = await stored(hcp, wo_id)
    names = [s for s, _a, _b in STEPS]
    start = names.index(doc["status"]) + 1 if doc["status"] in names else 0
    for status, action, body in STEPS[start:names.index(to) + 1]:
        code, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body)
        assert code == 200 and doc["status"] == status, (code, doc)
    return doc


async def stored(hcp: Hcp, wo_id: int) -> dict[str, Any]:
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert status == 200, (status, doc)
    return doc


async def api_stats(hcp: Hcp, **query: str) -> dict[str, Any]:
    status, doc = await hcp.api("GET", "/api/v1/stats?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert status == 200, (status, doc)
    return doc


async def api_login(hcp: Hcp, username: str, password: str) -> tuple[int, Any, Any]:
    response = await hcp.client.post("/api/v1/login", json={"username": username, "password": password})
    return response.status, await response.json(), response.headers
