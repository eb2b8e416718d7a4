"""Tencent Cloud SMS as an SMS provider, alone (tests/channel_runner.py): its webhooks' cases, and its sends' cases
against the fake Tencent (tests/fakes/tencent_sms.py) through the official SDK."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channel_runner import InboundCase, SendCase, run_inbound, run_send
from fakes.tencent_sms import FakeTencentSms

from channels.base import ConfigProblem, Failed, Outgoing, ProviderConfig, Retry, Sent, Stopped, Unsure
from channels.registry import SMS_PROVIDERS
from channels.tencent import PROVIDER, TencentChannel
from channels.tencent.sms import ReportPending, classify

PUBLIC = "https://hcp.example.gov.cn"
SECRET_ID, SECRET_KEY = "AKID" + "a" * 32, "s" * 32
APP, SIGN = "1400006666", "汕头市政务服务"
TOKEN = "cb-" + "t" * 29
PHONE, NATIONAL = "+8613800138000", "13800138000"
TEMPLATES = {
    "rating.reminder": ("1700001", ("item", "completed_at", "token")),
    "rating.thanks": ("1700002", ()),
    "rating.ask_reasons": ("1700003", ("reasons",)),
}
APPROVED = {"1700001": 3, "1700002": 0, "1700003": 1}
REMINDER_VALUES = {"item": "居民身份证换领", "agency": "汕头市公安局金平分局", "completed_at": "2026年11月20日",
                   "token": "7.Zx9", "link": "https://hcp.example.gov.cn/r/7.Zx9"}
OK = {"result": 0, "errmsg": "OK"}
AT = 1_795_000_000  # a reply's "time", UNIX seconds


def reply_id(text: str, at: int = AT, mobile: str = NATIONAL, nationcode: str = "86") -> str:
    """The id a reply gets: the same number, text and second are one message (CONTRACT)."""
    return "tencent:" + hashlib.sha256(f"{nationcode}\n{mobile}\n{at}\n{text}".encode()).hexdigest()[:40]


def reply(words: Any, **more: Any) -> str:
    return json.dumps({"extend": "", "mobile": NATIONAL, "nationcode": "86", "sign": SIGN, "text": words, "time": AT,
                       **more}, ensure_ascii=False)


def report(sid: str, status: str = "SUCCESS", errmsg: str = "DELIVRD", **more: Any) -> dict[str, Any]:
    return {"user_receive_time": "2026-11-21 10:05:00", "nationcode": "86", "mobile": NATIONAL,
            "report_status": status, "errmsg": errmsg, "description": "用户短信送达成功", "sid": sid, **more}


REPLY = f"/webhooks/tencent/sms/{TOKEN}/reply"
STATUS = f"/webhooks/tencent/sms/{TOKEN}/status"
JSON = {"Content-Type": "application/json"}


def push(name: str, path: str, body: str | list | dict, **expect: Any) -> InboundCase:
    data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if expect.get("status", 200) == 200:
        expect.setdefault("answer", OK)
    return InboundCase(name, "POST", path, data, headers=JSON, **expect)


INBOUND = [
    push("a reply (上行)", REPLY, reply("1"), answers=["感谢您的评价！"],
         messages=[(PHONE, "1", reply_id("1"), "text")]),
    push("the same reply pushed again is the same message", REPLY, reply("1"),
         messages=[(PHONE, "1", reply_id("1"), "text")]),
    push("the same words a second later are another message", REPLY, reply("1", time=AT + 1),
         messages=[(PHONE, "1", reply_id("1", AT + 1), "text")]),
    push("nationcode + mobile given as numbers, time as a string", REPLY,
         reply("满意", mobile=13800138000, nationcode=86, time=str(AT)),
         messages=[(PHONE, "满意", reply_id("满意"), "text")]),
    push("without extend", REPLY, json.dumps({"mobile": NATIONAL, "nationcode": "86", "sign": SIGN, "text": "2",
                                               "time": AT}), messages=[(PHONE, "2", reply_id("2"), "text")]),
    push("a number we cannot text is answered and not acted on", REPLY, reply("1", mobile="555", nationcode="1"),
         messages=[]),
    push("a reply without time", REPLY, json.dumps({"mobile": NATIONAL, "nationcode": "86", "sign": SIGN,
                                                   "text": "1"}), status=400, messages=[]),
    push("a reply whose text is not a string", REPLY, reply(1), status=400, messages=[]),
    push("a reply that is an array", REPLY, [json.loads(reply("1"))], status=400, messages=[]),
    push("a reply that is not JSON", REPLY, "mobile=13800138000&text=1", status=400, messages=[]),
    push("a reply on another token", f"/webhooks/tencent/sms/{'x' * 32}/reply", reply("1"), status=404, messages=[]),
    push("status reports: SUCCESS and FAIL", STATUS, [report("2019:111"), report("2019:222", "FAIL", "MK:0001")],
         receipts=[("2019:111", "delivered", None, False), ("2019:222", "undelivered", "MK:0001", False)]),
    push("a failure's code is kept cut to the column", STATUS, [report("2019:3", "FAIL", "\x07UNDELIV:0123456789abc")],
         receipts=[("2019:3", "undelivered", "UNDELIV:01234567", False)]),
    push("a report_status the outbox has no word for", STATUS, [report("2019:4", "UNKNOWN")], receipts=[]),
    push("an empty push", STATUS, [], receipts=[]),
    push("a report without sid: nothing of the push is acted on", STATUS,
         [report("2019:5"), {k: v for k, v in report("x").items() if k != "sid"}], status=400, receipts=[]),
    push("a status push that is an object", STATUS, report("2019:6"), status=400, receipts=[]),
    push("a status push that is not JSON", STATUS, "[{", status=400, receipts=[]),
    push("reports on another token", f"/webhooks/tencent/sms/{'x' * 32}/status", [report("2019:7")], status=404,
         receipts=[]),
    InboundCase("a GET is not a push", "GET", REPLY, b"", status=405),
]


@pytest.fixture
async def double() -> AsyncIterator[FakeTencentSms]:
    fake = await FakeTencentSms(SECRET_ID, SECRET_KEY, APP, SIGN, templates=APPROVED).start()
    yield fake
    await fake.close()


def config(double: FakeTencentSms | None, timeout: float = 1.0, **values: str) -> ProviderConfig:
    base = {"TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
            "TENCENT_SMS_SDK_APP_ID": APP, "TENCENT_SMS_SIGN_NAME": SIGN, "TENCENT_SMS_CALLBACK_TOKEN": TOKEN,
            "TENCENT_SMS_ENDPOINT": double.endpoint if double else "http://127.0.0.1:9"}
    return ProviderConfig({k: v for k, v in {**base, **values}.items() if v}, PUBLIC, timeout, TEMPLATES)


@pytest.fixture
async def channel(double: FakeTencentSms) -> AsyncIterator[TencentChannel]:
    opened = PROVIDER.open(config(double))
    assert isinstance(opened, TencentChannel)
    yield opened
    await opened.close()


@pytest.mark.parametrize("inbound", INBOUND, ids=[c.name for c in INBOUND])
async def test_inbound(channel: TencentChannel, inbound: InboundCase) -> None:
    await run_inbound(channel, inbound)


def reminder(outbox_id: int = 41, to: str = PHONE) -> Outgoing:
    return Outgoing(to, "您11月20日在汕头市公安局金平分局办结的…", outbox_id, "rating.reminder", REMINDER_VALUES)


def _sent_with_its_template(double: FakeTencentSms) -> None:
    [send] = double.sends
    assert send["template_id"] == "1700001"
    assert send["params"] == ["居民身份证换领", "2026年11月20日", "7.Zx9"]  # the template's order, no URL
    assert (send["session_context"], send["sign"], send["sdk_app_id"], send["phone"]) == ("41", SIGN, APP, PHONE)
    assert send["region"] == "ap-guangzhou"


def _nothing_sent(double: FakeTencentSms) -> None:
    assert double.sends == []


def refused(code: str) -> Any:
    return lambda d: d.refuse_number(PHONE, code, "refused")


def error(code: str) -> Any:
    return lambda d: d.error_next(code, "refused")


SEND = [
    SendCase("sent with its template, values in order, SessionContext, sign and SdkAppId", reminder(), Sent,
             check=_sent_with_its_template),
    SendCase("a fixed template sends no values", Outgoing(PHONE, "感谢您的评价！", 42, "rating.thanks"), Sent,
             check=lambda d: [s["params"] for s in d.sends] == [[]] or pytest.fail(str(d.sends))),
    SendCase("a key without a template fails", Outgoing(PHONE, "帮助", 43, "rating.help"), Failed,
             error_contains="no tencent template for rating.help", check=lambda d: d.requests == [] or pytest.fail()),
    SendCase("a message without a key fails", Outgoing(PHONE, "text", 44), Failed,
             error_contains="no tencent template"),
    SendCase("a value the template takes is missing", Outgoing(PHONE, "原因", 45, "rating.ask_reasons", {}), Failed,
             error_contains="needs reasons", check=_nothing_sent),
    # A batch API: 200 with a per-number Code.
    SendCase("per number: a daily cap waits", reminder(), Retry, error_contains="LimitExceeded.PhoneNumberDailyLimit",
             arrange=refused("LimitExceeded.PhoneNumberDailyLimit"), check=_nothing_sent),
    SendCase("per number: an hour's cap waits", reminder(), Retry, arrange=refused(
        "LimitExceeded.PhoneNumberOneHourLimit")),
    SendCase("per number: 30 seconds' cap waits", reminder(), Retry, arrange=refused(
        "LimitExceeded.PhoneNumberThirtySecondLimit")),
    SendCase("per number: the same content's daily cap waits", reminder(), Retry, arrange=refused(
        "LimitExceeded.PhoneNumberSameContentDailyLimit")),
    SendCase("per number: a bad number fails", reminder(), Failed, error_contains="IncorrectPhoneNumber",
             arrange=refused("InvalidParameterValue.IncorrectPhoneNumber")),
    SendCase("per number: 免打扰名单 stops", reminder(), Stopped, error_contains="PhoneNumberInBlacklist",
             arrange=refused("FailedOperation.PhoneNumberInBlacklist")),
    # The whole request refused.
    SendCase("an unapproved template fails", reminder(), Failed, error_contains="TemplateIncorrectOrUnapproved",
             arrange=lambda d: d.templates.clear()),
    SendCase("a template whose variables do not match fails", reminder(), Failed,
             error_contains="TemplateParamSetNotMatchApprovedTemplate", arrange=lambda d: d.templates.update(
                 {"1700001": 2})),
    SendCase("an unapproved signature fails", reminder(), Failed, error_contains="SignatureIncorrectOrUnapproved",
             arrange=lambda d: setattr(d, "sign_name", "别的签名")),
    SendCase("an unauthorized operation fails", reminder(), Failed, arrange=error(
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail")),
    SendCase("an invalid parameter fails", reminder(), Failed, arrange=error(
        "InvalidParameterValue.TemplateParameterLengthLimit")),
    SendCase("Tencent's internal error waits", reminder(), Retry, error_contains="InternalError.Timeout",
             arrange=error("InternalError.Timeout")),
    SendCase("Tencent's rate limit waits", reminder(), Retry, arrange=error("RequestLimitExceeded")),
    SendCase("a 5xx waits", reminder(), Retry, error_contains="ServerNetworkError", arrange=lambda d: d.fail_next(1)),
    SendCase("a 503 waits", reminder(), Retry, arrange=lambda d: d.fail_next(1, 503)),
    SendCase("an answer that never comes is unsure", reminder(), Unsure, arrange=lambda d: d.hang_next(1, 30)),
    SendCase("an accepted send whose answer is lost is unsure", reminder(), Unsure,
             arrange=lambda d: d.lose_answer_next(1, 30), check=lambda d: len(d.sends) == 1 or pytest.fail()),
    SendCase("a connection dropped after sending is unsure", reminder(), Unsure,
             arrange=lambda d: d.lose_answer_next(1, drop=True)),
]


@pytest.mark.parametrize("send", SEND, ids=[c.name for c in SEND])
async def test_send(channel: TencentChannel, double: FakeTencentSms, send: SendCase) -> None:
    await run_send(channel, double, send)


async def test_a_wrong_secret_key_fails_and_nothing_is_sent(double: FakeTencentSms) -> None:
    wrong = PROVIDER.open(config(double, TENCENTCLOUD_SECRET_KEY="w" * 32))
    try:
        result = await wrong.sender.send(reminder())
    finally:
        await wrong.close()
    assert isinstance(result, Failed) and "AuthFailure.SignatureFailure" in result.error
    assert double.sends == []


async def test_nothing_listening_is_retried() -> None:
    closed = PROVIDER.open(config(None))  # port 9 (discard) on loopback: refused
    try:
        result = await closed.sender.send(reminder())
    finally:
        await closed.close()
    assert isinstance(result, Retry), result


# --- find_sent: settling an attempt whose answer was lost ------------------------------------------------------

async def test_find_sent_finds_the_attempt_by_its_session_context(channel: TencentChannel,
                                                                  double: FakeTencentSms) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    double.lose_answer_next(1, drop=True)
    assert isinstance(await channel.sender.send(reminder(41)), Unsure)
    double.auto_report = "SUCCESS"
    assert isinstance(await channel.sender.send(reminder(40)), Sent)  # another message to the same number
    [lost, other] = double.sends
    double.report(lost["serial"])

    assert await channel.sender.find_sent(reminder(41), since) == lost["serial"]
    assert await channel.sender.find_sent(reminder(40), since) == other["serial"]
    [pull, *_] = double.calls("PullSmsSendStatusByPhoneNumber")
    assert pull["body"]["PhoneNumber"] == PHONE and pull["body"]["SmsSdkAppId"] == APP


async def test_find_sent_waits_for_the_report_window_before_giving_up(channel: TencentChannel,
                                                                       double: FakeTencentSms) -> None:
    double.lose_answer_next(1, drop=True)
    assert isinstance(await channel.sender.send(reminder(41)), Unsure)
    just_now = datetime.now(UTC) - timedelta(seconds=5)

    with pytest.raises(ReportPending):  # accepted but not reported yet: asking again later, not sending again
        await channel.sender.find_sent(reminder(41), just_now)
    window = channel.sender.report_window
    assert window == timedelta(hours=12)
    long_ago = datetime.now(UTC) - window - timedelta(minutes=1)
    assert await channel.sender.find_sent(reminder(41), long_ago) is None  # the window has passed: send again


async def test_find_sent_raises_when_tencent_cannot_be_asked(channel: TencentChannel, double: FakeTencentSms) -> None:
    double.fail_next(1, 502)
    with pytest.raises(Exception, match="ServerNetworkError"):
        await channel.sender.find_sent(reminder(), datetime.now(UTC) - timedelta(days=1))


# --- configuration ---------------------------------------------------------------------------------------------

def test_registered_as_a_template_provider() -> None:
    assert SMS_PROVIDERS["tencent"] is PROVIDER and PROVIDER.needs_templates
    assert set(PROVIDER.keys) == {"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID",
                                  "TENCENT_SMS_SIGN_NAME", "TENCENT_SMS_REGION", "TENCENT_SMS_ENDPOINT",
                                  "TENCENT_SMS_CALLBACK_TOKEN"}


@pytest.mark.parametrize(("values", "named"), [
    ({"TENCENT_SMS_CALLBACK_TOKEN": ""}, "TENCENT_SMS_CALLBACK_TOKEN"),
    ({"TENCENT_SMS_CALLBACK_TOKEN": "short"}, "TENCENT_SMS_CALLBACK_TOKEN"),
    ({"TENCENT_SMS_CALLBACK_TOKEN": "a/b" * 8}, "TENCENT_SMS_CALLBACK_TOKEN"),
    ({"TENCENTCLOUD_SECRET_KEY": "", "TENCENT_SMS_SIGN_NAME": ""}, "TENCENTCLOUD_SECRET_KEY, TENCENT_SMS_SIGN_NAME"),
    ({"TENCENT_SMS_ENDPOINT": "ftp://x"}, "TENCENT_SMS_ENDPOINT"),
    ({"TENCENT_SMS_ENDPOINT": "http://127.0.0.1:1/v3"}, "TENCENT_SMS_ENDPOINT"),
])
def test_a_configuration_that_cannot_work_is_refused_by_name(values: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigProblem, match=named):
        PROVIDER.open(config(None, **values))


async def test_the_defaults_are_tencents_own_endpoint_and_guangzhou() -> None:
    opened = PROVIDER.open(config(None, TENCENT_SMS_ENDPOINT=""))
    try:
        profile = opened.sender.client.profile
        assert (profile.httpProfile.endpoint, profile.httpProfile.scheme) == ("sms.tencentcloudapi.com", "https")
        assert opened.sender.client.region == "ap-guangzhou"
        assert opened.answers_inline is False and opened.health() is None
    finally:
        await opened.close()


@pytest.mark.parametrize(("code", "kind"), [
    ("LimitExceeded.PhoneNumberCountLimit", Failed), ("LimitExceeded.AppDailyLimit", Retry),
    ("FailedOperation.InsufficientBalanceInSmsPackage", Retry), ("FailedOperation.ContainSensitiveWord", Failed),
    ("UnauthorizedOperation.ServiceSuspendDueToArrears", Failed), ("AuthFailure.SignatureExpire", Failed),
    ("InternalError.SendAndRecvFail", Retry), ("SomethingNew.Tomorrow", Retry),
    ("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", Failed),
])
def test_the_rest_of_the_error_table(code: str, kind: type) -> None:
    assert isinstance(classify(code, "m"), kind)
