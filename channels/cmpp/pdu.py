"""CMPP 2.0 and 3.0 on the wire: the PDUs an SP exchanges with a carrier's gateway (ISMG), their text
encodings and the concatenation header of long messages. Pure: bytes in, values out.

Sources (中国移动通信互联网短信网关接口协议, China Mobile Peer to Peer, V2.0 of 2002 and V3.0.0), as read in:
- the specification's own tables, transcribed at blog.youkuaiyun.com/Hongyu666/article/details/83768032 (3.0:
  §7.1 long connections, C/T/N and a configurable sliding window W), www.wangqian.com.cn/telecom/2.htm (the
  same section, with an English translation), www.maisuitx.com/index.php?ac=article&at=read&did=7 (2.0's table
  of contents) and www.dybbs8.com/doc/3714232.html (Msg_Id's layout, SUBMIT_RESP's Result values);
- Wireshark's dissector epan/dissectors/packet-cmpp.c (3.0: command ids, every field's size, Msg_Fmt values,
  CONNECT_RESP's Status, SUBMIT_RESP's Result, the 71-byte status report, Msg_Id's bit fields);
- bigwhite/gocmpp packet/{connect,submit,deliver,receipt}.go (2.0 beside 3.0: the smaller terminal ids,
  one-byte Result/Status fields, the 8-byte Reserve instead of LinkID, the 60-byte 2.0 status report).
- The concatenation header (TP_udhi=1, "05 00 03 ref total seq", GSM 03.40 §9.2.3.24.1) as CMPP SPs use
  it: e-com-net.com/article/1279455946770235392.htm.

Every integer is big-endian (network order). Octet strings are ASCII, left-aligned, padded with NUL.

| PDU (Command_Id)                 | 3.0 body                                   | 2.0 body                         |
| CONNECT 0x00000001               | Source_Addr 6, AuthenticatorSource 16, Version 1, Timestamp 4 (both)          |
| CONNECT_RESP 0x80000001          | Status 4, AuthenticatorISMG 16, Version 1  | Status 1, …                      |
| TERMINATE(_RESP) 0x(8)0000002    | empty                                                                         |
| SUBMIT 0x00000004                | … Fee_terminal_Id 32, Fee_terminal_type 1, | Fee_terminal_Id 21, …,           |
|                                  | Dest_terminal_Id 32×n, Dest_terminal_type 1,| Dest_terminal_Id 21×n,          |
|                                  | Msg_Length, Msg_Content, LinkID 20         | Msg_Length, Msg_Content, Reserve 8|
| SUBMIT_RESP 0x80000004           | Msg_Id 8, Result 4                         | Msg_Id 8, Result 1               |
| DELIVER 0x00000005               | … Src_terminal_Id 32, Src_terminal_type 1, | Src_terminal_Id 21, …, Reserved 8|
|                                  | …, LinkID 20                               |                                  |
| DELIVER_RESP 0x80000005          | Msg_Id 8, Result 4                         | Msg_Id 8, Result 1               |
| ACTIVE_TEST(_RESP) 0x(8)0000008  | empty / Reserved 1 (both)                                                     |
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# --- the message header: Total_Length (header included), Command_Id, Sequence_Id -----------------------------
HEADER = struct.Struct(">III")
HEADER_SIZE = HEADER.size  # 12
MAX_PDU = 4096  # a 3.0 SUBMIT to one number is at most 12 + 129 + 32 + 2 + 140 + 20 = 335 bytes

CONNECT, CONNECT_RESP = 0x00000001, 0x80000001
TERMINATE, TERMINATE_RESP = 0x00000002, 0x80000002
SUBMIT, SUBMIT_RESP = 0x00000004, 0x80000004
DELIVER, DELIVER_RESP = 0x00000005, 0x80000005
ACTIVE_TEST, ACTIVE_TEST_RESP = 0x00000008, 0x80000008
NAMES = {CONNECT: "CONNECT", CONNECT_RESP: "CONNECT_RESP", TERMINATE: "TERMINATE", TERMINATE_RESP: "TERMINATE_RESP",
         SUBMIT: "SUBMIT", SUBMIT_RESP: "SUBMIT_RESP", DELIVER: "DELIVER", DELIVER_RESP: "DELIVER_RESP",
         ACTIVE_TEST: "ACTIVE_TEST", ACTIVE_TEST_RESP: "ACTIVE_TEST_RESP"}

V3, V2 = 0x30, 0x20  # Version: major in the high four bits, minor in the low four
VERSIONS = {"3.0": V3, "3": V3, "2.0": V2, "2": V2}

# CONNECT_RESP Status (正确, 消息结构错, 非法源地址, 认证错, 版本太高; 5 and above 其他错误), in the log's English.
CONNECT_STATUS = {0: "correct", 1: "message structure error", 2: "illegal source address", 3: "authentication error",
                  4: "version too high"}
OTHER_ERROR = "other error"
# SUBMIT_RESP Result: 正确, 消息结构错, 命令字错, 消息序号重复, 消息长度错, 资费代码错, 超过最大信息长,
# 业务代码错, 流量控制错, and in 3.0 本网关不负责服务此计费号码, Src_Id错, Msg_src错, Fee_terminal_Id错,
# Dest_terminal_Id错 (in 2.0, 9 and above: 其他错误).
SUBMIT_RESULT = {0: "correct", 1: "message structure error", 2: "command error", 3: "repeated sequence number",
                 4: "message length error", 5: "fee code error", 6: "message too long", 7: "service code error",
                 8: "flow control", 9: "this gateway does not serve the charged number", 10: "bad Src_Id",
                 11: "bad Msg_src", 12: "bad Fee_terminal_Id", 13: "bad Dest_terminal_Id"}
FLOW_CONTROL = 8
DELIVER_OK, DELIVER_BAD_STRUCTURE = 0, 1

# Msg_Fmt
ASCII, WRITE_CARD, BINARY, UCS2, GBK = 0, 3, 4, 8, 15
MAX_CONTENT = 140  # bytes of Msg_Content for every format but ASCII (160)
UCS2_SINGLE = 70  # UTF-16 code units in one message
UCS2_PART = 67  # in one part of a long message: (140 - 6 bytes of UDH) / 2
MAX_PARTS = 255

BEIJING = timezone(timedelta(hours=8))  # the gateways' clock: Timestamp, Msg_Id, Submit_time/Done_time


class PduError(ValueError):
    """Bytes that are not the PDU they claim to be."""


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    command: int
    seq: int


def pack(command: int, seq: int, body: bytes = b"") -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command, seq) + body


def unpack_header(data: bytes) -> Header:
    length, command, seq = HEADER.unpack(data[:HEADER_SIZE])
    if not HEADER_SIZE <= length <= MAX_PDU:
        raise PduError(f"Total_Length {length} is outside {HEADER_SIZE}..{MAX_PDU}")
    return Header(length, command, seq)


def octets(value: str, size: int, name: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > size:
        raise PduError(f"{name} {value!r} is longer than {size} bytes")
    return raw.ljust(size, b"\0")


def text_of(raw: bytes) -> str:
    """An Octet String field: up to its first NUL, ASCII (anything else replaced)."""
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.at, self.what = data, 0, what

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise PduError(f"{self.what}: {len(self.data)} bytes, too short")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def string(self, size: int) -> str:
        return text_of(self.take(size))

    def end(self) -> None:
        if self.at != len(self.data):
            raise PduError(f"{self.what}: {len(self.data) - self.at} bytes left over")


# --- CONNECT ---------------------------------------------------------------------------------------------


def timestamp(at: datetime) -> int:
    """MMDDHHMMSS of Beijing time, as the integer the Timestamp field carries."""
    local = at.astimezone(BEIJING)
    return int(local.strftime("%m%d%H%M%S"))


def authenticator(source_addr: str, secret: str, stamp: int) -> bytes:
    """AuthenticatorSource = MD5(Source_Addr + 9 bytes of 0 + shared secret + timestamp), the timestamp as its
    ten digits (MMDDHHMMSS, zero-filled on the left)."""
    return hashlib.md5(source_addr.encode("ascii") + b"\0" * 9 + secret.encode("utf-8")
                       + f"{stamp:010d}".encode("ascii"), usedforsecurity=False).digest()


def ismg_authenticator(status: int, source: bytes, secret: str, version: int) -> bytes:
    """AuthenticatorISMG = MD5(Status + AuthenticatorSource + shared secret), Status in its field's width."""
    width = 4 if version >= V3 else 1
    return hashlib.md5(status.to_bytes(width, "big") + source + secret.encode("utf-8"),
                       usedforsecurity=False).digest()


