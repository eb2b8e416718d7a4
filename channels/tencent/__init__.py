"""Tencent Cloud SMS (腾讯云短信) as an SMS provider: HAOCHAPING_SMS_PROVIDER=tencent.

Sends go through the official SDK (sms.py). Tencent pushes what comes back to two URLs of ours, configured in its
console (应用管理 > 基础配置 > 回调配置), each carrying a secret path segment of ours, TENCENT_SMS_CALLBACK_TOKEN,
since Tencent signs none of its pushes:

- POST /webhooks/tencent/sms/{token}/reply: one reply (上行), {"extend", "mobile", "nationcode", "sign", "text",
  "time"} (短信回复, https://cloud.tencent.com/document/api/382/5809 and https://www.tencentcloud.com/document/api/
  382/43548: extend optional, time in UNIX seconds);
- POST /webhooks/tencent/sms/{token}/status: a JSON array of delivery reports, {"user_receive_time", "nationcode",
  "mobile", "report_status": "SUCCESS"|"FAIL", "errmsg", "description", "sid"}, sid being SendSms's SerialNo
  ("一次回调请求里可能有多次的短信请求结果", 短信下发状态通知, https://cloud.tencent.com/document/api/382/5807 and
  https://www.tencentcloud.com/zh/document/product/382/43547).

Both are answered {"result": 0, "errmsg": "OK"} (the documented answer) once acted on. A token that is not ours is
404 and nothing is read; a body that is not the documented JSON is 400 and nothing is acted on. Tencent's reply has
no id of its own, so the same mobile, text and time is one message: its id is a digest of the three, and the
application acts on an id once (bot/inbound/conversation.py). Pushes cannot carry an answer: the application sends its
answers through the API (answers_inline=False).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

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
from channels.tencent.sms import TencentSender
from dialogs.addresses import mask_phone, normalize_phone
from dialogs.parse import clean
from dialogs.types import Inbound

log = logging.getLogger("haochaping.tencent")

KEYS = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_SIGN_NAME",
        "TENCENT_SMS_REGION", "TENCENT_SMS_ENDPOINT", "TENCENT_SMS_CALLBACK_TOKEN")
REQUIRED = KEYS[:4]
DEFAULT_REGION = "ap-guangzhou"
DEFAULT_ENDPOINT = "sms.tencentcloudapi.com"
REPLY_PATH = "/webhooks/tencent/sms/{token}/reply"
STATUS_PATH = "/webhooks/tencent/sms/{token}/status"
OK = {"result": 0, "errmsg": "OK"}
ERROR_CODE_MAX = 16  # the outbox's error_code column
PROVIDER_ID_MAX = 64  # and its provider_id
REPORT_STATUSES = {"SUCCESS": "delivered", "FAIL": "undelivered"}
STATUS_FIELDS = ("user_receive_time", "nationcode", "mobile", "report_status", "errmsg", "description", "sid")
REPLY_FIELDS = ("mobile", "nationcode", "sign", "text", "time")  # "extend" is optional (通道扩展码, off by default)


class BadPush(ValueError):
    """A push whose body is not what Tencent documents: 400, nothing acted on."""


@dataclass(frozen=True, slots=True)
class PushedReply:
    sender: str | None  # E.164, or None when it is not a number we can text
    text: str
    message_id: str
    masked: str


def parse_reply(body: bytes) -> PushedReply:
    doc = _json(body)
    if not isinstance(doc, dict):
        raise BadPush("a reply is a JSON object")
    missing = [name for name in REPLY_FIELDS if name not in doc]
    if missing:
        raise BadPush(f"missing {', '.join(missing)}")
    mobile, nationcode = _digits(doc["mobile"], "mobile"), _digits(doc["nationcode"], "nationcode")
    text, sign = doc["text"], doc["sign"]
    if not isinstance(text, str) or not isinstance(sign, str):
        raise BadPush("text and sign are strings")
    sent_at = _unix_time(doc["time"])
    sender = normalize_phone(f"+{nationcode}{mobile}")
    # The same number, text and second is one message however often Tencent pushes it.
    digest = hashlib.sha256(f"{nationcode}\n{mobile}\n{sent_at}\n{text}".encode()).hexdigest()[:40]
    return PushedReply(sender, text, "tencent:" + digest, mask_phone(sender) if sender else "****")


@dataclass(frozen=True, slots=True)
class Report:
    sid: str  # SendSms's SerialNo
    status: str  # the outbox's word
    error_code: str | None


def parse_reports(body: bytes) -> list[Report]:
    """The reports of a status push the outbox can use (an unknown report_status is left out, and logged)."""
    doc = _json(body)
    if not isinstance(doc, list):
        raise BadPush("a status push is a JSON array")
    found: list[Report] = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise BadPush(f"item {i} is not an object")
        missing = [name for name in STATUS_FIELDS if name not in item]
        if missing:
            raise BadPush(f"item {i}: missing {', '.join(missing)}")
        sid, status, errmsg = item["sid"], item["report_status"], item["errmsg"]
        if not isinstance(sid, str) or not sid or not isinstance(status, str) or not isinstance(errmsg, str | None):
            raise BadPush(f"item {i}: sid, report_status and errmsg are strings")
        outbox_status = REPORT_STATUSES.get(status.strip().upper())
        if outbox_status is None or len(sid) > PROVIDER_ID_MAX:
            log.info("status report %s not acted on: report_status %r", sid[:PROVIDER_ID_MAX], status[:20])
            continue
        # A failure keeps Tencent's errmsg (the carrier's code, e.g. "MK:0001"); a success has nothing to keep
        # (its errmsg is "DELIVRD", which the outbox would show as an error).
        code = None
        if outbox_status == "undelivered":
            code = clean(errmsg or "").strip()[:ERROR_CODE_MAX] or None
        found.append(Report(sid, outbox_status, code))
    return found


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPush(f"not JSON: {type(exc).__name__}") from None


def _digits(value: object, name: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.strip().lstrip("+").isdigit() or not text.isascii():
        raise BadPush(f"{name} is a string of digits")
    return text.strip().lstrip("+")


def _unix_time(value: object) -> int:
    if isinstance(value, bool):
        raise BadPush("time is UNIX seconds")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and value.isascii():
        return int(value.strip())
    raise BadPush("time is UNIX seconds")


@dataclass
class TencentChannel:
    callback_token: str
    sender: TencentSender
    name: str = "tencent"
    answers_inline: bool = False  # Tencent's pushes take no answer: replies go by SendSms

    def routes(self, router: web.UrlDispatcher, handlers: SmsHandlers) -> None:
        async def reply(request: web.Request) -> web.Response:
            return await self.reply(request, handlers)

        async def status(request: web.Request) -> web.Response:
            return await self.status(request, handlers)

        router.add_post(REPLY_PATH, reply)
        router.add_post(STATUS_PATH, status)

    async def reply(self, request: web.Request, handlers: SmsHandlers) -> web.Response:
        check_callback_token(request, self.callback_token)
        try:
            found = parse_reply(await request.read())
        except BadPush as exc:
            raise web.HTTPBadRequest(text=f"not a Tencent SMS reply: {exc}") from None
        if found.sender is None:
            log.info("reply %s not acted on: not a mobile number we can text (%s)", found.message_id, found.masked)
        else:
            await handlers.message(Inbound(channel="sms", address=found.sender, text=found.text,
                                           message_id=found.message_id, received_at=handlers.now()))
        return web.json_response(OK)

    async def status(self, request: web.Request, handlers: SmsHandlers) -> web.Response:
        check_callback_token(request, self.callback_token)
        try:
            reports = parse_reports(await request.read())
        except BadPush as exc:
            raise web.HTTPBadRequest(text=f"not a Tencent SMS status push: {exc}") from None
        at = handlers.now()
        for report in reports:
            # No receipt code is taken to mean "unsubscribed": a number on Tencent's block list is refused at send
            # time, as FailedOperation.PhoneNumberInBlacklist (sms.py), and the person is stopped there.
            await handlers.receipt(Receipt(report.sid, report.status, report.error_code, False, at))
        return web.json_response(OK)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.sender.close()

    def health(self) -> str | None:
        return None


def endpoint_of(raw: str | None) -> tuple[str, str]:
    """(scheme, host[:port]) of TENCENT_SMS_ENDPOINT."""
    return endpoint(raw, DEFAULT_ENDPOINT, "TENCENT_SMS_ENDPOINT")


def open_channel(config: ProviderConfig) -> TencentChannel:
    values = config.values
    missing = [key for key in REQUIRED if not (values.get(key) or "").strip()]
    if missing:
        raise ConfigProblem(f"HAOCHAPING_SMS_PROVIDER=tencent needs {', '.join(missing)}")
    token = callback_token(values, "TENCENT_SMS_CALLBACK_TOKEN", "tencent")
    scheme, host = endpoint_of(values.get("TENCENT_SMS_ENDPOINT"))  # its DEBUG log: bot/infra/logs.py keeps it quiet
    sender = TencentSender(
        secret_id=values["TENCENTCLOUD_SECRET_ID"].strip(), secret_key=values["TENCENTCLOUD_SECRET_KEY"].strip(),
        sdk_app_id=values["TENCENT_SMS_SDK_APP_ID"].strip(), sign_name=values["TENCENT_SMS_SIGN_NAME"].strip(),
        region=(values.get("TENCENT_SMS_REGION") or "").strip() or DEFAULT_REGION, endpoint=host, scheme=scheme,
        templates=config.templates, timeout=config.send_timeout)
    return TencentChannel(token, sender)


PROVIDER = SmsProvider("tencent", KEYS, open_channel, needs_templates=True)
