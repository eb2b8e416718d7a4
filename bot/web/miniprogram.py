"""The mini-program's backend (designed in the spirit of the contract; documented in docs/providers.md).

    POST /api/mp/v1/login    {"code"}                     → {"session", "expires_at"}
    GET  /api/mp/v1/cases    Authorization: Bearer <session> → {"cases": [...]} (open for a rating)
    POST /api/mp/v1/ratings  {"token" | "case_no", "grade", "reasons"?, "text"?} → 201 the evaluation
    GET  /api/mp/v1/rating?token=…&locale=…                → the case a rating link names, and the reasons
    POST /api/mp/v1/subscriptions {"token"?, "result"}     → what wx.requestSubscribeMessage answered

The login exchanges wx.login()'s code for the person's openid (jscode2session) and hands back a
signed session of our own: the openid never leaves the service, and a session names one person.

A rating link's token is an authority of its own, as on the web rating page (the subscribe message opens
`pages/rate/index?token=…`): the rating page of the mini-program, or the component embedded in another government
mini-program (whose wx.login codes are not ours to exchange), shows and rates the case with the token alone; a
case named by its case_no needs the session of the person it belongs to. What the page shows in words comes from
the same catalogs as the web rating page (miniprogram/i18n/ is generated from them), the reasons from the policy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from aiohttp import web
from wechatpy.exceptions import WeChatClientException

from bot.infra.i18n import SOURCE, local_day, negotiate
from bot.infra.refusals import Refusal
from bot.infra.runtime import Runtime
from bot.rating.intake import FieldError
from bot.rating.ratings import (
    RaterBarred,
    RatingRefused,
    barred,
    chosen,
    closed_kind,
    openness,
    rating_errors,
    record,
    scope_error,
    scope_of,
)
from bot.web import idempotency, refusals, views
from bot.web.common import error, json_response, now, read_json, runtime
from dialogs import messages as m
from dialogs.addresses import mask_openid
from dialogs.types import Reply
from store import cases as case_store
from store import contacts
from store import evaluations as evaluation_store

SESSION = timedelta(hours=2)


def _mac(rt: Runtime, payload: str) -> str:
    digest = hmac.new(rt.sealer.subkey("mp-session"), payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _session_token(rt: Runtime, contact_id: int, expires: datetime) -> str:
    payload = f"{contact_id}.{int(expires.timestamp())}"
    return f"{payload}.{_mac(rt, payload)}"


def _contact_of(request: web.Request) -> int:
    rt = runtime(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    parts = token.strip().split(".")
    if scheme.lower() != "bearer" or len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
        raise web.HTTPUnauthorized(text="log in first: POST /api/mp/v1/login")
    payload = f"{parts[0]}.{parts[1]}"
    if (not hmac.compare_digest(parts[2].encode(), _mac(rt, payload).encode())
            or int(parts[1]) <= now(request).timestamp()):
        raise web.HTTPUnauthorized(text="the session is not valid or has expired: log in again")
    return int(parts[0])


def _enabled(request: web.Request) -> Runtime:
    rt = runtime(request)
    if rt.mp_api is None:
        raise web.HTTPNotFound(text="the mini-program is not configured")
    return rt


async def login(request: web.Request) -> web.Response:
    rt = _enabled(request)
    doc = await read_json(request)
    code = doc.get("code") if isinstance(doc, dict) else None
    if not isinstance(code, str) or not code.strip():
        return json_response({"errors": [{"field": "code", "message": "required: the code from wx.login()"}]}, 422)
    assert rt.mp_api is not None
    try:
        result = await rt.mp_api.code_to_session(code.strip())
    except WeChatClientException as exc:
        return error(401, f"WeChat did not accept the login code ({exc.errcode})")
    openid = str(result.get("openid") or "")
    if not openid:
        return error(401, "WeChat returned no openid")
    stamp = now(request)
    async with rt.db.write() as session:
        contact_id = await contacts.ensure(session, "miniprogram", rt.sealer.lookup_hashes("miniprogram", openid),
                                           rt.sealer.seal(openid), mask_openid(openid), stamp)
    expires = stamp + SESSION
    return json_response({"session": _session_token(rt, contact_id, expires),
                          "expires_at": views.instant(rt, expires)})


async def list_cases(request: web.Request) -> web.Response:
    rt = _enabled(request)
    contact_id = _contact_of(request)
    stamp = now(request)
    out = []
    async with rt.db.read() as session:
        mine = await case_store.of_miniprogram_contact(session, contact_id, limit=50)
        for case in mine:
            state = openness(rt, await evaluation_store.for_case(session, case.id), stamp)  # type: ignore[arg-type]
            if state != "closed":
                out.append({"case_no": case.case_no, "item_name": case.item_name, "agency_name": case.agency_name,
                            "completed_at": views.instant(rt, case.completed_at),
                            "token": rt.links.token(case.id), "rating": state})  # type: ignore[arg-type]
    return json_response({"cases": out})


def _has_session(request: web.Request) -> bool:
    return bool(request.headers.get("Authorization", "").strip())


async def rate(request: web.Request) -> web.Response:
    _enabled(request)
    doc = await read_json(request)
    by_token = isinstance(doc, dict) and isinstance(doc.get("token"), str) and not doc.get("case_no")
    # A token alone is enough (it names the case, as a rating link does); a case_no needs the person's session.
    contact_id = _contact_of(request) if _has_session(request) or not by_token else None
    bearer = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if not bearer and by_token:  # no session: the token's own keys
        bearer = f"token:{doc['token']}"
    scope = idempotency.scope_of("mp", bearer)
    return await idempotency.idempotent(request, scope, lambda: _rate(request, doc, contact_id))


async def _rate(request: web.Request, doc: object, contact_id: int | None) -> web.Response:
    rt = runtime(request)
    if isinstance(doc, dict) and isinstance(doc.get("token"), str) and not doc.get("case_no"):
        doc = {**doc, "case_no": "-"}  # named by the token instead
    errs = rating_errors(doc, set(rt.policy.reasons), channel=False)
    if isinstance(doc, dict) and doc.get("scope") == "visit":  # rated on the spot, by the window's device or QR
        errs.append(FieldError("scope", "a window visit is rated at the window; here: 'item' or 'bundle'"))
    if errs:
        return json_response({"errors": [e.as_json() for e in errs]}, 422)
    grade, reasons, text = chosen(doc)
    stamp = now(request)
    case_id = rt.links.case_id(doc["token"]) if isinstance(doc.get("token"), str) else None
    found: tuple[int, str] | None = None  # the case's id and locale, for a refusal said after the transaction
    try:
        async with rt.db.write() as session:
            if case_id is not None:
                case = await case_store.by_id(session, case_id, lock=rt.db.locks_rows)
            else:
                case = await case_store.by_no(session, doc["case_no"], lock=rt.db.locks_rows)
            if case is None and contact_id is None:  # a token that names no case: the page's "invalid link"
                return _problem(rt, _locale(request, None), "invalid", 404)
            if case is None or (contact_id is not None and case.mp_contact_id != contact_id):
                return error(404, "no such case for this person")
            found = (case.id, case.locale)  # type: ignore[assignment]
            wrong_scope = scope_error(case, scope_of(doc))
            if wrong_scope is not None:
                return json_response({"errors": [wrong_scope.as_json()]}, 422)
            evaluation = await record(session, rt, case, grade, reasons if grade.is_bad else (), text,
                                      "miniprogram", stamp, scope=scope_of(doc))
            body = views.evaluation_json(rt, evaluation)
    except RaterBarred as exc:
        assert found is not None
        return _problem(rt, _locale(request, found[1]), "barred", 403, until=exc.until)
    except RatingRefused:
        assert found is not None
        async with rt.db.read() as session:
            evaluations = await evaluation_store.for_case(session, found[0])
        return _problem(rt, _locale(request, found[1]), closed_kind(evaluations), 409)
    except Refusal as exc:
        return refusals.response(exc)
    # What happens next, for the result page: a bad review becomes a work order answered by the agency.
    return json_response({**body, "next": "work_order" if grade.is_bad else "thanks"}, status=201)


def _locale(request: web.Request, case_locale: str | None) -> str:
    """The mini-program's language (wx.getSystemInfo's, passed as `locale`), else the case's."""
    asked = request.query.get("locale")
    return negotiate(asked) if asked else negotiate(case_locale) if case_locale else SOURCE


