"""A carrier's SMS gateway (ISMG) speaking CMPP 3.0 and 2.0 to an SP, on 127.0.0.1, for the tests.

Written from the specification's tables (中国移动通信互联网短信网关接口协议 V3.0.0 §8.3-8.4 and V2.0 §7.3-7.4, as
transcribed at blog.youkuaiyun.com/Hongyu666/article/details/83768032 and www.dybbs8.com/doc/3714232.html; field sizes
checked against Wireshark's epan/dissectors/packet-cmpp.c (3.0) and bigwhite/gocmpp packet/*.go (2.0)), with a codec
of its own: it imports nothing of channels/cmpp, so the client and this gateway check each other.

- The message header: Total_Length, Command_Id, Sequence_Id, four bytes each, big-endian.
- CMPP_CONNECT (Source_Addr 6, AuthenticatorSource 16, Version 1, Timestamp 4): AuthenticatorSource must be
  MD5(Source_Addr + 9 zero bytes + shared secret + Timestamp as ten digits MMDDHHMMSS). CONNECT_RESP's Status is
  4 bytes in 3.0 and 1 in 2.0: 0 correct, 2 an unknown SP (非法源地址), 3 a wrong authenticator (认证错), 4 a
  version not spoken (版本太高), 5 here: more sessions than `max_connections`. AuthenticatorISMG = MD5(Status +
  AuthenticatorSource + shared secret). The session then speaks the version the SP logged in with (0x30 or 0x20).
- CMPP_SUBMIT: 3.0 with 32-byte terminal ids, Fee_terminal_type, Dest_terminal_type and LinkID 20; 2.0 with 21-byte
  ids and Reserve 8. Each is answered with SUBMIT_RESP (Msg_Id 8, Result 4 bytes in 3.0, 1 in 2.0) and a Msg_Id
  built as the spec says: month 4 bits, day 5, hour 5, minute 6, second 6 (Beijing time), gateway code 22,
  sequence 16. Parts behind a UDH (TP_udhi 1; 05 00 03 ref total n, or 06 08 04 with a 16-bit ref) are put back
  together: `messages` holds whole texts, `submits` every part as it came.
- CMPP_DELIVER from the gateway: replies (Registered_Delivery 0; UCS2, GBK or ASCII; long ones in parts behind a
  UDH) and status reports (Registered_Delivery 1; Msg_Content = Msg_Id 8, Stat 7, Submit_time 10, Done_time 10,
  Dest_terminal_Id 32 (2.0: 21), SMSC_sequence 4), on demand; the SP answers DELIVER_RESP.
- CMPP_ACTIVE_TEST both ways (ACTIVE_TEST_RESP carries one reserved byte); CMPP_TERMINATE both ways.

Faults on demand: `results` (the next SUBMIT_RESP Results, e.g. 8 流量控制错), `withhold` (the next SUBMITs get no
answer until `release_withheld()`), `delay` (seconds before each SUBMIT_RESP), `drop_on_submit` (the session is cut
right after the next SUBMITs arrive: they are taken, never answered), `drop()` (every session cut), `refuse` (every
CONNECT answered with this Status), `answer_active_test = False` (the gateway goes deaf), `deliver(..., twice=True)`
(the same DELIVER, Msg_Id and all, sent again). Withheld and dropped SUBMITs are taken: the text is on its way, the
SP cannot know it.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

CONNECT, CONNECT_RESP = 0x00000001, 0x80000001
TERMINATE, TERMINATE_RESP = 0x00000002, 0x80000002
SUBMIT, SUBMIT_RESP = 0x00000004, 0x80000004
DELIVER, DELIVER_RESP = 0x00000005, 0x80000005
ACTIVE_TEST, ACTIVE_TEST_RESP = 0x00000008, 0x80000008
V3, V2 = 0x30, 0x20
BEIJING = timezone(timedelta(hours=8))
HEAD = struct.Struct(">III")


def _field(value: str, size: int) -> bytes:
    raw = value.encode("ascii")
    assert len(raw) <= size, (value, size)
    return raw.ljust(size, b"\0")


def _str(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii")


def pdu(command: int, seq: int, body: bytes = b"") -> bytes:
    return HEAD.pack(12 + len(body), command, seq) + body


def md5(*chunks: bytes) -> bytes:
    return hashlib.md5(b"".join(chunks), usedforsecurity=False).digest()


def msg_id_hex(value: int) -> str:
    return value.to_bytes(8, "big").hex()


@dataclass
class Part:
    """One SUBMIT as it came."""

    session: int
    version: int
    seq: int
    msg_id: int
    pk_total: int
    pk_number: int
    registered_delivery: int
    service_id: str
    fee_user_type: int
    tp_udhi: int
    msg_fmt: int
    msg_src: str
    fee_type: str
    fee_code: str
    src_id: str
    dests: list[str]
    content: bytes
    at: datetime


@dataclass
class Message:
    """A whole text the gateway took (its parts put back together)."""

    to: str
    text: str
    msg_ids: list[str]  # each part's Msg_Id in hex, in order
    parts: list[Part]


@dataclass
class Session:
    id: int
    writer: asyncio.StreamWriter
    version: int = 0
    logged_in: bool = False
    open: bool = True
    seq: int = 0x7000_0000  # the gateway's own Sequence_Ids (apart from the SP's)
    pending: dict[int, asyncio.Future[bytes]] = field(default_factory=dict)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, data: bytes) -> None:
        if self.open:
            self.writer.write(data)


def parse_submit(body: bytes, version: int) -> dict[str, object]:
    """A SUBMIT's fields by the table of its version; ValueError when the body is not exactly that."""
    term = 32 if version == V3 else 21
    at = 0

    def take(size: int) -> bytes:
        nonlocal at
        if at + size > len(body):
            raise ValueError("SUBMIT too short")
        chunk = body[at:at + size]
        at += size
        return chunk

    f: dict[str, object] = {"msg_id": int.from_bytes(take(8), "big"), "pk_total": take(1)[0],
                            "pk_number": take(1)[0], "registered_delivery": take(1)[0], "msg_level": take(1)[0],
                            "service_id": _str(take(10)), "fee_user_type": take(1)[0],
                            "fee_terminal_id": _str(take(term))}
    if version == V3:
        f["fee_terminal_type"] = take(1)[0]
    f.update(tp_pid=take(1)[0], tp_udhi=take(1)[0], msg_fmt=take(1)[0], msg_src=_str(take(6)),
             fee_type=_str(take(2)), fee_code=_str(take(6)), valid_time=_str(take(17)), at_time=_str(take(17)),
             src_id=_str(take(21)))
    count = take(1)[0]
    f["dests"] = [_str(take(term)) for _ in range(count)]
    if version == V3:
        f["dest_terminal_type"] = take(1)[0]
    length = take(1)[0]
    f["content"] = take(length)
    f["link_id"] = _str(take(20)) if version == V3 else take(8)
    if at != len(body):
        raise ValueError(f"SUBMIT: {len(body) - at} bytes left over")
    return f


