"""The `local` provider: nothing leaves the machine. The outbox row is the record, and the
simulator shows it; this is the embedded default when no SMS provider is configured."""

from __future__ import annotations

import secrets
from datetime import datetime

from channels.base import SendResult, Sent


class LocalSender:
    name = "local"

    async def send(self, to: str, body: str) -> SendResult:
        return Sent("LOCAL" + secrets.token_hex(16))

    async def find_sent(self, to: str, body: str, since: datetime) -> str | None:
        return None  # a local send never has an unknown outcome

    async def close(self) -> None:
        return None
