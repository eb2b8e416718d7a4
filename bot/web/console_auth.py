"""Who is at the console: log-in, log-out, the session cookie and the CSRF checks.

Every console POST carries the session's CSRF token in a hidden field and, when the browser sends
one, an Origin of this service; the log-in form, which has no session yet, carries a token that
must equal a cookie set with the form (double submit). Failed log-ins are counted with the API's
(bot/users.authenticate: a back-off per name and address, a budget per address); a throttled one is
429 with Retry-After and the wait, in words, on the form.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from aiohttp import web
from babel.dates import format_timedelta

from bot.infra.limits import code_problem
from bot.infra.runtime import Runtime
from bot.web import pages
from bot.web.common import now, runtime
from bot.web.console_sessions import COOKIE, TTL, ConsoleSession, Sessions
from bot.work_orders import users
from bot.work_orders.actors import Actor
from store.models import User

LOGIN_CSRF_COOKIE = "hcp_login"
log = logging.getLogger("haochaping.console")
SESSIONS = web.AppKey("console_sessions", Sessions)


@dataclass(frozen=True)
class Who:
    user: User
    session: ConsoleSession
    actor: Actor


def sessions(request: web.Request) -> Sessions:
    return request.app[SESSIONS]


def _secure(rt: Runtime) -> bool:
    return rt.settings.public_url.startswith("https://")


async def current(request: web.Request) -> Who | None:
    """The logged-in user of this request, or None."""
    rt = runtime(request)
    stamp = now(request)
    session = await sessions(request).load(request.cookies.get(COOKIE), stamp)
    if session is None:
        return None
    async with rt.db.read() as db:
        user = await db.get(User, session.user_id)
    if user is None or not session.valid_for(user, stamp):
        return None
    return Who(user, session, users.actor_of(user))


async def require(request: web.Request) -> Who:
    who = await current(request)
    if who is None:
        target = request.path_qs if request.method == "GET" else "/console/"
        raise web.HTTPSeeOther("/console/login?" + _next_param(target))
    return who


def _next_param(target: str) -> str:
    return urlencode({"next": target})


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


async def check_csrf(request: web.Request, who: Who) -> None:
    form = await request.post()
    token = str(form.get("csrf") or "")
    if not pages.same_origin(request) or not hmac.compare_digest(token.encode(), who.session.csrf.encode()):
        raise stale_form(request)


def stale_form(request: web.Request) -> web.HTTPForbidden:
    """403 for a form that is stale or came from elsewhere: a page that says so in the reader's language."""
    locale = pages.locale_of(request)
    t = runtime(request).catalogs.text
    page = pages.render(request, "console_base.html", locale, 403, who=None, nav=[], section="", flash=None,
                        title=t(locale, "console.stale_title"), error=t(locale, "console.stale_form"))
    return web.HTTPForbidden(text=page.text, content_type="text/html", headers=pages.SECURITY_HEADERS)


def _login_page(request: web.Request, *, error: str | None = None, status: int = 200,
                username: str = "", target: str | None = None) -> web.Response:
    """The form; shown again after a failure, it keeps where the user was going (`target`)."""
    rt = runtime(request)
    token = secrets.token_urlsafe(24)
    response = pages.render(request, "console_login.html", pages.locale_of(request), status, csrf=token,
                            error=error, username=username,
                            next=_safe_next(target if target is not None else request.query.get("next")))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=_secure(rt),
                        path="/console/", max_age=3600)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    if await current(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    form = await request.post()
    locale = pages.locale_of(request)
    t = rt.catalogs.text
    username = str(form.get("username") or "")[:64]
    target = _safe_next(str(form.get("next") or ""))
    password = str(form.get("password") or "")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    token = str(form.get("csrf") or "")

    def again(key: str, status: int, **params: str) -> web.Response:
        text = t(locale, key)
        return _login_page(request, error=text.format(**params) if params else text, status=status,
                           username=username, target=target)

    if not cookie or not pages.same_origin(request) or not hmac.compare_digest(token.encode(), cookie.encode()):
        return again("console.login_stale", 403)
    if not username or not password:
        return again("console.login_missing", 422)
    bad = [name for name, value in (("username", username), ("password", password)) if code_problem(value)]
    if bad:
        log.info("console log-in refused for %s from %s: control characters in %s", username, request.remote,
                 bad[0])
        return again("page.control_characters", 422, field=t(locale, f"console.{bad[0]}"))
    try:
        user = await users.authenticate(rt, username, password, request.remote)
    except users.LoginRefused as exc:
        log.info("console log-in refused for %s from %s: %s", username, request.remote, exc)
        if exc.retry_after is not None:
            response = again("console.login_throttled", 429, wait=wait_text(exc.retry_after, locale))
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        return again("console.login_failed", 401)
    value, _session = await sessions(request).start(user, now(request))
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, value, httponly=True, samesite="Lax", secure=_secure(rt), path="/",
                        max_age=int(TTL.total_seconds()))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/console/")
    raise response


def wait_text(seconds: int, locale: str) -> str:
    """A wait as the locale says it: seconds under a minute, else whole minutes rounded up."""
    if seconds >= 60:
        return format_timedelta(timedelta(minutes=math.ceil(seconds / 60)), threshold=1, locale=locale)
    return format_timedelta(timedelta(seconds=seconds), threshold=1, locale=locale)


async def logout(request: web.Request) -> web.StreamResponse:
    who = await current(request)
    if who is not None:
        await check_csrf(request, who)
        async with runtime(request).db.write() as db:
            await sessions(request).end(db, who.session)
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(COOKIE, path="/")
    raise response


def setup(app: web.Application, rt: Runtime) -> None:
    app[SESSIONS] = Sessions(rt.state, rt.sealer.subkey("console-sessions"))
    app.router.add_get("/console/login", login_form)
    app.router.add_post("/console/login", login)
    app.router.add_post("/console/logout", logout)
