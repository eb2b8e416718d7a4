"""Aliyun SMS (阿里云短信) as the SMS provider (HAOCHAPING_SMS_PROVIDER=aliyun): sms.py sends templates through
the official SDK and reads Aliyun's pushes; this module owns the configuration and the webhooks.

Webhooks, set as the HTTP 批量推送 addresses in Aliyun's console (the path's token is the only proof a push
comes from there: Aliyun signs nothing it pushes):
- POST /webhooks/aliyun/sms/{token}/up — SmsUp, the people's replies (上行);
- POST /webhooks/aliyun/sms/{token}/report — SmsReport, the delivery reports.
A token that is not ALIYUN_SMS_CALLBACK_TOKEN is 404, acted on in nothing; a body that is not a JSON array of
complete items is 400, nothing in it acted on. Otherwise every item is acted on (a reply once, however often
Aliyun pushes it: its message id is its sequence_id) and the answer is {"code": 0, "msg": "成功"}; a failure
on the way is a 5xx, and Aliyun pushes the whole array again. Replies cannot be answered in the push: the
application queues and sends the answers through the API (answers_inline=False).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from aiohttp import web

from channels.aliyun import sms
from channels.base import (
    ConfigProblem,
    ProviderConfig,
    Receipt,
    SmsHandlers,
    SmsProvider,
    callback_token,
    check_callback_token,
    endpoint,
)
from dialogs.types import Inbound

log = logging.getLogger("haochaping.aliyun")
KEYS = ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SMS_SIGN_NAME", "ALIYUN_SMS_ENDPOINT",
        "ALIYUN_SMS_CALLBACK_TOKEN")
DEFAULT_ENDPOINT = "dysmsapi.aliyuncs.com"
UP_PATH = "/webhooks/aliyun/sms/{token}/up"
REPORT_PATH = "/webhooks/aliyun/sms/{token}/report"
# The acknowledgement the contract names, {"code": 0, "msg": "成功"} (Aliyun checks only that `code` is a number).
# Written as JSON escapes: it is protocol, not words for people, which come from the catalogs
# (tests/bot/infra/test_locales.py).
RECEIVED = json.loads('{"code": 0, "msg": "\\u6210\\u529f"}')


@dataclass
class AliyunChannel:
    callback_token: str
    sender: sms.AliyunSender
    name: str = "aliyun"
    answers_inline: bool = False  # pushes are answered with {"code": 0}; replies go by SendSms

    def routes(self, router: web.UrlDispatcher, handlers: SmsHandlers) -> None:
        async def up(request: web.Request) -> web.Response:
            return await self.up(request, handlers)

        async def report(request: web.Request) -> web.Response:
            return await self.report(request, handlers)

        router.add_post(UP_PATH, up)
        router.add_post(REPORT_PATH, report)

    async def _body(self, request: web.Request) -> bytes:
        check_callback_token(request, self.callback_token)
        return await request.read()

    async def up(self, request: web.Request, handlers: SmsHandlers) -> web.Response:
        body = await self._body(request)
        try:
            replies = sms.parse_up(body)
        except sms.BadPush as exc:
            log.info("SmsUp push refused: %s", exc)
            raise web.HTTPBadRequest(text=str(exc)) from None
        for reply in replies:
            if reply.sender is None:  # no number we can text: known, nothing to act on
                log.info("aliyun reply %s not acted on: not a mobile number we can text (%s)", reply.message_id,
                         reply.masked)
                continue
            # The answers go through the outbox (answers_inline=False): nothing comes back to say here.
            await handlers.message(Inbound(channel="sms", address=reply.sender, text=reply.content,
                                           message_id=reply.message_id, received_at=handlers.now()))
        return web.json_response(RECEIVED)

    async def report(self, request: web.Request, handlers: SmsHandlers) -> web.Response:
        body = await self._body(request)
        try:
            reports = sms.parse_report(body)
        except sms.BadPush as exc:
            log.info("SmsReport push refused: %s", exc)
            raise web.HTTPBadRequest(text=str(exc)) from None
        at = handlers.now()
        for item in reports:
            if item.full_code and item.error_code != item.full_code:
                log.info("aliyun report %s: %s (kept as %s)", item.biz_id, item.full_code, item.error_code)
            # Under its BizId (what SendSms answered) and, for one of ours, under its OutId: a message whose
            # answer was lost is found again by QuerySendDetails, which lists OutIds and no BizId.
            await handlers.receipt(Receipt(item.biz_id, item.status, item.error_code, item.stopped, at))
            key = sms.out_key(item.out_id)
            if key is not None:
                await handlers.receipt(Receipt(key, item.status, item.error_code, item.stopped, at))
        return web.json_response(RECEIVED)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.sender.close()

    def health(self) -> str | None:
        return None


def endpoint_of(raw: str | None) -> tuple[str, str]:
    """ALIYUN_SMS_ENDPOINT as the SDK takes it: (host[:port], "https"|"http")."""
    scheme, netloc = endpoint(raw, DEFAULT_ENDPOINT, "ALIYUN_SMS_ENDPOINT")
    return netloc, scheme


def open_channel(config: ProviderConfig) -> AliyunChannel:
    values = config.values
    needed = [k for k in ("ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET", "ALIYUN_SMS_SIGN_NAME")
              if not (values.get(k) or "").strip()]
    if needed:
        raise ConfigProblem(f"HAOCHAPING_SMS_PROVIDER=aliyun needs {', '.join(needed)}")
    token = callback_token(values, "ALIYUN_SMS_CALLBACK_TOKEN", "aliyun")
    host, protocol = endpoint_of(values.get("ALIYUN_SMS_ENDPOINT"))
    sender = sms.AliyunSender(values["ALIYUN_ACCESS_KEY_ID"].strip(), values["ALIYUN_ACCESS_KEY_SECRET"].strip(),
                              values["ALIYUN_SMS_SIGN_NAME"].strip(), endpoint=host, protocol=protocol,
                              templates=config.templates, timeout=config.send_timeout)
    return AliyunChannel(token, sender)


PROVIDER = SmsProvider("aliyun", KEYS, open_channel, needs_templates=True)
