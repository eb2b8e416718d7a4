"""Supervision over HTTP (CONTRACT "Supervision"; docs/supervision.md): the signals and their decisions, the
random supervisory calls and their answers, the draws an auditor repeats, and the per-agency figures of both.

Reads take the business systems' token, a user's token, or a console session (who sees only their agencies);
decisions and answers take a bearer token (an L1 user or an admin decides; an agent answers calls too).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.infra.limits import parse_id
from bot.infra.privacy import mask_text
from bot.infra.refusals import Refusal
from bot.infra.runtime import Runtime, instant
from bot.policy.supervision import KINDS
from bot.supervision import decisions, draws
from bot.web import refusals, work_orders_api
from bot.web.common import error, json_response, next_page, now, query_after, read_json, runtime
from bot.web.stats import period, reader
from store import signals as store
from store import supervision as supervision_store
from store.models import Signal

PAGE = 200
STATUSES = ("open", "dismissed", "confirmed")


def signal_json(rt: Runtime, s: Signal) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": s.id, "kind": s.kind, "agency_code": s.agency_code, "cases": list(s.cases or []),
                           "evidence": s.evidence or {}, "detected_at": instant(rt, s.detected_at),
                           "updated_at": instant(rt, s.updated_at), "status": s.status}
    if s.staff_id:
        doc["staff_id"] = s.staff_id
    if s.status != "open":
        doc.update(decided_by=s.decided_by, decided_at=instant(rt, s.decided_at), note=mask_text(s.note))
    return doc


async def list_signals(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    bounds, errors = period(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        errors.append({"field": "status", "message": f"expected one of {', '.join(STATUSES)}"})
    kind = request.query.get("kind") or None
    if kind is not None and kind not in KINDS:
        errors.append({"field": "kind", "message": f"expected one of {', '.join(KINDS)}"})
    after = query_after(request, errors, "a signal id")
    if errors:
        return json_response({"errors": errors}, status=422)
    filters = store.Filters(since=bounds.get("from"), until=bounds.get("to"),
                            agency_code=request.query.get("agency_code") or None, status=status, kind=kind,
                            agencies=who.agencies)
    async with rt.db.read() as session:
        rows = await store.listing(session, filters, PAGE + 1, after)
    answer: dict[str, Any] = {"signals": [signal_json(rt, s) for s in rows[:PAGE]]}
    if len(rows) > PAGE:
        answer["next"] = next_page(request, rows[PAGE - 1].id)
    return json_response(answer)


def _id(request: web.Request, what: str) -> int:
    found = parse_id(request.match_info["id"])
    if found is None:
        raise web.HTTPNotFound(text=f'{{"error":"no such {what}"}}', content_type="application/json")
    return found


async def get_signal(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    async with rt.db.read() as session:
        signal = await store.by_id(session, _id(request, "signal"))
    if signal is None:
        return error(404, "no such signal")
    if not who.sees(signal.agency_code):
        return error(403, "not in your jurisdiction")
    return json_response(signal_json(rt, signal))


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        return json_response({"errors": [{"field": "body", "message": "expected a JSON object"}]}, status=422)
    return body


async def decide(request: web.Request) -> web.Response:
    who = await work_orders_api.actor(request)
    rt = runtime(request)
    signal_id = _id(request, "signal")
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        signal = await decisions.decide(rt, signal_id, body, who, now(request), address=request.remote)
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(signal_json(rt, signal))


async def call_back(request: web.Request) -> web.Response:
    """POST /api/v1/signals/{id}/callbacks: the raters of the signal's ratings to the supervisory calls' queue."""
    who = await work_orders_api.actor(request)
    rt = runtime(request)
    try:
        made = await draws.call_back(rt, _id(request, "signal"), who, now(request), address=request.remote)
    except Refusal as exc:
        return refusals.response(exc)
    async with rt.db.read() as session:
        rows = [row for i in made if (row := await supervision_store.call(session, i)) is not None]
    return json_response({"calls": [call_json(rt, r) for r in rows]}, status=201)


def call_json(rt: Runtime, row: supervision_store.CallRow) -> dict[str, Any]:
    c, case, e = row.call, row.case, row.evaluation
    return {"id": c.id, "draw_id": c.draw_id, "signal_id": c.signal_id, "agency_code": c.agency_code,
            "case_no": case.case_no, "item_name": case.item_name, "staff_id": case.staff_id, "phone": row.phone_masked,
            "rating": {"grade": e.grade, "channel": e.channel, "created_at": instant(rt, e.created_at)},
            "question": "did you give this rating, and is it what you meant?",
            "status": c.status, "answer": c.answer, "note": mask_text(c.note), "answered_by": c.answered_by,
            "answered_at": instant(rt, c.answered_at), "created_at": instant(rt, c.created_at)}


async def list_calls(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    errors: list[dict[str, str]] = []
    status = request.query.get("status") or None
    if status is not None and status not in ("pending", "answered"):
        errors.append({"field": "status", "message": "expected pending or answered"})
    after = query_after(request, errors, "a call id")
    if errors:
        return json_response({"errors": errors}, status=422)
    async with rt.db.read() as session:
        rows = await supervision_store.calls(session, status, request.query.get("agency_code") or None,
                                             who.agencies, PAGE + 1, after)
    answer: dict[str, Any] = {"calls": [call_json(rt, r) for r in rows[:PAGE]]}
    if len(rows) > PAGE:
        answer["next"] = next_page(request, rows[PAGE - 1].call.id)
    return json_response(answer)


async def answer_call(request: web.Request) -> web.Response:
    who = await work_orders_api.actor(request)
    rt = runtime(request)
    call_id = _id(request, "supervisory call")
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        await draws.answer(rt, call_id, body, who, now(request), address=request.remote)
    except Refusal as exc:
        return refusals.response(exc)
    async with rt.db.read() as session:
        row = await supervision_store.call(session, call_id)
    assert row is not None
    return json_response(call_json(rt, row))


async def list_draws(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    async with rt.db.read() as session:
        rows = await supervision_store.draws(session, request.query.get("period") or None, who.agencies)
    return json_response({"draws": [
        {"id": d.id, "period": d.period, "agency_code": d.agency_code, "seed": d.seed, "rule": d.rule,
         "population": d.population, "population_ids": d.population_ids, "drawn_ids": d.drawn_ids,
         "created_at": instant(rt, d.created_at),
         "repeat": "sorted(random.Random(seed).sample(population_ids, len(drawn_ids)))"} for d in rows]})


async def summary(request: web.Request) -> web.Response:
    """Per agency: the ratings given, the share flagged by a signal not dismissed, and the supervisory calls'
    confirmation rate (confirmed of those reached). Figures of their own: never mixed into the seed's score."""
    who = await reader(request)
    rt = runtime(request)
    bounds, errors = period(request)
    if errors:
        return json_response({"errors": errors}, status=422)
    since, until = bounds.get("from"), bounds.get("to")
    async with rt.db.read() as session:
        rated = await supervision_store.rated_counts(session, since, until, who.agencies)
        held: dict[str, set[int]] = {}
        for code, ids in await supervision_store.flagged(session, who.agencies):
            held.setdefault(code, set()).update(ids)
        flagged = {code: len(await supervision_store.created_between(session, list(ids), since, until))
                   for code, ids in held.items()}
        answers = await supervision_store.answers(session, since, until, who.agencies)
    agencies = []
    for code in sorted(set(rated) | set(flagged) | set(answers)):
        got = answers.get(code, {})
        reached = sum(n for a, n in got.items() if a not in ("pending", "unreachable"))
        n = rated.get(code, 0)
        agencies.append({
            "agency_code": code, "ratings": n, "flagged": flagged.get(code, 0),
            "flagged_share": round(flagged.get(code, 0) / n, 4) if n else None,
            "calls": sum(got.values()), "answered": sum(n for a, n in got.items() if a != "pending"),
            "answers": {a: got.get(a, 0) for a in draws.ANSWERS},
            "confirmation_rate": round(got.get("confirmed", 0) / reached, 4) if reached else None})
    return json_response({"from": instant(rt, since) if since else None, "to": instant(rt, until) if until else None,
                          "agencies": agencies})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/signals", list_signals)
    app.router.add_get("/api/v1/signals/summary", summary)
    app.router.add_get("/api/v1/signals/{id}", get_signal)
    app.router.add_post("/api/v1/signals/{id}/decide", decide)
    app.router.add_post("/api/v1/signals/{id}/callbacks", call_back)
    app.router.add_get("/api/v1/supervision/calls", list_calls)
    app.router.add_post("/api/v1/supervision/calls/{id}", answer_call)
    app.router.add_get("/api/v1/supervision/draws", list_draws)