PROBLEM_KEYS = {"invalid": ("page.invalid_heading", "page.invalid"), "used": ("page.used_heading", "page.used"),
                "expired": ("page.expired_heading", "page.expired"), "barred": ("page.barred_heading", "")}


def _problem(rt: Runtime, locale: str, kind: str, status: int, until: datetime | None = None) -> web.Response:
    """Why the case cannot be rated, in the web rating page's words: `problem` tells the page which screen."""
    heading, line = PROBLEM_KEYS[kind]
    text = (rt.render(Reply(m.BARRED, {"until": until}), locale) if kind == "barred"
            else rt.catalogs.text(locale, line))
    return json_response({"problem": kind, "heading": rt.catalogs.text(locale, heading), "message": text,
                          "error": text}, status=status)


async def show(request: web.Request) -> web.Response:
    """The case a rating link's token names, as the rating page shows it, with the reasons to offer."""
    rt = _enabled(request)
    case_id = rt.links.case_id(request.query.get("token", ""))
    case = None
    stamp = now(request)
    if case_id is not None:
        async with rt.db.read() as session:
            case = await case_store.by_id(session, case_id)
            if case is not None:
                evaluations = await evaluation_store.for_case(session, case_id)
                until = await barred(session, case, stamp)
    locale = _locale(request, case.locale if case is not None else None)
    if case is None:
        return _problem(rt, locale, "invalid", 404)
    if until is not None:
        return _problem(rt, locale, "barred", 403, until=until)
    state = openness(rt, evaluations, stamp)
    if state == "closed":
        return _problem(rt, locale, closed_kind(evaluations), 409)
    settings = rt.settings
    return json_response({
        "state": state, "locale": locale,
        "case": {"item_name": case.item_name, "agency_name": case.agency_name, "staff_name": case.staff_name,
                 "completed": local_day(case.completed_at, rt.policy.tz, locale),
                 "completed_at": views.instant(rt, case.completed_at)},
        "rated": [e.grade for e in evaluations if e.via != "callback"],
        "reasons": [{"code": code, "label": rt.catalogs.reason_label(locale, code, rt.policy.reasons)}
                    for code in rt.policy.reasons],
        "subscribe": {"template_id": settings.wechat_mp_template_id} if settings.wechat_mp_template_id else None,
    })


