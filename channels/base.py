"""What every provider shares: what an answer to a send means for the outbox (after nyaruka/courier's typed
errors), and the seam between a provider's package and the application."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web

from dialogs.types import Inbound


@dataclass(frozen=True, slots=True)
class Sent:
    provider_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A passing failure (timeout, 5xx, rate limit): try again later."""

    error: str


@dataclass(frozen=True, slots=True)
class Unsure:
    """The request may have reached the provider (it timed out, the connection broke after it was
    sent): sending again could deliver twice, so the next attempt asks the provider first."""

    error: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The provider refused this message for good (a bad number, a bad request)."""

    error: str


@dataclass(frozen=True, slots=True)
class Stopped:
    """The person has unsubscribed at the provider: mark them opted out."""

    error: str


SendResult = Sent | Retry | Unsure | Failed | Stopped


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One SMS to send, as every kind of provider needs it: a text provider sends `body`; a template
    provider sends the template of `key` filled with `values`; a provider that carries an id of ours
    (Aliyun's OutId, Tencent's SessionContext) carries `outbox_id`, so that a send is found again."""

    to: str  # E.164
    body: str
    outbox_id: int
    key: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)


CALLBACK_TOKEN_MIN = 16  # a push's only proof is the secret path segment (CONTRACT: Aliyun, Tencent)


def callback_token(values: Mapping[str, str], key: str, provider: str) -> str:
    """A provider's callback token, checked: providers that sign nothing they push (Aliyun, Tencent) are known by
    a secret segment of the path registered in their console, so it must be long and fit a URL as it is."""
    token = (values.get(key) or "").strip()
    if len(token) < CALLBACK_TOKEN_MIN:
        raise ConfigProblem(f"HAOCHAPING_SMS_PROVIDER={provider} needs {key} of at least {CALLBACK_TOKEN_MIN} "
                            "characters: it is the secret part of the callback addresses registered with the provider")
    if not all(ch.isascii() and (ch.isalnum() or ch in "-_.~") for ch in token):
        raise ConfigProblem(f"{key}: use letters, digits and - _ . ~ only (it is part of a URL)")
    return token


def check_callback_token(request: web.Request, token: str) -> None:
    """A push to a path whose token is not ours is 404, in constant time: it names nothing that exists."""
    if not hmac.compare_digest(request.match_info.get("token", "").encode(), token.encode()):
        raise web.HTTPNotFound()


def endpoint(raw: str | None, default: str, key: str) -> tuple[str, str]:
    """(scheme, host[:port]) of an SDK's endpoint setting: a bare host is the provider's own, over HTTPS; a URL
    (http://127.0.0.1:8089) names a gateway or a test double, with its scheme."""
    value = (raw or "").strip() or default
    if "://" not in value:
        if "/" in value:
            raise ConfigProblem(f"{key}: expected a host or a URL, got {value!r}")
        return "https", value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ConfigProblem(f"{key}: expected http(s)://host[:port] with no path, got {value!r}")
    return parts.scheme, parts.netloc


def shorten(value: str, limit: int) -> str:
    """A template value within a provider's length limit: a whole word of a long name is worth less than the
    message, which the provider would refuse outright. Counted in characters, as both providers count."""
    return value if len(value) <= limit else value[:limit - 1] + "\u2026"


class TextSender(Protocol):
    name: str

    async def send(self, message: Outgoing) -> SendResult: ...

    async def find_sent(self, message: Outgoing, since: datetime) -> str | None:
        """The provider's id of this message if an attempt since `since` reached the provider, else None.
        Raises when the provider cannot be asked (the caller tries again later rather than send twice)."""
        ...

    async def close(self) -> None: ...


# --- the seam between a provider's package and the application --------------------------------------------
# A provider owns its configuration, webhook routes, parsing, signature or token checks, sending and error
# classification; the application injects what to do with what arrives (SmsHandlers), so channels/ imports
# nothing of bot/ (after Rasa's InputChannel.blueprint and nyaruka/courier's handlers).


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery report, in the outbox's vocabulary."""

    provider_id: str  # the provider's id of the message, as its send returned it
    status: str  # "queued", "sent", "delivered", "undelivered" or "failed"
    error_code: str | None
    stopped: bool  # the person unsubscribed at the provider: no more messages to them
    at: datetime


class SmsHandlers(Protocol):
    """What the application does with what a provider brings."""

    def now(self) -> datetime:
        """The instant a request is handled at (the application's clock: tests move it)."""
        ...

    async def message(self, inbound: Inbound) -> list[str]:
        """Act on a person's message once, however often it is delivered; the texts to answer with now."""
        ...

    async def receipt(self, receipt: Receipt) -> None: ...


class SmsChannel(Protocol):
    """One configured SMS provider: its sender and its webhooks."""

    name: str
    sender: TextSender
    # True: the webhook's answer carries the replies (Twilio's TwiML). False: the provider pushes and the
    # replies go by its API, queued in the outbox.
    answers_inline: bool

    def routes(self, router: web.UrlDispatcher, handlers: SmsHandlers) -> None:
        """Register its webhooks, answering with `handlers`."""
        ...

    async def start(self) -> None:
        """Open what must stay open while the service runs (a gateway's connection); HTTP providers: nothing."""
        ...

    async def close(self) -> None: ...

    def health(self) -> str | None:
        """None when there is nothing to report; else "ok" or "down: why" (shown by /healthz)."""
        ...


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A provider's configuration as the operator gave it, and what every provider needs to know."""

    values: Mapping[str, str]  # its own variables (SmsProvider.keys) that are set
    public_url: str  # how the world reaches the service (signature checks, callback addresses)
    send_timeout: float  # seconds one request to the provider may take
    # For a template provider: message key -> (its template code, the values the template takes, in order).
    # Every key the contract lists has one (checked before the provider opens); others may not.
    templates: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SmsProvider:
    """An entry of channels/registry.py."""

    name: str  # HAOCHAPING_SMS_PROVIDER's value
    keys: tuple[str, ...]  # the configuration variables it reads
    open: Callable[[ProviderConfig], SmsChannel]
    needs_templates: bool = False  # sends only approved templates (policy [sms.templates])


class ConfigProblem(ValueError):
    """A provider's configuration that cannot work: the service refuses to start, naming the variable."""
