"""A local stand-in for Tencent Cloud SMS (腾讯云短信, TencentCloud API 3.0, version 2021-01-11), good enough for the
official SDK (`tencentcloud-sdk-python-sms`), and a pusher of Tencent's callbacks to the service's webhooks.

Why a server and not a mock: the project talks to Tencent through the SDK's asyncio client, so the only honest seam
is HTTP. Pointing the SDK at this server (TENCENT_SMS_ENDPOINT=http://127.0.0.1:PORT) exercises its request
building, its TC3-HMAC-SHA256 signature, its JSON parsing and its error mapping as in production.

Usage::

    fake = await FakeTencentSms(secret_id, secret_key, sdk_app_id, sign_name, templates={"1700001": 3}).start()
    ...  # the service sends; fake.sends records what Tencent accepted
    serial = fake.sends[0]["serial"]
    await fake.push_status(base_url, token, [fake.report(serial)])   # the delivery report, as Tencent pushes it
    await fake.push_reply(base_url, token, "13800138000", "1", times=3)  # one reply, pushed three times
    await fake.close()

The protocol, as the SDK sends it (read from tencentcloud/common/abstract_client_async.py, _build_req_with_tc3_
signature and _get_tc3_signature, and tencentcloud/common/sign.py, Sign.sign_tc3, of tencentcloud-sdk-python-common
3.1.195; the SMS actions and models from tencentcloud/sms/v20210111/sms_client_async.py and models.py of
tencentcloud-sdk-python-sms 3.1.153), and as Tencent documents it (签名方法 v3, TencentCloud API 3.0's "Signature v3"
page of every product, e.g. https://tencentcloud.com/document/product/1084/39391; 公共错误码 on each product's
"Error Codes" page, e.g. https://www.tencentcloud.com/document/api/1036/38589):

- ``POST /`` (query empty), ``Content-Type: application/json``, the request model's fields as a JSON object, and the
  headers ``Host``, ``X-TC-Action`` (SendSms …), ``X-TC-Version`` (2021-01-11), ``X-TC-Timestamp`` (UNIX seconds),
  ``X-TC-Region`` (ap-guangzhou …), ``X-TC-RequestClient``, ``X-TC-Language`` and ``Authorization:
  TC3-HMAC-SHA256 Credential=<SecretId>/<UTC date>/sms/tc3_request, SignedHeaders=content-type;host,
  Signature=<hex>``. The signature is HMAC-SHA256, with a key derived from "TC3" + SecretKey through the date, the
  service and "tc3_request", over "TC3-HMAC-SHA256\\n<timestamp>\\n<date>/sms/tc3_request\\n" + the SHA-256 of the
  canonical request "POST\\n/\\n\\ncontent-type:<ct>\\nhost:<host>\\n\\ncontent-type;host\\n<SHA-256 of the body>".
  A wrong one is refused as Tencent refuses it: AuthFailure.SignatureFailure; an unknown SecretId
  AuthFailure.SecretIdNotFound; a timestamp more than five minutes off AuthFailure.SignatureExpire.
- Every answer is HTTP 200 with ``{"Response": {..., "RequestId"}}``, an error as ``{"Response": {"Error":
  {"Code", "Message"}, "RequestId"}}``, under ``Content-Type: application/json`` exactly (the SDK raises
  TencentCloudSDKException only for that content type or text/plain, and "ServerNetworkError" for any status other
  than 200).
- SendSms (https://cloud.tencent.com/document/api/382/55981): PhoneNumberSet, SmsSdkAppId, SignName, TemplateId,
  TemplateParamSet, SessionContext → SendStatusSet, one ``{"SerialNo", "PhoneNumber", "Fee", "SessionContext",
  "Code", "Message", "IsoCode"}`` per number, Code "Ok" when sent: a refused number is a Code inside a 200 answer.
  Error codes from https://cloud.tencent.com/document/api/382/59177.
- PullSmsSendStatusByPhoneNumber (https://www.tencentcloud.com/document/api/382/40518): BeginTime (at most 7 days
  back), EndTime, Offset (0), Limit (≤ 100), PhoneNumber, SmsSdkAppId → PullSmsSendStatusSet of ``{"UserReceiveTime",
  "CountryCode", "SubscriberNumber", "PhoneNumber", "SerialNo", "ReportStatus", "Description", "SessionContext"}``
  for the messages whose report has come (Tencent has a status only once the carrier reported it).
- PullSmsSendStatus (https://cloud.tencent.com/document/product/382/55977): Limit, SmsSdkAppId → the reports not
  pulled before (the pull is a queue: "拉取过的内容不会再重复返回", https://cloud.tencent.com/document/product/382/5810).
- The pushes (短信回复 https://cloud.tencent.com/document/api/382/5809, 短信下发状态通知
  https://cloud.tencent.com/document/api/382/5807): POST JSON, one reply object ``{"extend", "mobile", "nationcode",
  "sign", "text", "time"}``; a status push is an array of ``{"user_receive_time", "nationcode", "mobile",
  "report_status", "errmsg", "description", "sid"}``; the expected answer ``{"result": 0, "errmsg": "OK"}``.

Failure injection, for what Tencent cannot be made to do on demand: ``fail_next`` (HTTP 5xx), ``error_next`` (an
API error for the whole request), ``hang_next`` (a slow Tencent that then does the work), ``lose_answer_next``
(the send is accepted and recorded, then the answer never comes, or the connection drops), ``refuse_number`` (a
per-number Code inside a 200 answer) and ``report_on_send`` (the delivery report pushed before SendSms answers:
the report that beats the sender to the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
from aiohttp import web

VERSION = "2021-01-11"
SERVICE = "sms"
REGIONS = frozenset({"ap-guangzhou", "ap-beijing", "ap-nanjing", "ap-singapore"})
SKEW = 300  # seconds: "Timestamp and server time cannot differ by more than five minutes"
PULL_REACH = 7 * 24 * 3600
BEIJING = timezone(timedelta(hours=8))  # the pushes' user_receive_time is local time, as Tencent's sample
_AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/"
                   r"tc3_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})$")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
MESSAGES = {
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your signature "
                                    "is correct.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp and server time cannot differ by more than five "
                                   "minutes.",
    "AuthFailure.InvalidAuthorization": "Authorization in the request header is invalid.",
}


def _e164(phone: str) -> str:
    """The number as Tencent echoes it: E.164, a national mainland number taken as +86 (SendSms's note)."""
    digits = re.sub(r"[^\d+]", "", phone)
    if digits.startswith("+"):
        return digits
    if digits.startswith("0086"):
        return "+" + digits[2:]
    if digits.startswith("86") and len(digits) == 13:
        return "+" + digits
    return "+86" + digits


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    def step(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    signing = step(step(step(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class FakeTencentSms:
    """An aiohttp server on 127.0.0.1 answering SendSms, PullSmsSendStatus and PullSmsSendStatusByPhoneNumber.

    Recorded state (plain lists, for tests to assert on):

    * ``sends`` -- every number a SendSms accepted: ``{"serial", "phone" (E.164), "template_id", "params" (list),
      "sign", "sdk_app_id", "session_context", "region", "at" (UNIX seconds), "report" (None, or the status item
      once ``report`` was called)}``
    * ``requests`` -- every request: ``{"action", "status" (HTTP), "error" (the error code or None), "body"}``
    * ``pushes`` -- every push made: ``{"path", "body", "status", "answer"}``
    """

    def __init__(self, secret_id: str, secret_key: str, sdk_app_id: str, sign_name: str, *,
                 templates: Mapping[str, int] | None = None) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        # Approved templates: TemplateId -> how many variables ({1}, {2} …) it has. None: any id, any count.
        self.templates = dict(templates) if templates is not None else None
        self.sends: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.pushes: list[dict[str, Any]] = []
        self.auto_report: str | None = None  # "SUCCESS" or "FAIL": every send is reported at once (for the pulls)
        self._pulled = 0  # PullSmsSendStatus's queue: reports before this index were pulled already
        self._queue: list[dict[str, Any]] = []
        self._failures: list[int] = []
        self._errors: list[tuple[str, str]] = []
        self._hangs: list[float] = []
        self._lost: list[tuple[float, bool]] = []
        self._refused: dict[str, list[tuple[str, str, int | None]]] = {}
        self._early: list[tuple[str, str, str, str]] = []  # (url, status, errmsg, description)
        self._hanging = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeTencentSms:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop; requests still held by a hang are released at once (answered 503, not as Tencent would)."""
        self._closing.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTencentSms:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def endpoint(self) -> str:
        """TENCENT_SMS_ENDPOINT for the service, e.g. ``http://127.0.0.1:54321``."""
        if self._port is None:
            raise RuntimeError("FakeTencentSms.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    @property
    def hanging(self) -> int:
        """Requests held right now by ``hang_next`` or ``lose_answer_next``."""
        return self._hanging

    # --------------------------------------------------------------------------------------- inspection

    def sends_to(self, phone: str) -> list[dict[str, Any]]:
        key = _e164(phone)
        return [s for s in self.sends if s["phone"] == key]

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["action"] == action]

    # ---------------------------------------------------------------------------------- fault injection

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` authenticated requests answer this HTTP status (a gateway's 5xx); nothing is done."""
        self._failures.extend([status] * n)

    def error_next(self, code: str, message: str = "", n: int = 1) -> None:
        """The next ``n`` authenticated requests answer this API error (HTTP 200, Response.Error)."""
        self._errors.extend([(code, message or code)] * n)

    def hang_next(self, n: int = 1, seconds: float = 30) -> None:
        """The next ``n`` authenticated requests wait ``seconds``, then are processed as usual (a slow Tencent
        that still did the work; a client that gave up may then find the message sent)."""
        self._hangs.extend([seconds] * n)

    def lose_answer_next(self, n: int = 1, seconds: float = 30, drop: bool = False) -> None:
        """The next ``n`` SendSms are accepted and recorded at once, then their answer is lost: held ``seconds``
        (the client times out) or, with ``drop``, the connection is closed without an answer."""
        self._lost.extend([(seconds, drop)] * n)

    def refuse_number(self, phone: str, code: str, message: str = "", times: int | None = None) -> None:
        """Sends to ``phone`` get this Code in their SendStatus (inside a 200 answer), ``times`` times or always.
        E.g. LimitExceeded.PhoneNumberDailyLimit, FailedOperation.PhoneNumberInBlacklist."""
        self._refused.setdefault(_e164(phone), []).append((code, message or code, times))

    def report_on_send(self, base_url: str, token: str, status: str = "SUCCESS", errmsg: str = "DELIVRD",
                       description: str = "用户短信送达成功") -> None:
        """The next accepted SendSms pushes its delivery report to the service before it answers."""
        self._early.append((f"{base_url.rstrip('/')}/webhooks/tencent/sms/{token}/status", status, errmsg,
                            description))

    # --------------------------------------------------------------------------------- reports, pushes

    def report(self, serial: str, status: str = "SUCCESS", errmsg: str | None = None,
               description: str | None = None) -> dict[str, Any]:
        """The carrier's report for this send: from now on the pulls return it. Returns the status push's item."""
        [send] = [s for s in self.sends if s["serial"] == serial]
        now = int(time.time())
        errmsg = errmsg if errmsg is not None else ("DELIVRD" if status == "SUCCESS" else "MK:0001")
        description = description if description is not None else (
            "用户短信送达成功" if status == "SUCCESS" else "用户短信接收失败")
        send["report"] = {"status": status, "errmsg": errmsg, "description": description, "at": now}
        self._queue.append(send)
        national = send["phone"][3:] if send["phone"].startswith("+86") else send["phone"].lstrip("+")
        return {"user_receive_time": datetime.fromtimestamp(now, BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                "nationcode": "86" if send["phone"].startswith("+86") else "", "mobile": national,
                "report_status": status, "errmsg": errmsg, "description": description, "sid": serial}

    async def push_reply(self, base_url: str, token: str, mobile: str, text: str, *, at: int | None = None,
                         nationcode: str = "86", sign: str | None = None, extend: str = "", times: int = 1,
                         together: bool = False) -> list[tuple[int, Any]]:
        """Push one reply (上行) as Tencent does, ``times`` times with the very same body (one after the other, or
        all at once with ``together``). Returns each push's (HTTP status, answer)."""
        body = {"extend": extend, "mobile": mobile, "nationcode": nationcode, "sign": sign or self.sign_name,
                "text": text, "time": int(time.time()) if at is None else at}
        url = f"{base_url.rstrip('/')}/webhooks/tencent/sms/{token}/reply"
        if together:
            return list(await asyncio.gather(*(self.push(url, body) for _ in range(times))))
        return [await self.push(url, body) for _ in range(times)]

    async def push_status(self, base_url: str, token: str, items: Iterable[Mapping[str, Any]]) -> tuple[int, Any]:
        return await self.push(f"{base_url.rstrip('/')}/webhooks/tencent/sms/{token}/status", list(items))

    async def push(self, url: str, body: Any) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        raw = json.dumps(body, ensure_ascii=False).encode()
        async with self._session.post(url, data=raw, headers={"Content-Type": "application/json"}) as resp:
            text = await resp.text()
        try:
            answer: Any = json.loads(text)
        except ValueError:
            answer = text
        self.pushes.append({"path": url.split("/", 3)[-1], "body": body, "status": resp.status, "answer": answer})
        return resp.status, answer

    # ----------------------------------------------------------------------------------------- handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        action = request.headers.get("X-TC-Action", "")
        response, error = await self._dispatch(request, action, raw)
        self.requests.append({"action": action, "status": response.status, "error": error,
                              "body": _loads(raw)})
        return response

    async def _dispatch(self, request: web.Request, action: str,
                        raw: bytes) -> tuple[web.StreamResponse, str | None]:
        if request.method != "POST" or request.path != "/":
            return _error("InvalidAction", f"{request.method} {request.path} is not an API"), "InvalidAction"
        refused = self._authenticate(request, raw)
        if refused is not None:
            return _error(refused, MESSAGES[refused]), refused
        if request.headers.get("X-TC-Version") != VERSION:
            return _error("NoSuchVersion", "The API version does not exist."), "NoSuchVersion"
        if request.headers.get("X-TC-Region") not in REGIONS:
            code = "UnsupportedOperation.UnsupportedRegion"
            return _error(code, "The region is not supported."), code
        params = _loads(raw)
        if not isinstance(params, dict):
            return _error("FailedOperation.JsonParseFail", "The request is not a JSON object."), "JsonParseFail"

        if self._hangs:
            await self._wait(self._hangs.pop(0))
            if self._closing.is_set():
                return web.Response(status=503, text="closing"), None
        if self._failures:
            status = self._failures.pop(0)
            return web.Response(status=status, text=f"<html>{status}</html>", content_type="text/html"), None
        if self._errors:
            code, message = self._errors.pop(0)
            return _error(code, message), code

        if action == "SendSms":
            return await self._send_sms(request, params)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull_by_phone(params)
        if action == "PullSmsSendStatus":
            return self._pull(params)
        return _error("InvalidAction", f"The action {action!r} does not exist."), "InvalidAction"

    def _authenticate(self, request: web.Request, raw: bytes) -> str | None:
        """The error code Tencent would refuse this request with, or None."""
        match = _AUTH.match(request.headers.get("Authorization", ""))
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if match is None or not timestamp.isdigit() or match["signed"] != "content-type;host":
            return "AuthFailure.InvalidAuthorization"
        if match["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        if abs(int(timestamp) - time.time()) > SKEW:
            return "AuthFailure.SignatureExpire"
        date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        canonical = "\n".join(("POST", "/", request.query_string, f"content-type:{request.headers.get('Content-Type')}",
                               f"host:{request.headers.get('Host')}", "", "content-type;host",
                               hashlib.sha256(raw).hexdigest()))
        scope = f"{date}/{SERVICE}/tc3_request"
        to_sign = "\n".join(("TC3-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()))
        expected = tc3_signature(self.secret_key, date, SERVICE, to_sign)
        if match["date"] != date or match["service"] != SERVICE or not hmac.compare_digest(expected, match["sig"]):
            return "AuthFailure.SignatureFailure"
        return None

    async def _wait(self, seconds: float) -> None:
        self._hanging += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)
        finally:
            self._hanging -= 1

    async def _send_sms(self, request: web.Request, params: dict[str, Any]) -> tuple[web.StreamResponse, str | None]:
        numbers, template_id = params.get("PhoneNumberSet"), params.get("TemplateId")
        values = params.get("TemplateParamSet") or []
        context = params.get("SessionContext") or ""
        if not numbers or not isinstance(numbers, list):
            return _error("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet is empty."), "EmptyPhoneNumberSet"
        if len(numbers) > 200:
            code = "LimitExceeded.PhoneNumberCountLimit"
            return _error(code, "More than 200 numbers in one request."), code
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            code = "InvalidParameterValue.SdkAppIdNotExist"
            return _error(code, "The SdkAppId does not exist."), code
        if params.get("SignName") != self.sign_name:
            code = "FailedOperation.SignatureIncorrectOrUnapproved"
            return _error(code, "签名未审批或格式错误。"), code
        if not isinstance(template_id, str) or (self.templates is not None and template_id not in self.templates):
            code = "FailedOperation.TemplateIncorrectOrUnapproved"
            return _error(code, "模板未审批或内容不匹配。"), code
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            code = "InvalidParameterValue.TemplateParameterFormatError"
            return _error(code, "TemplateParamSet is a list of strings."), code
        if self.templates is not None and len(values) != self.templates[template_id]:
            code = "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
            return _error(code, "模板参数的个数与模板的变量个数不一致。"), code
        if any(_URL.search(v) for v in values):
            code = "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter"
            return _error(code, "禁止在模板变量中使用 URL。"), code
        if len(context.encode()) >= 512:
            code = "InvalidParameterValue.InvalidParameters"
            return _error(code, "SessionContext is 512 bytes or more."), code

        statuses, accepted = [], []
        for number in numbers:
            phone = _e164(str(number))
            refusal = self._refusal(phone)
            if refusal is not None:
                statuses.append({"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": context,
                                 "Code": refusal[0], "Message": refusal[1], "IsoCode": "CN"})
                continue
            serial = f"{secrets.randbelow(9000) + 1000}:{secrets.randbelow(10 ** 28):028d}"
            send = {"serial": serial, "phone": phone, "template_id": template_id, "params": list(values),
                    "sign": params.get("SignName"), "sdk_app_id": params.get("SmsSdkAppId"),
                    "session_context": context, "region": request.headers.get("X-TC-Region"),
                    "at": int(time.time()), "report": None}
            self.sends.append(send)
            accepted.append(send)
            if self.auto_report:
                self.report(serial, self.auto_report)
            statuses.append({"SerialNo": serial, "PhoneNumber": phone, "Fee": 1, "SessionContext": context,
                             "Code": "Ok", "Message": "send success", "IsoCode": "CN"})

        if accepted and self._early:
            url, status, errmsg, description = self._early.pop(0)
            await self.push(url, [self.report(s["serial"], status, errmsg, description) for s in accepted])
        if accepted and self._lost:
            seconds, drop = self._lost.pop(0)
            if drop:
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500), None  # never written: the connection is gone
            await self._wait(seconds)
            return web.Response(status=503, text="the answer was lost"), None
        return _ok({"SendStatusSet": statuses}), None

    def _refusal(self, phone: str) -> tuple[str, str] | None:
        entries = self._refused.get(phone) or []
        for i, (code, message, times) in enumerate(entries):
            if times is None:
                return code, message
            if times > 0:
                entries[i] = (code, message, times - 1)
                return code, message
        return None

    def _pull_by_phone(self, params: dict[str, Any]) -> tuple[web.StreamResponse, str | None]:
        begin, end, limit = params.get("BeginTime"), params.get("EndTime"), params.get("Limit")
        phone, offset = params.get("PhoneNumber"), params.get("Offset")
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            code = "InvalidParameterValue.SdkAppIdNotExist"
            return _error(code, "The SdkAppId does not exist."), code
        if not isinstance(begin, int) or begin < time.time() - PULL_REACH - 60:
            code = "InvalidParameterValue.BeginTimeVerifyFail"
            return _error(code, "BeginTime: at most 7 days back."), code
        if end is not None and (not isinstance(end, int) or end < begin):
            code = "InvalidParameterValue.EndTimeVerifyFail"
            return _error(code, "EndTime is before BeginTime."), code
        if not isinstance(limit, int) or not 0 < limit <= 100:
            code = "InvalidParameterValue.LimitVerifyFail"
            return _error(code, "Limit: 1 to 100."), code
        if offset != 0:
            code = "InvalidParameterValue.OffsetVerifyFail"
            return _error(code, "Offset is 0."), code
        if not isinstance(phone, str):
            return _error("MissingParameter", "PhoneNumber is required."), "MissingParameter"
        found = [s for s in self.sends if s["phone"] == _e164(phone) and s["report"] is not None
                 and begin <= s["at"] and (end is None or s["at"] <= end)]
        return _ok({"PullSmsSendStatusSet": [_pulled(s) for s in found[:limit]]}), None

    def _pull(self, params: dict[str, Any]) -> tuple[web.StreamResponse, str | None]:
        limit = params.get("Limit")
        if params.get("SmsSdkAppId") != self.sdk_app_id:
            code = "InvalidParameterValue.SdkAppIdNotExist"
            return _error(code, "The SdkAppId does not exist."), code
        if not isinstance(limit, int) or not 0 < limit <= 100:
            code = "InvalidParameterValue.LimitVerifyFail"
            return _error(code, "Limit: 1 to 100."), code
        batch = self._queue[self._pulled:self._pulled + limit]
        self._pulled += len(batch)
        return _ok({"PullSmsSendStatusSet": [_pulled(s) for s in batch]}), None


def _pulled(send: dict[str, Any]) -> dict[str, Any]:
    report = send["report"]
    national = send["phone"][3:] if send["phone"].startswith("+86") else send["phone"].lstrip("+")
    return {"UserReceiveTime": report["at"], "CountryCode": "86", "SubscriberNumber": national,
            "PhoneNumber": send["phone"], "SerialNo": send["serial"], "ReportStatus": report["status"],
            "Description": report["errmsg"], "SessionContext": send["session_context"]}


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _request_id() -> str:
    return "-".join(secrets.token_hex(n) for n in (4, 2, 2, 2, 6))


def _json(payload: dict[str, Any]) -> web.Response:
    # Exactly application/json: the SDK reads an Error only under that content type (or text/plain).
    return web.Response(body=json.dumps({"Response": payload}, ensure_ascii=False).encode(),
                        headers={"Content-Type": "application/json"})


def _ok(payload: dict[str, Any]) -> web.Response:
    return _json({**payload, "RequestId": _request_id()})


def _error(code: str, message: str) -> web.Response:
    return _json({"Error": {"Code": code, "Message": message}, "RequestId": _request_id()})
