"""Twilio as an SMS provider, alone (tests/channel_runner.py): its webhooks' cases and its sends' cases against
the fake Twilio (tests/fakes/twilio_api.py), with the real twilio client and RequestValidator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from channel_runner import InboundCase, SendCase, run_inbound, run_send
from fakes.twilio_api import FakeTwilio
from twilio.request_validator import RequestValidator

from channels.base import Failed, Outgoing, ProviderConfig, Retry, Sent, Stopped
from channels.twilio import PROVIDER, TwilioChannel

PUBLIC = "https://hcp.example.gov.cn"
SID, TOKEN = "AC" + "1" * 32, "t" * 32
FROM = "+8613800138000"


def signed(path: str, form: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(PUBLIC + path, form)}


def sms(body: str, **more: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "a" * 32, "SmsSid": "SM" + "a" * 32, "AccountSid": SID, "From": FROM,
            "To": "+8610690012345", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01", **more}


def case(name: str, form: dict[str, str], path: str = "/webhooks/twilio/sms", *, token: str = TOKEN,
         **expect: Any) -> InboundCase:
    return InboundCase(name, "POST", path, form, headers=signed(path, form, token), **expect)


EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
INBOUND = [
    case("a reply, answered with TwiML", sms("2"), answers=["感谢您的评价！"],
         answer='<?xml version="1.0" encoding="UTF-8"?><Response><Message>感谢您的评价！</Message></Response>',
         messages=[(FROM, "2", "SM" + "a" * 32, "text")]),
    case("a national number is the same person", sms("1", From="13800138000"),
         messages=[(FROM, "1", "SM" + "a" * 32, "text")]),
    case("Advanced Opt-Out's STOP", sms("STOP", OptOutType="STOP"), answer=EMPTY,
         messages=[(FROM, "STOP", "SM" + "a" * 32, "stop")]),
    case("Twilio's START without the feature", sms("start"), messages=[(FROM, "start", "SM" + "a" * 32, "start")]),
    case("an MMS without words", sms("", NumMedia="1", MediaUrl0="https://api.twilio.com/m/1"),
         messages=[(FROM, "", "SM" + "a" * 32, "media")]),
    case("a WhatsApp sender is not answered", sms("1", From="whatsapp:" + FROM), answer=EMPTY, messages=[]),
    case("no From", sms("1", From=""), answer=EMPTY, messages=[]),
    case("another account's signature", sms("1"), token="x" * 32, status=403, messages=[]),
    case("a delivery report", {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": SID},
         path="/webhooks/twilio/sms/status", status=204, receipts=[("SM1", "delivered", None, False)]),
    case("an unsubscribed recipient's report", {"MessageSid": "SM2", "MessageStatus": "failed",
                                                "ErrorCode": "21610", "AccountSid": SID},
         path="/webhooks/twilio/sms/status", status=204, receipts=[("SM2", "failed", "21610", True)]),
    case("a status Twilio has and the outbox has not", {"MessageSid": "SM3", "MessageStatus": "received"},
         path="/webhooks/twilio/sms/status", status=204, receipts=[]),
]


@pytest.fixture
async def double() -> AsyncIterator[FakeTwilio]:
    fake = await FakeTwilio(SID, TOKEN).start()
    yield fake
    await fake.close()


@pytest.fixture
async def channel(double: FakeTwilio) -> AsyncIterator[TwilioChannel]:
    opened = PROVIDER.open(ProviderConfig({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                                           "TWILIO_SMS_FROM": "+8610690012345",
                                           "TWILIO_API_BASE_URL": double.base_url}, PUBLIC, 5.0))
    assert isinstance(opened, TwilioChannel)
    yield opened
    await opened.close()


@pytest.mark.parametrize("inbound", INBOUND, ids=[c.name for c in INBOUND])
async def test_inbound(channel: TwilioChannel, inbound: InboundCase) -> None:
    await run_inbound(channel, inbound)


def _sent_once(double: FakeTwilio) -> None:
    [message] = double.messages
    assert (message["to"], message["body"]) == (FROM, "您好")
    assert message["status_callback"] == PUBLIC + "/webhooks/twilio/sms/status"


SEND = [
    SendCase("sent, with its status callback", Outgoing(FROM, "您好", 1), Sent, check=_sent_once),
    SendCase("a 500 is retried", Outgoing(FROM, "您好", 2), Retry, error_contains="500",
             arrange=lambda d: d.fail_next(1, 500, 20500)),
    SendCase("a 429 is retried", Outgoing(FROM, "您好", 3), Retry, arrange=lambda d: d.fail_next(1, 429, 20429)),
    SendCase("an unsubscribed recipient stops", Outgoing(FROM, "您好", 4), Stopped, error_contains="21610",
             arrange=lambda d: d.refuse(FROM)),
    SendCase("an invalid number fails for good", Outgoing(FROM, "您好", 5), Failed, error_contains="21211",
             arrange=lambda d: d.refuse(FROM, code=21211, message="Invalid 'To' Phone Number")),
]


@pytest.mark.parametrize("send", SEND, ids=[c.name for c in SEND])
async def test_send(channel: TwilioChannel, double: FakeTwilio, send: SendCase) -> None:
    await run_send(channel, double, send)
