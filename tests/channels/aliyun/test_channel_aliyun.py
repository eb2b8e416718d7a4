"""Aliyun SMS as a provider, alone (tests/channel_runner.py): its pushes' cases and its sends' cases against the
double of dysmsapi (tests/fakes/aliyun_sms.py), with the real SDK signing every request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channel_runner import InboundCase, SendCase, run_inbound, run_send
from fakes.aliyun_sms import FakeAliyunSms

from channels.aliyun import PROVIDER, AliyunChannel, endpoint_of, sms
from channels.base import ConfigProblem, Failed, Outgoing, ProviderConfig, Retry, Sent, Unsure

PUBLIC = "https://hcp.example.gov.cn"
AK, SECRET, SIGN = "LTAI5tChannelTest0001", "channel-secret-0123456789", "汕头政务服务"
TOKEN = "cb-token-0123456789abcdef"
CITIZEN = "+8613800138000"
TEMPLATES = {
    "rating.reminder": ("SMS_270000001", ("item", "completed_at", "token")),
    "rating.thanks": ("SMS_270000005", ()),
    "rating.ask_reasons": ("SMS_270000006", ("reasons",)),
}
APPROVED = {"SMS_270000001": "您于${completed_at}办结的“${item}”请评价：回复1-5，或打开 https://hcp.example.gov.cn/r/${token}",
            "SMS_270000005": "感谢您的评价！",
            "SMS_270000006": "请回复原因编号：${reasons}"}
VALUES = {"link": PUBLIC + "/r/1.abcdefghijklmnop", "token": "1.abcdefghijklmnop", "agency": "汕头市公安局金平分局",
          "completed_at": "2026年11月20日", "item": "居民身份证换领"}
RECEIVED = {"code": 0, "msg": "成功"}


def values_for(**over: Any) -> dict[str, Any]:
    return {"ALIYUN_ACCESS_KEY_ID": AK, "ALIYUN_ACCESS_KEY_SECRET": SECRET, "ALIYUN_SMS_SIGN_NAME": SIGN,
            "ALIYUN_SMS_CALLBACK_TOKEN": TOKEN, **over}


def up(*items: dict[str, Any], token: str = TOKEN, **expect: Any) -> InboundCase:
    return InboundCase(expect.pop("name"), "POST", f"/webhooks/aliyun/sms/{token}/up",
                       json.dumps(list(items), ensure_ascii=False), headers={"Content-Type": "application/json"},
                       **expect)


def report(*items: dict[str, Any], token: str = TOKEN, **expect: Any) -> InboundCase:
    return InboundCase(expect.pop("name"), "POST", f"/webhooks/aliyun/sms/{token}/report",
                       json.dumps(list(items), ensure_ascii=False), headers={"Content-Type": "application/json"},
                       **expect)


def item_up(phone: str = "13800138000", content: str = "1", seq: Any = 1234567890, **more: Any) -> dict[str, Any]:
    return {"phone_number": phone, "content": content, "send_time": "2026-11-21 10:00:00", "dest_code": "1234",
            "sequence_id": seq, **more}


def item_report(success: Any = True, code: str | None = "DELIVERED", biz: str = "900619746936498440^0",
                out: Any = "42", **more: Any) -> dict[str, Any]:
    return {"phone_number": "13800138000", "send_time": "2026-11-21 10:00:00", "report_time": "2026-11-21 10:00:05",
            "success": success, "err_code": code, "err_msg": "用户接收成功" if success is True else "失败",
            "sms_size": "1", "biz_id": biz, "out_id": out, **more}


def without(item: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != name}


BIZ = "900619746936498440^0"
INBOUND = [
    up(item_up(), name="a national number's reply", answer=RECEIVED,
       messages=[(CITIZEN, "1", "aliyun:1234567890", "text")]),
    up(item_up(phone="8613800138000"), name="86… is the same person",
       messages=[(CITIZEN, "1", "aliyun:1234567890", "text")]),
    up(item_up(phone="+8613800138000"), name="+86… is the same person",
       messages=[(CITIZEN, "1", "aliyun:1234567890", "text")]),
    up(item_up(seq="1234567890"), name="a string sequence_id is the same message as the number",
       messages=[(CITIZEN, "1", "aliyun:1234567890", "text")]),
    up(item_up(content="4 不太满意", seq=7), item_up(phone="13900139000", content="非常满意", seq="8"),
       name="several replies in one push", answer=RECEIVED,
       messages=[(CITIZEN, "4 不太满意", "aliyun:7", "text"), ("+8613900139000", "非常满意", "aliyun:8", "text")]),
    up(item_up(sign_name=SIGN), name="a field Aliyun adds is ignored",
       messages=[(CITIZEN, "1", "aliyun:1234567890", "text")]),
    up(item_up(phone="10690012345"), name="a sender we cannot text is known, not acted on", status=200,
       answer=RECEIVED, messages=[]),
    up(name="an empty push", status=200, answer=RECEIVED, messages=[]),
    up(item_up(), token="x" * 24, name="another token is not found", status=404, messages=[]),
    InboundCase("bad JSON", "POST", f"/webhooks/aliyun/sms/{TOKEN}/up", "[{", status=400),
    InboundCase("not an array", "POST", f"/webhooks/aliyun/sms/{TOKEN}/up", json.dumps(item_up()), status=400),
    up(item_up(seq=1), without(item_up(seq=2), "sequence_id"), name="a missing field: nothing is acted on",
       status=400, messages=[]),
    up(item_up(seq=True), name="a sequence_id that is no id", status=400),
    up(item_up(seq=1.5), name="a fractional sequence_id", status=400),
    up(item_up(content=None), name="content that is not text", status=400),
    report(item_report(), name="a delivered report, under its BizId and its OutId", answer=RECEIVED,
           receipts=[(BIZ, "delivered", None, False), ("aliyun-out:42", "delivered", None, False)]),
    report(item_report(success="true"), name="success written as text",
           receipts=[(BIZ, "delivered", None, False), ("aliyun-out:42", "delivered", None, False)]),
    report(item_report(False, "MOBILE_NOT_ON_SERVICE"), name="a carrier's failure, its code kept to the column",
           receipts=[(BIZ, "undelivered", "MOBILE_NOT_ON_SE", False),
                     ("aliyun-out:42", "undelivered", "MOBILE_NOT_ON_SE", False)]),
    report(item_report(False, "MOBILE_IN_BLACK"), name="unsubscribed from the signature: stopped",
           receipts=[(BIZ, "failed", "MOBILE_IN_BLACK", True), ("aliyun-out:42", "failed", "MOBILE_IN_BLACK", True)]),
    report(item_report(False, "USER_REJECT", out=None), name="the person refused: stopped; no OutId, no second key",
           receipts=[(BIZ, "failed", "USER_REJECT", True)]),
    report(item_report(False, "isv.SMS_TEMPLATE_ILLEGAL", out="someone-else's"),
           name="refused by Aliyun itself: failed", receipts=[(BIZ, "failed", "isv.SMS_TEMPLATE", False)]),
    report(item_report(biz="1^0", out=7), item_report(False, "SP_UNKNOWN_ERROR", biz="2^0", out=""),
           name="several reports in one push",
           receipts=[("1^0", "delivered", None, False), ("aliyun-out:7", "delivered", None, False),
                     ("2^0", "undelivered", "SP_UNKNOWN_ERROR", False)]),
    report(without(item_report(), "biz_id"), name="a report without its biz_id", status=400, receipts=[]),
    report(item_report(success="maybe"), name="success that is neither", status=400),
    report(item_report(), item_report(biz=""), name="one bad item: nothing is recorded", status=400, receipts=[]),
    report(item_report(), token="x" * 24, name="a report under another token", status=404, receipts=[]),
    InboundCase("a report that is not an array", "POST", f"/webhooks/aliyun/sms/{TOKEN}/report", "{}", status=400),
]


@pytest.fixture
async def double() -> AsyncIterator[FakeAliyunSms]:
    fake = await FakeAliyunSms(AK, SECRET, sign_names=[SIGN], templates=APPROVED).start()
    yield fake
    await fake.close()


def open_for(double: FakeAliyunSms, timeout: float = 1.0, **over: Any) -> AliyunChannel:
    opened = PROVIDER.open(ProviderConfig(values_for(ALIYUN_SMS_ENDPOINT=double.endpoint, **over), PUBLIC, timeout,
                                          TEMPLATES))
    assert isinstance(opened, AliyunChannel)
    return opened


@pytest.fixture
async def channel(double: FakeAliyunSms) -> AsyncIterator[AliyunChannel]:
    opened = open_for(double)
    yield opened
    await opened.close()


@pytest.mark.parametrize("inbound", INBOUND, ids=[c.name for c in INBOUND])
async def test_inbound(channel: AliyunChannel, inbound: InboundCase) -> None:
    await run_inbound(channel, inbound)


def reminder(outbox_id: int = 7, **values: Any) -> Outgoing:
    return Outgoing(CITIZEN, "【政务服务好差评】…", outbox_id, "rating.reminder", {**VALUES, **values})


def _sent_as_template(double: FakeAliyunSms) -> None:
    [sent] = double.sms_to(CITIZEN)
    query = double.actions("SendSms")[-1]["query"]
    assert query["PhoneNumbers"] == "13800138000" and query["SignName"] == SIGN and query["OutId"] == "7"
    assert query["TemplateCode"] == "SMS_270000001"
    assert list(json.loads(query["TemplateParam"]).items()) == [
        ("item", "居民身份证换领"), ("completed_at", "2026年11月20日"), ("token", "1.abcdefghijklmnop")]
    assert sent["content"].endswith("打开 https://hcp.example.gov.cn/r/1.abcdefghijklmnop")


def _fixed_template(double: FakeAliyunSms) -> None:
    query = double.actions("SendSms")[-1]["query"]
    assert query["TemplateCode"] == "SMS_270000005" and "TemplateParam" not in query and query["OutId"] == "8"


def _shortened(double: FakeAliyunSms) -> None:
    params = json.loads(double.actions("SendSms")[-1]["query"]["TemplateParam"])
    assert params["item"] == "长" * 34 + "…" and params["token"] == "1.abcdefghijklmnop"


def _nothing_asked(double: FakeAliyunSms) -> None:
    assert double.requests == []


SEND = [
    SendCase("a template, its values by name in the template's order, OutId and sign name", reminder(), Sent,
             check=_sent_as_template),
    SendCase("a fixed template takes no TemplateParam", Outgoing(CITIZEN, "感谢您的评价！", 8, "rating.thanks"), Sent,
             check=_fixed_template),
    SendCase("a key without a template fails without asking", Outgoing(CITIZEN, "帮助", 9, "rating.help"), Failed,
             error_contains="no aliyun template for rating.help", check=_nothing_asked),
    SendCase("a plain text has no template", Outgoing(CITIZEN, "你好", 10), Failed,
             error_contains="no aliyun template for None", check=_nothing_asked),
    SendCase("a value the template needs and the message lacks", reminder(completed_at=""), Failed,
             error_contains="needs completed_at", check=_nothing_asked),
    SendCase("a 503 is retried", reminder(), Retry, error_contains="ServiceUnavailable",
             arrange=lambda d: d.fail_next(1, 503, "ServiceUnavailable")),
    SendCase("a 500 InternalError is retried", reminder(), Retry, error_contains="InternalError",
             arrange=lambda d: d.fail_next(1, 500, "InternalError", "The request processing has failed.")),
    SendCase("throttling is retried", reminder(), Retry, error_contains="Throttling.User",
             arrange=lambda d: d.fail_next(1, 400, "Throttling.User", "Request was denied due to user flow control.")),
    SendCase("a per-number cap is retried later", reminder(), Retry, error_contains="isv.BUSINESS_LIMIT_CONTROL",
             arrange=lambda d: d.refuse(CITIZEN, "isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")),
    SendCase("the same content too often is retried later", reminder(), Retry, error_contains="触发分钟级流控",
             arrange=lambda d: d.refuse(CITIZEN, "isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")),
    SendCase("the account's daily quota is retried later", reminder(), Retry, error_contains="isv.DAY_LIMIT_CONTROL",
             arrange=lambda d: d.refuse(CITIZEN, "isv.DAY_LIMIT_CONTROL", "触发日发送限额")),
    SendCase("a system error of Aliyun's is retried", reminder(), Retry, error_contains="isp.SYSTEM_ERROR",
             arrange=lambda d: d.refuse(CITIZEN, "isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR")),
    SendCase("an illegal number fails for good", reminder(), Failed, error_contains="isv.MOBILE_NUMBER_ILLEGAL",
             arrange=lambda d: d.refuse(CITIZEN, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")),
    SendCase("a template Aliyun does not know fails", reminder(), Failed, error_contains="isv.SMS_TEMPLATE_ILLEGAL",
             arrange=lambda d: d.templates.clear()),
    SendCase("a signature Aliyun does not know fails", reminder(), Failed, error_contains="isv.SMS_SIGNATURE_ILLEGAL",
             arrange=lambda d: d.sign_names.clear()),
    SendCase("values of the wrong kind fail", reminder(), Failed, error_contains="isv.TEMPLATE_PARAMS_ILLEGAL",
             arrange=lambda d: d.refuse(CITIZEN, "isv.TEMPLATE_PARAMS_ILLEGAL", "模板变量中存在非法参数")),
    SendCase("a value longer than 35 characters is shortened with an ellipsis, and sent", reminder(item="长" * 40),
             Sent, check=_shortened),
    SendCase("a value Aliyun still finds too long fails", reminder(), Failed, error_contains="isv.PARAM_LENGTH_LIMIT",
             arrange=lambda d: d.refuse(CITIZEN, "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")),
    SendCase("a URL as a value fails", reminder(token="https://x.cn/r/1"), Failed,
             error_contains="isv.PARAM_NOT_SUPPORT_URL"),
    SendCase("an unknown isv code fails", reminder(), Failed, error_contains="isv.SOMETHING_NEW",
             arrange=lambda d: d.refuse(CITIZEN, "isv.SOMETHING_NEW", "新")),
    SendCase("accepted, then no answer in time: unsure", reminder(), Unsure, error_contains="no answer within",
             arrange=lambda d: d.lose_next(1, "hang", seconds=5)),
    SendCase("accepted, then the connection dropped: unsure", reminder(), Unsure,
             arrange=lambda d: d.lose_next(1, "drop")),
]


@pytest.mark.parametrize("send", SEND, ids=[c.name for c in SEND])
async def test_send(channel: AliyunChannel, double: FakeAliyunSms, send: SendCase) -> None:
    result = await run_send(channel, double, send)
    if isinstance(result, Sent):
        assert result.provider_id == double.sends[-1]["biz_id"]  # the answer's BizId


async def test_a_wrong_secret_fails_every_send(double: FakeAliyunSms) -> None:
    wrong = open_for(double, ALIYUN_ACCESS_KEY_SECRET="not-the-secret")
    result = await wrong.sender.send(reminder())
    assert isinstance(result, Failed) and "SignatureDoesNotMatch" in result.error and double.sends == []


async def test_a_closed_port_is_retried_nothing_having_been_sent(double: FakeAliyunSms) -> None:
    closed = PROVIDER.open(ProviderConfig(values_for(ALIYUN_SMS_ENDPOINT="http://127.0.0.1:1"), PUBLIC, 1.0,
                                          TEMPLATES))
    result = await closed.sender.send(reminder())
    assert isinstance(result, Retry) and "could not connect" in result.error


async def test_a_lost_answer_is_found_by_its_out_id(channel: AliyunChannel, double: FakeAliyunSms) -> None:
    double.lose_next(1, "hang", seconds=5)
    since = datetime.now(UTC)
    assert isinstance(await channel.sender.send(reminder(31)), Unsure)
    double.release()
    assert await channel.sender.find_sent(reminder(31), since - timedelta(seconds=5)) == "aliyun-out:31"
    assert [q["query"]["PhoneNumber"] for q in double.actions("QuerySendDetails")] == ["13800138000"]
    assert len(double.sends) == 1


async def test_a_send_not_listed_waits_for_the_report_window(channel: AliyunChannel, double: FakeAliyunSms) -> None:
    double.fail_next(1, 503)
    since = datetime.now(UTC)
    await channel.sender.send(reminder(32))  # refused: never accepted
    with pytest.raises(sms.NotYetKnown):
        await channel.sender.find_sent(reminder(32), since)
    channel.sender.clock = lambda: since + sms.REPORT_WINDOW + timedelta(seconds=1)
    assert await channel.sender.find_sent(reminder(32), since) is None


async def test_a_look_up_that_cannot_ask_raises(channel: AliyunChannel, double: FakeAliyunSms) -> None:
    double.fail_queries(1)
    with pytest.raises(Exception):  # noqa: B017 - the SDK's ServerException: the sender tries again later
        await channel.sender.find_sent(reminder(33), datetime.now(UTC) - sms.REPORT_WINDOW * 2)


async def test_a_look_up_pages_through_a_busy_number(channel: AliyunChannel, double: FakeAliyunSms) -> None:
    for n in range(60):
        assert isinstance(await channel.sender.send(reminder(100 + n)), Sent)
    assert await channel.sender.find_sent(reminder(100), datetime.now(UTC) - timedelta(minutes=1)) == "aliyun-out:100"
    assert [q["query"]["CurrentPage"] for q in double.actions("QuerySendDetails")] == ["1", "2"]


def test_the_look_up_covers_every_beijing_date_since_the_attempt() -> None:
    since = datetime(2026, 11, 21, 15, 59, tzinfo=UTC)  # 23:59 in Beijing
    assert sms._send_dates(since, since + timedelta(minutes=2)) == ["20261121", "20261122"]
    assert len(sms._send_dates(since - timedelta(days=90), since)) == sms.QUERY_DAYS + 1


@pytest.mark.parametrize(("values", "named"), [
    (values_for(ALIYUN_SMS_CALLBACK_TOKEN=""), "ALIYUN_SMS_CALLBACK_TOKEN"),
    (values_for(ALIYUN_SMS_CALLBACK_TOKEN="short-token"), "ALIYUN_SMS_CALLBACK_TOKEN"),
    (values_for(ALIYUN_SMS_CALLBACK_TOKEN="has/slash-and-more-chars"), "ALIYUN_SMS_CALLBACK_TOKEN"),
    ({k: v for k, v in values_for().items() if k != "ALIYUN_ACCESS_KEY_ID"}, "ALIYUN_ACCESS_KEY_ID"),
    (values_for(ALIYUN_SMS_SIGN_NAME=" "), "ALIYUN_SMS_SIGN_NAME"),
    (values_for(ALIYUN_SMS_ENDPOINT="ftp://gateway"), "ALIYUN_SMS_ENDPOINT"),
    (values_for(ALIYUN_SMS_ENDPOINT="http://gateway/dysms"), "ALIYUN_SMS_ENDPOINT"),
])
def test_a_configuration_that_cannot_work_is_refused_naming_the_variable(values: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigProblem, match=named):
        PROVIDER.open(ProviderConfig(values, PUBLIC, 5.0, TEMPLATES))


def test_the_endpoint_is_aliyuns_own_over_https_unless_a_url_says_otherwise() -> None:
    assert endpoint_of(None) == ("dysmsapi.aliyuncs.com", "https")
    assert endpoint_of("dysmsapi.ap-southeast-1.aliyuncs.com") == ("dysmsapi.ap-southeast-1.aliyuncs.com", "https")
    assert endpoint_of("http://127.0.0.1:8089") == ("127.0.0.1:8089", "http")
    assert endpoint_of("https://sms-gw.example.gov.cn/") == ("sms-gw.example.gov.cn", "https")
    assert PROVIDER.needs_templates and set(PROVIDER.keys) >= {"ALIYUN_SMS_ENDPOINT", "ALIYUN_SMS_CALLBACK_TOKEN"}


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("isv.BUSINESS_LIMIT_CONTROL", 200, Retry), ("isv.OUT_OF_SERVICE", 200, Retry), ("Throttling.Api", 400, Retry),
    ("isp.RAM_PERMISSION_DENY", 200, Failed), ("InvalidAccessKeyId.NotFound", 404, Failed),
    ("SignatureDoesNotMatch", 400, Failed), ("ServiceUnavailable", 503, Retry), (None, 502, Retry),
    ("isp.SOMETHING", 200, Retry), ("Whatever", 400, Failed),
])
def test_the_error_table(code: str | None, status: int, kind: type) -> None:
    assert isinstance(sms.classify(code, "m", status), kind)
