"""Twilio Programmable Voice: the 12345 after-call keypad rating and the automated callback call.

TwiML is built with twilio's own VoiceResponse. A question is a `<Gather>` whose `action` URL
carries the dialog state (dialogs/keypad.py): Twilio signs every request it makes to that URL, so the
state cannot be altered by a caller and needs no store. When the caller presses nothing, Twilio falls
through to the `<Redirect>` after the Gather, to the same URL without `Digits`: that is silence.
Outbound calls go through the real twilio client (Calls API), bounded in time like SMS sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import ClientError
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.base import Retry, SendResult, Sent
from channels.twilio.sms import SEND_TIMEOUT, classify
from dialogs import keypad
from dialogs.addresses import normalize_phone
from dialogs.grades import Grade
from dialogs.keypad import Ask, KeyState

KEYS_PATH = "/webhooks/twilio/voice/keys"
GRADE_TIMEOUT = keypad.GRADE_TIMEOUT  # seconds Twilio waits for the first key (the dialog's, as on any switch)
REASONS_TIMEOUT = keypad.REASONS_TIMEOUT
# The voices our locales are spoken in; the contract asks zh-CN on every Chinese <Say>.
VOICE_LANGUAGE = {"zh_Hans": "zh-CN", "zh_Hant": "zh-CN", "en": "en-US"}
# Call statuses (Twilio's StatusCallback) after which nobody answered.
NOT_REACHED = frozenset({"no-answer", "busy", "failed", "canceled"})


@dataclass(frozen=True, slots=True)
class CallIn:
    sid: str
    caller: str | None  # E.164, or None when withheld ("anonymous") or not a mobile number
    digits: str | None  # None: no Digits parameter at all (the Redirect after a silent Gather)


def parse_call(params: Mapping[str, str]) -> CallIn | None:
    sid = params.get("CallSid") or ""
    if not sid:
        return None
    digits = params.get("Digits")
    return CallIn(sid=sid, caller=normalize_phone(params.get("From") or ""), digits=digits)


def state_query(state: KeyState) -> dict[str, str]:
    q = {"ask": state.ask.value, "s": str(state.silences), "i": str(state.invalid)}
    if state.grade is not None:
        q["g"] = state.grade.value
    return q


def parse_state(query: Mapping[str, str]) -> KeyState | None:
    """None for a query we did not write (the signature proves Twilio sent it, not that we built it)."""
    try:
        ask = Ask(query.get("ask", "grade"))
        grade = Grade(query["g"]) if query.get("g") else None
        silences, invalid = int(query.get("s", "0")), int(query.get("i", "0"))
    except (ValueError, KeyError):
        return None
    if (ask is Ask.REASONS) != (grade is not None and grade.is_bad) or not (0 <= silences <= 9 and 0 <= invalid <= 9):
        return None
    return KeyState(ask=ask, grade=grade, silences=silences, invalid=invalid)


def twiml(says: Sequence[str], locale: str, *, ask: KeyState | None = None, path: str = KEYS_PATH,
          query: Mapping[str, str] | None = None) -> str:
    """Say the texts; with `ask`, inside a Gather for the next keys (silence falls through to a
    Redirect to the same URL); without, hang up."""
    language = VOICE_LANGUAGE.get(locale, "zh-CN")
    response = VoiceResponse()
    if ask is None:
        for text in says:
            response.say(text, language=language)
        response.hangup()
        return str(response)
    action = f"{path}?{urlencode({**(query or {}), **state_query(ask)})}"
    if ask.ask is Ask.REASONS:  # several keys, then #
        gather = Gather(finish_on_key="#", action=action, method="POST", timeout=REASONS_TIMEOUT)
    else:  # one key answers
        gather = Gather(num_digits=1, action=action, method="POST", timeout=GRADE_TIMEOUT)
    for text in says:
        gather.say(text, language=language)
    response.append(gather)
    response.redirect(action, method="POST")
    return str(response)


class TwilioCaller:
    """Outbound calls through Twilio's Calls API: the call fetches its TwiML from `url`."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, caller_id: str | None, *,
                 base_url: str | None = None, timeout: float = SEND_TIMEOUT) -> None:
        self.http = AsyncTwilioHttpClient()
        self.timeout = timeout
        self.client = Client(account_sid, auth_token, http_client=self.http)
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.caller_id = caller_id

    async def call(self, to: str, url: str, status_callback: str) -> SendResult:
        try:
            async with asyncio.timeout(self.timeout):
                call = await self.client.calls.create_async(
                    to=to, from_=self.caller_id or "", url=url, method="POST", status_callback=status_callback,
                    status_callback_method="POST", status_callback_event=["completed"])
        except TwilioRestException as exc:
            return classify(exc.status, exc.code, exc.msg)
        except (TimeoutError, ClientError, OSError) as exc:
            return Retry(f"{type(exc).__name__}: {exc}")
        return Sent(str(call.sid))

    async def close(self) -> None:
        if self.http.session is not None:
            await self.http.session.close()
