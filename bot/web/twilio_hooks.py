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

# Later states win: a late "sent" must not overwrite "delivered".
_RANK = {"accepted": 0, "queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3,
         "read": 4}


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
    if sid and status in _RANK:
        stamp = now(request)
        async with rt.db.write() as session:
            message = await outbox.by_provider_id(session, sid)
            if message is not None and _RANK[status] >= _RANK.get(message.status, 0):
                message.status = status
                message.error = f"twilio error {code}" if code else message.error
                message.updated_at = stamp
                session.add(message)
                if code and int(code) in twilio_sms.STOP_CODES:
                    await contacts.opt_out(session, message.contact_id, "provider", stamp)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio/sms", sms_inbound)
    app.router.add_post("/webhooks/twilio/sms/status", sms_status)