@dataclass(frozen=True, slots=True)
class Connect:
    source_addr: str  # the SP_Id
    authenticator: bytes
    version: int
    timestamp: int

    def encode(self, seq: int) -> bytes:
        return pack(CONNECT, seq, octets(self.source_addr, 6, "Source_Addr") + self.authenticator
                    + bytes([self.version]) + self.timestamp.to_bytes(4, "big"))

    @classmethod
    def decode(cls, body: bytes) -> Connect:
        r = _Reader(body, "CONNECT")
        made = cls(r.string(6), r.take(16), r.byte(), r.uint(4))
        r.end()
        return made

    @classmethod
    def login(cls, sp_id: str, secret: str, version: int, at: datetime) -> Connect:
        stamp = timestamp(at)
        return cls(sp_id, authenticator(sp_id, secret, stamp), version, stamp)


@dataclass(frozen=True, slots=True)
class ConnectResp:
    status: int
    authenticator: bytes
    version: int

    def encode(self, seq: int, version: int) -> bytes:
        width = 4 if version >= V3 else 1
        return pack(CONNECT_RESP, seq, self.status.to_bytes(width, "big") + self.authenticator
                    + bytes([self.version]))

    @classmethod
    def decode(cls, body: bytes) -> ConnectResp:
        """Either version's, by its length (21 bytes in 3.0, 18 in 2.0)."""
        if len(body) not in (21, 18):
            raise PduError(f"CONNECT_RESP: {len(body)} bytes, expected 21 (3.0) or 18 (2.0)")
        width = 4 if len(body) == 21 else 1
        return cls(int.from_bytes(body[:width], "big"), body[width:width + 16], body[width + 16])


