"""Twilio Programmable SMS: inbound webhooks (signature, parsing, TwiML) and outbound sends.

Inbound field sets (SMS, MMS, Advanced Opt-Out's OptOutType, a WhatsApp sender on the same webhook)
are replayed in the tests from tests/payloads/twilio/, each naming its source.

Inbound requests are checked with twilio's own RequestValidator against the public URL the
service is reached at (not the URL it sees behind a proxy). Outbound sends use the real twilio
client over aiohttp; its own `timeout` setting is not applied by the library, so every send is
bounded here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from aiohttp import ClientConnectorError, ClientError
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import Failed, Outgoing, Retry, SendResult, Sent, Stopped, Unsure
from dialogs.addresses import mask_phone, normalize_phone

# Twilio error codes that mean "this person does not want our messages".
STOP_CODES = frozenset({21610})
# Codes that will not get better by retrying.
FINAL_CODES = frozenset({21211, 21212, 21214, 21217, 21219, 21408, 21606, 21612, 21614, 21635, 30006})
SEND_TIMEOUT = 15.0
LOOKBACK = 50  # the newest messages to one number that `find_sent` reads


def signature_ok(auth_token: str, url: str, params: Mapping[str, str], signature: str | None) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


# Twilio's own keywords. It acts on them itself, with Advanced Opt-Out (which then names the class in
# OptOutType) or without it (its default handling): the number is blocked on a STOP word, unblocked on a
# START word, and sent Twilio's help on HELP. Only a message that is the keyword alone counts.
# https://support.twilio.com/hc/en-us/articles/223134027 and tests/payloads/FACTS.md.
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
# Without OptOutType these two stay text: they are the dialog's own opt-out words too, and it confirms them
# (CONTRACT "Vocabulary"); Twilio's feature on sends OptOutType=STOP and gets no words back.
OWN_WORDS = frozenset({"stop", "unsubscribe"})
START_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})
OPT_OUT_TYPES = {"stop": "stop", "start": "start", "help": "help"}


@dataclass(frozen=True, slots=True)
class InboundSms:
    sender: str  # E.164
    body: str
    sid: str | None
    kind: str = "text"  # "text", "media" (an MMS without words), or Twilio's keyword class: "stop", "start", "help"


@dataclass(frozen=True, slots=True)
class Unusable:
    """A request with no sender we can answer by SMS: it is answered with empty TwiML and logged."""

    reason: str
    masked: str  # the sender as a log line may show it


def parse_inbound(params: Mapping[str, str]) -> InboundSms | Unusable:
    raw = (params.get("From") or "").strip()
    if not raw:
        return Unusable("no From", "")
    if ":" in raw:  # "whatsapp:+86…", "messenger:…": another channel routed to this webhook
        channel, _, address = raw.partition(":")
        return Unusable(f"a {channel.lower()[:20]} sender, not SMS", _mask(address))
    sender = normalize_phone(raw)
    if sender is None:
        return Unusable("not a mobile number we can text", _mask(raw))
    sid = params.get("MessageSid") or params.get("SmsSid") or None
    body = params.get("Body") or ""
    return InboundSms(sender=sender, body=body, sid=sid, kind=_kind(params, body))


def _kind(params: Mapping[str, str], body: str) -> str:
    declared = OPT_OUT_TYPES.get((params.get("OptOutType") or "").strip().lower())
    if declared:
        return declared
    word = body.strip().lower()
    if word in STOP_WORDS - OWN_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    media = params.get("NumMedia") or "0"
    if not body.strip() and media.isascii() and media.isdigit() and len(media) <= 4 and int(media) > 0:
        return "media"
    return "text"


def _mask(address: str) -> str:
    phone = normalize_phone(address.strip())
    return mask_phone(phone) if phone else "****"


def twiml_messages(texts: Sequence[str]) -> str:
    body = "".join(f"<Message>{escape(t)}</Message>" for t in texts)
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


class TwilioSender:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, sms_from: str | None, *,
                 base_url: str | None = None, status_callback: str | None = None,
                 timeout: float = SEND_TIMEOUT) -> None:
        self.http = AsyncTwilioHttpClient()
        self.timeout = timeout
        self.client = Client(account_sid, auth_token, http_client=self.http)
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.sms_from = sms_from
        self.status_callback = status_callback

    async def send(self, message: Outgoing) -> SendResult:
        kwargs: dict[str, str] = {"to": message.to, "body": message.body}
        if self.sms_from:
            kwargs["from_"] = self.sms_from
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            async with asyncio.timeout(self.timeout):
                message = await self.client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            return classify(exc.status, exc.code, exc.msg)
        except ClientConnectorError as exc:  # never connected: nothing can have been sent
            return Retry(f"{type(exc).__name__}: {exc}")
        except (TimeoutError, ClientError, OSError) as exc:
            return Unsure(f"{type(exc).__name__}: {exc}")
        return Sent(str(message.sid))

    async def find_sent(self, message: Outgoing, since: datetime) -> str | None:
        """The sid of a message with this body to this number created at or after `since`, if Twilio has
        one: what a send whose answer never came did (Twilio's Messages take no id of ours). Raises on any
        failure to ask (the caller retries later rather than risk sending twice)."""
        kwargs: dict[str, object] = {"to": message.to, "limit": LOOKBACK, "page_size": LOOKBACK}
        if self.sms_from:
            kwargs["from_"] = self.sms_from
        async with asyncio.timeout(self.timeout):
            recent = await self.client.messages.list_async(**kwargs)  # type: ignore[arg-type]
        for found in recent:
            created = found.date_created
            if found.body == message.body and created is not None and created >= since.replace(microsecond=0):
                return str(found.sid)
        return None

    async def close(self) -> None:
        if self.http.session is not None:
            await self.http.session.close()


def classify(status: int, code: int | None, message: str) -> SendResult:
    text = f"twilio {status} {code}: {message}"
    if code in STOP_CODES:
        return Stopped(text)
    if code in FINAL_CODES:
        return Failed(text)
    if status == 429 or status >= 500:
        return Retry(text)
    if 400 <= status < 500:
        return Failed(text)
    return Retry(text)
