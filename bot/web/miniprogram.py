"""The mini-program's backend (designed in the spirit of the contract; documented in docs/providers.md).

    POST /api/mp/v1/login    {"code"}                     → {"session", "expires_at"}
    GET  /api/mp/v1/cases    Authorization: Bearer <session> → {"cases": [...]} (open for a rating)
    POST /api/mp/v1/ratings  {"token" | "case_no", "grade", "reasons"?, "text"?} → 201 the evaluation

The login exchanges wx.login()'s code for the person's openid (jscode2session) and hands back a
signed session of our own: the openid never leaves the service, and a session names one person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from aiohttp import web
from wechatpy.exceptions import WeChatClientException

from bot.infra.refusals import Refusal
from bot.infra.runtime import Runtime
from bot.rating.intake import FieldError
from bot.rating.ratings import openness, rating_errors, record, scope_error, scope_of
from bot.web import idempotency, refusals, views
from bot.web.common import error, json_response, now, read_json, runtime
from dialogs.addresses import mask_openid
from dialogs.grades import parse_grade_name
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
        contact_id = await contacts.ensure(session, "miniprogram", rt.sealer.lookup_hash("miniprogram", openid),
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


async def rate(request: web.Request) -> web.Response:
    _enabled(request)
    contact_id = _contact_of(request)
    scope = idempotency.scope_of("mp", request.headers.get("Authorization", "").partition(" ")[2].strip())
    return await idempotency.idempotent(request, scope, lambda: _rate(request, contact_id))


async def _rate(request: web.Request, contact_id: int) -> web.Response:
    rt = runtime(request)
    doc = await read_json(request)
    if isinstance(doc, dict) and isinstance(doc.get("token"), str) and not doc.get("case_no"):
        doc = {**doc, "case_no": "-"}  # named by the token instead
    errs = rating_errors(doc, set(rt.policy.reasons), channel=False)
    if isinstance(doc, dict) and doc.get("scope") == "visit":  # rated on the spot, by the window's device or QR
        errs.append(FieldError("scope", "a window visit is rated at the window; here: 'item' or 'bundle'"))
    if errs:
        return json_response({"errors": [e.as_json() for e in errs]}, 422)
    grade = parse_grade_name(doc["grade"])
    assert grade is not None
    reasons = tuple(dict.fromkeys(doc.get("reasons") or []))
    text = (doc.get("text") or "").strip() or None
    stamp = now(request)
    case_id = rt.links.case_id(doc["token"]) if isinstance(doc.get("token"), str) else None
    try:
        async with rt.db.write() as session:
            if case_id is not None:
                case = await case_store.by_id(session, case_id, lock=rt.db.locks_rows)
            else:
                case = await case_store.by_no(session, doc["case_no"], lock=rt.db.locks_rows)
            if case is None or case.mp_contact_id != contact_id:
                return error(404, "no such case for this person")
            wrong_scope = scope_error(case, scope_of(doc))
            if wrong_scope is not None:
                return json_response({"errors": [wrong_scope.as_json()]}, 422)
            evaluation = await record(session, rt, case, grade, reasons if grade.is_bad else (), text,
                                      "miniprogram", stamp, scope=scope_of(doc))
            body = views.evaluation_json(rt, evaluation)
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(body, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/mp/v1/login", login)
    app.router.add_get("/api/mp/v1/cases", list_cases)
    app.router.add_post("/api/mp/v1/ratings", rate)
