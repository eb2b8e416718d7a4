"""One TCP session with a CMPP gateway (ISMG): the login, a reader that answers the gateway's requests and hands
on its DELIVERs, the heartbeat, the send window, and TERMINATE.

The specification's long connection (3.0 §7.1, 2.0 §6.1): "when no data travels on the channel, each side
sends a link test every C; a link test unanswered after T is sent again at once, and after N-1 more without an
answer the connection is dropped" (suggested C = 3 min, T = 60 s, N = 3), and requests go out concurrently
under a sliding window W "可配置" (configurable; the transcription read breaks off before its suggested value: our
16 is the value SP implementations commonly use). Timing holds our values; tests shorten them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from channels.cmpp import pdu

log = logging.getLogger("haochaping.cmpp")


@dataclass(frozen=True, slots=True)
class Account:
    """What the carrier gave the jurisdiction (CMPP_* variables)."""

    host: str
    port: int
    sp_id: str  # 企业代码, the 6-character Source_Addr
    secret: str  # the shared secret
    src_id: str  # the 106… number texts come from and replies go to
    service_id: str
    version: int  # pdu.V3 or pdu.V2
    max_connections: int = 2


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds, unless said otherwise."""

    heartbeat: float = 30.0  # silence before we send ACTIVE_TEST (the spec's C, 180 s, is longer than many NATs)
    answer: float = 10.0  # how long an ACTIVE_TEST or TERMINATE waits for its answer (the spec's T: 60 s)
    misses: int = 3  # unanswered ACTIVE_TESTs in a row before the connection is dropped (the spec's N)
    window: int = 16  # SUBMITs awaiting their SUBMIT_RESP on one connection (the spec's W)
    connect: float = 10.0  # TCP connect, then CONNECT_RESP
    backoff_min: float = 1.0  # between two login attempts: at least this (one a second) ...
    backoff_max: float = 60.0  # ... doubling after each failure up to this
    ready_wait: float = 5.0  # a send waits this long for `serve`'s connection to log in before it is retried
    report_window: float = 1800.0  # see CmppSender.find_sent
    reassembly: float = 600.0  # parts of a long reply wait this long for the rest


class LinkDown(Exception):
    """The session ended, or never began; the text says why (for /healthz and the log)."""


class Refused(LinkDown):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


HINTS = {2: "check CMPP_SP_ID", 3: "check CMPP_SECRET and the clock", 4: "try CMPP_VERSION=2.0"}


def refusal(status: int) -> str:
    label = pdu.CONNECT_STATUS.get(status, pdu.OTHER_ERROR)
    hint = HINTS.get(status)
    return f"the gateway refused the login: Status {status} ({label}{'; ' + hint if hint else ''})"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# What a DELIVER is handed to: the session it came on (to answer on), its Sequence_Id, the PDU.
OnDeliver = Callable[["Link", int, pdu.Deliver], None]


class Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, account: Account, timing: Timing,
                 on_deliver: OnDeliver, kind: str) -> None:
        self.reader, self.writer = reader, writer
        self.version = account.version
        self.timing = timing
        self.on_deliver = on_deliver
        self.kind = kind  # "long" (serve's) or "short" (a tick's)
        self.window = asyncio.Semaphore(timing.window)
        self.pending: dict[int, asyncio.Future[pdu.Resp | None]] = {}  # Sequence_Id -> its answer (None: none came)
        self.closed = asyncio.Event()
        self.why = ""
        self._seq = 1  # CONNECT went out with 1
        loop = asyncio.get_running_loop()
        self.last_read = loop.time()
        self._tasks = [asyncio.create_task(self._read(), name=f"cmpp-{kind}-reader"),
                       asyncio.create_task(self._beat(), name=f"cmpp-{kind}-heartbeat")]

    # --- opening ------------------------------------------------------------------------------------------
    @classmethod
    async def open(cls, account: Account, timing: Timing, on_deliver: OnDeliver, kind: str) -> Link:
        """Connect and log in (CMPP_CONNECT with the authenticator); LinkDown or Refused saying why not."""
        where = f"{account.host}:{account.port}"
        try:
            async with asyncio.timeout(timing.connect):
                reader, writer = await asyncio.open_connection(account.host, account.port)
        except (OSError, TimeoutError) as exc:
            raise LinkDown(f"cannot reach {where} ({_describe(exc)})") from None
        try:
            async with asyncio.timeout(timing.connect):
                connect = pdu.Connect.login(account.sp_id, account.secret, account.version, datetime.now(UTC))
                writer.write(connect.encode(1))
                await writer.drain()
                head = pdu.unpack_header(await reader.readexactly(pdu.HEADER_SIZE))
                body = await reader.readexactly(head.length - pdu.HEADER_SIZE)
                if head.command != pdu.CONNECT_RESP:
                    raise pdu.PduError(f"CONNECT answered with {pdu.NAMES.get(head.command, hex(head.command))}")
                resp = pdu.ConnectResp.decode(body)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, pdu.PduError) as exc:
            writer.close()
            why = "the gateway closed the connection" if isinstance(exc, asyncio.IncompleteReadError) else (
                _describe(exc))
            raise LinkDown(f"no login at {where} ({why})") from None
        if resp.status != 0:
            writer.close()
            raise Refused(resp.status, refusal(resp.status))
        return cls(reader, writer, account, timing, on_deliver, kind)

    # --- sending ------------------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1
        return self._seq

    @property
    def alive(self) -> bool:
        return not self.closed.is_set()

    @property
    def inflight(self) -> int:
        return len(self.pending)

    def _request(self, command: int, body: bytes = b"") -> tuple[int, asyncio.Future[pdu.Resp | None]]:
        if self.closed.is_set():
            raise LinkDown(self.why)
        seq = self._next_seq()
        future: asyncio.Future[pdu.Resp | None] = asyncio.get_running_loop().create_future()
        self.pending[seq] = future
        self.writer.write(pdu.pack(command, seq, body))
        return seq, future

    def submit(self, message: pdu.Submit) -> asyncio.Future[pdu.Resp | None]:
        """Write one SUBMIT (the caller holds a place in the window). The future is its SUBMIT_RESP, or None when
        the session ends first; it stays pending past the caller's patience, so a late answer is still known.
        Raises LinkDown when the session is over and nothing was written."""
        if self.closed.is_set():
            raise LinkDown(self.why)
        seq = self._next_seq()
        future: asyncio.Future[pdu.Resp | None] = asyncio.get_running_loop().create_future()
        self.pending[seq] = future
        self.writer.write(message.encode(seq, self.version))
        return future

    def answer(self, command: int, seq: int, body: bytes = b"") -> bool:
        """Answer the gateway's request; False when the session is over (the gateway will ask again)."""
        if self.closed.is_set():
            return False
        self.writer.write(pdu.pack(command, seq, body))
        return True

    def answer_deliver(self, seq: int, msg_id: int, result: int = pdu.DELIVER_OK) -> bool:
        if self.closed.is_set():
            return False
        self.writer.write(pdu.Resp(msg_id, result).encode(pdu.DELIVER_RESP, seq, self.version))
        return True

    # --- the reader -------------------------------------------------------------------------------------------
    async def _read(self) -> None:
        why = "the gateway closed the connection"
        try:
            while True:
                head = pdu.unpack_header(await self.reader.readexactly(pdu.HEADER_SIZE))
                body = await self.reader.readexactly(head.length - pdu.HEADER_SIZE)
                self.last_read = asyncio.get_running_loop().time()
                self._dispatch(head, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except OSError as exc:
            why = f"the connection failed ({_describe(exc)})"
        except pdu.PduError as exc:
            why = f"the gateway sent a malformed PDU ({exc})"
        finally:
            self._down(why)

    def _dispatch(self, head: pdu.Header, body: bytes) -> None:
        command = head.command
        if command in (pdu.SUBMIT_RESP, pdu.ACTIVE_TEST_RESP, pdu.TERMINATE_RESP):
            future = self.pending.pop(head.seq, None)
            if future is not None and not future.done():
                future.set_result(pdu.Resp.decode(body) if command == pdu.SUBMIT_RESP else None)
        elif command == pdu.DELIVER:
            try:
                deliver = pdu.Deliver.decode(body, self.version)
            except pdu.PduError as exc:
                log.warning("CMPP: a malformed DELIVER answered with Result 1 (%s)", exc)
                self.answer_deliver(head.seq, int.from_bytes(body[:8].ljust(8, b"\0"), "big"),
                                    pdu.DELIVER_BAD_STRUCTURE)
                return
            self.on_deliver(self, head.seq, deliver)
        elif command == pdu.ACTIVE_TEST:
            self.answer(pdu.ACTIVE_TEST_RESP, head.seq, b"\0")
        elif command == pdu.TERMINATE:
            self.answer(pdu.TERMINATE_RESP, head.seq)
            self._down("the gateway ended the session (TERMINATE)")
        else:
            log.debug("CMPP: %s ignored", pdu.NAMES.get(command, hex(command)))

    # --- the heartbeat ----------------------------------------------------------------------------------------
    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        t = self.timing
        while not self.closed.is_set():
            idle = loop.time() - self.last_read
            if idle < t.heartbeat:
                await asyncio.sleep(t.heartbeat - idle)
                continue
            for _ in range(t.misses):
                sent_at = loop.time()
                try:
                    seq, future = self._request(pdu.ACTIVE_TEST)
                except LinkDown:
                    return
                try:
                    async with asyncio.timeout(t.answer):
                        await future
                    break
                except TimeoutError:
                    self.pending.pop(seq, None)
                    if self.last_read > sent_at:  # something else came meanwhile: the line is alive
                        break
            else:
                self._down(f"no answer to {t.misses} ACTIVE_TEST in a row")
                return

    # --- the end ----------------------------------------------------------------------------------------------
    def _down(self, why: str) -> None:
        if self.closed.is_set():
            return
        self.why = why
        self.closed.set()
        for future in self.pending.values():
            if not future.done():
                future.set_result(None)
        self.pending.clear()
        self.writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def close(self, terminate: bool = True) -> None:
        """TERMINATE (answered, or not within `answer` seconds, 3 at most: a stop is not held up), then the socket
        is closed."""
        if terminate and not self.closed.is_set():
            try:
                _, future = self._request(pdu.TERMINATE)
                async with asyncio.timeout(min(self.timing.answer, 3.0)):
                    await future
            except (LinkDown, TimeoutError, OSError):
                pass
        self._down("closed by us")
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self.writer.wait_closed()
