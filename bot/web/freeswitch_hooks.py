"""FreeSWITCH's mod_httapi asking what to do next in the after-call rating (CONTRACT "Hotline keypads beyond
Twilio"): each request is one step of the JSON keypad dialog (bot/inbound/ivr.py), keyed by the channel's uuid;
the answer is its xml/freeswitch-httapi document (channels/freeswitch/httapi.py).

mod_httapi sends its params in the query string (a form body is read too, for a proxy or a version that posts
one). It authenticates as curl does: HTTP basic auth from the profile's `gateway-credentials` (any user name, the
password FREESWITCH_HTTAPI_TOKEN), or the token in the URL (`?token=`), which mod_httapi then also repeats in its
`url` param. Without the setting the route is 404.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web

from bot.inbound import ivr
from bot.infra.refusals import Refusal
from bot.web.common import now, runtime
from channels.freeswitch import httapi
from dialogs.addresses import normalize_phone

log = logging.getLogger("haochaping.freeswitch")
PATH = "/webhooks/freeswitch/httapi"


def _authorized(request: web.Request, token: str) -> bool:
    given = request.query.get("token")
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if given is None and scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            given = None
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/xml", charset="utf-8")


async def httapi_step(request: web.Request) -> web.Response:
    rt = runtime(request)
    token = rt.settings.freeswitch_httapi_token
    if not token:
        raise web.HTTPNotFound(text="FreeSWITCH is not configured (FREESWITCH_HTTAPI_TOKEN)")
    if not _authorized(request, token):
        raise web.HTTPUnauthorized(text="the httapi profile's credentials are wrong or missing",
                                   headers={"WWW-Authenticate": 'Basic realm="haochaping"'})
    form = {k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else {}
    form.update({k: v for k, v in request.query.items() if k not in form and k != "token"})
    try:
        req = httapi.parse(form)
    except httapi.BadRequest as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    for name, problem in (("session_id", ivr.call_id_problem(req.session_id)),
                          ("ticket", ivr.ticket_problem(req.ticket))):
        if problem:
            raise web.HTTPBadRequest(text=f"{name}: {problem}")
    if req.exiting:  # the call has ended: whatever was not finished was never stored (CONTRACT)
        return _xml(httapi.ended())
    try:
        if req.step is None:
            answer = (await ivr.start(rt, req.session_id, normalize_phone(req.caller) if req.caller else None,
                                      req.ticket, now(request))).answer
        else:
            answer = await ivr.keys(rt, req.session_id, req.digits or "", req.step, now(request))
    except Refusal as exc:  # an id reused, or a step it never had: say nothing more and hang up
        log.warning("httapi session %s: %s", req.session_id[:64], exc.message)
        raise web.HTTPConflict(text=exc.message) from None
    return _xml(httapi.document(answer, tts_engine=req.tts_engine, tts_voice=req.tts_voice))


def setup(app: web.Application) -> None:
    app.router.add_post(PATH, httapi_step)
    app.router.add_get(PATH, httapi_step)  # mod_httapi's default method is GET, its params in the query
