"""The JSON keypad dialog over HTTP (CONTRACT "Hotline keypads beyond Twilio"): a switch's IVR script starts a
call's rating and posts the keys of each step, with the service's API token. The dialog is bot/inbound/ivr.py."""

from __future__ import annotations

import re

from aiohttp import web

from bot.duties import callback_calls
from bot.inbound import ivr
from bot.infra.limits import MAX_ID
from bot.infra.refusals import Refusal
from bot.web import refusals
from bot.web.common import error, json_response, now, read_json, require_token, runtime
from dialogs.addresses import normalize_phone

CALLER_MAX = 40
DIGITS = re.compile(r"[0-9*#]{0,32}")
STEP_MAX = 1000


def _unprocessable(errors: list[dict[str, str]]) -> web.Response:
    return error(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


async def start_call(request: web.Request) -> web.Response:
    require_token(request)
    doc = await read_json(request)
    if not isinstance(doc, dict):
        return error(400, "the body must be a JSON object: {\"call_id\", \"caller\", \"ticket\"?}")
    errors: list[dict[str, str]] = []
    problem = ivr.call_id_problem(doc.get("call_id"))
    if problem:
        errors.append({"field": "call_id", "message": problem})
    caller = doc.get("caller")
    if caller is not None and (not isinstance(caller, str) or len(caller) > CALLER_MAX):
        errors.append({"field": "caller", "message": f"the caller's number as text, at most {CALLER_MAX} characters "
                                                     "(empty or null when the number is withheld)"})
    ticket = doc.get("ticket")
    problem = ivr.ticket_problem(ticket)
    if problem:
        errors.append({"field": "ticket", "message": problem})
    wo_id = doc.get("work_order_id")
    if wo_id is not None and (isinstance(wo_id, bool) or not isinstance(wo_id, int) or not 1 <= wo_id <= MAX_ID):
        errors.append({"field": "work_order_id", "message": "the work order of a callback call leased from GET "
                                                            "/api/v1/hotline/due-calls, a whole number"})
    elif wo_id is not None and ticket is not None:
        errors.append({"field": "ticket", "message": "a callback call names its work order, not a ticket"})
    unknown = sorted(set(doc) - {"call_id", "caller", "ticket", "work_order_id"})
    if unknown:
        errors.extend({"field": name, "message": "not a field of a call's start"} for name in unknown)
    if errors:
        return _unprocessable(errors)
    # a landline or a withheld number rates without a contact, as on Twilio (channels/twilio/voice.py parse_call)
    phone = normalize_phone(caller) if caller else None
    try:
        if wo_id is not None:
            started = await ivr.start_callback(runtime(request), doc["call_id"], wo_id, now(request))
        else:
            started = await ivr.start(runtime(request), doc["call_id"], phone, ticket.strip() if ticket else None,
                                      now(request))
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(started.answer, status=201 if started.created else 200)


async def press_keys(request: web.Request) -> web.Response:
    require_token(request)
    call_id = request.match_info["call_id"]
    problem = ivr.call_id_problem(call_id)
    if problem:
        return error(404, f"no call {call_id[:64]!r}: {problem}")
    doc = await read_json(request)
    if not isinstance(doc, dict):
        return error(400, "the body must be a JSON object: {\"digits\", \"step\"?}")
    errors: list[dict[str, str]] = []
    digits = doc.get("digits")
    if not isinstance(digits, str) or not DIGITS.fullmatch(digits):
        errors.append({"field": "digits", "message": "required: the keys pressed (0-9, * and #, at most 32), "
                                                     "\"\" for silence or a time-out"})
    step = doc.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= STEP_MAX):
        errors.append({"field": "step", "message": f"the step these keys answer, a whole number from 1 to {STEP_MAX}"})
    unknown = sorted(set(doc) - {"digits", "step"})
    if unknown:
        errors.extend({"field": name, "message": "not a field of a step's keys"} for name in unknown)
    if errors:
        return _unprocessable(errors)
    try:
        nxt = await ivr.keys(runtime(request), call_id, digits, step, now(request))
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(nxt)


DUE_CALLS_LIMIT = 100
DIALER = re.compile(r"[A-Za-z0-9._\-]{1,40}")


async def due_calls(request: web.Request) -> web.Response:
    """The callback calls due now, each leased to this dialer (bot/duties/callback_calls.py lease_for_dialer). The
    answer holds the raters' whole numbers (the dialer dials them): the API token only, and every lease audited."""
    require_token(request)
    rt = runtime(request)
    if rt.policy.callback.placed_by != "dialer":
        return error(409, "the policy's callback.placed_by is not \"dialer\": automated callback calls are placed "
                          "through Twilio, or not at all")
    raw = request.query.get("limit", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= DUE_CALLS_LIMIT:
        return _unprocessable([{"field": "limit", "message": f"a whole number from 1 to {DUE_CALLS_LIMIT}"}])
    dialer = request.query.get("dialer") or "dialer"
    if not DIALER.fullmatch(dialer):
        return _unprocessable([{"field": "dialer", "message": "the dialer's name (audited with each lease): 1 to 40 "
                                                              "letters, digits and . _ -"}])
    leased = await callback_calls.lease_for_dialer(rt, now(request), int(raw), f"dialer:{dialer}")
    return json_response({"calls": [{
        "work_order_id": c.work_order_id, "call_id": c.call_id, "phone": c.phone, "item": c.item, "locale": c.locale,
        "attempt": c.attempt, "lease_until": c.lease_until.isoformat(),
        "start": {"method": "POST", "path": "/api/v1/hotline/calls",
                  "body": {"call_id": c.call_id, "work_order_id": c.work_order_id}},
    } for c in leased]})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/hotline/due-calls", due_calls)
    app.router.add_post("/api/v1/hotline/calls", start_call)
    app.router.add_post("/api/v1/hotline/calls/{call_id}/keys", press_keys)
