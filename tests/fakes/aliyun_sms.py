"""A local stand-in for Aliyun SMS (dysmsapi 2017-05-25), good enough for the real SDK, and Aliyun's pushes.

Why a server: the service talks to Aliyun through the official `alibabacloud-dysmsapi20170525` client on
`alibabacloud-tea-openapi`, so the honest seam is HTTP. Pointed at this server (ALIYUN_SMS_ENDPOINT=
http://127.0.0.1:PORT) the real client builds, signs and sends its requests and parses the answers and
errors exactly as against Aliyun.

Usage::

    fake = await FakeAliyunSms(access_key_id, access_key_secret,
                               templates={"SMS_1": "您办理的${item}已办结，请评价"}).start()
    # ALIYUN_SMS_ENDPOINT = fake.endpoint
    ...
    [sent] = fake.sms_to("13800138000")
    await fake.push_report(client_or_base_url, token, [fake.report_item(sent)])
    await fake.close()

The protocol, as the SDK speaks it (read from the installed packages):
- alibabacloud_dysmsapi20170525/client.py, `send_sms_with_options_async` and
  `query_send_details_with_options_async`: action SendSms / QuerySendDetails, version 2017-05-25, style RPC,
  method POST, path "/", every parameter in the query string (`OpenApiRequest(query=...)`, no body), answers
  parsed as JSON into SendSmsResponseBody (Code, Message, BizId, RequestId) and QuerySendDetailsResponseBody
  (Code, Message, RequestId, TotalCount, SmsSendDetailDTOs.SmsSendDetailDTO[PhoneNum, SendStatus, ErrCode,
  TemplateCode, Content, SendDate, ReceiveDate, OutId]).
- alibabacloud_tea_openapi/client.py, `call_api_async` → `do_request_async` (the default: no
  signature_version "v4", no signature_algorithm "v2"): Aliyun's V3 signature, ACS3-HMAC-SHA256. Headers host,
  x-acs-action, x-acs-version, x-acs-date (UTC, %Y-%m-%dT%H:%M:%SZ), x-acs-signature-nonce, x-acs-content-sha256
  (hex SHA-256 of the body, here of b""), accept, user-agent, x-acs-credentials-provider, and
  `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<a;b;c>,Signature=<hex>`.
  alibabacloud_tea_openapi/utils.py, `get_authorization`: CanonicalRequest = method \\n path \\n
  CanonicalQueryString (keys sorted, values `quote(v, safe='~')`, joined by &) \\n CanonicalHeaders
  (`name:value\\n`, names lowercased and sorted, every header but the ones the transport adds) \\n
  SignedHeaders \\n HashedPayload; StringToSign = "ACS3-HMAC-SHA256\\n" + hex(SHA-256(CanonicalRequest));
  Signature = hex(HMAC-SHA256(AccessKeySecret, StringToSign)). Aliyun's description of the same:
  "V3版本请求体&签名机制", https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature
  (document_detail/2593177): every common request header present but Authorization must be signed.
- darabonba/core.py `async_do_action`: one aiohttp request, no retries (`should_retry` with no retry
  options); an HTTP status of 400-599 becomes ClientException/ServerException/ThrottlingException (the latter
  when a rate-limit header gives a time left) carrying the JSON body's Code and Message.
This server checks that signature with the AccessKeySecret and answers a wrong one as Aliyun's gateway does
(SignatureDoesNotMatch, 400; an unknown AccessKeyId InvalidAccessKeyId.NotFound, 404; a nonce used twice
SignatureNonceUsed, 400; a date more than 15 minutes off InvalidTimeStamp.Expired, 400).

SendSms (https://help.aliyun.com/document_detail/419273.html) answers business refusals with HTTP 200 and
the Code (isv.*), as dysmsapi does; the codes and their wording follow 国内消息API错误码
(https://help.aliyun.com/zh/sms/developer-reference/api-error-codes, document_detail/101346). QuerySendDetails
(https://help.aliyun.com/document_detail/419277.html): one number, one SendDate (yyyyMMdd, Beijing time),
PageSize 1-50; SendStatus 1 等待回执 until a report is pushed, then 3 发送成功 or 2 发送失败.

Pushes (HTTP 批量推送, no signature: Aliyun POSTs a JSON array with Content-Type application/json):
SmsUp https://help.aliyun.com/zh/sms/developer-reference/smsup-http (document_detail/101847) items
{"phone_number", "content", "send_time", "dest_code", "sequence_id"}; SmsReport
https://help.aliyun.com/zh/sms/developer-reference/smsreport-2 (document_detail/101867) items
{"phone_number", "send_time", "report_time", "success", "err_code", "err_msg", "sms_size", "biz_id", "out_id"}.
A push counts as received on HTTP 200 with a numeric `code`; otherwise Aliyun pushes the same array again
after 1, 5 and 10 minutes. `push_up`/`push_report` deliver an array `times` times, as such repeats do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

VERSION = "2017-05-25"
ALGORITHM = "ACS3-HMAC-SHA256"
SHANGHAI = ZoneInfo("Asia/Shanghai")
REQUIRED_SIGNED = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce",
                   "x-acs-version")
CLOCK_SKEW = timedelta(minutes=15)
_AUTH = re.compile(r"(?P<alg>[A-Z0-9-]+) Credential=(?P<ak>[^,]*),SignedHeaders=(?P<signed>[^,]*),"
                   r"Signature=(?P<sig>[0-9a-f]*)")
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_URL = re.compile(r"(https?://|www\.)", re.IGNORECASE)
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def national(phone: str) -> str | None:
    """Aliyun's PhoneNumbers for the mainland: 11 digits, optionally after +, +86, 0086 or 86."""
    digits = re.sub(r"[\s\-]", "", str(phone))
    for prefix in ("+86", "0086", "86", "+"):
        if digits.startswith(prefix) and _CN_MOBILE.fullmatch(digits[len(prefix):]):
            return digits[len(prefix):]
    return digits if _CN_MOBILE.fullmatch(digits) else None


