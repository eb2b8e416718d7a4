"""CMPP as an SMS provider, alone: the protocol (every PDU of both versions, the authenticator, Msg_Id, UCS2 split
behind a UDH, replies by Msg_Fmt), sends through tests/channel_runner.py against the gateway simulator
(tests/fakes/cmpp_gateway.py), DELIVERs handed to recording handlers, the sessions (heartbeats both ways, the
window, reconnection with backoff, refusals, TERMINATE, short sessions within CMPP_MAX_CONNECTIONS) and find_sent."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from channel_runner import NOW, InboundCase, Recorder, SendCase, run_inbound, run_send
from fakes.cmpp_gateway import FakeGateway, parse_submit
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import ConfigProblem, Failed, Outgoing, ProviderConfig, Retry, Sent, Unsure
from channels.cmpp import PROVIDER, CmppChannel, LookupPending, Timing, account_of, pdu
from channels.cmpp.channel import national, phone_of, receipt_status

SP, SECRET, SRC, SERVICE = "901234", "s3cret-shared", "1065712345", "HCP"
PHONE = "+8613800138000"
PUBLIC = "https://hcp.example.gov.cn"
# tests/channels/cmpp/test_fake_cmpp.py: md5sum of the spec's formula
HAND_COMPUTED = "86f4480eeae2b6aa85b635f199a50247"
QUICK = Timing(heartbeat=0.3, answer=0.15, misses=2, connect=1.0, backoff_min=0.05, backoff_max=0.2, ready_wait=1.0,
               report_window=60.0)
VERSIONS = [pytest.param("3.0", id="cmpp3"), pytest.param("2.0", id="cmpp2")]


def values(gw: FakeGateway, **more: str) -> dict[str, str]:
    return {"CMPP_HOST": gw.host, "CMPP_PORT": str(gw.port), "CMPP_SP_ID": SP, "CMPP_SECRET": SECRET,
            "CMPP_SRC_ID": SRC, "CMPP_SERVICE_ID": SERVICE, **more}


def make(gw: FakeGateway, timing: Timing = QUICK, send_timeout: float = 0.5, **more: str) -> CmppChannel:
    return CmppChannel(account_of(values(gw, **more)), send_timeout, timing)


@pytest.fixture
def version() -> str:
    return "3.0"


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gw = await FakeGateway(SP, SECRET, src_id=SRC, service_id=SERVICE).start()
    yield gw
    await gw.close()


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder(answers=["感谢您的评价！"])


@pytest.fixture
async def channel(gateway: FakeGateway, recorder: Recorder, version: str) -> AsyncIterator[CmppChannel]:
    """As `tick` has it: never started, sending on a short session of its own."""
    opened = make(gateway, CMPP_VERSION=version)
    opened.routes(web.Application().router, recorder)
    yield opened
    await opened.close()


@pytest.fixture
async def served(gateway: FakeGateway, recorder: Recorder, version: str) -> AsyncIterator[CmppChannel]:
    """As `serve` has it: started, one session kept logged in."""
    opened = make(gateway, CMPP_VERSION=version)
    opened.routes(web.Application().router, recorder)
    await opened.start()
    await gateway.wait_logged_in()
    yield opened
    await opened.close()


# --- configuration -------------------------------------------------------------------------------------------------


def test_the_provider_opens_a_channel_from_its_variables() -> None:
    opened = PROVIDER.open(ProviderConfig({"CMPP_HOST": "10.0.0.1", "CMPP_SP_ID": SP, "CMPP_SECRET": SECRET,
                                           "CMPP_SRC_ID": SRC, "CMPP_SERVICE_ID": SERVICE}, PUBLIC, 15.0))
    assert isinstance(opened, CmppChannel)
    a = opened.account
    assert (a.port, a.version, a.max_connections, opened.short_limit) == (7890, pdu.V3, 2, 1)
    assert (opened.name, opened.answers_inline, opened.health()) == ("cmpp", False, None)  # not started: nothing
    assert Timing().backoff_min == 1.0  # at most one login attempt a second
    assert PROVIDER.keys == ("CMPP_HOST", "CMPP_PORT", "CMPP_SP_ID", "CMPP_SECRET", "CMPP_SRC_ID", "CMPP_SERVICE_ID",
                             "CMPP_VERSION", "CMPP_MAX_CONNECTIONS")


@pytest.mark.parametrize(("given_values", "named"), [
    ({}, "unset: CMPP_HOST, CMPP_SP_ID, CMPP_SECRET, CMPP_SRC_ID, CMPP_SERVICE_ID"),
    ({"CMPP_SECRET": ""}, "unset: CMPP_SECRET"),
    ({"CMPP_VERSION": "2.1"}, "CMPP_VERSION"),
    ({"CMPP_PORT": "78a0"}, "CMPP_PORT"),
    ({"CMPP_PORT": "70000"}, "CMPP_PORT"),
    ({"CMPP_MAX_CONNECTIONS": "0"}, "CMPP_MAX_CONNECTIONS"),
    ({"CMPP_SP_ID": "9012345"}, "CMPP_SP_ID"),
    ({"CMPP_SRC_ID": "106x"}, "CMPP_SRC_ID"),
    ({"CMPP_SERVICE_ID": "服务"}, "CMPP_SERVICE_ID"),
])
def test_a_configuration_that_cannot_work_names_the_variable(given_values: dict[str, str], named: str) -> None:
    base = {"CMPP_HOST": "10.0.0.1", "CMPP_SP_ID": SP, "CMPP_SECRET": SECRET, "CMPP_SRC_ID": SRC,
            "CMPP_SERVICE_ID": SERVICE}
    chosen = given_values if not given_values else {**base, **given_values}
    with pytest.raises(ConfigProblem, match=named):
        account_of(chosen)


def test_cmpp_is_registered() -> None:
    from channels.registry import SMS_PROVIDERS, provider_keys

    assert SMS_PROVIDERS["cmpp"] is PROVIDER
    assert "CMPP_SECRET" in provider_keys()


# --- the protocol --------------------------------------------------------------------------------------------------


def test_the_header_is_three_big_endian_integers() -> None:
    data = pdu.pack(pdu.ACTIVE_TEST, 0x01020304)
    assert data == bytes.fromhex("0000000c" "00000008" "01020304")
    assert pdu.unpack_header(data) == pdu.Header(12, pdu.ACTIVE_TEST, 0x01020304)
    with pytest.raises(pdu.PduError):
        pdu.unpack_header(bytes.fromhex("00000008" "00000008" "00000001"))  # shorter than its own header
    assert pdu.pack(pdu.ACTIVE_TEST_RESP, 7, b"\0")[:4] == (13).to_bytes(4, "big")
    assert pdu.pack(pdu.TERMINATE, 7) == bytes.fromhex("0000000c0000000200000007")
    assert {pdu.TERMINATE_RESP, pdu.SUBMIT_RESP, pdu.DELIVER_RESP, pdu.CONNECT_RESP} == {
        0x80000002, 0x80000004, 0x80000005, 0x80000001}


def test_the_authenticator_is_the_hand_computed_one() -> None:
    ten = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # 10:00:00 in Beijing
    assert pdu.timestamp(ten) == 1121100000
    assert pdu.authenticator(SP, SECRET, 1121100000).hex() == HAND_COMPUTED
    # A January timestamp keeps its leading zero inside the MD5 (ten digits), not in the integer field.
    assert pdu.timestamp(datetime(2027, 1, 2, 3, 4, 5, tzinfo=pdu.BEIJING)) == 102030405
    assert pdu.authenticator(SP, SECRET, 102030405) == pdu.authenticator(SP, SECRET, int("0102030405"))
    import hashlib

    assert pdu.authenticator(SP, SECRET, 102030405) == hashlib.md5(
        b"901234" + bytes(9) + b"s3cret-shared0102030405").digest()


@pytest.mark.parametrize(("version", "status_width"), [(pdu.V3, 4), (pdu.V2, 1)])
def test_connect_and_connect_resp(version: int, status_width: int) -> None:
    connect = pdu.Connect.login(SP, SECRET, version, datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    data = connect.encode(1)
    assert len(data) == 39 and data[4:8] == b"\0\0\0\x01" and data[12:18] == b"901234"
    assert data[18:34].hex() == HAND_COMPUTED and data[34] == version and data[35:39] == (1121100000).to_bytes(4, "big")
    assert pdu.Connect.decode(data[12:]) == connect
    resp = pdu.ConnectResp(3, pdu.ismg_authenticator(3, connect.authenticator, SECRET, version), version)
    encoded = resp.encode(1, version)
    assert len(encoded) == 12 + status_width + 16 + 1
    assert pdu.ConnectResp.decode(encoded[12:]) == resp


@pytest.mark.parametrize("version", [pdu.V3, pdu.V2])
def test_submit_is_the_table_of_its_version(version: int) -> None:
    content = pdu.udh(0x2A, 2, 1) + "您好".encode("utf-16-be")
    submit = pdu.Submit(dest="13800138000", content=content, service_id=SERVICE, src_id=SRC, msg_src=SP, tp_udhi=1,
                        pk_total=2, pk_number=1)
    data = submit.encode(9, version)
    fixed = (12 + 129 + 32 + 1 + 1 + 20) if version == pdu.V3 else (12 + 117 + 21 + 1 + 8)
    assert len(data) == fixed + len(content)
    assert pdu.unpack_header(data) == pdu.Header(len(data), pdu.SUBMIT, 9)
    f = parse_submit(data[12:], version)  # the simulator's own reading of the spec's table
    assert (f["pk_total"], f["pk_number"], f["registered_delivery"], f["service_id"], f["fee_user_type"]) == (
        2, 1, 1, SERVICE, 2)
    assert (f["tp_udhi"], f["msg_fmt"], f["msg_src"], f["fee_type"], f["fee_code"], f["src_id"], f["dests"]) == (
        1, 8, SP, "01", "000000", SRC, ["13800138000"])
    assert f["content"] == content
    with pytest.raises(pdu.PduError):
        pdu.Submit(dest="1" * 33, content=b"", service_id="", src_id="", msg_src="").encode(1, version)


@pytest.mark.parametrize(("version", "size"), [(pdu.V3, 24), (pdu.V2, 21)])
def test_submit_resp_and_deliver_resp(version: int, size: int) -> None:
    for command in (pdu.SUBMIT_RESP, pdu.DELIVER_RESP):
        data = pdu.Resp(0x0123456789ABCDEF, 8).encode(command, 3, version)
        assert len(data) == size and pdu.unpack_header(data).command == command
        assert pdu.Resp.decode(data[12:]) == pdu.Resp(0x0123456789ABCDEF, 8)
    with pytest.raises(pdu.PduError):
        pdu.Resp.decode(b"\0" * 10)


@pytest.mark.parametrize("version", [pdu.V3, pdu.V2])
async def test_deliver_both_ways_and_as_the_simulator_writes_it(version: int) -> None:
    reply = pdu.Deliver(0xABCDEF, "1065712345", "HCP", "13800138000", "满意".encode("utf-16-be"))
    data = reply.encode(4, version)
    assert len(data) == (12 + 77 + 4 + 20 if version == pdu.V3 else 12 + 65 + 4 + 8)
    assert pdu.Deliver.decode(data[12:], version) == reply
    gw = FakeGateway()
    session = type("S", (), {"version": version})()
    theirs = gw._deliver_pdu(session, 5, 77, "13800138000", b"\x00\x35", fmt=8)  # type: ignore[arg-type]
    read = pdu.Deliver.decode(theirs[12:], version)
    assert (read.msg_id, read.dest_id, read.service_id, read.src_terminal_id, read.content) == (
        77, gw.src_id, gw.service_id, "13800138000", b"\x00\x35")
    with pytest.raises(pdu.PduError):
        pdu.Deliver.decode(data[12:-1], version)


@pytest.mark.parametrize(("version", "size"), [(pdu.V3, 71), (pdu.V2, 60)])
def test_a_status_report_is_71_bytes_in_3_0_and_60_in_2_0(version: int, size: int) -> None:
    report = pdu.Report(0x1122334455667788, "UNDELIV", "2611211000", "2611211001", "13800138000", 42)
    content = report.encode(version)
    assert len(content) == size
    assert content[8:15] == b"UNDELIV" and content[15:25] == b"2611211000"
    assert pdu.Report.decode(content) == report
    with pytest.raises(pdu.PduError):
        pdu.Report.decode(content[:-1])


def test_msg_id_fields_and_its_written_form() -> None:
    at = datetime(2026, 11, 21, 10, 0, 5, tzinfo=pdu.BEIJING)
    value = pdu.msg_id(at, 100101, 7)
    # month 11 | day 21 | hour 10 | minute 0 | second 5 | gateway 100101 | sequence 7, by hand:
    # 1011 10101 01010 000000 000101 0000011000011100000101 0000000000000111
    assert value == 0b1011_10101_01010_000000_000101_0000011000011100000101_0000000000000111
    assert pdu.msg_id_fields(value) == (11, 21, 10, 0, 5, 100101, 7)
    assert pdu.msg_id_text(value) == "baa8014187050007" and len(pdu.msg_id_text(1)) == 16
    assert pdu.msg_id_fields(FakeGateway(gateway_code=4321).new_msg_id(at))[:6] == (11, 21, 10, 0, 5, 4321)


def test_ucs2_fits_70_units_in_one_message_and_67_in_each_part() -> None:
    assert pdu.encode_ucs2("好" * 70, 1) == ["好".encode("utf-16-be") * 70]
    parts = pdu.encode_ucs2("好" * 71, 0x2A)
    assert [len(p) for p in parts] == [6 + 134, 6 + 8]
    assert [p[:6] for p in parts] == [bytes([5, 0, 3, 0x2A, 2, 1]), bytes([5, 0, 3, 0x2A, 2, 2])]


def test_an_emoji_is_never_cut_in_half_at_a_part_boundary() -> None:
    text = "政" * 66 + "😀" + "好" * 3  # 71 units: parts; the emoji's two units would be the 67th and 68th
    parts = pdu.ucs2_parts(text)
    assert parts == ["政" * 66, "😀好好好"]
    contents = pdu.encode_ucs2(text, 3)
    assert len(contents[0]) == 6 + 132
    assert "".join(c[6:].decode("utf-16-be") for c in contents) == text
    assert pdu.ucs2_parts("😀" * 35) == ["😀" * 35]  # 70 units: one message
    assert pdu.ucs2_parts("😀" * 36) == ["😀" * 33, "😀" * 3]


@given(st.text(alphabet=st.sampled_from("办结满意a1 ，。😀🇨🇳\u200d"), max_size=400))
@settings(max_examples=200, deadline=None)
def test_any_text_splits_into_parts_that_fit_and_decode_strictly(text: str) -> None:
    contents = pdu.encode_ucs2(text, 9)
    assert all(len(c) <= pdu.MAX_CONTENT for c in contents)
    bodies = [c[6:] if len(contents) > 1 else c for c in contents]
    assert "".join(b.decode("utf-16-be", "strict") for b in bodies) == text  # strict: no half surrogate anywhere
    if len(contents) > 1:
        assert all(c[:3] == b"\x05\x00\x03" and c[4] == len(contents) and c[5] == n for n, c in
                   enumerate(contents, 1))


def test_the_udh_is_read_with_an_8_or_16_bit_reference() -> None:
    assert pdu.split_udh(bytes([5, 0, 3, 9, 3, 2]) + b"ab") == (pdu.Concat(9, 3, 2), b"ab")
    assert pdu.split_udh(bytes([6, 8, 4, 1, 2, 2, 1]) + b"x") == (pdu.Concat(258, 2, 1), b"x")
    assert pdu.split_udh(bytes([3, 0x24, 1, 0]) + b"x") == (None, b"x")  # another element: no concatenation
    with pytest.raises(pdu.PduError):
        pdu.split_udh(bytes([9, 0, 3]))


def test_replies_are_read_by_their_msg_fmt() -> None:
    assert pdu.decode_text(pdu.UCS2, "非常满意".encode("utf-16-be")) == "非常满意"
    assert pdu.decode_text(pdu.GBK, "不太满意，排队太久".encode("gbk")) == "不太满意，排队太久"
    assert pdu.decode_text(pdu.ASCII, b"TD") == "TD"
    assert pdu.decode_text(pdu.ASCII, "满意".encode("gbk")) == "满意"  # a gateway that puts GBK under 0
    assert pdu.decode_text(pdu.BINARY, b"\x01\x02") is None


def test_numbers_and_report_statuses() -> None:
    assert national(PHONE) == "13800138000" and national("+14155550100") is None
    assert phone_of("13800138000") == phone_of("8613800138000") == phone_of("+8613800138000") == PHONE
    assert phone_of("01012345678") is None
    assert [receipt_status(s) for s in ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "MK:0005", "ACCEPTD")] == [
        "delivered", "undelivered", "undelivered", "failed", "undelivered", "sent"]


# --- sends (tests/channel_runner.py) -------------------------------------------------------------------------------
LONG = "【政务服务好差评】您2026年11月20日在汕头市公安局金平分局办结的“居民身份证换领”，请您评价：回复1非常满意，" \
       "2满意，3基本满意，4不满意，5非常不满意。也可点击 https://hcp.example.gov.cn/r/abc 评价。回复TD退订😀"


def _one_text(text: str, parts: int = 1) -> Any:
    def check(gw: FakeGateway) -> None:
        [message] = gw.messages
        assert (message.to, message.text, len(message.parts)) == ("13800138000", text, parts)
        for n, part in enumerate(message.parts, 1):
            assert (part.registered_delivery, part.msg_fmt, part.src_id, part.service_id, part.msg_src) == (
                1, 8, SRC, SERVICE, SP)
            assert (part.pk_total, part.pk_number, part.tp_udhi) == (parts, n, 1 if parts > 1 else 0)
            assert len(part.content) <= 140
    return check


def _nothing_sent(gw: FakeGateway) -> None:
    assert gw.submits == [] and gw.connects == []


SEND = [
    SendCase("a short text is one SUBMIT asking for a status report", Outgoing(PHONE, "您好，请评价。", 1), Sent,
             check=_one_text("您好，请评价。")),
    SendCase("a long text goes in parts behind one UDH", Outgoing(PHONE, LONG, 2), Sent, check=_one_text(LONG, 2)),
    SendCase("flow control is retried", Outgoing(PHONE, "您好", 3), Retry, error_contains="Result 8 (flow control)",
             arrange=lambda gw: gw.results.append(8)),
    SendCase("flow control on a later part sends the whole text again", Outgoing(PHONE, LONG, 4), Retry,
             error_contains="part 2 of 2", arrange=lambda gw: gw.results.extend([0, 8])),
    SendCase("a refused number fails for good", Outgoing(PHONE, "您好", 5), Failed,
             error_contains="Result 13 (bad Dest_terminal_Id)", arrange=lambda gw: gw.results.append(13)),
    SendCase("no SUBMIT_RESP within the send timeout: unsure", Outgoing(PHONE, "您好", 6), Unsure,
             error_contains="no SUBMIT_RESP", arrange=lambda gw: setattr(gw, "withhold", 1)),
    SendCase("the session cut after the SUBMIT: unsure", Outgoing(PHONE, "您好", 7), Unsure,
             error_contains="session ended", arrange=lambda gw: setattr(gw, "drop_on_submit", 1)),
    SendCase("a number outside mainland China is not sent", Outgoing("+14155550100", "hi", 8), Failed,
             error_contains="mainland China", check=_nothing_sent),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("send", SEND, ids=[c.name for c in SEND])
async def test_send_on_a_short_session(channel: CmppChannel, gateway: FakeGateway, send: SendCase,
                                       version: str) -> None:
    result = await run_send(channel, gateway, send)
    if isinstance(result, Sent):
        assert result.provider_id == gateway.messages[-1].msg_ids[0]  # the first part's Msg_Id, in hex
        assert [c[1] for c in gateway.connects] == [pdu.VERSIONS[version]]


@pytest.mark.parametrize("send", SEND[:3], ids=[c.name for c in SEND[:3]])
async def test_send_on_serves_session(served: CmppChannel, gateway: FakeGateway, send: SendCase) -> None:
    await run_send(served, gateway, send)
    assert len(gateway.connects) == 1  # no session of its own


async def test_a_refused_login_is_retried_later(gateway: FakeGateway) -> None:
    opened = make(gateway, CMPP_SECRET="wrong")
    try:
        result = await opened.sender.send(Outgoing(PHONE, "您好", 1))
        many = await asyncio.gather(*(opened.sender.send(Outgoing(PHONE, "您好", i)) for i in range(2, 12)))
    finally:
        await opened.close()
    assert isinstance(result, Retry) and "Status 3 (authentication error; check CMPP_SECRET" in result.error
    assert all(isinstance(r, Retry) and "Status 3" in r.error for r in many)
    assert gateway.submits == [] and len(gateway.connects) == 1  # a tick's batch: one login attempt a second


async def test_the_window_holds_16_submits_awaiting_their_answer(served: CmppChannel, gateway: FakeGateway) -> None:
    gateway.withhold = 100
    sends = asyncio.gather(*(served.sender.send(Outgoing(PHONE, f"第{i}条", i)) for i in range(20)))
    async with asyncio.timeout(0.45):  # within the sends' 0.5 s: nothing has timed out yet
        while len(gateway.submits) < 16:  # noqa: ASYNC110 - the fake gateway's record has no event to wait on
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert len(gateway.submits) == 16  # the other four wait for a place in the window
    results = await sends
    # When the 0.5 s end, a send still waiting may just get a place freed by one that timed out, on a busy
    # machine: each SUBMIT sent is an unknown outcome, each one never sent is retried.
    submitted = len(gateway.submits)
    assert 16 <= submitted <= 20 and [type(r) for r in results].count(Unsure) == submitted
    assert [r.error for r in results if isinstance(r, Retry)] == (
        ["cmpp: the send window stayed full for 0.5 s"] * (20 - submitted))


# --- what the gateway delivers -------------------------------------------------------------------------------------
def offline() -> CmppChannel:
    return CmppChannel(account_of({"CMPP_HOST": "127.0.0.1", "CMPP_SP_ID": SP, "CMPP_SECRET": SECRET,
                                   "CMPP_SRC_ID": SRC, "CMPP_SERVICE_ID": SERVICE}), 0.5, QUICK)


def test_no_route_is_registered() -> None:
    app = web.Application()
    offline().routes(app.router, Recorder())
    assert list(app.router.routes()) == []


async def test_a_webhook_path_is_404() -> None:
    await run_inbound(offline(), InboundCase("no webhook", "POST", "/webhooks/cmpp", b"{}", status=404))


@pytest.mark.parametrize("version", VERSIONS)
async def test_replies_by_msg_fmt_each_answered(served: CmppChannel, gateway: FakeGateway, recorder: Recorder) -> None:
    ids = []
    for text, fmt in (("5", 8), ("不太满意，排队太久", 15), ("TD", 0)):
        sent, results = await gateway.deliver("13800138000", text, fmt=fmt)
        assert results == [0]
        ids += sent
    assert [(m.address, m.text, m.message_id, m.kind) for m in recorder.messages] == [
        (PHONE, "5", ids[0], "text"), (PHONE, "不太满意，排队太久", ids[1], "text"), (PHONE, "TD", ids[2], "text")]
    assert all(m.channel == "sms" and m.received_at == NOW for m in recorder.messages)


async def test_a_repeated_deliver_is_answered_twice_and_acted_on_once(served: CmppChannel, gateway: FakeGateway,
                                                                      recorder: Recorder) -> None:
    ids, results = await gateway.deliver("13800138000", "1", twice=True)
    assert results == [0, 0]
    assert [m.message_id for m in recorder.messages] == ids


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_long_reply_is_put_back_together_in_any_order(served: CmppChannel, gateway: FakeGateway,
                                                              recorder: Recorder) -> None:
    text = "窗口工作人员态度很好，但是排队时间太长了，希望增加窗口。" * 4 + "😀"
    # 228 bytes in four parts of 60 bytes (the emoji's halves in two parts), sent out of order, each twice
    ids, results = await gateway.deliver("8613800138000", text, part_bytes=60, order=[3, 1, 4, 2], twice=True)
    assert results == [0] * 8
    [message] = recorder.messages
    assert (message.text, message.message_id) == (text, ids[1])  # part 1's Msg_Id names the whole reply


async def test_a_gbk_reply_in_parts(served: CmppChannel, gateway: FakeGateway, recorder: Recorder) -> None:
    text = "办事效率低，" * 30
    await gateway.deliver("13800138000", text, fmt=15)
    assert [m.text for m in recorder.messages] == [text]


@pytest.mark.parametrize("version", VERSIONS)
async def test_status_reports_become_receipts_once(served: CmppChannel, gateway: FakeGateway,
                                                   recorder: Recorder) -> None:
    sent = [await served.sender.send(Outgoing(PHONE, f"第{i}条", i)) for i in range(3)]
    ids = [r.provider_id for r in sent if isinstance(r, Sent)]
    for provider_id, stat in zip(ids, ("DELIVRD", "UNDELIV", "REJECTD"), strict=True):
        _, results = await gateway.report(provider_id, stat, twice=True)
        assert results == [0, 0]
    assert [(r.provider_id, r.status, r.error_code, r.stopped) for r in recorder.receipts] == [
        (ids[0], "delivered", None, False), (ids[1], "undelivered", "UNDELIV", False),
        (ids[2], "failed", "REJECTD", False)]


async def test_a_long_texts_status_is_its_first_parts(served: CmppChannel, gateway: FakeGateway,
                                                      recorder: Recorder) -> None:
    sent = await served.sender.send(Outgoing(PHONE, LONG, 1))
    assert isinstance(sent, Sent)
    [message] = gateway.messages
    await gateway.report(message.msg_ids[1], "UNDELIV")
    assert recorder.receipts == []  # the second part's report is answered, not handed on
    await gateway.report(message.msg_ids[0], "DELIVRD")
    assert [(r.provider_id, r.status) for r in recorder.receipts] == [(sent.provider_id, "delivered")]


async def test_a_deliver_whose_handling_fails_is_not_answered_and_comes_again(
        served: CmppChannel, gateway: FakeGateway, recorder: Recorder) -> None:
    failing = {"left": 1}
    original = recorder.message

    async def flaky(inbound: Any) -> list[str]:
        if failing["left"]:
            failing["left"] -= 1
            raise ConnectionError("the database went away")
        return await original(inbound)

    recorder.message = flaky  # type: ignore[method-assign]
    await gateway.deliver("13800138000", "2", expect_answer=False)
    await asyncio.sleep(0.1)
    assert recorder.messages == []
    session = gateway.open_sessions[-1]
    assert not session.pending == {}  # still waiting for its DELIVER_RESP
    _, results = await gateway.deliver("13800138000", "2")  # the gateway's resend
    assert results == [0] and [m.text for m in recorder.messages] == ["2"]


async def test_a_process_without_handlers_leaves_a_deliver_for_serve(gateway: FakeGateway) -> None:
    opened = make(gateway)  # a tick: routes() never called
    try:
        await opened.sender.send(Outgoing(PHONE, "您好", 1))
        with pytest.raises(TimeoutError):
            await gateway.deliver("13800138000", "1", wait=0.2)
    finally:
        await opened.close()


# --- sessions ------------------------------------------------------------------------------------------------------
async def test_heartbeats_both_ways(served: CmppChannel, gateway: FakeGateway) -> None:
    assert served.health() == "ok"
    assert await gateway.active_test() is True  # the gateway's, answered with ACTIVE_TEST_RESP
    await gateway.wait_until(lambda: gateway.active_tests >= 1, 2.0, "our ACTIVE_TEST after silence")
    assert len(gateway.connects) == 1


async def test_a_deaf_gateway_is_dropped_after_unanswered_heartbeats_and_logged_in_again(
        served: CmppChannel, gateway: FakeGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "haochaping.cmpp")
    gateway.answer_active_test = False
    await gateway.wait_until(lambda: len(gateway.connects) >= 2, 3.0, "a new login")
    assert gateway.active_tests >= QUICK.misses
    assert "no answer to 2 ACTIVE_TEST in a row" in caplog.text
    assert not gateway.sessions[0].open


async def test_a_dropped_session_is_logged_in_again_and_sending_carries_on(
        served: CmppChannel, gateway: FakeGateway, recorder: Recorder) -> None:
    await gateway.drop()
    await gateway.wait_until(lambda: len(gateway.open_sessions) == 1 and len(gateway.connects) == 2, 3.0)
    assert isinstance(await served.sender.send(Outgoing(PHONE, "您好", 1)), Sent)
    await gateway.deliver("13800138000", "3")
    assert [m.text for m in recorder.messages] == ["3"]
    assert await gateway.terminate() is True  # the gateway's TERMINATE, answered; then a new session
    await gateway.wait_until(lambda: len(gateway.connects) == 3 and len(gateway.open_sessions) == 1, 3.0)
    assert served.health() == "ok"


async def test_a_refused_login_is_down_logged_once_and_retried_with_backoff(
        gateway: FakeGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "haochaping.cmpp")
    opened = make(gateway, CMPP_SECRET="wrong")
    await opened.start()
    try:
        await gateway.wait_until(lambda: len(gateway.connects) >= 4, 3.0, "retries")
        assert opened.health() == ("down: the gateway refused the login: Status 3 (authentication error; check "
                                   "CMPP_SECRET and the clock)")
        refusals = [r for r in caplog.records if "refused the login" in r.getMessage()]
        assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
        sent = await opened.sender.send(Outgoing(PHONE, "您好", 1))
        assert isinstance(sent, Retry) and "Status 3" in sent.error
    finally:
        await opened.close()
    assert all(status == 3 for _, _, status in gateway.connects)


async def test_login_attempts_are_spaced_by_the_backoff(gateway: FakeGateway) -> None:
    timing = Timing(backoff_min=0.1, backoff_max=0.4, connect=1.0)
    opened = make(gateway, timing, CMPP_SECRET="wrong")
    stamps: list[float] = []
    original = opened._login

    async def counted(kind: str) -> Any:
        stamps.append(asyncio.get_running_loop().time())
        return await original(kind)

    opened._login = counted  # type: ignore[method-assign]
    await opened.start()
    await asyncio.sleep(1.2)
    await opened.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) >= 4
    assert all(gap >= 0.09 for gap in gaps)
    assert gaps[:3] == pytest.approx([0.1, 0.2, 0.4], abs=0.06)  # doubling, capped
    assert gaps[-1] == pytest.approx(0.4, abs=0.06)


async def test_an_unreachable_gateway_is_down_naming_it() -> None:
    gw = await FakeGateway().start()
    port = gw.port
    await gw.close()
    opened = CmppChannel(account_of({"CMPP_HOST": "127.0.0.1", "CMPP_PORT": str(port), "CMPP_SP_ID": SP,
                                     "CMPP_SECRET": SECRET, "CMPP_SRC_ID": SRC, "CMPP_SERVICE_ID": SERVICE}),
                         0.5, QUICK)
    await opened.start()
    try:
        await asyncio.sleep(0.1)
        assert (opened.health() or "").startswith(f"down: cannot reach 127.0.0.1:{port}")
    finally:
        await opened.close()


async def test_close_terminates_every_session(gateway: FakeGateway) -> None:
    served = make(gateway, CMPP_MAX_CONNECTIONS="3")
    await served.start()
    ticking = make(gateway, CMPP_MAX_CONNECTIONS="3")
    await gateway.wait_logged_in()
    assert isinstance(await ticking.sender.send(Outgoing(PHONE, "您好", 1)), Sent)
    await ticking.close()
    await served.close()
    assert (served.health(), ticking.health()) == ("down: closed", None)
    assert gateway.terminates == 2
    await gateway.wait_until(lambda: not gateway.open_sessions, 1.0)


@pytest.mark.parametrize("limit", [2, 3])
async def test_a_tick_opens_short_sessions_within_the_limit_beside_serves(gateway: FakeGateway, limit: int) -> None:
    gateway.max_connections = limit
    gateway.delay = 0.05
    served = make(gateway, CMPP_MAX_CONNECTIONS=str(limit))
    await served.start()
    await gateway.wait_logged_in()
    ticking = make(gateway, CMPP_MAX_CONNECTIONS=str(limit))
    try:
        results = await asyncio.gather(*(ticking.sender.send(Outgoing(PHONE, f"第{i}条", i)) for i in range(40)))
    finally:
        await ticking.close()
        await served.close()
    assert all(isinstance(r, Sent) for r in results)
    assert [status for _, _, status in gateway.connects] == [0] * limit  # serve's, then the tick's (limit - 1)
    assert gateway.max_concurrent == limit


# --- find_sent -----------------------------------------------------------------------------------------------------
async def test_find_sent_knows_a_late_submit_resp(served: CmppChannel, gateway: FakeGateway) -> None:
    gateway.withhold = 1
    message = Outgoing(PHONE, "您好", 41)
    since = datetime.now(UTC)
    assert isinstance(await served.sender.send(message), Unsure)
    with pytest.raises(LookupPending):
        await served.sender.find_sent(message, since)
    assert gateway.release_withheld() == 1
    await asyncio.sleep(0.05)
    assert await served.sender.find_sent(message, since) == gateway.messages[0].msg_ids[0]


async def test_find_sent_takes_the_report_of_an_unknown_msg_id_to_that_number(
        served: CmppChannel, gateway: FakeGateway, recorder: Recorder) -> None:
    gateway.drop_on_submit = 1
    message = Outgoing(PHONE, "您好", 42)
    since = datetime.now(UTC) - timedelta(seconds=5)
    assert isinstance(await served.sender.send(message), Unsure)
    await gateway.wait_logged_in()
    [taken] = gateway.messages  # the gateway had it all along
    await gateway.report(taken.msg_ids[0], "DELIVRD")
    assert recorder.receipts[-1].provider_id == taken.msg_ids[0]  # kept by the outbox until a send claims it
    with pytest.raises(LookupPending):  # not another number's
        await served.sender.find_sent(Outgoing("+8613900139000", "您好", 43), since)
    assert await served.sender.find_sent(message, since) == taken.msg_ids[0]


async def test_find_sent_does_not_take_a_report_that_came_before_the_attempt(
        served: CmppChannel, gateway: FakeGateway) -> None:
    ticking = make(gateway, CMPP_MAX_CONNECTIONS="3")  # another process sent the reminder to the same number
    gateway.max_connections = 3
    try:
        reminder = await ticking.sender.send(Outgoing(PHONE, "提醒", 50))
    finally:
        await ticking.close()
    assert isinstance(reminder, Sent)
    since = datetime.now(UTC) - timedelta(seconds=5)
    await gateway.report(reminder.provider_id, "DELIVRD")  # comes to serve, which never saw that Msg_Id
    gateway.drop_on_submit = 1
    message = Outgoing(PHONE, "感谢您的评价", 51)
    assert isinstance(await served.sender.send(message), Unsure)
    with pytest.raises(LookupPending):
        await served.sender.find_sent(message, since)


async def test_find_sent_waits_for_the_report_window_then_sends_again(gateway: FakeGateway) -> None:
    opened = make(gateway, Timing(report_window=0.3, connect=1.0), CMPP_MAX_CONNECTIONS="2")
    try:
        gateway.drop_on_submit = 1
        message = Outgoing(PHONE, "您好", 44)
        since = datetime.now(UTC)
        assert isinstance(await opened.sender.send(message), Unsure)
        with pytest.raises(LookupPending):
            await opened.sender.find_sent(message, since)
        await asyncio.sleep(0.35)
        assert await opened.sender.find_sent(message, since) is None
        assert await opened.sender.find_sent(Outgoing(PHONE, "别的", 45), since - timedelta(hours=1)) is None
    finally:
        await opened.close()


async def test_find_sent_after_a_refused_part_sends_again(served: CmppChannel, gateway: FakeGateway) -> None:
    gateway.results.extend([0, 8])
    message = Outgoing(PHONE, LONG, 46)
    assert isinstance(await served.sender.send(message), Retry)
    assert await served.sender.find_sent(message, datetime.now(UTC)) is None
