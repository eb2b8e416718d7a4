"""Slow senders are dropped (issue 18, finding 12): headers must arrive within HAOCHAPING_HEADER_TIMEOUT and a
body within HAOCHAPING_BODY_TIMEOUT; the bulk endpoint's streamed body may take long but never stall that long.

A real server on 127.0.0.1 with the options `haochaping serve` uses (bot.web.app.runner_options), driven over
a raw socket as a slow client would; time-outs of a second keep the tests short.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator

import pytest
from helpers import TOKEN, Hcp
from servers import BACKENDS

from bot.infra.config import Settings
from bot.infra.runtime import Runtime
from bot.web.app import build_app, runner_options

LIMIT = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, header_timeout=LIMIT, body_timeout=LIMIT)


@pytest.fixture
async def server(rt: Runtime) -> AsyncIterator[tuple[str, int]]:
    from aiohttp import web

    runner = web.AppRunner(build_app(rt), access_log=None, **runner_options(rt))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield host, port
    await runner.cleanup()


async def _closed_after(reader: asyncio.StreamReader, within: float) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and what it sent before."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), within)
    return time.monotonic() - started, data


async def test_headers_that_never_finish_are_dropped(server: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    for _ in range(3):  # a header line now and then, as a slowloris client keeps the connection busy
        await asyncio.sleep(LIMIT / 3)
        writer.write(b"X-Slow: 1\r\n")
        await writer.drain()

    waited, data = await _closed_after(reader, 5 * LIMIT)

    assert data == b"" and waited < 3 * LIMIT
    writer.close()


async def test_a_connection_that_sends_nothing_is_dropped(server: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*server)

    waited, data = await _closed_after(reader, 5 * LIMIT)

    assert data == b"" and waited < 3 * LIMIT
    writer.close()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_body_that_stops_arriving_is_408_and_the_connection_closed(server: tuple[str, int], hcp: Hcp
                                                                           ) -> None:
    body = json.dumps(hcp.case_body()).encode()
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    await writer.drain()

    waited, data = await _closed_after(reader, 5 * LIMIT)

    assert data.startswith(b"HTTP/1.1 408") and waited < 3 * LIMIT
    writer.close()


async def test_a_body_in_time_is_served(server: tuple[str, int], hcp: Hcp) -> None:
    body = json.dumps(hcp.case_body()).encode()
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    await writer.drain()
    await asyncio.sleep(LIMIT / 3)
    writer.write(body[10:])
    await writer.drain()

    _, data = await _closed_after(reader, 5 * LIMIT)

    assert data.startswith(b"HTTP/1.1 201"), data[:200]
    writer.close()


async def test_a_bulk_body_that_stalls_keeps_its_lines_and_is_408(server: tuple[str, int], hcp: Hcp) -> None:
    lines = [json.dumps(hcp.case_body(case_no=f"SLOW-{i}")) for i in range(3)]
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"POST /api/v1/cases:bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 + f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    for line in lines:  # slower than the time-out in all, but never silent that long
        chunk = (line + "\n").encode()
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        await asyncio.sleep(LIMIT / 2)

    waited, data = await _closed_after(reader, 5 * LIMIT)  # then silence

    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and waited < 3 * LIMIT, data[:300]
    assert b'"created":3' in payload.replace(b" ", b"")
    for i in range(3):
        assert (await hcp.case(f"SLOW-{i}"))["case_no"] == f"SLOW-{i}"
    writer.close()
