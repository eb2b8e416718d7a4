"""Self-test of tests/fakes/cmpp_gateway.py, driven by bytes written here by hand from the specification's tables
(not by channels/cmpp): the simulator is only worth anything if it holds a client to the spec."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator

import pytest
from fakes.cmpp_gateway import V2, V3, FakeGateway

SP, SECRET = "901234", "s3cret-shared"
# MD5("901234" + 9 NULs + "s3cret-shared" + "1121100000"), computed with md5sum, not Python:
#   printf '901234\0\0\0\0\0\0\0\0\0s3cret-shared1121100000' | md5sum
HAND_COMPUTED = "86f4480eeae2b6aa85b635f199a50247"


def connect_pdu(sp: str = SP, secret: str = SECRET, version: int = V3, stamp: int = 1121100000) -> bytes:
    auth = hashlib.md5(sp.encode() + b"\0" * 9 + secret.encode() + f"{stamp:010d}".encode()).digest()
    body = sp.encode().ljust(6, b"\0") + auth + bytes([version]) + stamp.to_bytes(4, "big")
    return struct.pack(">III", 12 + len(body), 0x00000001, 1) + body


def submit_pdu(seq: int, version: int, dest: str, content: bytes, *, udhi: int = 0, total: int = 1,
               number: int = 1) -> bytes:
    term = 32 if version == V3 else 21
    body = (b"\0" * 8 + bytes([total, number, 1, 0]) + b"HCP".ljust(10, b"\0") + b"\x02" + b"\0" * term
            + (b"\0" if version == V3 else b"") + bytes([0, udhi, 8]) + SP.encode() + b"01" + b"000000"
            + b"\0" * 34 + b"1065712345".ljust(21, b"\0") + b"\x01" + dest.encode().ljust(term, b"\0")
            + (b"\0" if version == V3 else b"") + bytes([len(content)]) + content
            + b"\0" * (20 if version == V3 else 8))
    return struct.pack(">III", 12 + len(body), 0x00000004, seq) + body


async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    length, command, seq = struct.unpack(">III", await asyncio.wait_for(reader.readexactly(12), 2))
    return command, seq, await reader.readexactly(length - 12)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gw = await FakeGateway(SP, SECRET).start()
    yield gw
    await gw.close()


async def login(gw: FakeGateway, version: int = V3, **kw: object) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                                             bytes]:
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    writer.write(connect_pdu(version=version, **kw))  # type: ignore[arg-type]
    command, seq, body = await read_pdu(reader)
    assert (command, seq) == (0x80000001, 1)
    return reader, writer, body


def test_the_hand_computed_authenticator_is_the_specs_formula() -> None:
    assert connect_pdu()[18:34].hex() == HAND_COMPUTED
    assert len(connect_pdu()) == 39  # 12 + Source_Addr 6 + AuthenticatorSource 16 + Version 1 + Timestamp 4


async def test_a_login_answers_connect_resp_of_its_version(gateway: FakeGateway) -> None:
    _, w3, body3 = await login(gateway, V3)
    _, w2, body2 = await login(gateway, V2)
    assert len(body3) == 4 + 16 + 1 and body3[:4] == b"\0\0\0\0" and body3[-1] == V3
    assert len(body2) == 1 + 16 + 1 and body2[0] == 0 and body2[-1] == V2
    auth = bytes.fromhex(HAND_COMPUTED)
    assert body3[4:20] == hashlib.md5(b"\0\0\0\0" + auth + SECRET.encode()).digest()  # AuthenticatorISMG
    assert [c[1:] for c in gateway.connects] == [(V3, 0), (V2, 0)]
    assert gateway.max_concurrent == 2
    for w in (w3, w2):
        w.close()


@pytest.mark.parametrize(("kw", "status"), [({"secret": "wrong"}, 3), ({"sp": "999999"}, 2), ({"version": 0x40}, 4)])
async def test_a_wrong_login_is_refused_and_the_session_closed(gateway: FakeGateway, kw: dict, status: int) -> None:
    reader, writer, body = await login(gateway, **kw)
    assert int.from_bytes(body[:4], "big") == status
    assert await reader.read() == b""  # closed
    assert gateway.open_sessions == []
    writer.close()


async def test_more_sessions_than_allowed_are_refused() -> None:
    gw = await FakeGateway(SP, SECRET, max_connections=1).start()
    try:
        _, w1, ok = await login(gw)
        _, w2, refused = await login(gw)
        assert (int.from_bytes(ok[:4], "big"), int.from_bytes(refused[:4], "big")) == (0, 5)
        w1.close()
        w2.close()
    finally:
        await gw.close()


@pytest.mark.parametrize("version", [V3, V2])
async def test_submits_are_answered_and_long_texts_put_back_together(gateway: FakeGateway, version: int) -> None:
    reader, writer, _ = await login(gateway, version)
    writer.write(submit_pdu(2, version, "13800138000", "您好".encode("utf-16-be")))
    writer.write(submit_pdu(3, version, "13800138000", b"\x05\x00\x03\x2a\x02\x02" + "二".encode("utf-16-be"),
                            udhi=1, total=2, number=2))
    writer.write(submit_pdu(4, version, "13800138000", b"\x05\x00\x03\x2a\x02\x01" + "第一".encode("utf-16-be"),
                            udhi=1, total=2, number=1))
    answers = [await read_pdu(reader) for _ in range(3)]
    width = 4 if version == V3 else 1
    assert [(c, s, len(b)) for c, s, b in answers] == [(0x80000004, n, 8 + width) for n in (2, 3, 4)]
    assert all(int.from_bytes(b[8:], "big") == 0 for _, _, b in answers)
    assert [(m.to, m.text, len(m.msg_ids)) for m in gateway.messages] == [("13800138000", "您好", 1),
                                                                           ("13800138000", "第一二", 2)]
    first = gateway.submits[0]
    assert (first.registered_delivery, first.msg_fmt, first.src_id, first.service_id, first.msg_src) == (
        1, 8, "1065712345", "HCP", SP)
    month = answers[0][2][0] >> 4  # Msg_Id: the month in its top four bits
    assert 1 <= month <= 12
    writer.close()


async def test_a_malformed_submit_is_a_structure_error(gateway: FakeGateway) -> None:
    reader, writer, _ = await login(gateway)
    writer.write(submit_pdu(2, V2, "13800138000", b"x"))  # 2.0 layout on a 3.0 session
    _, _, body = await read_pdu(reader)
    assert int.from_bytes(body[8:], "big") == 1
    writer.close()


async def test_faults_on_demand(gateway: FakeGateway) -> None:
    reader, writer, _ = await login(gateway)
    gateway.results.extend([8])
    gateway.withhold = 1
    writer.write(submit_pdu(2, V3, "13800138000", b"\0a"))  # withheld
    writer.write(submit_pdu(3, V3, "13800138000", b"\0b"))  # flow control
    _, seq, body = await read_pdu(reader)
    assert (seq, int.from_bytes(body[8:], "big")) == (3, 8)
    assert gateway.release_withheld() == 1
    _, seq, body = await read_pdu(reader)
    assert (seq, int.from_bytes(body[8:], "big")) == (2, 0)
    assert [m.text for m in gateway.messages] == ["a"]  # the refused one was not taken
    gateway.drop_on_submit = 1
    writer.write(submit_pdu(4, V3, "13800138000", b"\0c"))
    assert await reader.read() == b""  # cut without an answer, the text taken
    assert [m.text for m in gateway.messages] == ["a", "c"]
    writer.close()


async def test_delivers_reports_heartbeats_and_terminate(gateway: FakeGateway) -> None:
    reader, writer, _ = await login(gateway)

    async def answer_all() -> list[tuple[int, bytes]]:
        seen = []
        while True:
            try:
                command, seq, body = await read_pdu(reader)
            except (TimeoutError, asyncio.IncompleteReadError):
                return seen
            seen.append((command, body))
            if command == 0x00000005:
                writer.write(struct.pack(">III", 24, 0x80000005, seq) + body[:8] + b"\0\0\0\0")
            elif command == 0x00000008:
                writer.write(struct.pack(">III", 13, 0x80000008, seq) + b"\0")
            elif command == 0x00000002:
                writer.write(struct.pack(">III", 12, 0x80000002, seq))
                return seen

    reading = asyncio.create_task(answer_all())
    ids, results = await gateway.deliver("13800138000", "满意" * 40, twice=True)  # 160 bytes: two parts, each twice
    assert len(ids) == 2 and results == [0, 0, 0, 0]
    writer.write(submit_pdu(2, V3, "13800138000", b"\0x"))
    await gateway.wait_until(lambda: gateway.messages)
    report_id, results = await gateway.report(gateway.messages[0].msg_ids[0], "UNDELIV")
    assert results == [0]
    assert await gateway.active_test() is True
    assert await gateway.terminate() is True
    seen = await reading
    delivers = [body for command, body in seen if command == 0x00000005]
    assert len(delivers) == 5
    first = delivers[0]  # 3.0 DELIVER: Msg_Id 8, Dest_Id 21, Service_Id 10, TP_pid, TP_udhi, Msg_Fmt, Src 32, ...
    assert first[8:18].rstrip(b"\0") == b"1065712345" and first[40:42] == b"\x01\x08"
    assert first[42:53] == b"13800138000" and first[74:76] == b"\x00\x00"  # Src_terminal_type, Registered_Delivery
    assert first[77:83] == b"\x05\x00\x03" + first[80:81] + b"\x02\x01"
    report = delivers[-1]
    assert report[75] == 1 and report[76] == 71  # Registered_Delivery 1, a 71-byte status report
    assert report[77:85].hex() == gateway.messages[0].msg_ids[0] and report[85:92] == b"UNDELIV"
    assert report_id != gateway.messages[0].msg_ids[0]
    writer.close()


async def test_a_deaf_gateway_does_not_answer_active_test(gateway: FakeGateway) -> None:
    reader, writer, _ = await login(gateway)
    gateway.answer_active_test = False
    writer.write(struct.pack(">III", 12, 0x00000008, 9))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(1), 0.2)
    assert gateway.active_tests == 1
    writer.close()
