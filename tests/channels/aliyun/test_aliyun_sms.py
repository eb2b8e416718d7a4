"""The SMS dialog over Aliyun, end to end: the real app with HAOCHAPING_SMS_PROVIDER=aliyun and a policy that
gives every message key the contract lists its template, the real SDK talking to tests/fakes/aliyun_sms.py,
and Aliyun's pushes (SmsUp, SmsReport) posted to the service's webhooks as Aliyun posts them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.aliyun_sms import FakeAliyunSms
from helpers import PUBLIC_URL, TOKEN, Hcp
from servers import BACKENDS
from sqlmodel import select

from bot.delivery import sms_road
from bot.infra.config import ConfigError, Settings
from bot.infra.runtime import open_runtime
from bot.policy import sms_templates
from store.models import OutboxMessage

AK, SECRET, SIGN = "LTAI5tEndToEnd000001", "end-to-end-secret-0123456789", "汕头政务服务"
CB_TOKEN = "aliyun-push-token-0123456789"
REASONS = "1.服务态度差 2.办事效率低 3.办事流程繁琐 4.办事指南不清楚 5.多次跑动 6.平台不好用 7.收费不合理 8.其他"
LINK = PUBLIC_URL + "/r/${token}"
RATE = "回复1非常满意，2满意，3基本满意，4不满意，5非常不满意"
# Every key the contract lists: (TemplateCode, the values it takes in order, the text Aliyun approved). The
# docs' example set (docs/providers.md) with this service's address.
TEMPLATE_SET: dict[str, tuple[str, tuple[str, ...], str]] = {
    "rating.reminder": ("SMS_480100001", ("item", "completed_at", "token"),
                        f"您${{completed_at}}办结的“${{item}}”，请对本次服务评价：{RATE}，或打开 {LINK} 评价。"),
    "rating.menu": ("SMS_480100002", ("count", "item", "completed_at", "token"),
                    f"您有${{count}}件办件待评价。请先评价${{completed_at}}办结的“${{item}}”："
                    f"{RATE}，或打开 {LINK} 评价。"),
    "rating.reprompt": ("SMS_480100003", ("item",), f"抱歉，没能看懂您的回复。请为“${{item}}”{RATE}。"),
    "rating.use_link": ("SMS_480100004", ("token",), f"抱歉，仍没能看懂您的回复。请打开 {LINK} 在网页上评价。"),
    "rating.thanks": ("SMS_480100005", (), "感谢您的评价！"),
    "rating.ask_reasons": ("SMS_480100006", (), f"很抱歉让您不满意。请回复原因编号，可多选，如“1 3”：{REASONS}"),
    "rating.reprompt_reasons": ("SMS_480100007", (), f"请回复原因编号，多个编号用空格分开，如“1 3”：{REASONS}"),
    "rating.ask_text": ("SMS_480100008", (), "请用一句话告诉我们您遇到的问题。"),
    "rating.thanks_bad": ("SMS_480100009", (), "已记录您的评价，我们将督促整改并回访。如需补充说明，请直接回复文字。"),
    "rating.thanks_text": ("SMS_480100010", (), "已记录您的说明，感谢您的反馈！"),
    "rating.opted_out": ("SMS_480100011", (), "您已退订评价提醒，我们不会再向您发送提醒短信。"),
    "rating.nothing_to_rate": ("SMS_480100012", (), "您目前没有待评价的办件，感谢您的关注。"),
    "rating.unknown_sender": ("SMS_480100013", (),
                              "您好，这里是政务服务“好差评”平台。暂未查到您需要评价的办件，感谢您的关注。"),
    "rating.list": ("SMS_480100014", ("count",), f"您有${{count}}件办件待评价，请先评价最早办结的一件：{RATE}。"),
    "rating.barred": ("SMS_480100015", ("until",),
                      "您的评价权限已暂停至${until}，期间的评价不予记录。如有疑问请咨询12345热线。"),
    "callback.ask": ("SMS_480100016", ("item", "completed_at"),
                     "您对“${item}”（${completed_at}办结）的差评，相关部门已完成整改。对整改结果满意请回复1，基本满意请回复2，不满意请回复3。"),
    "callback.reprompt": ("SMS_480100017", (), "请回复数字：满意回复1，基本满意回复2，不满意回复3。"),
    "callback.thanks": ("SMS_480100018", (), "感谢您的反馈，我们已记录。"),
}
CODE = {key: code for key, (code, _, _) in TEMPLATE_SET.items()}
KEY_OF = {code: key for key, code in CODE.items()}


def policy_toml(leave_out: tuple[str, ...] = ()) -> str:
    lines = []
    for key, (code, params, _) in TEMPLATE_SET.items():
        if key not in leave_out:
            lines += [f'[sms.templates."{key}"]', f'aliyun = "{code}"', f"params = {json.dumps(list(params))}", ""]
    return "\n".join(lines)


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml(), encoding="utf-8")
    return str(path)


@pytest.fixture
async def fake_aliyun() -> AsyncIterator[FakeAliyunSms]:
    fake = await FakeAliyunSms(AK, SECRET, sign_names=[SIGN],
                               templates={code: text for code, _, text in TEMPLATE_SET.values()}).start()
    yield fake
    await fake.close()


def aliyun_values(endpoint: str, **over: str) -> dict[str, str]:
    return {"ALIYUN_ACCESS_KEY_ID": AK, "ALIYUN_ACCESS_KEY_SECRET": SECRET, "ALIYUN_SMS_SIGN_NAME": SIGN,
            "ALIYUN_SMS_ENDPOINT": endpoint, "ALIYUN_SMS_CALLBACK_TOKEN": CB_TOKEN, **over}


@pytest.fixture
def settings(database_url: str, redis_url: tuple[str | None, str], policy_path: str,
             fake_aliyun: FakeAliyunSms) -> Settings:
    """The service with Aliyun as its SMS provider and nothing else (no Twilio, no WeChat)."""
    return Settings(database_url=database_url, redis_url=redis_url[0], redis_prefix=redis_url[1],
                    public_url=PUBLIC_URL, api_token=TOKEN, policy_path=policy_path, scheduler=False, send_timeout=1.0,
                    sms_provider="aliyun", provider_values=aliyun_values(fake_aliyun.endpoint))


async def remind(hcp: Hcp, fake: FakeAliyunSms, phone: str | None = None, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    """A case whose reminder went out through Aliyun (a tick a minute after it was due); the clock just after."""
    phone = phone or hcp.new_phone()
    doc = await hcp.post_case(phone=phone, **kw)
    due = datetime.fromisoformat(doc["remind_at"])
    await hcp.tick(due + timedelta(minutes=1))
    hcp.clock.set(due + timedelta(minutes=5))
    sent = fake.sms_to(phone)
    assert sent, f"no reminder reached the double for {phone[:3]}…"
    return doc["case_no"], phone, sent[-1]


async def reply(hcp: Hcp, fake: FakeAliyunSms, phone: str, text: str, seq: Any, *, times: int = 1) -> None:
    answers = await fake.push_up(hcp.client, CB_TOKEN, [fake.up_item(phone, text, seq)], times=times)
    assert answers == [(200, {"code": 0, "msg": "成功"})] * times
    await sms_road.settled()


def keys_sent(fake: FakeAliyunSms, phone: str) -> list[str]:
    return [KEY_OF[s["template_code"]] for s in fake.sms_to(phone)]


async def reminder_status(hcp: Hcp, case_no: str) -> str:
    [reminder] = (await hcp.case(case_no))["reminders"]
    return reminder["status"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_reminder_goes_out_as_its_template_and_a_reply_rates_the_case(hcp: Hcp,
                                                                               fake_aliyun: FakeAliyunSms) -> None:
    case_no, phone, sent = await remind(hcp, fake_aliyun)

    assert (sent["template_code"], sent["sign_name"]) == (CODE["rating.reminder"], SIGN)
    assert list(sent["params"]) == ["item", "completed_at", "token"]  # by name, in the template's order
    assert sent["params"]["item"] == "居民身份证换领" and sent["params"]["completed_at"] == "2026年11月20日"
    async with hcp.rt.db.read() as session:
        [row] = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))).all()
    assert sent["out_id"] == str(row.id) and row.provider_id == sent["biz_id"]  # OutId ours, BizId theirs
    assert row.body.count(sent["params"]["token"]) == 1  # the token completes the link the text shows
    assert await reminder_status(hcp, case_no) == "sent"

    await reply(hcp, fake_aliyun, "86" + phone, "不满意", 900001)  # 86… is the same person
    await reply(hcp, fake_aliyun, "+86" + phone, "１、３", "900002")

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["channel"]) == ("dissatisfied", ["attitude", "process"], "sms")
    assert keys_sent(fake_aliyun, phone) == ["rating.reminder", "rating.ask_reasons", "rating.thanks_bad"]
    assert fake_aliyun.sms_to(phone)[1]["param_json"] is None  # the reasons are the template's fixed text

    await fake_aliyun.push_report(hcp.client, CB_TOKEN, [fake_aliyun.report_item(sent)])
    assert await reminder_status(hcp, case_no) == "delivered"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_reply_pushed_three_times_is_acted_on_once(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    case_no, phone, _ = await remind(hcp, fake_aliyun)

    await reply(hcp, fake_aliyun, phone, "1", 4242, times=3)
    await reply(hcp, fake_aliyun, phone, "1", "4242")  # the same sequence_id written as text

    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]
    assert keys_sent(fake_aliyun, phone) == ["rating.reminder", "rating.thanks"]


async def test_three_identical_pushes_at_once_are_one_rating(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    case_no, phone, _ = await remind(hcp, fake_aliyun)
    item = fake_aliyun.up_item(phone, "2", 777)

    answers = await asyncio.gather(*(fake_aliyun.push_up(hcp.client, CB_TOKEN, [item]) for _ in range(3)))
    await sms_road.settled()

    assert [a for [a] in answers] == [(200, {"code": 0, "msg": "成功"})] * 3
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]
    assert keys_sent(fake_aliyun, phone) == ["rating.reminder", "rating.thanks"]


async def test_several_replies_in_one_push_are_acted_on_in_their_order(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    case_no, phone, _ = await remind(hcp, fake_aliyun)
    items = [fake_aliyun.up_item(phone, "4", 31), fake_aliyun.up_item(phone, "1 3", 32)]

    assert await fake_aliyun.push_up(hcp.client, CB_TOKEN, items) == [(200, {"code": 0, "msg": "成功"})]
    await sms_road.settled()

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("dissatisfied", ["attitude", "process"])
    assert sorted(keys_sent(fake_aliyun, phone)) == ["rating.ask_reasons", "rating.reminder", "rating.thanks_bad"]


async def test_a_report_of_failure_makes_the_reminder_undelivered(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    case_no, _, sent = await remind(hcp, fake_aliyun)

    item = fake_aliyun.report_item(sent, success=False, err_code="MOBILE_NOT_ON_SERVICE", err_msg="停机")
    await fake_aliyun.push_report(hcp.client, CB_TOKEN, [item], times=2)

    assert await reminder_status(hcp, case_no) == "undelivered"


async def test_an_unsubscribed_report_opts_the_person_out(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    case_no, phone, sent = await remind(hcp, fake_aliyun)

    item = fake_aliyun.report_item(sent, success=False, err_code="MOBILE_IN_BLACK", err_msg="黑名单")
    await fake_aliyun.push_report(hcp.client, CB_TOKEN, [item])
    assert await reminder_status(hcp, case_no) == "failed"

    doc = await hcp.post_case(phone=phone, completed_at="2026-11-21T09:00:00+08:00")
    await hcp.tick(datetime.fromisoformat(doc["remind_at"]) + timedelta(minutes=1))
    assert keys_sent(fake_aliyun, phone) == ["rating.reminder"]  # no reminder for the next case


async def test_a_report_before_the_send_is_recorded_is_applied_then(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    """The outbox's early receipts: Aliyun accepted the message and pushed its report while its answer to SendSms
    was still on the way; the report is kept and applied when the sender records the BizId."""
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)
    fake_aliyun.lose_next(1, "hang", seconds=0.9)  # accepted; the answer held (within send_timeout) until released
    tick = asyncio.ensure_future(hcp.tick(datetime.fromisoformat(doc["remind_at"]) + timedelta(minutes=1)))
    for _ in range(400):
        if fake_aliyun.hanging:
            break
        await asyncio.sleep(0.005)
    [sent] = fake_aliyun.sends
    await fake_aliyun.push_report(hcp.client, CB_TOKEN, [fake_aliyun.report_item(sent)])
    async with hcp.rt.db.read() as session:
        [row] = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))).all()
    assert row.provider_id is None  # not recorded yet
    fake_aliyun.release()
    await tick

    assert await reminder_status(hcp, doc["case_no"]) == "delivered"
    assert not fake_aliyun.actions("QuerySendDetails")


async def test_an_early_report_waits_for_the_sender(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    """The outbox's early receipts: a report whose BizId no message has yet is kept and applied when one has it."""
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)
    fake_aliyun.lose_next(1, "hang", seconds=5)  # accepted; the answer does not come within send_timeout
    due = datetime.fromisoformat(doc["remind_at"])
    await hcp.tick(due + timedelta(minutes=1))
    assert await reminder_status(hcp, doc["case_no"]) not in ("sent", "delivered")
    [sent] = fake_aliyun.sends
    await fake_aliyun.push_report(hcp.client, CB_TOKEN, [fake_aliyun.report_item(sent)])  # before anything knows it
    fake_aliyun.release()

    await hcp.tick(due + timedelta(minutes=3))  # the retry asks QuerySendDetails first: found by its OutId

    assert len(fake_aliyun.sends) == 1 and fake_aliyun.actions("QuerySendDetails")
    assert await reminder_status(hcp, doc["case_no"]) == "delivered"


