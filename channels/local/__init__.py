"""The `local` provider: nothing leaves the machine. The outbox row is the record, and the
simulator shows it; this is the embedded default when no SMS provider is configured."""

from __future__ import annotations

import secrets
from datetime import datetime

from aiohttp import web

from channels.base import Outgoing, ProviderConfig, SendResult, Sent, SmsHandlers, SmsProvider


class LocalSender:
    name = "local"

    async def send(self, message: Outgoing) -> SendResult:
        return Sent("LOCAL" + secrets.token_hex(16))

    async def find_sent(self, message: Outgoing, since: datetime) -> str | None:
        return None  # a local send never has an unknown outcome

    async def close(self) -> None:
        return None


class LocalChannel:
    name = "local"
    answers_inline = True  # nothing arrives from outside

    def __init__(self) -> None:
        self.sender = LocalSender()

    def routes(self, router: web.UrlDispatcher, handlers: SmsHandlers) -> None:
        return None  # nothing arrives from outside: the simulator talks to the dialog directly

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.sender.close()

    def health(self) -> str | None:
        return None


def open_channel(config: ProviderConfig) -> LocalChannel:
    return LocalChannel()


PROVIDER = SmsProvider("local", (), open_channel)
