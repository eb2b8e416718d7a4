"""Twilio: SMS (sms.py: parsing, TwiML, sending) and the 12345 keypad by voice (voice.py).

As an SMS provider (HAOCHAPING_SMS_PROVIDER=twilio, the default when TWILIO_ACCOUNT_SID is set) it owns
POST /webhooks/twilio/sms (replies, answered with TwiML) and /webhooks/twilio/sms/status (delivery
reports), each checked with twilio's RequestValidator against HAOCHAPING_PUBLIC_URL + path + query.
The voice webhooks drive the hotline dialog and stay with the application (bot/web/twilio_hooks.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from channels.base import ConfigProblem, ProviderConfig, Receipt, SmsHandlers, SmsProvider
from channels.twilio import sms
from dialogs.parse import clean
from dialogs.types import Inbound

log = logging.getLogger("haochaping.twilio")
KEYS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_FROM", "TWILIO_API_BASE_URL")
ERROR_CODE_MAX = 16  # the outbox's error_code column
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/sms/status"
# Twilio's message statuses are the outbox's words already.
STATUSES = frozenset({"accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed"})


@dataclass
class TwilioChannel:
    account_sid: str
    auth_token: str
    public_url: str
    sender: sms.TwilioSender
    name: str = "twilio"
    answers_inline: bool = True  # TwiML

    def routes(self, router: web.UrlDispatcher, handlers: SmsHandlers) -> None:
        async def inbound(request: web.Request) -> web.Response:
            return await self.inbound(request, handlers)

        async def status(request: web.Request) -> web.Response:
            return await self.status(request, handlers)

        router.add_post(SMS_PATH, inbound)
        router.add_post(STATUS_PATH, status)

    async def verified_form(self, request: web.Request) -> dict[str, str]:
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        if not sms.signature_ok(self.auth_token, self.public_url + request.path_qs, params,
                                request.headers.get("X-Twilio-Signature")):
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        return params

    async def inbound(self, request: web.Request, handlers: SmsHandlers) -> web.Response:
        params = await self.verified_form(request)
        found = sms.parse_inbound(params)
        texts: list[str] = []
        if isinstance(found, sms.Unusable):
            log.info("inbound message %s not acted on: %s (%s)", params.get("MessageSid") or "-", found.reason,
                     found.masked or "no sender")
        else:
            texts = await handlers.message(Inbound(channel="sms", address=found.sender, text=found.body,
                                                   message_id=found.sid, received_at=handlers.now(),
                                                   kind=found.kind))
        return web.Response(text=sms.twiml_messages(texts), content_type="text/xml", charset="utf-8")

    async def status(self, request: web.Request, handlers: SmsHandlers) -> web.Response:
        params = await self.verified_form(request)
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        # Twilio's error codes are five digits; anything else is kept cut to the column's 16 characters, clean.
        code = clean(params.get("ErrorCode") or "").strip()[:ERROR_CODE_MAX] or None
        if sid and status in STATUSES:
            stopped = bool(code and code.isascii() and code.isdigit() and int(code) in sms.STOP_CODES)
            await handlers.receipt(Receipt(sid, status, code, stopped, handlers.now()))
        return web.Response(status=204)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.sender.close()

    def health(self) -> str | None:
        return None


def open_channel(config: ProviderConfig) -> TwilioChannel:
    values = config.values
    sid, token = values.get("TWILIO_ACCOUNT_SID"), values.get("TWILIO_AUTH_TOKEN")
    if not sid or not token:
        raise ConfigProblem("HAOCHAPING_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    sender = sms.TwilioSender(sid, token, values.get("TWILIO_SMS_FROM"), base_url=values.get("TWILIO_API_BASE_URL"),
                              status_callback=f"{config.public_url}{STATUS_PATH}", timeout=config.send_timeout)
    return TwilioChannel(sid, token, config.public_url, sender)


PROVIDER = SmsProvider("twilio", KEYS, open_channel)