async def test_a_5xx_then_success_sends_once(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)
    due = datetime.fromisoformat(doc["remind_at"])
    fake_aliyun.fail_next(1, 503, "ServiceUnavailable")

    await hcp.tick(due + timedelta(minutes=1))
    assert fake_aliyun.sms_to(phone) == [] and await reminder_status(hcp, doc["case_no"]) != "sent"
    await hcp.tick(due + timedelta(minutes=2))  # the first backoff is 30 s

    assert len(fake_aliyun.sms_to(phone)) == 1 and len(fake_aliyun.actions("SendSms")) == 2
    assert not fake_aliyun.actions("QuerySendDetails")  # a 503 is no unknown outcome
    assert await reminder_status(hcp, doc["case_no"]) == "sent"


@pytest.mark.parametrize("how", ["hang", "drop"])
async def test_a_time_out_with_the_message_accepted_is_settled_by_query_send_details(hcp: Hcp,
                                                                                     fake_aliyun: FakeAliyunSms,
                                                                                     how: str) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)
    due = datetime.fromisoformat(doc["remind_at"])
    fake_aliyun.lose_next(1, how, seconds=5)

    await hcp.tick(due + timedelta(minutes=1))
    fake_aliyun.release()
    await hcp.tick(due + timedelta(minutes=2))
    await hcp.tick(due + timedelta(minutes=30))

    assert len(fake_aliyun.sms_to(phone)) == 1  # not sent twice
    [query] = fake_aliyun.actions("QuerySendDetails")
    assert query["query"]["PhoneNumber"] == phone
    async with hcp.rt.db.read() as session:
        [row] = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))).all()
    assert (row.status, row.provider_id) == ("sent", f"aliyun-out:{row.id}")


