"""One runner for every SMS provider's table of cases (after nyaruka/courier's handlertest): a channel alone,
behind an app holding nothing but its own webhooks, with recording handlers in place of the application.

- An InboundCase is a provider's request → the status and body it must be answered with, the neutral
  messages the application is handed (sender, text, id, kind) and the receipts (provider id, status,
  error code, stopped). `answers` is what the application answers each message with.
- A SendCase is a neutral Outgoing → the SendResult (its type and, when given, its text or provider id),
  against the provider's test double arranged by `arrange`; `check` looks at what the double received.

tests/test_channel_<provider>.py each hold a table and call `run_inbound` / `run_send`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from channels.base import Outgoing, Receipt, SendResult, SmsChannel
from dialogs.types import Inbound

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


@dataclass
class Recorder:
    """SmsHandlers that remember what they were handed."""

    answers: list[str] = field(default_factory=list)
    messages: list[Inbound] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)

    def now(self) -> datetime:
        return NOW

    async def message(self, inbound: Inbound) -> list[str]:
        self.messages.append(inbound)
        return list(self.answers)

    async def receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)


@dataclass
class InboundCase:
    name: str
    method: str
    path: str
    body: bytes | str | Mapping[str, str]  # a form (Mapping) is sent form-encoded
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    answer: Any = None  # the body expected back: JSON (dict/list), text, or None (not checked)
    messages: list[tuple[str, str, str | None, str]] = field(default_factory=list)  # sender, text, id, kind
    receipts: list[tuple[str, str, str | None, bool]] = field(default_factory=list)  # id, status, code, stopped
    answers: list[str] = field(default_factory=list)  # what the application answers each message with


async def run_inbound(channel: SmsChannel, case: InboundCase) -> None:
    app = web.Application()
    recorder = Recorder(answers=list(case.answers))
    channel.routes(app.router, recorder)
    async with TestClient(TestServer(app)) as client:
        if isinstance(case.body, Mapping):
            response = await client.request(case.method, case.path, data=dict(case.body), headers=dict(case.headers))
        else:
            data = case.body.encode() if isinstance(case.body, str) else case.body
            response = await client.request(case.method, case.path, data=data, headers=dict(case.headers))
        text = await response.text()
    assert response.status == case.status, (case.name, response.status, text[:300])
    if case.answer is not None:
        got: Any = json.loads(text) if isinstance(case.answer, dict | list) else text
        assert got == case.answer, (case.name, got)
    assert [(m.address, m.text, m.message_id, m.kind) for m in recorder.messages] == case.messages, case.name
    assert all(m.channel == "sms" and m.received_at == NOW for m in recorder.messages), case.name
    assert [(r.provider_id, r.status, r.error_code, r.stopped) for r in recorder.receipts] == case.receipts, case.name


@dataclass
class SendCase:
    name: str
    message: Outgoing
    result: type  # Sent, Retry, Unsure, Failed or Stopped
    provider_id: str | None = None  # a Sent's id, when it is known in advance
    error_contains: str | None = None  # part of a non-Sent result's error text
    arrange: Callable[[Any], Awaitable[None] | None] | None = None  # sets the double up before the send
    check: Callable[[Any], None] | None = None  # looks at what the double received


async def run_send(channel: SmsChannel, double: Any, case: SendCase) -> SendResult:
    if case.arrange is not None:
        arranged = case.arrange(double)
        if arranged is not None:
            await arranged
    result = await channel.sender.send(case.message)
    assert isinstance(result, case.result), (case.name, result)
    if case.provider_id is not None:
        assert getattr(result, "provider_id", None) == case.provider_id, (case.name, result)
    if case.error_contains is not None:
        assert case.error_contains in getattr(result, "error", ""), (case.name, result)
    if case.check is not None:
        case.check(double)
    return result
