"""A TCP gate in front of PostgreSQL that lets at most `limit` connections through at a time and refuses the
others as a full server does: FATAL 53300 "sorry, too many clients already".

Why: the shared PostgreSQL of a test run has max_connections for everyone (100 here), and a suite under load
has met that refusal (issue 18, finding 13). The real refusal cannot be had on demand (the tests connect as a
superuser, whom CONNECTION LIMIT does not bind), so this gate plays it: a connection beyond the limit gets
PostgreSQL's own answer to its SSLRequest ("N") and then the ErrorResponse, which asyncpg raises as
TooManyConnectionsError exactly as it would from the server. The others are spliced through byte for byte.

    gate = await PgGate("127.0.0.1", 5432, limit=8).start()
    url = gate.url(pg_database)          # the same database, reached through the gate
    ...
    gate.refused                         # how many connections were refused
    gate.refuse_next(2)                  # full now: the next two connections are refused whatever the count
    await gate.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import urlsplit, urlunsplit

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def _error_response(code: str, message: str) -> bytes:
    fields = b"".join(kind + value.encode() + b"\0" for kind, value in
                      ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message)))
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class PgGate:
    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.open = 0  # connections through the gate right now
        self.peak = 0
        self.refused = 0
        self._full_for = 0  # connections still to refuse, whatever the count (refuse_next)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> PgGate:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def listen_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, database_url: str) -> str:
        """The same URL with the gate's address instead of the server's."""
        parts = urlsplit(database_url)
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.listen_port}"))

    def refuse_next(self, count: int) -> None:
        """The server full at this moment: the next `count` connections are refused even below the limit.
        A test that must meet the refusal uses this rather than hope its load passes the limit, which a
        leaner service may no longer do (it once reached a peak of exactly 8 and no refusal)."""
        self._full_for = count

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.open >= self.limit or self._full_for > 0:
                self._full_for = max(0, self._full_for - 1)
                self.refused += 1
                await self._refuse(reader, writer)
                return
            self.open += 1
            self.peak = max(self.peak, self.open)
            try:
                await self._splice(reader, writer)
            finally:
                self.open -= 1
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """As the postmaster answers when every slot is taken: SSL declined, then the FATAL error."""
        while True:
            length, = struct.unpack("!I", await reader.readexactly(4))
            payload = await reader.readexactly(length - 4)
            code = struct.unpack("!I", payload[:4])[0] if len(payload) >= 4 else 0
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                writer.write(b"N")
                await writer.drain()
                continue
            break  # the StartupMessage
        writer.write(_error_response("53300", "sorry, too many clients already"))
        await writer.drain()

    async def _splice(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._writers.add(up_writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.close()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()