async def test_a_per_number_cap_is_retried_later(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone)
    due = datetime.fromisoformat(doc["remind_at"])
    fake_aliyun.refuse(phone, "isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")

    await hcp.tick(due + timedelta(minutes=1))
    async with hcp.rt.db.read() as session:
        [row] = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))).all()
    assert row.status == "pending" and "isv.BUSINESS_LIMIT_CONTROL" in (row.error or "")
    fake_aliyun.allow(phone)
    await hcp.tick(due + timedelta(minutes=2))

    assert [s["template_code"] for s in fake_aliyun.sms_to(phone)] == [CODE["rating.reminder"]]
    assert await reminder_status(hcp, doc["case_no"]) == "sent"


async def test_a_push_under_another_token_or_malformed_acts_on_nothing(hcp: Hcp, fake_aliyun: FakeAliyunSms) -> None:
    case_no, phone, _ = await remind(hcp, fake_aliyun)
    item = fake_aliyun.up_item(phone, "1", 5150)

    [(wrong, _)] = await fake_aliyun.push_up(hcp.client, "x" * 28, [item])
    [(bad, _)] = await fake_aliyun.push_up(hcp.client, CB_TOKEN, [item, {"phone_number": phone}])
    await sms_road.settled()

    assert (wrong, bad) == (404, 400)
    assert await hcp.evaluations(case_no) == [] and keys_sent(fake_aliyun, phone) == ["rating.reminder"]


async def test_the_twilio_webhooks_are_not_there(hcp: Hcp) -> None:
    resp = await hcp.client.post("/webhooks/twilio/sms", data={"From": "+8613800138000", "Body": "1"})
    assert resp.status == 404


async def test_the_service_refuses_to_start_without_a_template_for_a_contract_key(settings: Settings,
                                                                                   tmp_path: Path) -> None:
    incomplete = tmp_path / "incomplete.toml"
    incomplete.write_text(policy_toml(leave_out=("callback.thanks",)), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"aliyun template for callback\.thanks"):
        await open_runtime(dataclasses.replace(settings, policy_path=str(incomplete)))
    assert set(TEMPLATE_SET) == set(sms_templates.CONTRACT_KEYS)


@pytest.mark.parametrize("token", ["", "too-short"])
async def test_the_service_refuses_to_start_without_a_callback_token(settings: Settings, token: str) -> None:
    values = {**settings.provider_values, "ALIYUN_SMS_CALLBACK_TOKEN": token}
    with pytest.raises(ConfigError, match="ALIYUN_SMS_CALLBACK_TOKEN"):
        await open_runtime(dataclasses.replace(settings, provider_values=values))
