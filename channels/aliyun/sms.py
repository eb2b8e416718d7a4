"""Aliyun SMS (阿里云短信, dysmsapi 2017-05-25): sending through the official SDK, and reading its HTTP pushes.

Sending: `alibabacloud-dysmsapi20170525`'s async methods (`send_sms_with_options_async`,
`query_send_details_with_options_async`) over `alibabacloud-tea-openapi`, which signs every request with
Aliyun's V3 signature (ACS3-HMAC-SHA256) and makes one attempt only (no retry options are given, so
`darabonba.core.DaraCore.should_retry` stops after the first). Each send is bounded here as well.

SendSms (https://help.aliyun.com/document_detail/419273.html) takes PhoneNumbers, SignName, TemplateCode,
TemplateParam (the JSON of the template's `${name}` variables, string values only: isv.INVALID_JSON_PARAM
"JSON参数不合法，只接受字符串值") and OutId (ours: the outbox id); it answers Code "OK" with a BizId
(发送回执ID), the message's id at Aliyun, or another Code. QuerySendDetails
(https://help.aliyun.com/document_detail/419277.html) lists what was sent to one number on one SendDate
(yyyyMMdd, the last 30 days), 1 to 50 a page, each record with its OutId and SendStatus (1 等待回执,
2 发送失败, 3 发送成功) but no BizId.

Pushes (HTTP 批量推送, set up in the console): SmsUp, the replies (上行),
https://help.aliyun.com/zh/sms/developer-reference/smsup-http (document_detail/101847), and SmsReport, the
delivery reports, https://help.aliyun.com/zh/sms/developer-reference/smsreport-2 (document_detail/101867):
a JSON array of items a request; Aliyun counts a push as received when the answer is HTTP 200 with a
numeric `code`, and pushes again after 1, 5 and 10 minutes otherwise (document_detail/414223 and
/414224, the OpenAPI definitions of the same pushes, say up to 10 times, the last hourly).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import ClientConnectorError
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.runtime import RuntimeOptions

from channels.base import Failed, Outgoing, Retry, SendResult, Sent, Unsure, shorten
from dialogs.addresses import mask_phone, normalize_phone

log = logging.getLogger("haochaping.aliyun")

SHANGHAI = ZoneInfo("Asia/Shanghai")  # SendDate, send_time and report_time are Beijing time
PAGE_SIZE = 50  # QuerySendDetails' largest page
MAX_PAGES = 10  # 500 messages to one number in one day: far beyond Aliyun's own caps
QUERY_DAYS = 30  # "支持查询最近 30 天的记录" (document_detail/419277)
ERROR_CODE_MAX = 16  # the outbox's error_code column
ID_MAX = 64  # the outbox's provider_id column
OUT_KEY = "aliyun-out:"  # a message found by its OutId: QuerySendDetails gives no BizId

# How long after an attempt whose outcome is unknown a look-up that finds nothing is taken to mean "not sent".
# QuerySendDetails lists a message from the moment Aliyun accepted it, with SendStatus 1 (等待回执) until the
# carrier's report (developer.aliyun.com/ask/218000, the QuerySendDetails field list; document_detail/419277);
# Aliyun documents no delay before an accepted message is listed. It does document that its platform and
# pushes lag: a failed push is repeated after 1, 5 and 10 minutes (document_detail/101867), and a list can
# come back shorter than its TotalCount (aliyun/alibabacloud-java-sdk#42). One hour covers those with
# room, and still lets the sender's backoff (30 s, 2, 10, 30 min, 1 h …) send the message again on its
# sixth attempt, long before it gives up. The carrier's own report can take up to 72 hours ("若超过72小时,
# 短信状态为未知状态", Aliyun's SMS FAQ, help.aliyun.com/wordpower/624745-1.html); that bounds the status,
# not whether the message is listed, so it is not waited for.
REPORT_WINDOW = timedelta(hours=1)
# A notification template's variable of the kind 其他 (names, addresses) takes at most 35 characters (通知短信模板规范,
# 变量规范, help.aliyun.com/document_detail/463270.html); a longer one refuses the whole message
# (isv.PARAM_LENGTH_LIMIT). An item's name can be longer: it is shortened with an ellipsis, so the person still
# gets the reminder. Values that must stay whole (the link's token, a count, a date) are far shorter.
VALUE_MAX = 35

# --- what SendSms' Code means for the outbox (Aliyun's API error codes, 国内消息API错误码:
# https://help.aliyun.com/zh/sms/developer-reference/api-error-codes, document_detail/101346) -------------
# isv.BUSINESS_LIMIT_CONTROL, 业务限流: the per-number caps (same signature to one number: 1 a minute, 5 an hour,
# 10 a day for codes; 50 a day per template for notices, and the console's own thresholds, document_detail/
# 101346 and developer.aliyun.com/ask/652244 "达到云通信短信发送频率上限 … 调整流控阈值"); Aliyun's Message names the
# level ("触发分钟级流控Permits:1", "触发小时级流控", "触发天级流控Permits:10"). The message is fine: later it goes.
# isv.DAY_LIMIT_CONTROL / isv.MONTH_LIMIT_CONTROL: the account's daily/monthly quota set in the console ("触发日发送
# 限额"); isv.OUT_OF_SERVICE: 业务停机, the balance ran out ("余额不足 … 请及时充值"); isv.AMOUNT_NOT_ENOUGH: 余额不足
# (error-code-intl): an operator fixes these without changing the message, so the sender tries again.
RETRY_CODES = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isv.OUT_OF_SERVICE",
    "isv.AMOUNT_NOT_ENOUGH",
    # Aliyun's side ("isp"): isp.SYSTEM_ERROR "请重试" (error-code-intl: 21/23/46 System error), isp.GATEWAY_ERROR.
    "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "isp.UNKNOWN",
    # The OpenAPI gateway's own: Throttling.* (429, with a Retry-After the SDK raises as ThrottlingException),
    # ServiceUnavailable (503) and InternalError (500), Alibaba Cloud's common error codes.
    "Throttling", "Throttling.User", "Throttling.Api", "Throttling.Api.Qps", "ServiceUnavailable",
    "ServiceUnavailableTemporary", "InternalError", "UnknownError",
})
# Refused for good (document_detail/101346 unless said): the number (isv.MOBILE_NUMBER_ILLEGAL 非法手机号,
# isv.MOBILE_COUNT_OVER_LIMIT), the template or signature (isv.SMS_TEMPLATE_ILLEGAL "该账号下找不到对应模板",
# developer.aliyun.com/ask/648540; isv.SMS_SIGNATURE_ILLEGAL, isv.SMS_SIGN_ILLEGAL 签名禁止使用,
# isv.SIGN_STATE_ILLEGAL, isv.SMS_SIGNATURE_SCENE_ILLEGAL 签名和模板类型不一致), the values
# (isv.TEMPLATE_PARAMS_ILLEGAL "传入的变量内容和实际申请模板时变量所选择的属性类型不配", developer.aliyun.com/ask/
# 651530; isv.TEMPLATE_MISSING_PARAMETERS, isv.INVALID_JSON_PARAM, isv.PARAM_LENGTH_LIMIT 变量长度受限,
# isv.PARAM_NOT_SUPPORT_URL 不支持url为变量 developer.aliyun.com/ask/643204, isv.BLACK_KEY_CONTROL_LIMIT 黑名单管控,
# isv.SMS_CONTENT_ILLEGAL, isv.INVALID_PARAMETERS), the account (isp.RAM_PERMISSION_DENY, isv.PRODUCT_UN_SUBSCRIPT,
# isv.PRODUCT_UNSUBSCRIBE, isv.ACCOUNT_NOT_EXISTS, isv.ACCOUNT_ABNORMAL, isv.DENY_IP_RANGE,
# isv.DOMESTIC_NUMBER_NOT_SUPPORTED, isv.EXTEND_CODE_ERROR, isv.SMS_TEST_NUMBER_LIMIT) and the credentials
# (InvalidAccessKeyId.NotFound, SignatureDoesNotMatch …). Unknown isv.* codes fail too; unknown isp.* retry.
FAILED_CODES = frozenset({
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT", "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL", "isv.SIGN_STATE_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL", "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.PARAM_LENGTH_LIMIT", "isv.PARAM_NOT_SUPPORT_URL",
    "isv.BLACK_KEY_CONTROL_LIMIT", "isv.SMS_CONTENT_ILLEGAL", "isv.INVALID_PARAMETERS", "isp.RAM_PERMISSION_DENY",
    "isv.PRODUCT_UN_SUBSCRIPT", "isv.PRODUCT_UNSUBSCRIBE", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL",
    "isv.DENY_IP_RANGE", "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", "isv.EXTEND_CODE_ERROR", "isv.SMS_TEST_NUMBER_LIMIT",
})

# --- what a SmsReport's err_code means (回执错误码, https://help.aliyun.com/zh/sms/developer-reference/
# delivery-receipt-error-codes, document_detail/101347) ---------------------------------------------------------
# The person refused our messages: MOBILE_IN_BLACK "手机号在黑名单中，通常是用户已退订此签名或命中运营商平台黑名单规则",
# USER_REJECT "接收用户已退订此业务或产品未开通"; W-BLACK, the carriers' blacklist of a number whose owner complained
# about the signature to 12321, the carrier or the MIIT ("为什么错误码显示黑名单，如W-BLACK等？",
# https://help.aliyun.com/zh/document_detail/2679007.html). The contact is marked opted out.
STOP_CODES = frozenset({"MOBILE_IN_BLACK", "USER_REJECT", "W-BLACK"})
# Reports of messages that never left Aliyun (the platform's own refusals, isv.*/isp.*, and PARAMS_ILLEGAL,
# NO_ROUTE "当前短信内容无可用通道发送", IS_CLOSE "短信通道被关停", PORT_NOT_REGISTERED "尚未完成企业实名制报备",
# CONTENT_ERROR) are `failed`; the carrier's (MOBILE_NOT_ON_SERVICE, INVALID_NUMBER, CONTENT_KEYWORD,
# SP_UNKNOWN_ERROR …) `undelivered`.
PLATFORM_CODES = frozenset({"PARAMS_ILLEGAL", "NO_ROUTE", "IS_CLOSE", "PORT_NOT_REGISTERED", "CONTENT_ERROR"})


def classify(code: str | None, message: str | None, status: int = 200) -> SendResult:
    """An answer of SendSms that is not OK, as the outbox takes it (the tables above)."""
    code = (code or "").strip() or None
    text = f"aliyun {status} {code}: {message or ''}".strip()
    if code in RETRY_CODES or ((code or "").startswith(("Throttling", "isp.")) and code not in FAILED_CODES):
        return Retry(text)
    if code in FAILED_CODES or (code or "").startswith("isv."):
        return Failed(text)
    if status == 429 or status >= 500:
        return Retry(text)
    return Failed(text)


def report_status(success: bool, code: str | None) -> tuple[str, bool]:
    """A SmsReport item's outcome in the outbox's words, and whether the person has stopped our messages."""
    if success:
        return "delivered", False
    code = code or ""
    if code in STOP_CODES:
        return "failed", True
    if code in PLATFORM_CODES or code.startswith(("isv.", "isp.")):
        return "failed", False
    return "undelivered", False


# --- the pushes ----------------------------------------------------------------------------------------------

UP_FIELDS = ("phone_number", "content", "send_time", "dest_code", "sequence_id")
REPORT_FIELDS = ("phone_number", "send_time", "report_time", "success", "err_code", "err_msg", "sms_size", "biz_id",
                 "out_id")
SEQUENCE_MAX = 64


class BadPush(ValueError):
    """A push that is not what Aliyun sends: answered 400, nothing in it acted on."""


@dataclass(frozen=True, slots=True)
class UpMessage:
    """One SmsUp item: a person's message."""

    sender: str | None  # E.164, or None when it is no number we can text
    masked: str
    content: str
    message_id: str  # "aliyun:<sequence_id>": the same for every push of one message


