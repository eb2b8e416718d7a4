"""Work orders over HTTP (CONTRACT "HTTP API"), and the login that gives their users a token.

Business systems act with the service's API token and see everything; a user acts with the token
`POST /api/v1/login` gives, inside their jurisdiction only: another agency's work order is 403 to
them, and lists hold only their own.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.limits import MAX_ID, code_problem, parse_id
from bot.infra.refusals import Refusal
from bot.infra.runtime import Runtime
from bot.web import refusals, views
from bot.web.common import authorized, error, json_response, next_page, now, query_after, query_bool, read_json, runtime
from bot.work_orders import actors, users
from bot.work_orders import deadlines as work_order_deadlines
from bot.work_orders import lifecycle as work_orders
from store import cases as case_store
from store import work_orders as store
from store.models import Evaluation, User, WorkOrder

STATUSES = ("created", "dispatched", "rectified", "reviewed", "closed")
log = logging.getLogger("haochaping.web")
PAGE = 200


def tokens(request: web.Request) -> users.Tokens:
    return users.Tokens(runtime(request).sealer.subkey("user-tokens"))


async def actor(request: web.Request) -> actors.Actor:
    """The business systems' token, or a user's login token; 401 otherwise."""
    if authorized(request):
        return actors.API
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    token = value.strip()
    uid = users.Tokens.user_id(token) if scheme.lower() == "bearer" else None
    if uid is not None and uid <= MAX_ID:
        rt = runtime(request)
        async with rt.db.read() as session:
            user = await session.get(User, uid)
        if user is not None and tokens(request).valid(token, user, now(request)):
            return users.actor_of(user)
    raise web.HTTPUnauthorized(
        text='{"error":"a valid bearer token is required: the API token, or a user token from POST /api/v1/login"}',
        content_type="application/json", headers={"WWW-Authenticate": 'Bearer realm="haochaping"'})


async def login(request: web.Request) -> web.Response:
    doc = await read_json(request)
    if not isinstance(doc, dict) or not isinstance(doc.get("username"), str) \
            or not isinstance(doc.get("password"), str):
        return json_response({"errors": [{"field": "username", "message": "username and password are required"}]},
                             status=422)
    bad = [name for name in ("username", "password") if code_problem(doc[name])]
    if bad:
        log.info("log-in refused for %s from %s: control characters in %s", doc["username"][:64], request.remote,
                 bad[0])
        return json_response({"errors": [{"field": name, "message": code_problem(doc[name])} for name in bad]},
                             status=422)
    rt = runtime(request)
    try:
        user = await users.authenticate(rt, doc["username"], doc["password"], request.remote)
    except users.LoginRefused as exc:
        log.info("log-in refused for %s from %s: %s", doc["username"][:64], request.remote, exc)
        if exc.retry_after is not None:
            return json_response({"error": str(exc)}, status=429, headers={"Retry-After": str(exc.retry_after)})
        return error(401, str(exc))
    token, expires = tokens(request).issue(user, now(request))
    return json_response({"token": token, "expires_at": expires.astimezone(rt.policy.tz).isoformat(),
                          "user": {"username": user.username, "role": user.role, "agencies": user.agencies}})


def _bool(request: web.Request, name: str) -> bool | None:
    errors: list[dict[str, str]] = []
    value = query_bool(request, name, errors)
    if errors:
        raise web.HTTPUnprocessableEntity(text=json.dumps({"errors": errors}), content_type="application/json")
    return value


async def list_work_orders(request: web.Request) -> web.Response:
    who = await actor(request)
    rt = runtime(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        return json_response({"errors": [{"field": "status", "message": f"expected one of {', '.join(STATUSES)}"}]},
                             status=422)
    errors: list[dict[str, str]] = []
    after = query_after(request, errors, "a work order id")
    if errors:
        return json_response({"errors": errors}, status=422)
    filters = store.Filters(status=status, agency_code=request.query.get("agency_code") or None,
                            overdue=_bool(request, "overdue"), agencies=who.agencies,
                            agent_queue=_bool(request, "agent_queue"))
    stamp = now(request)
    async with rt.db.read() as session:
        rows = await store.listing(session, filters, PAGE + 1, after)
        facts = await work_order_deadlines.facts_for(session, rows[:PAGE])  # the page's histories, in one query
        docs = [await _doc(session, rt, wo, stamp, facts=facts.get(wo.id or 0)) for wo in rows[:PAGE]]
    answer: dict[str, Any] = {"work_orders": docs}
    if len(rows) > PAGE:
        answer["next"] = next_page(request, rows[PAGE - 1].id)
    return json_response(answer)


async def _doc(session: AsyncSession, rt: Runtime, wo: WorkOrder, stamp: datetime, *, history: bool = False,
               facts: work_order_deadlines.Facts | None = None) -> dict[str, Any]:
    case = await case_store.by_id(session, wo.case_id)
    evaluation = await session.get(Evaluation, wo.evaluation_id)
    events = await store.events(session, wo.id) if history and wo.id is not None else None
    if events is None and facts is None:
        facts = await work_order_deadlines.facts_of(session, wo)
    return views.work_order_json(rt, wo, case, evaluation, stamp, events, facts=facts)


def _id(request: web.Request) -> int:
    wo_id = parse_id(request.match_info["id"])  # beyond the store's ids: no such work order
    if wo_id is None:
        raise web.HTTPNotFound(text='{"error":"no such work order"}', content_type="application/json")
    return wo_id


async def get_work_order(request: web.Request) -> web.Response:
    who = await actor(request)
    rt = runtime(request)
    async with rt.db.read() as session:
        wo = await store.by_id(session, _id(request))
        if wo is None:
            return error(404, "no such work order")
        if not who.sees(wo.agency_code):
            return error(403, "not in your jurisdiction")
        return json_response(await _doc(session, rt, wo, now(request), history=True))


async def act(request: web.Request) -> web.Response:
    who = await actor(request)
    rt = runtime(request)
    wo_id = _id(request)
    body = await read_json(request) if request.body_exists else {}  # read already by middleware.body_deadline
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return json_response({"errors": [{"field": "body", "message": "expected a JSON object"}]}, status=422)
    stamp = now(request)
    try:
        await work_orders.act(rt, wo_id, request.match_info["action"], body, who, stamp, address=request.remote)
    except Refusal as exc:
        return refusals.response(exc)
    async with rt.db.read() as session:
        wo = await store.by_id(session, wo_id)
        assert wo is not None
        return json_response(await _doc(session, rt, wo, stamp, history=True))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/login", login)
    app.router.add_get("/api/v1/work-orders", list_work_orders)
    app.router.add_get("/api/v1/work-orders/{id}", get_work_order)
    app.router.add_post("/api/v1/work-orders/{id}/{action}", act)