def _sms_size(text: str) -> int:
    """Billed segments of a Chinese text: 70 characters in one, 67 each when longer (SmsReport's sms_size)."""
    return 1 if len(text) <= 70 else -(-len(text) // 67)


def _beijing(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


class FakeAliyunSms:
    """An aiohttp server on 127.0.0.1 answering SendSms and QuerySendDetails like dysmsapi.

    Recorded (plain lists):
    * ``sends`` -- accepted messages, one per number: ``{"biz_id", "phone" (11 digits), "sign_name",
      "template_code", "params" (dict in the order sent), "param_json", "out_id", "content", "at" (UTC),
      "status" (1 waiting, 2 failed, 3 delivered), "err_code"}``
    * ``requests`` -- every request: ``{"action", "query", "status", "code"}``

    ``templates`` maps each approved TemplateCode to its text with ``${name}`` variables (None: any code,
    any variables). Failure injection: ``fail_next`` (gateway errors), ``hang_next`` (slow, then accepted),
    ``lose_next`` (accepted, then the answer never comes or the connection drops), ``refuse`` (a Code for
    one number), ``fail_queries``.
    """

    def __init__(self, access_key_id: str, access_key_secret: str, *, sign_names: Iterable[str] = ("政务服务",),
                 templates: Mapping[str, str] | None = None, max_value_length: int = 35) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_names = set(sign_names)
        self.templates = dict(templates) if templates is not None else None
        self.max_value_length = max_value_length
        self.sends: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._failures: list[tuple[int, str, str]] = []
        self._query_failures: list[tuple[int, str, str]] = []
        self._hangs: list[float] = []
        self._losses: list[tuple[str, float]] = []
        self._refused: dict[str, list[Any]] = {}  # number -> [code, message, times left or None]
        self._nonces: dict[str, datetime] = {}
        self._hanging = 0
        self._release = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._counter = 0

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> FakeAliyunSms:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop; requests held by a hang are let go at once."""
        self._closing.set()
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAliyunSms:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def endpoint(self) -> str:
        """ALIYUN_SMS_ENDPOINT for this server: http://127.0.0.1:PORT."""
        if self._port is None:
            raise RuntimeError("FakeAliyunSms.start() has not been awaited")
        return f"http://127.0.0.1:{self._port}"

    @property
    def hanging(self) -> int:
        """Requests held by hang_next or lose_next right now."""
        return self._hanging

    def release(self) -> None:
        """Let every request held by a hang go on now."""
        self._release.set()

    # ------------------------------------------------------------------------------------- inspection

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        wanted = national(phone)
        return [s for s in self.sends if s["phone"] == wanted]

    def actions(self, action: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["action"] == action]

    # --------------------------------------------------------------------------------- fault injection

    def fail_next(self, n: int, status: int = 503, code: str = "ServiceUnavailable",
                  message: str = "The request has failed due to a temporary failure of the server.") -> None:
        """The next n signed SendSms requests answer this gateway error; nothing is accepted."""
        self._failures.extend([(status, code, message)] * n)

    def fail_queries(self, n: int, status: int = 503, code: str = "ServiceUnavailable",
                     message: str = "The request has failed due to a temporary failure of the server.") -> None:
        """The next n QuerySendDetails requests answer this error."""
        self._query_failures.extend([(status, code, message)] * n)

    def hang_next(self, n: int, seconds: float = 30) -> None:
        """The next n SendSms requests wait (until `release()` or `seconds`), then are processed normally."""
        self._hangs.extend([seconds] * n)

    def lose_next(self, n: int, how: str = "hang", seconds: float = 30) -> None:
        """The next n SendSms requests are accepted (recorded, listed by QuerySendDetails), and then their
        answer is lost: "hang" holds it until `release()` or `seconds`, "drop" closes the connection."""
        if how not in ("hang", "drop"):
            raise ValueError(how)
        self._losses.extend([(how, seconds)] * n)

    def refuse(self, phone: str, code: str = "isv.BUSINESS_LIMIT_CONTROL",
               message: str = "触发小时级流控Permits:5", times: int | None = None) -> None:
        """SendSms to this number answers this Code (HTTP 200, as dysmsapi does), `times` times or until
        `allow`. isv.BUSINESS_LIMIT_CONTROL: the per-number caps; isv.MOBILE_NUMBER_ILLEGAL; …"""
        number = national(phone) or phone
        self._refused[number] = [code, message, times]

    def allow(self, phone: str) -> None:
        self._refused.pop(national(phone) or phone, None)

    # ------------------------------------------------------------------------------------------ pushes

    @staticmethod
    def up_item(phone: str, content: str, sequence_id: int | str, *, send_time: datetime | None = None,
                dest_code: str = "1234") -> dict[str, Any]:
        """One SmsUp item, as smsup-http shows it."""
        return {"phone_number": phone, "content": content, "send_time": _beijing(send_time or datetime.now(UTC)),
                "dest_code": dest_code, "sequence_id": sequence_id}

    def report_item(self, send: Mapping[str, Any], *, success: bool = True, err_code: str = "DELIVERED",
                    err_msg: str = "用户接收成功", report_time: datetime | None = None) -> dict[str, Any]:
        """The SmsReport item of a recorded send; QuerySendDetails shows its outcome from now on."""
        for record in self.sends:
            if record is send or (record["biz_id"] == send["biz_id"] and record["phone"] == send["phone"]):
                record["status"] = 3 if success else 2
                record["err_code"] = err_code
                record["received"] = report_time or datetime.now(UTC)
        return {"phone_number": send["phone"], "send_time": _beijing(send["at"]),
                "report_time": _beijing(report_time or datetime.now(UTC)), "success": success, "err_code": err_code,
                "err_msg": err_msg, "sms_size": str(_sms_size(send["content"])), "biz_id": send["biz_id"],
                "out_id": send["out_id"]}

    async def push(self, target: Any, path: str, items: list[Any] | bytes | str, *, times: int = 1,
                   headers: Mapping[str, str] | None = None) -> list[tuple[int, Any]]:
        """POST a push as Aliyun does, `times` times; [(status, JSON or text answer)] for each.
        `target`: the service's base URL, or an aiohttp TestClient of it."""
        if isinstance(items, bytes):
            body = items
        elif isinstance(items, str):
            body = items.encode()
        else:
            body = json.dumps(items, ensure_ascii=False).encode()
        sent = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        answers = []
        for _ in range(times):
            if isinstance(target, str):
                async with aiohttp.ClientSession() as session, session.post(target.rstrip("/") + path, data=body,
                                                                            headers=sent) as resp:
                    answers.append((resp.status, await _answer(resp)))
            else:
                resp = await target.post(path, data=body, headers=sent)
                answers.append((resp.status, await _answer(resp)))
        return answers

    async def push_up(self, target: Any, token: str, items: list[Any] | bytes | str, *,
                      times: int = 1) -> list[tuple[int, Any]]:
        return await self.push(target, f"/webhooks/aliyun/sms/{token}/up", items, times=times)

    async def push_report(self, target: Any, token: str, items: list[Any] | bytes | str, *,
                          times: int = 1) -> list[tuple[int, Any]]:
        return await self.push(target, f"/webhooks/aliyun/sms/{token}/report", items, times=times)

    # ------------------------------------------------------------------------------------------ handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        action = request.headers.get("x-acs-action", "")
        query = {k: v for k, v in request.query.items()}
        response, code = await self._dispatch(request, action, query)
        self.requests.append({"action": action, "query": query, "status": response.status, "code": code})
        return response

    async def _dispatch(self, request: web.Request, action: str, query: dict[str, str]) -> tuple[web.StreamResponse,
                                                                                                   str]:
        body = await request.read()
        refused = self._verify(request, body)
        if refused is not None:
            return refused
        if request.headers.get("x-acs-version") != VERSION:
            return _error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if request.method != "POST" or request.path != "/" or action not in ("SendSms", "QuerySendDetails"):
            return _error(404, "InvalidAction.NotFound",
                          "Specified api is not found, please check your url and method.")
        if action == "QuerySendDetails":
            if self._query_failures:
                return _error(*self._query_failures.pop(0))
            return self._query(query)
        if self._hangs:
            await self._hold(self._hangs.pop(0))
            if self._closing.is_set():
                return _error(503, "ServiceUnavailable", "closing")
        if self._failures:
            return _error(*self._failures.pop(0))
        answer, code = self._send(query)
        if code == "OK" and self._losses:
            how, seconds = self._losses.pop(0)
            if how == "drop":
                if request.transport is not None:
                    request.transport.close()
                return answer, "LOST"
            await self._hold(seconds)
            return answer, "LOST" if not self._closing.is_set() else "OK"
        return answer, code

    async def _hold(self, seconds: float) -> None:
        self._hanging += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), seconds)
        finally:
            self._hanging -= 1
            if not self._hanging and not self._closing.is_set():
                self._release = asyncio.Event()

    def _verify(self, request: web.Request, body: bytes) -> tuple[web.Response, str] | None:
        """Aliyun's V3 signature check (module docstring); None when the request is signed right."""
        match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None or match["alg"] != ALGORITHM:
            return _error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        if match["ak"] != self.access_key_id:
            return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        signed = match["signed"].split(";")
        present = {name.lower() for name in request.headers if name.lower().startswith("x-acs-")}
        must = {*REQUIRED_SIGNED, *present}
        if signed != sorted(signed) or any(h not in signed for h in must):
            return _error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        hashed = request.headers.get("x-acs-content-sha256", "")
        try:
            stamp = datetime.strptime(request.headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        now = datetime.now(UTC)
        if abs(now - stamp) > CLOCK_SKEW:
            return _error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(request.query.items()))
        headers = "".join(f"{name}:{','.join(sorted(v.strip() for v in request.headers.getall(name, [])))}\n"
                          for name in signed)
        canonical = "\n".join([request.method, request.path or "/", canonical_query, headers, match["signed"], hashed])
        to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["sig"]) or hashed != hashlib.sha256(body).hexdigest():
            return _error(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.")
        nonce = request.headers.get("x-acs-signature-nonce", "")
        self._nonces = {n: t for n, t in self._nonces.items() if now - t <= CLOCK_SKEW}
        if not nonce or nonce in self._nonces:
            return _error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces[nonce] = now
        return None

    def _send(self, query: Mapping[str, str]) -> tuple[web.Response, str]:
        raw_numbers = [p for p in (query.get("PhoneNumbers") or "").split(",") if p.strip()]
        numbers = [national(p) for p in raw_numbers]
        if not numbers or None in numbers or len(numbers) > 1000:
            return _refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        sign = query.get("SignName") or ""
        if sign not in self.sign_names:
            return _refusal("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        code = query.get("TemplateCode") or ""
        text = self.templates.get(code) if self.templates is not None else None
        if self.templates is not None and text is None:
            return _refusal("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        names = _VARIABLE.findall(text) if text is not None else None
        raw_param = query.get("TemplateParam")
        params: dict[str, Any] = {}
        if raw_param is not None:
            try:
                params = json.loads(raw_param)
            except ValueError:
                return _refusal("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
            if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
                return _refusal("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        wanted = names if names is not None else list(params)
        if any(not params.get(name) for name in wanted):
            return _refusal("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        if any(_URL.search(params[name]) for name in wanted):
            return _refusal("isv.PARAM_NOT_SUPPORT_URL", "不支持url为变量")
        if any(len(params[name]) > self.max_value_length for name in wanted):
            return _refusal("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
        for number in numbers:
            refusal = self._refused.get(number or "")
            if refusal is not None:
                if refusal[2] is not None:
                    refusal[2] -= 1
                    if refusal[2] <= 0:
                        self._refused.pop(number or "", None)
                return _refusal(refusal[0], refusal[1])
        self._counter += 1
        biz_id = f"{self._counter}{secrets.randbelow(10 ** 12):012d}^0"
        body = _VARIABLE.sub(lambda m: params.get(m[1], ""), text) if text is not None else json.dumps(
            params, ensure_ascii=False)
        now = datetime.now(UTC)
        for number in numbers:
            self.sends.append({"biz_id": biz_id, "phone": number, "sign_name": sign, "template_code": code,
                               "params": params, "param_json": raw_param, "out_id": query.get("OutId"),
                               "content": f"【{sign}】{body}", "at": now, "status": 1, "err_code": None,
                               "received": None})
        return _json(200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": _request_id()}), "OK"

    def _query(self, query: Mapping[str, str]) -> tuple[web.Response, str]:
        number = national(query.get("PhoneNumber") or "")
        if number is None:
            return _refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        day = query.get("SendDate") or ""
        try:
            size, page = int(query.get("PageSize") or ""), int(query.get("CurrentPage") or "")
            datetime.strptime(day, "%Y%m%d")
        except ValueError:
            return _refusal("isv.INVALID_PARAMETERS", "参数异常")
        if not 1 <= size <= 50 or page < 1:
            return _refusal("isv.INVALID_PARAMETERS", "参数异常")
        biz_id = query.get("BizId")
        found = [s for s in reversed(self.sends) if s["phone"] == number
                 and s["at"].astimezone(SHANGHAI).strftime("%Y%m%d") == day and (not biz_id or s["biz_id"] == biz_id)]
        chosen = found[(page - 1) * size: page * size]
        records = [{"PhoneNum": s["phone"], "SendStatus": s["status"], "ErrCode": s["err_code"] or "",
                    "TemplateCode": s["template_code"], "Content": s["content"], "SendDate": _beijing(s["at"]),
                    "ReceiveDate": _beijing(s["received"]) if s["received"] else "", "OutId": s["out_id"] or ""}
                   for s in chosen]
        return _json(200, {"Code": "OK", "Message": "OK", "RequestId": _request_id(), "TotalCount": len(found),
                           "SmsSendDetailDTOs": {"SmsSendDetailDTO": records}}), "OK"


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _json(status: int, doc: Mapping[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(doc, ensure_ascii=False),
                        content_type="application/json", charset="utf-8")


def _error(status: int, code: str, message: str) -> tuple[web.Response, str]:
    """The OpenAPI gateway's error body: {"Code", "Message", "RequestId", "HostId", "Recommend"}."""
    return _json(status, {"Code": code, "Message": message, "RequestId": _request_id(),
                          "HostId": "dysmsapi.aliyuncs.com",
                          "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}"}), code


def _refusal(code: str, message: str) -> tuple[web.Response, str]:
    """A business refusal of dysmsapi: HTTP 200 with the Code."""
    return _json(200, {"Code": code, "Message": message, "RequestId": _request_id()}), code


async def _answer(resp: Any) -> Any:
    text = await resp.text()
    try:
        return json.loads(text)
    except ValueError:
        return text