# --- SUBMIT ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit:
    dest: str  # Dest_terminal_Id: one national mobile number
    content: bytes  # Msg_Content, UDH included when tp_udhi
    service_id: str
    src_id: str  # the number the text comes from (the 106… number), where replies go
    msg_src: str  # the SP_Id
    msg_fmt: int = UCS2
    tp_udhi: int = 0
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = 1
    msg_level: int = 0
    fee_user_type: int = 2  # the SP pays
    fee_type: str = "01"  # free for the person
    fee_code: str = "000000"
    msg_id: int = 0  # the gateway fills it in
    tp_pid: int = 0
    valid_time: str = ""
    at_time: str = ""
    link_id: str = ""

    def encode(self, seq: int, version: int) -> bytes:
        if len(self.content) > MAX_CONTENT + (20 if self.msg_fmt == ASCII else 0):
            raise PduError(f"Msg_Content of {len(self.content)} bytes")
        term = 32 if version >= V3 else 21
        body = [self.msg_id.to_bytes(8, "big"),
                bytes([self.pk_total, self.pk_number, self.registered_delivery, self.msg_level]),
                octets(self.service_id, 10, "Service_Id"), bytes([self.fee_user_type]),
                octets("", term, "Fee_terminal_Id")]
        if version >= V3:
            body.append(b"\0")  # Fee_terminal_type: a real number
        body += [bytes([self.tp_pid, self.tp_udhi, self.msg_fmt]), octets(self.msg_src, 6, "Msg_src"),
                 octets(self.fee_type, 2, "FeeType"), octets(self.fee_code, 6, "FeeCode"),
                 octets(self.valid_time, 17, "ValId_Time"), octets(self.at_time, 17, "At_Time"),
                 octets(self.src_id, 21, "Src_Id"), b"\x01", octets(self.dest, term, "Dest_terminal_Id")]
        if version >= V3:
            body.append(b"\0")  # Dest_terminal_type: a real number
        body += [bytes([len(self.content)]), self.content]
        body.append(octets(self.link_id, 20, "LinkID") if version >= V3 else b"\0" * 8)
        return pack(SUBMIT, seq, b"".join(body))