@dataclass(frozen=True, slots=True)
class Report:
    """One SmsReport item."""

    biz_id: str
    out_id: str | None
    status: str
    error_code: str | None
    full_code: str | None
    stopped: bool


def parse_json_array(body: bytes) -> list[Any]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPush(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(doc, list):
        raise BadPush("not a JSON array")
    return doc


def _item(raw: Any, index: int, fields: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise BadPush(f"item {index} is not an object")
    missing = [name for name in fields if name not in raw]
    if missing:
        raise BadPush(f"item {index} lacks {', '.join(missing)}")
    return raw


def _text(value: Any, index: int, name: str, *, optional: bool = False) -> str | None:
    """A string field; numbers are taken as their digits (Aliyun's examples write some as numbers)."""
    if value is None and optional:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadPush(f"item {index}: {name} is not text")


def sequence_key(value: Any, index: int) -> str:
    """sequence_id as one key, whether pushed as the number 1234567890 or the string "1234567890" (the SmsUp
    page shows it both ways: Number in document_detail/60127, String in smsup-http)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadPush(f"item {index}: sequence_id is neither a number nor text")
    key = str(value).strip()
    if not key or len(key) > SEQUENCE_MAX or not key.isprintable():
        raise BadPush(f"item {index}: sequence_id is empty or not an id")
    if key.isascii() and key.isdigit():
        key = str(int(key))  # "0042" and 42 are one message
    return key


def parse_up(body: bytes) -> list[UpMessage]:
    """Every item of a SmsUp push, or BadPush if any item is not one (then none is acted on)."""
    replies = []
    for index, raw in enumerate(parse_json_array(body)):
        item = _item(raw, index, UP_FIELDS)
        phone = _text(item["phone_number"], index, "phone_number") or ""
        content = _text(item["content"], index, "content") or ""
        _text(item["send_time"], index, "send_time")
        _text(item["dest_code"], index, "dest_code", optional=True)
        key = sequence_key(item["sequence_id"], index)
        sender = _phone(phone)
        replies.append(UpMessage(sender, mask_phone(sender) if sender else "****", content, f"aliyun:{key}"))
    return replies


def _phone(raw: str) -> str | None:
    """+86…, 86… or national: one person (CONTRACT). A bare 86 prefix is China's only when 11 digits follow."""
    digits = re.sub(r"[\s\-()]", "", raw.strip())
    if digits.startswith("86") and len(digits) == 13 and digits.isdigit():
        digits = "+" + digits
    return normalize_phone(digits)


def parse_report(body: bytes) -> list[Report]:
    """Every item of a SmsReport push, or BadPush if any item is not one."""
    reports = []
    for index, raw in enumerate(parse_json_array(body)):
        item = _item(raw, index, REPORT_FIELDS)
        for name in ("phone_number", "send_time", "report_time", "err_msg", "sms_size"):
            _text(item[name], index, name, optional=True)
        success = item["success"]
        if isinstance(success, str) and success.strip().lower() in ("true", "false"):
            success = success.strip().lower() == "true"
        if not isinstance(success, bool):
            raise BadPush(f"item {index}: success is not true or false")
        biz_id = (_text(item["biz_id"], index, "biz_id") or "").strip()
        if not biz_id or len(biz_id) > ID_MAX:
            raise BadPush(f"item {index}: biz_id is empty or too long")
        out_id = (_text(item["out_id"], index, "out_id", optional=True) or "").strip() or None
        code = (_text(item["err_code"], index, "err_code", optional=True) or "").strip() or None
        status, stopped = report_status(success, code)
        kept = None if success or code is None else _clean_code(code)
        reports.append(Report(biz_id, out_id, status, kept, code, stopped))
    return reports


def _clean_code(code: str) -> str | None:
    cleaned = "".join(ch for ch in code if ch.isprintable())[:ERROR_CODE_MAX]
    return cleaned or None


def out_key(out_id: str | None) -> str | None:
    """The provider id of a message found by its OutId (ours are the outbox's ids), or None."""
    if out_id and out_id.isascii() and out_id.isdigit() and len(out_id) <= 20:
        return OUT_KEY + str(int(out_id))
    return None


# --- sending ---------------------------------------------------------------------------------------------------


def national(e164: str) -> str:
    """PhoneNumbers / PhoneNumber: 11 digits for the mainland, country code and number (no +) elsewhere
    (SendSmsRequest's and QuerySendDetailsRequest's field notes in the SDK)."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


class NotYetKnown(RuntimeError):
    """QuerySendDetails does not list the message yet, and the report window has not passed."""


class AliyunSender:
    name = "aliyun"

    def __init__(self, access_key_id: str, access_key_secret: str, sign_name: str, *, endpoint: str,
                 protocol: str, templates: Mapping[str, tuple[str, tuple[str, ...]]], timeout: float,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.sign_name = sign_name
        self.templates = dict(templates)
        self.timeout = timeout
        self.clock = clock or (lambda: datetime.now(UTC))  # wall time: `since` is the attempt's wall time
        millis = max(int(timeout * 1000), 1)
        self.client = Client(utils_models.Config(access_key_id=access_key_id, access_key_secret=access_key_secret,
                                                 endpoint=endpoint, protocol=protocol, read_timeout=millis,
                                                 connect_timeout=millis))
        self.runtime = RuntimeOptions(read_timeout=millis, connect_timeout=millis)

    def request_for(self, message: Outgoing) -> sms_models.SendSmsRequest | Failed:
        template = self.templates.get(message.key) if message.key else None
        if template is None:
            return Failed(f"no aliyun template for {message.key}")
        code, names = template
        missing = [name for name in names if not message.values.get(name)]
        if missing:
            return Failed(f"aliyun template {code} for {message.key} needs {', '.join(missing)}, which the "
                          "message does not have")
        # The template's ${name} variables by name, in the order the policy lists them; values are text.
        param = json.dumps({name: shorten(str(message.values[name]), VALUE_MAX) for name in names},
                           ensure_ascii=False) if names else None
        return sms_models.SendSmsRequest(phone_numbers=national(message.to), sign_name=self.sign_name,
                                         template_code=code, template_param=param, out_id=str(message.outbox_id))

    async def send(self, message: Outgoing) -> SendResult:
        request = self.request_for(message)
        if isinstance(request, Failed):
            return request
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.send_sms_with_options_async(request, self.runtime)
        except ThrottlingException as exc:  # 429 with a Retry-After: nothing was sent
            return Retry(f"aliyun {exc.status_code} {exc.code}: throttled")
        except (ClientException, ServerException) as exc:  # the gateway answered 4xx/5xx with its Code
            return classify(exc.code, _message(exc), exc.status_code or 0)
        except TimeoutError as exc:  # ours: the request went out and no answer came back in time
            return Unsure(f"aliyun: no answer within {self.timeout:g} s ({type(exc).__name__})")
        except Exception as exc:  # the SDK wraps network failures in UnretryableException
            if _never_connected(exc):
                return Retry(f"aliyun: could not connect ({_cause(exc)})")
            return Unsure(f"aliyun: {type(exc).__name__}: {_cause(exc)}")
        body = response.body
        if body is None:
            return Unsure("aliyun: an answer without a body")
        if body.code == "OK":
            if not body.biz_id:
                return Unsure("aliyun: OK without a BizId")
            return Sent(str(body.biz_id))
        return classify(body.code, body.message, response.status_code or 200)

    async def find_sent(self, message: Outgoing, since: datetime) -> str | None:
        """The id of a message with our OutId that QuerySendDetails lists for this number since `since`.
        Found: "aliyun-out:<outbox id>" (the listing has no BizId; the report webhook hands each report over
        under that key too). Not found: raises NotYetKnown until REPORT_WINDOW has passed since `since`, then
        None (send again). Raises on any failure to ask."""
        now = self.clock()
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        wanted = str(message.outbox_id)
        complete = True
        for day in _send_dates(since, now):
            found, whole = await self._find_on(national(message.to), day, wanted)
            if found:
                log.info("aliyun lists outbox message %s to %s, sent %s", wanted, mask_phone(message.to), day)
                return OUT_KEY + wanted
            complete = complete and whole
        if not complete:
            raise NotYetKnown("QuerySendDetails listed fewer records than it counted")
        if now - since < REPORT_WINDOW:
            raise NotYetKnown(f"not listed yet; asked again until {REPORT_WINDOW} after the attempt")
        return None

    async def _find_on(self, phone: str, day: str, wanted: str) -> tuple[bool, bool]:
        """(found, the listing was whole) for one SendDate."""
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            request = sms_models.QuerySendDetailsRequest(phone_number=phone, send_date=day, page_size=PAGE_SIZE,
                                                         current_page=page)
            async with asyncio.timeout(self.timeout):
                response = await self.client.query_send_details_with_options_async(request, self.runtime)
            body = response.body
            if body is None or body.code != "OK":
                raise RuntimeError(f"QuerySendDetails: {getattr(body, 'code', None)} {getattr(body, 'message', '')}")
            dtos = body.sms_send_detail_dtos
            records = list(dtos.sms_send_detail_dto or []) if dtos is not None else []
            if any(str(r.out_id or "") == wanted for r in records):
                return True, True
            seen += len(records)
            total = int(body.total_count or 0)
            if seen >= total:
                return False, True
            if not records:  # counted but not listed (aliyun/alibabacloud-java-sdk#42)
                return False, False
        return False, False

    async def close(self) -> None:
        return None  # the SDK opens and closes an aiohttp session per request


def _send_dates(since: datetime, now: datetime) -> list[str]:
    """Every Beijing date from the attempt to now, at most the 30 days QuerySendDetails keeps."""
    first = max(since, now - timedelta(days=QUERY_DAYS)).astimezone(SHANGHAI).date()
    last = max(now, since).astimezone(SHANGHAI).date()
    days = []
    while first <= last:
        days.append(first.strftime("%Y%m%d"))
        first += timedelta(days=1)
    return days


def _message(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        return str(data.get("Message") or data.get("message") or "")
    return ""


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (darabonba's inner_exception) and what it was raised from or during."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or current in seen or len(seen) > 10:
            continue
        seen.append(current)
        inner = getattr(current, "inner_exception", None)
        todo.extend([inner if isinstance(inner, BaseException) else None, current.__cause__, current.__context__])
    return seen


def _never_connected(exc: BaseException) -> bool:
    """darabonba turns aiohttp's OSErrors into RetryError(str(e)) raised inside the except block, so the
    original (ClientConnectorError: the connection was never made) is its __context__."""
    return any(isinstance(e, ClientConnectorError) for e in _chain(exc))


def _cause(exc: BaseException) -> str:
    inner = getattr(exc, "inner_exception", None)
    text = str(inner if inner is not None else exc)
    return text[:200]
