"""Test helpers: a settable clock, and `Hcp`, which talks to the app as business systems and Twilio do.

Webhooks are signed exactly as Twilio signs them (twilio's RequestValidator over PUBLIC_URL + path).
"""

from __future__ import annotations

import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from fakes.twilio_api import FakeTwilio
from twilio.request_validator import RequestValidator

from bot.duties import scheduler
from bot.infra.runtime import Runtime

PUBLIC_URL = "https://hcp.example.gov.cn"
TOKEN = "test-token-" + "x" * 20
WX = {
    "token": "wxtoken" + "k" * 9, "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "app_id": "wx0123456789abcdef",
    "app_secret": "s" * 32, "mp_app_id": "wxmp0123456789abcd", "mp_app_secret": "m" * 32,
    "template_id": "tpl-rating-reminder",
}


def without_providers(settings: Any) -> Any:
    """The embedded default's providers: none of any kind (the local provider), where the simulator is on."""
    from dataclasses import replace

    return replace(settings, twilio_account_sid=None, twilio_auth_token=None, wechat_token=None,
                   wechat_encoding_aes_key=None, wechat_app_id=None, wechat_app_secret=None, wechat_mp_app_id=None,
                   wechat_mp_app_secret=None, wechat_mp_template_id=None)


@dataclass
class Clock:
    """The instant webhooks and API calls happen at; tests move it, nothing sleeps."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> datetime:
        self.at += timedelta(**kw)
        return self.at

    def set(self, at: datetime | str) -> datetime:
        self.at = datetime.fromisoformat(at) if isinstance(at, str) else at
        return self.at


def cst(text: str) -> datetime:
    """A local Shanghai instant written without its offset: cst("2026-11-20T10:00")."""
    return datetime.fromisoformat(text + "+08:00")


@dataclass
class SmsReply:
    status: int
    messages: list[str]
    raw: str

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


def twiml_texts(raw: str) -> list[str]:
    """The texts of a TwiML answer's <Message>s (none: an empty <Response/>, what a copy is answered)."""
    root = ET.fromstring(raw)
    assert root.tag == "Response", raw
    return ["".join(m.itertext()) for m in root.iter("Message")]