# --- SUBMIT_RESP and DELIVER_RESP: Msg_Id 8, then Result (4 bytes in 3.0, 1 in 2.0) -----------------------


@dataclass(frozen=True, slots=True)
class Resp:
    msg_id: int
    result: int

    def encode(self, command: int, seq: int, version: int) -> bytes:
        return pack(command, seq, self.msg_id.to_bytes(8, "big")
                    + self.result.to_bytes(4 if version >= V3 else 1, "big"))

    @classmethod
    def decode(cls, body: bytes) -> Resp:
        """Either version's, by its length (12 bytes in 3.0, 9 in 2.0)."""
        if len(body) not in (12, 9):
            raise PduError(f"RESP: {len(body)} bytes, expected 12 (3.0) or 9 (2.0)")
        return cls(int.from_bytes(body[:8], "big"), int.from_bytes(body[8:], "big"))


# --- DELIVER: a reply (Registered_Delivery 0) or a status report (1) ---------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    msg_id: int
    dest_id: str  # the SP's number the person wrote to (the 106… number, maybe with an extension)
    service_id: str
    src_terminal_id: str  # the person's number (for a report: the number the SUBMIT went to)
    content: bytes
    msg_fmt: int = UCS2
    tp_udhi: int = 0
    registered_delivery: int = 0
    tp_pid: int = 0
    src_terminal_type: int = 0
    link_id: str = ""

    def encode(self, seq: int, version: int) -> bytes:
        term = 32 if version >= V3 else 21
        body = [self.msg_id.to_bytes(8, "big"), octets(self.dest_id, 21, "Dest_Id"),
                octets(self.service_id, 10, "Service_Id"), bytes([self.tp_pid, self.tp_udhi, self.msg_fmt]),
                octets(self.src_terminal_id, term, "Src_terminal_Id")]
        if version >= V3:
            body.append(bytes([self.src_terminal_type]))
        body += [bytes([self.registered_delivery, len(self.content)]), self.content]
        body.append(octets(self.link_id, 20, "LinkID") if version >= V3 else b"\0" * 8)
        return pack(DELIVER, seq, b"".join(body))

    @classmethod
    def decode(cls, body: bytes, version: int) -> Deliver:
        r = _Reader(body, "DELIVER")
        msg_id, dest_id, service_id = r.uint(8), r.string(21), r.string(10)
        tp_pid, tp_udhi, msg_fmt = r.byte(), r.byte(), r.byte()
        src = r.string(32 if version >= V3 else 21)
        src_type = r.byte() if version >= V3 else 0
        registered, length = r.byte(), r.byte()
        content = r.take(length)
        if version >= V3:
            link_id = r.string(20)
        else:
            link_id = ""
            r.take(8)  # Reserved
        r.end()
        return cls(msg_id, dest_id, service_id, src, content, msg_fmt, tp_udhi, registered, tp_pid, src_type, link_id)


@dataclass(frozen=True, slots=True)
class Report:
    """A status report's Msg_Content: 8 + 7 + 10 + 10 + 32 + 4 = 71 bytes in 3.0, 60 (a 21-byte number) in 2.0."""

    msg_id: int  # the SUBMIT's, as its SUBMIT_RESP gave it
    stat: str  # DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, or a gateway's own code
    submit_time: str  # YYMMDDHHMM, Beijing time
    done_time: str
    dest_terminal_id: str
    smsc_sequence: int = 0

    def encode(self, version: int) -> bytes:
        return (self.msg_id.to_bytes(8, "big") + octets(self.stat, 7, "Stat")
                + octets(self.submit_time, 10, "Submit_time") + octets(self.done_time, 10, "Done_time")
                + octets(self.dest_terminal_id, 32 if version >= V3 else 21, "Dest_terminal_Id")
                + self.smsc_sequence.to_bytes(4, "big"))

    @classmethod
    def decode(cls, content: bytes) -> Report:
        """Either version's, by its length (a gateway's version and its report's sometimes disagree)."""
        if len(content) not in (71, 60):
            raise PduError(f"status report: {len(content)} bytes, expected 71 (3.0) or 60 (2.0)")
        r = _Reader(content, "status report")
        made = cls(r.uint(8), r.string(7), r.string(10), r.string(10), r.string(32 if len(content) == 71 else 21),
                   r.uint(4))
        r.end()
        return made


