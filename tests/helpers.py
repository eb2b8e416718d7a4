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

from bot import scheduler
from bot.runtime import Runtime

PUBLIC_URL = "https://hcp.example.gov.cn"
TOKEN = "test-token-" + "x" * 20


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


@dataclass
class Hcp:
    rt: Runtime
    client: TestClient
    twilio: FakeTwilio
    clock: Clock
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
        """The code path of `haochaping tick --now` (bot.cli.tick calls the same function)."""
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
        messages: list[str] = []
        if status == 200:
            root = ET.fromstring(raw)
            assert root.tag == "Response", raw
            messages = ["".join(m.itertext()) for m in root.iter("Message")]
        return SmsReply(status, messages, raw)

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