@dataclass
class Hcp:
    rt: Runtime
    client: TestClient
    twilio: FakeTwilio
    clock: Clock
    wechat: Any = None  # FakeWeChat
    _phones: set[str] = field(default_factory=set)

    # --- test data ------------------------------------------------------------------------------
    def new_phone(self) -> str:
        while True:
            phone = "1" + secrets.choice("3589") + "".join(secrets.choice("0123456789") for _ in range(9))
            if phone not in self._phones:
                self._phones.add(phone)
                return phone

    @staticmethod
    def case_body(case_no: str | None = None, completed_at: str = "2026-11-20T10:00:00+08:00",
                  phone: str | None = None, **more: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "case_no": case_no or f"T-{secrets.token_hex(5).upper()}",
            "item_code": "440500-000-XK-0001", "item_name": "居民身份证换领",
            "agency_code": "11440500MB2C01234X", "agency_name": "汕头市公安局金平分局",
            "completed_at": completed_at, "staff_id": "G1024", "staff_name": "李四", "kind": "instant",
        }
        applicant = more.pop("applicant", {"name": "张三", "locale": "zh-CN"})
        if phone:
            applicant = {**(applicant or {}), "phone": phone}
        if applicant is not None:
            body["applicant"] = applicant
        body.update(more)
        return body

    # --- business-system API --------------------------------------------------------------------
    async def api(self, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, path, json=body, headers=headers)
        data = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, data

    async def post_case(self, expect: int = 201, **kw: Any) -> dict[str, Any]:
        status, doc = await self.api("POST", "/api/v1/cases", self.case_body(**kw))
        assert status == expect, (status, doc)
        return doc

    async def case(self, case_no: str) -> dict[str, Any]:
        status, doc = await self.api("GET", "/api/v1/cases/" + urllib.parse.quote(case_no, safe=""))
        assert status == 200, (status, doc)
        return doc

    async def evaluations(self, case_no: str) -> list[dict[str, Any]]:
        return (await self.case(case_no))["evaluations"]

    async def rate(self, case_no: str, grade: str, channel: str = "web", expect: int = 201,
                   **more: Any) -> Any:
        status, doc = await self.api("POST", "/api/v1/evaluations",
                                     {"case_no": case_no, "grade": grade, "channel": channel, **more})
        assert status == expect, (status, doc)
        return doc

    async def tick(self, now: datetime | str) -> dict[str, int]:
        """The code path of `haochaping tick --now` (bot.cli.main.tick calls the same function)."""
        at = datetime.fromisoformat(now) if isinstance(now, str) else now
        return await scheduler.tick(self.rt, at)

    # --- Twilio ----------------------------------------------------------------------------------
    def sign(self, path: str, params: dict[str, str], token: str | None = None) -> str:
        return RequestValidator(token or self.twilio.auth_token).compute_signature(PUBLIC_URL + path, params)

    async def twilio_post(self, path: str, params: dict[str, str], signature: str | None = None) -> tuple[int, str]:
        sig = self.sign(path, params) if signature is None else signature
        headers = {"X-Twilio-Signature": sig} if sig else {}
        resp = await self.client.post(path, data=params, headers=headers)
        return resp.status, await resp.text()

    def sms_params(self, phone: str, body: str, sid: str | None = None) -> dict[str, str]:
        sid = sid or "SM" + secrets.token_hex(16)
        sender = phone if phone.startswith("+") else "+86" + phone
        return {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.twilio.account_sid, "From": sender,
                "To": "+8610690012345", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}

    async def sms(self, phone: str, body: str, sid: str | None = None, signature: str | None = None) -> SmsReply:
        status, raw = await self.twilio_post("/webhooks/twilio/sms", self.sms_params(phone, body, sid), signature)
        return SmsReply(status, twiml_texts(raw) if status == 200 else [], raw)

    async def reminded(self, phone: str | None = None, completed_at: str = "2026-11-20T10:00:00+08:00",
                       **kw: Any) -> tuple[str, str, dict[str, Any]]:
        """A case whose reminder has gone out (tick a minute after it was due); the clock just after."""
        phone = phone or self.new_phone()
        doc = await self.post_case(phone=phone, completed_at=completed_at, **kw)
        due = datetime.fromisoformat(doc["remind_at"])
        counts = await self.tick(due + timedelta(minutes=1))
        assert counts["reminders"] >= 1, counts
        self.clock.set(due + timedelta(minutes=5))
        sms = self.twilio.sms_to(phone)
        assert sms, f"no reminder reached the fake Twilio for {phone}"
        return doc["case_no"], phone, sms[-1]

    # --- WeChat (the official account's server, played with wechatpy's own crypto) ------------------
    @staticmethod
    def new_openid() -> str:
        return "o" + secrets.token_urlsafe(20)[:27]

    @staticmethod
    def wx_text(openid: str, content: str, msg_id: str | None = None, created: int = 1) -> str:
        return (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
                f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{created}</CreateTime>"
                f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
                f"<MsgId>{msg_id or secrets.randbelow(10**18)}</MsgId></xml>")

    @staticmethod
    def wx_event(openid: str, event: str, created: int = 1) -> str:
        return (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
                f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{created}</CreateTime>"
                f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>")

    def wx_crypto(self) -> Any:
        from wechatpy.crypto import WeChatCrypto

        return WeChatCrypto(WX["token"], WX["aes_key"], WX["app_id"])

    async def wechat_post(self, xml: str | bytes, *, encrypted: bool = True, good: bool = True,
                          good_msg_signature: bool = True, timestamp: int | None = None,
                          raw_body: bytes | None = None) -> tuple[int, str | None, str]:
        """POST /webhooks/wechat as WeChat's server does; (status, the reply's plaintext XML, raw text)."""
        import hashlib
        import re

        ts = str(timestamp if timestamp is not None else int(self.clock().timestamp()))
        nonce = secrets.token_hex(5)
        signature = hashlib.sha1("".join(sorted([WX["token"], ts, nonce])).encode()).hexdigest() if good else "0" * 40
        query = {"signature": signature, "timestamp": ts, "nonce": nonce, "openid": "x"}
        body: bytes
        if encrypted:
            envelope = self.wx_crypto().encrypt_message(xml if isinstance(xml, str) else xml.decode(), nonce, ts)
            encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", envelope, re.S).group(1)
            msg_sig = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", envelope, re.S).group(1)
            query.update({"encrypt_type": "aes", "msg_signature": msg_sig if good_msg_signature else "0" * 40})
            body = (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode()
        else:
            body = xml.encode() if isinstance(xml, str) else xml
        if raw_body is not None:
            body = raw_body
        resp = await self.client.post("/webhooks/wechat", params=query, data=body,
                                      headers={"Content-Type": "text/xml"})
        text = await resp.text()
        reply = None
        if resp.status == 200 and text.strip() and text.strip() != "success":
            if "<Encrypt>" in text:
                parts = {k: re.search(rf"<{k}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{k}>", text, re.S).group(1)
                         for k in ("MsgSignature", "TimeStamp", "Nonce")}
                reply = self.wx_crypto().decrypt_message(text, parts["MsgSignature"], parts["TimeStamp"],
                                                         parts["Nonce"])
            else:
                reply = text
        return resp.status, reply, text

    @staticmethod
    def reply_content(reply_xml: str | None) -> str:
        if not reply_xml:
            return ""
        root = ET.fromstring(reply_xml)
        return root.findtext("Content") or ""