# --- Msg_Id: 64 bits of month 4, day 5, hour 5, minute 6, second 6, gateway code 22, sequence 16 ------------


def msg_id(at: datetime, gateway: int, seq: int) -> int:
    t = at.astimezone(BEIJING)
    return ((t.month << 60) | (t.day << 55) | (t.hour << 50) | (t.minute << 44) | (t.second << 38)
            | ((gateway & 0x3FFFFF) << 16) | (seq & 0xFFFF))


def msg_id_fields(value: int) -> tuple[int, int, int, int, int, int, int]:
    """(month, day, hour, minute, second, gateway code, sequence)."""
    return ((value >> 60) & 0xF, (value >> 55) & 0x1F, (value >> 50) & 0x1F, (value >> 44) & 0x3F,
            (value >> 38) & 0x3F, (value >> 16) & 0x3FFFFF, value & 0xFFFF)


def msg_id_text(value: int) -> str:
    """How the service writes a Msg_Id (a provider id, an inbound message id): its 8 bytes in lowercase hex."""
    return value.to_bytes(8, "big").hex()


# --- text ---------------------------------------------------------------------------------------------------


def udh(ref: int, total: int, number: int) -> bytes:
    """The 6-byte concatenation header: UDHL 5, IE 00 (8-bit reference) of length 3, reference, total, number."""
    return bytes([5, 0, 3, ref & 0xFF, total, number])


def ucs2_parts(text: str) -> list[str]:
    """The text cut into what fits one SMS each (70 UTF-16 units alone, 67 beside a UDH), never between the two
    halves of a surrogate pair (an emoji)."""
    units = len(text.encode("utf-16-be")) // 2
    if units <= UCS2_SINGLE:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if size + width > UCS2_PART:
            parts.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += width
    if current:
        parts.append("".join(current))
    return parts


def encode_ucs2(text: str, ref: int) -> list[bytes]:
    """Msg_Content for each SUBMIT of the text (UCS2, Msg_Fmt 8): one without a header, or several each
    behind a UDH (TP_udhi 1) of one reference."""
    parts = ucs2_parts(text)
    if len(parts) == 1:
        return [text.encode("utf-16-be")]
    if len(parts) > MAX_PARTS:
        raise PduError(f"a text of {len(parts)} parts (at most {MAX_PARTS})")
    return [udh(ref, len(parts), i) + part.encode("utf-16-be") for i, part in enumerate(parts, 1)]


@dataclass(frozen=True, slots=True)
class Concat:
    ref: int
    total: int
    number: int


def split_udh(content: bytes) -> tuple[Concat | None, bytes]:
    """A TP_udhi=1 Msg_Content's concatenation element (8- or 16-bit reference) and the text after the header."""
    if not content:
        raise PduError("TP_udhi=1 with no content")
    end = 1 + content[0]
    if end > len(content):
        raise PduError("UDH longer than its content")
    header, payload = content[1:end], content[end:]
    found: Concat | None = None
    at = 0
    while at + 2 <= len(header):
        iei, size = header[at], header[at + 1]
        value = header[at + 2:at + 2 + size]
        if iei == 0x00 and size == 3:
            found = Concat(value[0], value[1], value[2])
        elif iei == 0x08 and size == 4:
            found = Concat(int.from_bytes(value[:2], "big"), value[2], value[3])
        at += 2 + size
    if found is not None and not (1 <= found.number <= found.total):
        found = None
    return found, payload


def decode_text(msg_fmt: int, payload: bytes) -> str | None:
    """A reply's words by its Msg_Fmt: UCS2 (8), GBK (15, read as GB18030, its superset), ASCII (0; a gateway
    that puts GBK there is read as GBK); None for binary content (4, 3) that holds no words."""
    if msg_fmt in (BINARY, WRITE_CARD):
        return None
    if msg_fmt == UCS2:
        return payload[: len(payload) // 2 * 2].decode("utf-16-be", "replace")
    if msg_fmt == ASCII:
        try:
            return payload.decode("ascii")
        except UnicodeDecodeError:
            pass
    return payload.decode("gb18030", "replace")
