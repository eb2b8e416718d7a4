"""Tencent Cloud SMS end to end (issue 20): the real app with HAOCHAPING_SMS_PROVIDER=tencent and a policy giving
every message key a Tencent template, the official SDK talking to the fake Tencent (tests/fakes/tencent_sms.py),
and the fake pushing replies and delivery reports to the service's webhooks as Tencent does."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.tencent_sms import FakeTencentSms
from helpers import PUBLIC_URL, TOKEN, Hcp
from servers import BACKENDS
from sqlmodel import select

from bot.delivery import sms_road
from bot.infra.config import ConfigError, Settings
from bot.infra.runtime import open_runtime
from bot.policy import sms_templates
from channels.tencent.sms import TencentSender
from store.models import OutboxMessage

SECRET_ID, SECRET_KEY = "AKID" + "e" * 32, "k" * 32
APP, SIGN = "1400009999", "汕头市政务服务"
CALLBACK = "hcp-" + "c" * 28

# The template set of docs/providers.md: TemplateId and the values each takes, in the template's order ({1}, {2} …).
TEMPLATES: dict[str, tuple[str, list[str]]] = {
    "rating.reminder": ("1800001", ["completed_at", "item"]),
    "rating.menu": ("1800002", ["count", "completed_at", "item"]),
    "rating.reprompt": ("1800003", ["item"]),
    "rating.use_link": ("1800004", []),
    "rating.thanks": ("1800005", []),
    "rating.ask_reasons": ("1800006", []),
    "rating.reprompt_reasons": ("1800007", []),
    "rating.ask_text": ("1800008", []),
    "rating.thanks_bad": ("1800009", []),
    "rating.thanks_text": ("1800010", []),
    "rating.opted_out": ("1800011", []),
    "rating.nothing_to_rate": ("1800012", []),
    "rating.unknown_sender": ("1800013", []),
    "rating.list": ("1800014", ["count"]),
    "rating.barred": ("1800015", ["until"]),
    "callback.ask": ("1800016", ["item", "completed_at"]),
    "callback.reprompt": ("1800017", []),
    "callback.thanks": ("1800018", []),
    "rating.help": ("1800019", []),
    "rating.grade_menu": ("1800020", ["item"]),
    "rating.text_only": ("1800021", []),
}
ID_KEY = {template_id: key for key, (template_id, _) in TEMPLATES.items()}


def policy_text(leave_out: str | None = None) -> str:
    lines = []
    for key, (template_id, params) in TEMPLATES.items():
        if key != leave_out:
            lines += [f'[sms.templates."{key}"]', f'tencent = "{template_id}"',
                      "params = [" + ", ".join(f'"{p}"' for p in params) + "]", ""]
    return "\n".join(lines)


def test_the_template_set_covers_the_contract() -> None:
    assert set(sms_templates.CONTRACT_KEYS) <= set(TEMPLATES)


@pytest.fixture
async def fake_tencent() -> AsyncIterator[FakeTencentSms]:
    fake = await FakeTencentSms(SECRET_ID, SECRET_KEY, APP, SIGN,
                                templates={tid: len(params) for tid, params in TEMPLATES.values()}).start()
    yield fake
    await fake.close()


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(policy_text(), encoding="utf-8")
    return str(path)


def provider_values(fake: FakeTencentSms, **more: str) -> dict[str, str]:
    values = {"TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
              "TENCENT_SMS_SDK_APP_ID": APP, "TENCENT_SMS_SIGN_NAME": SIGN, "TENCENT_SMS_REGION": "ap-guangzhou",
              "TENCENT_SMS_ENDPOINT": fake.endpoint, "TENCENT_SMS_CALLBACK_TOKEN": CALLBACK, **more}
    return {k: v for k, v in values.items() if v}


@pytest.fixture
def settings(database_url: str, redis_url: tuple[str | None, str], fake_tencent: FakeTencentSms,
             policy_path: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url[0], redis_prefix=redis_url[1],
                    public_url=PUBLIC_URL, api_token=TOKEN, policy_path=policy_path, scheduler=False,
                    sms_provider="tencent", provider_values=provider_values(fake_tencent), send_timeout=5.0)


def base(hcp: Hcp) -> str:
    return str(hcp.client.make_url(""))


def keys(fake: FakeTencentSms, phone: str) -> list[str]:
    """The message keys of what reached `phone`, in order, read from the templates Tencent was asked to send."""
    return [ID_KEY[s["template_id"]] for s in fake.sends_to(phone)]


async def post_case(hcp: Hcp, **kw: Any) -> tuple[str, str, datetime]:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, **kw)
    return doc["case_no"], phone, datetime.fromisoformat(doc["remind_at"])


async def reminded(hcp: Hcp, fake: FakeTencentSms, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    case_no, phone, due = await post_case(hcp, **kw)
    counts = await hcp.tick(due + timedelta(minutes=1))
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    hcp.clock.set(due + timedelta(minutes=5))
    [send] = fake.sends_to(phone)
    return case_no, phone, send


async def reply(hcp: Hcp, fake: FakeTencentSms, phone: str, text: str, **kw: Any) -> list[tuple[int, Any]]:
    answers = await fake.push_reply(base(hcp), CALLBACK, phone, text, **kw)
    await sms_road.settled()
    return answers


async def reminder_status(hcp: Hcp, case_no: str) -> str:
    [item] = (await hcp.case(case_no))["reminders"]
    return item["status"]


async def reminder_row(hcp: Hcp) -> OutboxMessage:
    async with hcp.rt.db.read() as session:
        [row] = (await session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))).all()
    return row


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_rating_over_tencent_from_reminder_to_answers(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    case_no, phone, send = await reminded(hcp, fake_tencent)

    assert send["template_id"] == "1800001" and send["params"] == ["2026年11月20日", "居民身份证换领"]
    assert (send["sign"], send["sdk_app_id"], send["region"], send["phone"]) == (SIGN, APP, "ap-guangzhou",
                                                                                 "+86" + phone)
    assert send["session_context"] == str((await reminder_row(hcp)).id)  # SessionContext: the outbox id
    assert await reminder_status(hcp, case_no) == "sent"

    # A bad grade, its reasons, then a sentence: each answer goes out through SendSms, in the dialog's order.
    assert await reply(hcp, fake_tencent, phone, "4") == [(200, {"result": 0, "errmsg": "OK"})]
    await reply(hcp, fake_tencent, phone, "1 3")
    await reply(hcp, fake_tencent, phone, "窗口排队太久")

    assert keys(fake_tencent, phone) == ["rating.reminder", "rating.ask_reasons", "rating.thanks_bad",
                                        "rating.thanks_text"]
    contexts = [int(s["session_context"]) for s in fake_tencent.sends_to(phone)]
    assert contexts == sorted(set(contexts))  # each answer its own outbox row, in order
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"], ev["channel"]) == ("dissatisfied", ["attitude", "process"],
                                                                      "窗口排队太久", "sms")

    # The same reply pushed three times at once is acted on once.
    other_case, other_phone, _ = await reminded(hcp, fake_tencent, completed_at="2026-11-20T11:00:00+08:00")
    answers = await reply(hcp, fake_tencent, other_phone, "1", times=3, together=True)
    assert answers == [(200, {"result": 0, "errmsg": "OK"})] * 3
    assert [e["grade"] for e in await hcp.evaluations(other_case)] == ["very_satisfied"]
    assert keys(fake_tencent, other_phone) == ["rating.reminder", "rating.thanks"]

    # The delivery report of the reminder, pushed after the send was recorded.
    [reminder_send, *_] = fake_tencent.sends_to(phone)
    status, _ = await fake_tencent.push_status(base(hcp), CALLBACK, [fake_tencent.report(reminder_send["serial"])])
    assert status == 200 and await reminder_status(hcp, case_no) == "delivered"


async def test_a_reply_pushed_three_times_one_after_another_is_acted_on_once(hcp: Hcp,
                                                                            fake_tencent: FakeTencentSms) -> None:
    case_no, phone, _ = await reminded(hcp, fake_tencent)

    await reply(hcp, fake_tencent, phone, "5", times=3)  # not read as reason 5 the second time

    assert keys(fake_tencent, phone) == ["rating.reminder", "rating.ask_reasons"]
    await reply(hcp, fake_tencent, phone, "2")
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["efficiency"])


async def test_a_report_before_the_send_is_recorded_applies_when_it_is(hcp: Hcp,
                                                                      fake_tencent: FakeTencentSms) -> None:
    case_no, phone, due = await post_case(hcp)
    fake_tencent.report_on_send(base(hcp), CALLBACK, "FAIL", "MK:0005", "用户短信接收失败")

    await hcp.tick(due + timedelta(minutes=1))

    [push] = fake_tencent.pushes
    assert (push["status"], push["answer"]) == (200, {"result": 0, "errmsg": "OK"})
    assert await reminder_status(hcp, case_no) == "undelivered"
    assert len(fake_tencent.sends_to(phone)) == 1


async def test_a_report_after_the_send_marks_the_reminder(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    case_no, _, send = await reminded(hcp, fake_tencent)

    await fake_tencent.push_status(base(hcp), CALLBACK, [fake_tencent.report(send["serial"], "FAIL", "MK:0001")])

    assert await reminder_status(hcp, case_no) == "undelivered"
    assert (await reminder_row(hcp)).error == "provider error MK:0001"


async def test_a_5xx_then_success_sends_once(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    case_no, phone, due = await post_case(hcp)
    fake_tencent.fail_next(1, 502)

    first = await hcp.tick(due + timedelta(minutes=1))
    assert first["sent"] == 0 and fake_tencent.sends == [] and await reminder_status(hcp, case_no) == "pending"
    second = await hcp.tick(due + timedelta(minutes=2))
    later = await hcp.tick(due + timedelta(hours=3))

    assert (second["sent"], later["sent"]) == (1, 0)
    assert len(fake_tencent.sends_to(phone)) == 1 and await reminder_status(hcp, case_no) == "sent"
    assert [r["status"] for r in fake_tencent.calls("SendSms")] == [502, 200]


async def test_a_time_out_after_tencent_accepted_is_settled_by_the_pull(hcp: Hcp,
                                                                       fake_tencent: FakeTencentSms) -> None:
    case_no, phone, due = await post_case(hcp)
    sender = hcp.rt.sms
    assert isinstance(sender, TencentSender)
    sender.timeout = 0.2  # the SDK's own read time-out stays 5 s: the service's bound fires first
    fake_tencent.lose_answer_next(1, seconds=30)

    await hcp.tick(due + timedelta(minutes=1))
    [send] = fake_tencent.sends_to(phone)  # Tencent has it; the service does not know
    assert await reminder_status(hcp, case_no) == "pending"

    # Not reported yet, inside the report window: asked again later, not sent again.
    await hcp.tick(due + timedelta(minutes=2))
    assert len(fake_tencent.sends_to(phone)) == 1 and await reminder_status(hcp, case_no) == "pending"

    fake_tencent.report(send["serial"])  # the carrier's report reaches Tencent: the pull finds the attempt
    counts = await hcp.tick(due + timedelta(minutes=5))

    assert counts["sent"] == 1 and len(fake_tencent.sends_to(phone)) == 1
    assert await reminder_status(hcp, case_no) == "sent"
    assert (await reminder_row(hcp)).provider_id == send["serial"]
    pulls = fake_tencent.calls("PullSmsSendStatusByPhoneNumber")
    assert len(pulls) == 2 and {p["body"]["PhoneNumber"] for p in pulls} == {"+86" + phone}


async def test_a_lost_send_the_pull_never_finds_goes_again_after_the_window(hcp: Hcp,
                                                                           fake_tencent: FakeTencentSms) -> None:
    case_no, phone, due = await post_case(hcp)
    fake_tencent.lose_answer_next(1, drop=True)
    await hcp.tick(due + timedelta(minutes=1))
    await hcp.tick(due + timedelta(minutes=2))
    assert len(fake_tencent.sends_to(phone)) == 1

    sender = hcp.rt.sms
    assert isinstance(sender, TencentSender)
    sender.report_window = timedelta(0)  # as if the window had passed
    counts = await hcp.tick(due + timedelta(minutes=5))

    assert counts["sent"] == 1 and len(fake_tencent.sends_to(phone)) == 2
    assert await reminder_status(hcp, case_no) == "sent"


async def test_a_per_number_cap_is_retried_later(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    case_no, phone, due = await post_case(hcp)
    fake_tencent.refuse_number(phone, "LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限",
                               times=1)

    await hcp.tick(due + timedelta(minutes=1))
    row = await reminder_row(hcp)
    assert row.status == "pending" and "LimitExceeded.PhoneNumberDailyLimit" in (row.error or "")
    assert fake_tencent.sends_to(phone) == []

    await hcp.tick(due + timedelta(minutes=2))
    assert len(fake_tencent.sends_to(phone)) == 1 and await reminder_status(hcp, case_no) == "sent"


async def test_a_number_on_tencents_block_list_is_opted_out(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    case_no, phone, due = await post_case(hcp)
    fake_tencent.refuse_number(phone, "FailedOperation.PhoneNumberInBlacklist", "手机号在免打扰名单库中")

    await hcp.tick(due + timedelta(minutes=1))
    later = await hcp.tick(due + timedelta(hours=2))

    assert await reminder_status(hcp, case_no) == "failed" and later["sent"] == 0
    assert [r["status"] for r in fake_tencent.calls("SendSms")] == [200]
    # The person is opted out: their next case gets no reminder.
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T15:00:00+08:00")
    counts = await hcp.tick(datetime.fromisoformat(doc["remind_at"]) + timedelta(minutes=1))
    assert counts["sent"] == 0 and len(fake_tencent.calls("SendSms")) == 1


async def test_a_wrong_token_acts_on_nothing(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    case_no, phone, send = await reminded(hcp, fake_tencent)

    [(status, _)] = await fake_tencent.push_reply(base(hcp), "x" * 32, phone, "1")
    status_push, _ = await fake_tencent.push_status(base(hcp), "x" * 32, [fake_tencent.report(send["serial"])])

    assert (status, status_push) == (404, 404)
    assert await hcp.evaluations(case_no) == [] and await reminder_status(hcp, case_no) == "sent"


async def test_the_twilio_webhooks_are_not_there(hcp: Hcp, fake_tencent: FakeTencentSms) -> None:
    status, _ = await hcp.twilio_post("/webhooks/twilio/sms", hcp.sms_params("13800138000", "1"))
    assert status == 404


async def test_the_service_refuses_to_start_without_a_template_for_a_contract_key(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "incomplete.toml"
    path.write_text(policy_text(leave_out="callback.reprompt"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tencent template for callback\.reprompt"):
        await open_runtime(dataclasses.replace(settings, policy_path=str(path)))


async def test_the_service_refuses_to_start_without_the_callback_token(settings: Settings,
                                                                      fake_tencent: FakeTencentSms) -> None:
    without = provider_values(fake_tencent, TENCENT_SMS_CALLBACK_TOKEN="")
    with pytest.raises(ConfigError, match="TENCENT_SMS_CALLBACK_TOKEN"):
        await open_runtime(dataclasses.replace(settings, provider_values=without))
