"""Twilio's webhooks: inbound SMS and delivery status callbacks (CONTRACT "Webhooks")."""

from __future__ import annotations

import logging

from aiohttp import web

from bot import conversation
from bot.web.common import now, runtime
from channels import twilio_sms
from dialogs.types import Inbound
from store import contacts, outbox

log = logging.getLogger("haochaping.twilio")

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


async def sms_inbound(request: web.Request) -> web.Response:
    params = await _verified_form(request)
    rt = runtime(request)
    sms = twilio_sms.parse_inbound(params)
    texts: list[str] = []
    if sms is not None:
        inbound = Inbound(channel="sms", address=sms.sender, text=sms.body, message_id=sms.sid,
                          received_at=now(request))
        texts = (await conversation.handle(rt, inbound, "phone")).texts
    return web.Response(text=twilio_sms.twiml_messages(texts), content_type="text/xml", charset="utf-8")


async def sms_status(request: web.Request) -> web.Response:
    params = await _verified_form(request)
    rt = runtime(request)
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    code = params.get("ErrorCode") or None
    if sid and status in outbox.RANK:
        stamp = now(request)
        stopped = bool(code and code.isdigit() and int(code) in twilio_sms.STOP_CODES)
        async with rt.db.write() as session:
            message = await outbox.record_receipt(session, sid, status, code, stopped, stamp)
            if message is not None and stopped:
                await contacts.opt_out(session, message.contact_id, "provider", stamp)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio/sms", sms_inbound)
    app.router.add_post("/webhooks/twilio/sms/status", sms_status)
