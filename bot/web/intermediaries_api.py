"""Intermediary services over HTTP (Hainan 中介服务 art. 21–25): ratings, figures, complaints and answers.

Every endpoint takes the business systems' API token only: the project owners rate and complain through the
intermediary-service platform (中介超市), which calls us, and the centre answers through it. The rules are in
bot/rating/intermediaries.py; this module reads the request, maps the answers to statuses and pages the lists.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.infra.limits import parse_id
from bot.infra.refusals import Refusal
from bot.rating import intermediaries
from bot.rating.intake import FieldError
from bot.web import idempotency, refusals
from bot.web.common import (
    error,
    json_response,
    next_page,
    now,
    query_after,
    query_bool,
    read_json,
    require_token,
    runtime,
)
from bot.web.stats import period
from store import intermediaries as store

PAGE = 200  # as the work orders' list
ACTOR = "api"  # who answers with the business systems' token (the audit log's actor, as bot/work_orders/lifecycle.py)
STATUSES = {"open": False, "answered": True}


def _unprocessable(errors: list[FieldError] | list[dict[str, str]]) -> web.Response:
    return json_response({"errors": [e.as_json() if isinstance(e, FieldError) else e for e in errors]}, status=422)





def _idempotent_scope(request: web.Request) -> str:
    return idempotency.scope_of("api", request.headers.get("Authorization", "").partition(" ")[2].strip())


def _page(request: web.Request, key: str, docs: list[dict[str, Any]], more: bool) -> web.Response:
    """A page of at most PAGE rows, and `next` (the same query, after the last id) when there are more."""
    answer: dict[str, Any] = {key: docs}
    if more:
        answer["next"] = next_page(request, docs[-1]["id"])
    return json_response(answer)


# --- ratings ----------------------------------------------------------------------------------------------


async def post_rating(request: web.Request) -> web.Response:
    require_token(request)
    return await idempotency.idempotent(request, _idempotent_scope(request), lambda: _rate(request))


async def _rate(request: web.Request) -> web.Response:
    rt = runtime(request)
    stamp = now(request)
    parsed = intermediaries.parse_rating(await read_json(request), stamp)
    if isinstance(parsed, list):
        return _unprocessable(parsed)
    try:
        rating = await intermediaries.rate(rt, parsed, stamp)
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(intermediaries.rating_json(rt, rating), status=201)


async def list_ratings(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    bounds, errors = period(request)
    after = query_after(request, errors)
    code = request.query.get("intermediary_code") or None
    if code is not None and len(code) > 100:
        errors.append({"field": "intermediary_code", "message": "at most 100 characters"})
    if errors:
        return _unprocessable(errors)
    async with rt.db.read() as session:
        rows = await store.ratings(session, code, bounds.get("from"), bounds.get("to"), PAGE + 1, after)
    return _page(request, "ratings", [intermediaries.rating_json(rt, r) for r in rows[:PAGE]], len(rows) > PAGE)


async def get_stats(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    bounds, errors = period(request)
    if errors:
        return _unprocessable(errors)
    return json_response({"intermediaries": await intermediaries.figures(rt, bounds.get("from"), bounds.get("to"))})


# --- complaints -------------------------------------------------------------------------------------------


async def post_complaint(request: web.Request) -> web.Response:
    require_token(request)
    return await idempotency.idempotent(request, _idempotent_scope(request), lambda: _complain(request))


async def _complain(request: web.Request) -> web.Response:
    rt = runtime(request)
    stamp = now(request)
    parsed = intermediaries.parse_complaint(await read_json(request), stamp)
    if isinstance(parsed, list):
        return _unprocessable(parsed)
    try:
        complaint = await intermediaries.complain(rt, parsed, stamp)
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(intermediaries.complaint_json(rt, complaint), status=201)


async def post_answer(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    complaint_id = parse_id(request.match_info["id"])  # beyond the store's ids: no such complaint
    if complaint_id is None:
        return error(404, "no such complaint")
    parsed = intermediaries.parse_answer(await read_json(request))
    if isinstance(parsed, list):
        return _unprocessable(parsed)
    try:
        complaint = await intermediaries.answer(rt, complaint_id, parsed, ACTOR, now(request),
                                                address=request.remote)
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(intermediaries.complaint_json(rt, complaint))


async def list_complaints(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    errors: list[dict[str, str]] = []
    overdue = query_bool(request, "overdue", errors)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        errors.append({"field": "status", "message": f"expected one of {', '.join(STATUSES)}"})
    project_no = request.query.get("project_no") or None
    if project_no is not None and len(project_no) > 100:
        errors.append({"field": "project_no", "message": "at most 100 characters"})
    after = query_after(request, errors)
    if errors:
        return _unprocessable(errors)
    filters = store.ComplaintFilters(overdue=overdue, answered=STATUSES[status] if status else None,
                                     project_no=project_no)
    async with rt.db.read() as session:
        rows = await store.complaints(session, filters, PAGE + 1, after)
    return _page(request, "complaints", [intermediaries.complaint_json(rt, c) for c in rows[:PAGE]],
                 len(rows) > PAGE)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/intermediary-ratings", post_rating)
    app.router.add_get("/api/v1/intermediary-ratings", list_ratings)
    app.router.add_get("/api/v1/intermediaries/stats", get_stats)
    app.router.add_post("/api/v1/intermediary-complaints", post_complaint)
    app.router.add_get("/api/v1/intermediary-complaints", list_complaints)
    app.router.add_post("/api/v1/intermediary-complaints/{id}/answer", post_answer)
