"""What a provider's answer to a send means for the outbox (after nyaruka/courier's typed errors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


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


class TextSender(Protocol):
    name: str

    async def send(self, to: str, body: str) -> SendResult: ...

    async def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        """The provider's id of a message with this body sent to `to` since then, if it has one."""
        ...

    async def close(self) -> None: ...
