"""Twilio's voice webhooks: the 12345 keypad rating and the automated callback calls (CONTRACT "Webhooks").
Twilio's SMS webhooks belong to its package (channels/twilio), registered when it is the SMS provider."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.duties import callback_calls
from bot.inbound import hotline
from bot.web.common import now, runtime
from channels.twilio import sms as twilio_sms
from channels.twilio import voice as twilio_voice

log = logging.getLogger("haochaping.twilio")
ERROR_CODE_MAX = 16  # DeliveryReceipt.error_code

async def _verified_form(request: web.Request) -> dict[str, str]:
    rt = runtime(request)
    if not rt.settings.twilio_enabled:
        raise web.HTTPNotFound(text="Twilio is not configured")
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    url = rt.settings.public_url + request.path_qs
    assert rt.settings.twilio_auth_token is not None
    if not twilio_sms.signature_ok(rt.settings.twilio_auth_token, url, params,
                                   request.headers.get("X-Twilio-Signature")):
        raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
    return params


TICKET_MAX = 100


def _voice(twiml: str) -> web.Response:
    return web.Response(text=twiml, content_type="text/xml", charset="utf-8")


def _ticket(request: web.Request, call: twilio_voice.CallIn) -> str:
    """The hotline ticket (the case_no); a call handed over without one is rated under its CallSid."""
    ticket = (request.query.get("ticket") or "").strip()
    if len(ticket) > TICKET_MAX:
        raise web.HTTPBadRequest(text=f"ticket: at most {TICKET_MAX} characters")
    return ticket or f"{hotline.HOTLINE_CODE}-{call.sid}"


def _spoken(request: web.Request, spoken: hotline.Spoken, query: dict[str, str],
            path: str = twilio_voice.KEYS_PATH) -> web.Response:
    rt = runtime(request)
    texts = [rt.render(reply, spoken.locale) for reply in spoken.outcome.replies]
    return _voice(twilio_voice.twiml(texts, spoken.locale, ask=spoken.outcome.state, path=path, query=query))


async def voice_call(request: web.Request) -> web.Response:
    params = await _verified_form(request)
    call = twilio_voice.parse_call(params)
    if call is None:
        raise web.HTTPBadRequest(text="CallSid is required")
    ticket = _ticket(request, call)
    spoken = await hotline.call_started(runtime(request), ticket, call.caller, now(request))
    return _spoken(request, spoken, {"ticket": ticket})


async def voice_keys(request: web.Request) -> web.Response:
    params = await _verified_form(request)
    call = twilio_voice.parse_call(params)
    state = twilio_voice.parse_state(request.query)
    if call is None or state is None:
        raise web.HTTPBadRequest(text="CallSid and a question state written by this service are required")
    rt = runtime(request)
    if state.ask.value == "callback":  # the automated callback call names a work order, not a ticket
        spoken = await callback_calls.keys_pressed(rt, request.query.get("wo", ""), state, call, now(request))
        return _spoken(request, spoken, {"wo": request.query.get("wo", "")})
    ticket = _ticket(request, call)
    spoken = await hotline.keys_pressed(rt, ticket, state, call.digits, call.sid, now(request))
    return _spoken(request, spoken, {"ticket": ticket})


async def callback_call(request: web.Request) -> web.Response:
    """An automated callback call was answered: Twilio fetches its first question here."""
    params = await _verified_form(request)
    call = twilio_voice.parse_call(params)
    if call is None:
        raise web.HTTPBadRequest(text="CallSid is required")
    wo = request.query.get("wo", "")
    spoken = await callback_calls.answered(runtime(request), wo, call, now(request))
    return _spoken(request, spoken, {"wo": wo})


async def call_status(request: web.Request) -> web.Response:
    params = await _verified_form(request)
    sid = params.get("CallSid") or ""
    status = (params.get("CallStatus") or "").lower()
    if sid and status:
        await callback_calls.status(runtime(request), sid, status, now(request))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio/voice", voice_call)
    app.router.add_post("/webhooks/twilio/voice/keys", voice_keys)
    app.router.add_post("/webhooks/twilio/voice/callback", callback_call)
    app.router.add_post("/webhooks/twilio/voice/status", call_status)
