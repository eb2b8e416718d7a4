"""Reading NDJSON from a request stream: memory holds one chunk and one partial line, whatever the body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import StreamReader

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyStalled(Exception):
    """No byte of the body arrived for the read time-out: a slow sender is dropped, not waited for."""


async def _chunks(stream: StreamReader, stall: float | None) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(stall):
                chunk = await stream.read(CHUNK)
        except TimeoutError:
            raise BodyStalled from None
        if not chunk:
            return
        yield chunk


async def lines(stream: StreamReader, body_limit: int, line_limit: int,
                stall: float | None = None) -> AsyncIterator[tuple[int, bytes | None]]:
    """(line number from 1, the line) for each line; None for a line longer than `line_limit`,
    which is skipped without being kept. Raises BodyTooLarge past `body_limit` bytes in all, and
    BodyStalled when nothing arrives for `stall` seconds (a bulk body may take long, but never stop)."""
    buf = bytearray()
    read = 0
    number = 0
    overlong = False
    async for chunk in _chunks(stream, stall):
        read += len(chunk)
        if read > body_limit:
            raise BodyTooLarge
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            number += 1
            yield number, (None if overlong or end - start > line_limit else bytes(buf[start:end]))
            overlong = False
            start = end + 1
        del buf[:start]
        if len(buf) > line_limit:
            overlong = True
            buf.clear()
    if buf or overlong:
        number += 1
        yield number, (None if overlong or len(buf) > line_limit else bytes(buf))