def parse_udh(content: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    size = content[0]
    header, rest = content[1:1 + size], content[1 + size:]
    if size == 5 and header[:2] == b"\x00\x03":
        return (header[2], header[3], header[4]), rest
    if size == 6 and header[:2] == b"\x08\x04":
        return (int.from_bytes(header[2:4], "big"), header[4], header[5]), rest
    return None, rest


def decode(fmt: int, payload: bytes) -> str:
    if fmt == 8:
        return payload.decode("utf-16-be")
    if fmt == 15:
        return payload.decode("gbk")
    return payload.decode("ascii")


class FakeGateway:
    def __init__(self, sp_id: str = "901234", secret: str = "s3cret-shared", *, src_id: str = "1065712345",
                 service_id: str = "HCP", gateway_code: int = 100101, max_connections: int | None = None,
                 versions: tuple[int, ...] = (V3, V2)) -> None:
        self.sp_id, self.secret, self.src_id, self.service_id = sp_id, secret, src_id, service_id
        self.gateway_code = gateway_code
        self.max_connections = max_connections
        self.versions = versions
        self.host, self.port = "127.0.0.1", 0
        # behaviour
        self.refuse: int | None = None
        self.results: deque[int] = deque()
        self.withhold = 0
        self.delay = 0.0
        self.drop_on_submit = 0
        self.answer_active_test = True
        # records
        self.connects: list[tuple[str, int, int]] = []  # (Source_Addr, Version, the Status answered)
        self.sessions: list[Session] = []
        self.submits: list[Part] = []
        self.messages: list[Message] = []
        self.active_tests = 0  # ACTIVE_TESTs the SP sent
        self.terminates = 0  # TERMINATEs the SP sent
        self.max_concurrent = 0
        self._withheld: list[tuple[Session, int, int]] = []
        self._assembling: dict[tuple[str, int, int], dict[int, Part]] = {}
        self._msg_seq = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- running ------------------------------------------------------------------------------------------------
    async def start(self) -> FakeGateway:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def open_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.open and s.logged_in]

    async def drop(self) -> None:
        """Cut every session at once (no TERMINATE)."""
        for session in self.sessions:
            if session.open:
                session.open = False
                session.writer.transport.abort()
        await asyncio.sleep(0)

    async def wait_until(self, check, wait: float = 3.0, what: str = "") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not check():
            if loop.time() > deadline:
                raise AssertionError(f"the gateway waited {wait} s for {what or check}")
            await asyncio.sleep(0.01)

    async def wait_logged_in(self, count: int = 1, wait: float = 3.0) -> Session:
        await self.wait_until(lambda: len(self.open_sessions) >= count, wait, f"{count} session(s)")
        return self.open_sessions[-1]

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(len(self.sessions) + 1, writer)
        self.sessions.append(session)
        try:
            while session.open:
                length, command, seq = HEAD.unpack(await reader.readexactly(12))
                body = await reader.readexactly(length - 12)
                if not session.logged_in:
                    if command != CONNECT or not self._login(session, seq, body):
                        break
                    continue
                if command == SUBMIT:
                    self._submit(session, seq, body)
                elif command in (DELIVER_RESP, ACTIVE_TEST_RESP, TERMINATE_RESP):
                    waiting = session.pending.pop(seq, None)
                    if waiting is not None and not waiting.done():
                        waiting.set_result(body)
                elif command == ACTIVE_TEST:
                    self.active_tests += 1
                    if self.answer_active_test:
                        session.send(pdu(ACTIVE_TEST_RESP, seq, b"\0"))
                elif command == TERMINATE:
                    self.terminates += 1
                    session.send(pdu(TERMINATE_RESP, seq))
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if session.open:
                session.open = False
                writer.close()
            for waiting in session.pending.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionResetError("the session ended"))
                    waiting.exception()  # retrieved: nobody may be waiting for it

    def _login(self, session: Session, seq: int, body: bytes) -> bool:
        source, auth, version = _str(body[:6]), body[6:22], body[22]
        stamp = int.from_bytes(body[23:27], "big")
        if len(body) != 27:
            status = 1
        elif source != self.sp_id:
            status = 2
        elif auth != md5(source.encode(), b"\0" * 9, self.secret.encode(), f"{stamp:010d}".encode()):
            status = 3
        elif version not in self.versions:
            status = 4
        elif self.refuse is not None:
            status = self.refuse
        elif self.max_connections is not None and len(self.open_sessions) >= self.max_connections:
            status = 5
        else:
            status = 0
        self.connects.append((source, version, status))
        answer_version = version if version in (V3, V2) else V3
        width = 4 if answer_version == V3 else 1
        ismg = md5(status.to_bytes(width, "big"), auth, self.secret.encode())
        session.send(pdu(CONNECT_RESP, seq, status.to_bytes(width, "big") + ismg + bytes([answer_version])))
        if status != 0:
            return False
        session.version, session.logged_in = version, True
        self.max_concurrent = max(self.max_concurrent, len(self.open_sessions))
        return True

    # --- SUBMIT -------------------------------------------------------------------------------------------------
    def new_msg_id(self, at: datetime | None = None) -> int:
        t = (at or datetime.now(UTC)).astimezone(BEIJING)
        self._msg_seq = (self._msg_seq + 1) & 0xFFFF
        return ((t.month << 60) | (t.day << 55) | (t.hour << 50) | (t.minute << 44) | (t.second << 38)
                | ((self.gateway_code & 0x3FFFFF) << 16) | self._msg_seq)

    def _resp(self, session: Session, seq: int, msg_id: int, result: int, command: int = SUBMIT_RESP) -> bytes:
        return pdu(command, seq, msg_id.to_bytes(8, "big") + result.to_bytes(4 if session.version == V3 else 1, "big"))

    def _submit(self, session: Session, seq: int, body: bytes) -> None:
        try:
            f = parse_submit(body, session.version)
        except ValueError:
            session.send(self._resp(session, seq, 0, 1))  # 消息结构错
            return
        msg_id = self.new_msg_id()
        part = Part(session.id, session.version, seq, msg_id, f["pk_total"], f["pk_number"],  # type: ignore[arg-type]
                    f["registered_delivery"], f["service_id"], f["fee_user_type"], f["tp_udhi"],  # type: ignore[arg-type]
                    f["msg_fmt"], f["msg_src"], f["fee_type"], f["fee_code"], f["src_id"],  # type: ignore[arg-type]
                    f["dests"], f["content"], datetime.now(UTC))  # type: ignore[arg-type]
        self.submits.append(part)
        if self.drop_on_submit:
            self.drop_on_submit -= 1
            self._take(part)
            session.open = False
            session.writer.transport.abort()
            return
        if self.withhold:
            self.withhold -= 1
            self._take(part)
            self._withheld.append((session, seq, msg_id))
            return
        result = self.results.popleft() if self.results else 0
        if result == 0:
            self._take(part)
        if self.delay:
            self._spawn(self._answer_later(session, self._resp(session, seq, msg_id, result)))
        else:
            session.send(self._resp(session, seq, msg_id, result))

    async def _answer_later(self, session: Session, data: bytes) -> None:
        await asyncio.sleep(self.delay)
        session.send(data)

    def release_withheld(self) -> int:
        """Answer the withheld SUBMITs now (Result 0), on their sessions if still open; how many were answered."""
        sent = 0
        for session, seq, msg_id in self._withheld:
            if session.open:
                session.send(self._resp(session, seq, msg_id, 0))
                sent += 1
        self._withheld.clear()
        return sent

    def _take(self, part: Part) -> None:
        dest = part.dests[0]
        if part.tp_udhi:
            concat, payload = parse_udh(part.content)
        else:
            concat, payload = None, part.content
        if concat is None or concat[1] == 1:
            self.messages.append(Message(dest, decode(part.msg_fmt, payload), [msg_id_hex(part.msg_id)], [part]))
            return
        ref, total, number = concat
        got = self._assembling.setdefault((dest, ref, total), {})
        got[number] = part
        if len(got) == total:
            del self._assembling[(dest, ref, total)]
            parts = [got[n] for n in range(1, total + 1)]
            text = decode(part.msg_fmt, b"".join(parse_udh(p.content)[1] for p in parts))
            self.messages.append(Message(dest, text, [msg_id_hex(p.msg_id) for p in parts], parts))

    def sms_to(self, phone: str) -> list[Message]:
        national = phone.removeprefix("+86")
        return [m for m in self.messages if m.to == national]

    def find_part(self, msg_id: str) -> Part:
        return next(p for p in self.submits if msg_id_hex(p.msg_id) == msg_id)

    # --- DELIVER ------------------------------------------------------------------------------------------------
    def _session(self, session: Session | None) -> Session:
        if session is not None:
            return session
        if not self.open_sessions:
            raise AssertionError("no SP is logged in to the gateway")
        return self.open_sessions[-1]

    def _deliver_pdu(self, session: Session, seq: int, msg_id: int, src: str, content: bytes, *, fmt: int,
                     udhi: int = 0, report: int = 0) -> bytes:
        term = 32 if session.version == V3 else 21
        body = (msg_id.to_bytes(8, "big") + _field(self.src_id, 21) + _field(self.service_id, 10)
                + bytes([0, udhi, fmt]) + _field(src, term))
        if session.version == V3:
            body += b"\0"  # Src_terminal_type
        body += bytes([report, len(content)]) + content
        body += _field("", 20) if session.version == V3 else b"\0" * 8
        return pdu(DELIVER, seq, body)

    async def _send_and_wait(self, session: Session, items: list[tuple[int, bytes]], expect_answer: bool,
                             wait: float) -> list[int]:
        """Send DELIVERs ((seq, bytes)); the Results of their DELIVER_RESPs, in order (none when not expected)."""
        loop = asyncio.get_running_loop()
        waiting = []
        for seq, data in items:
            future: asyncio.Future[bytes] = loop.create_future()
            session.pending[seq] = future
            waiting.append(future)
            session.send(data)
        if not expect_answer:
            return []
        async with asyncio.timeout(wait):
            bodies = [await w for w in waiting]
        return [int.from_bytes(b[8:], "big") for b in bodies]

    async def deliver(self, phone: str, text: str, *, fmt: int = 8, part_bytes: int | None = None,
                      order: list[int] | None = None, twice: bool = False, session: Session | None = None,
                      expect_answer: bool = True, wait: float = 3.0,
                      msg_ids: list[str] | None = None) -> tuple[list[str], list[int]]:
        """A person's reply (their national number), in parts behind a UDH when longer than 140 bytes or than
        `part_bytes`; `order` sends the parts in another order (1-based numbers); `msg_ids` (hex, one a part in
        the order sent) repeats DELIVERs sent before. (Msg_Ids in hex, the DELIVER_RESP Results in the order
        sent.)"""
        s = self._session(session)
        payload = text.encode({8: "utf-16-be", 15: "gbk", 0: "ascii"}[fmt])
        size = part_bytes or 134
        if len(payload) <= 140 and part_bytes is None:
            chunks = [payload]
        else:
            step = size - (size % 2 if fmt == 8 else 0)
            chunks = [payload[i:i + step] for i in range(0, len(payload), step)]
        ref = (self._msg_seq * 7) & 0xFF
        items, ids = [], []
        numbered = list(enumerate(chunks, 1))
        for i, number in enumerate(order or [n for n, _ in numbered]):
            chunk = chunks[number - 1]
            msg_id = int(msg_ids[i], 16) if msg_ids else self.new_msg_id()
            ids.append(msg_id_hex(msg_id))
            udhi = 1 if len(chunks) > 1 else 0
            content = (bytes([5, 0, 3, ref, len(chunks), number]) + chunk) if udhi else chunk
            for _ in range(2 if twice else 1):
                seq = s.next_seq()
                items.append((seq, self._deliver_pdu(s, seq, msg_id, phone.removeprefix("+86"), content, fmt=fmt,
                                                     udhi=udhi)))
        return ids, await self._send_and_wait(s, items, expect_answer, wait)

    async def report(self, msg_id: str, stat: str = "DELIVRD", *, twice: bool = False,
                     session: Session | None = None, expect_answer: bool = True,
                     wait: float = 3.0) -> tuple[str, list[int]]:
        """The status report of a part the gateway took (by its Msg_Id in hex). (The DELIVER's own Msg_Id in hex,
        the DELIVER_RESP Results.)"""
        s = self._session(session)
        part = self.find_part(msg_id)
        local = part.at.astimezone(BEIJING)
        content = (part.msg_id.to_bytes(8, "big") + _field(stat, 7) + _field(local.strftime("%y%m%d%H%M"), 10)
                   + _field(datetime.now(BEIJING).strftime("%y%m%d%H%M"), 10)
                   + _field(part.dests[0], 32 if s.version == V3 else 21) + (1234).to_bytes(4, "big"))
        own = self.new_msg_id()
        items = []
        for _ in range(2 if twice else 1):
            seq = s.next_seq()
            items.append((seq, self._deliver_pdu(s, seq, own, part.dests[0], content, fmt=0, report=1)))
        return msg_id_hex(own), await self._send_and_wait(s, items, expect_answer, wait)

    async def active_test(self, session: Session | None = None, wait: float = 2.0) -> bool:
        """ACTIVE_TEST from the gateway; True when the SP answered with ACTIVE_TEST_RESP (one reserved byte)."""
        s = self._session(session)
        seq = s.next_seq()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        s.pending[seq] = future
        s.send(pdu(ACTIVE_TEST, seq))
        try:
            async with asyncio.timeout(wait):
                body = await future
        except (TimeoutError, ConnectionError):
            return False
        return body == b"\0"

    async def terminate(self, session: Session | None = None, wait: float = 2.0) -> bool:
        """TERMINATE from the gateway; True when the SP answered TERMINATE_RESP."""
        s = self._session(session)
        seq = s.next_seq()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        s.pending[seq] = future
        s.send(pdu(TERMINATE, seq))
        try:
            async with asyncio.timeout(wait):
                await future
        except (TimeoutError, ConnectionError):
            return False
        return True