SUBSCRIPTION_RESULTS = {"accept": True, "reject": False, "ban": False}  # wx.requestSubscribeMessage's answers


async def subscription(request: web.Request) -> web.Response:
    """What the person answered to wx.requestSubscribeMessage (the template's key in its result: "accept",
    "reject", or "ban" when they switched subscriptions off; "filter" and errors say nothing of them and are not
    sent). Recorded on the person: an accepted one-time subscription lets the next reminder through WeChat, a
    refusal sends it by SMS at once (rather than a subscribe message WeChat would refuse with 43101)."""
    rt = _enabled(request)
    doc = await read_json(request)
    result = doc.get("result") if isinstance(doc, dict) else None
    if result not in SUBSCRIPTION_RESULTS:
        return json_response({"errors": [{"field": "result", "message": "expected one of accept, reject, ban "
                                                                        "(wx.requestSubscribeMessage's answer)"}]},
                             422)
    assert isinstance(doc, dict)
    stamp = now(request)
    if _has_session(request):
        contact_id: int | None = _contact_of(request)
    else:
        case_id = rt.links.case_id(str(doc.get("token") or ""))
        if case_id is None:
            raise web.HTTPUnauthorized(text="log in first (POST /api/mp/v1/login), or give the rating link's token")
        async with rt.db.read() as session:
            case = await case_store.by_id(session, case_id)
        contact_id = case.mp_contact_id if case is not None else None
        if contact_id is None:  # a case that reaches nobody by mini-program: nothing to record
            return json_response({"recorded": False})
    async with rt.db.write() as session:
        grants = await contacts.subscription_answered(session, contact_id, SUBSCRIPTION_RESULTS[result], stamp)
    return json_response({"recorded": True, "grants": grants})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/mp/v1/login", login)
    app.router.add_get("/api/mp/v1/cases", list_cases)
    app.router.add_post("/api/mp/v1/ratings", rate)
    app.router.add_get("/api/mp/v1/rating", show)
    app.router.add_post("/api/mp/v1/subscriptions", subscription)
