"""The SMS conversation over the real webhook: Twilio's signature, TwiML, dedupe, the dialog's paths."""

from __future__ import annotations

import asyncio
import secrets
import xml.etree.ElementTree as ET

import pytest
from helpers import PUBLIC_URL
from servers import BACKENDS

from bot.policy.rules import DEFAULT_REASONS

REASON_LABELS = list(DEFAULT_REASONS.values())


def labels_in(text: str) -> list[str]:
    return [label for label in REASON_LABELS if label in text]


@pytest.mark.parametrize("variant", ["garbage", "missing", "other-url", "other-token", "tampered-body"])
async def test_a_wrong_signature_is_refused_and_changes_nothing(hcp, variant):
    case_no, phone, _ = await hcp.reminded()
    path = "/webhooks/twilio/sms"
    params = hcp.sms_params(phone, "1")
    signature = {
        "garbage": "bm90LWEtc2lnbmF0dXJl",
        "missing": "",
        "other-url": None,
        "other-token": hcp.sign(path, params, token="f" * 32),
        "tampered-body": hcp.sign(path, {**params, "Body": "5"}),
    }[variant]
    if variant == "other-url":
        from twilio.request_validator import RequestValidator

        signature = RequestValidator(hcp.twilio.auth_token).compute_signature("https://evil.example" + path, params)

    status, _ = await hcp.twilio_post(path, params, signature=signature)

    assert status == 403
    assert await hcp.evaluations(case_no) == []
    assert (await hcp.sms(phone, "1")).status == 200  # the same message, signed properly, is taken
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]


async def test_the_signature_covers_the_query_string(hcp):
    _, phone, _ = await hcp.reminded()
    params = hcp.sms_params(phone, "2")
    signed_without_query = hcp.sign("/webhooks/twilio/sms", params)

    status, _ = await hcp.twilio_post("/webhooks/twilio/sms?x=1", params, signature=signed_without_query)

    assert status == 403


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_twiml_is_xml_and_escapes_what_it_says(hcp):
    _, phone, _ = await hcp.reminded(item_name="<营业执照> & 变更")

    reply = await hcp.sms(phone, "乱码")  # a re-prompt repeats the item's name

    root = ET.fromstring(reply.raw)
    assert root.tag == "Response" and [m.tag for m in root] == ["Message"]
    assert "<营业执照> & 变更" in reply.text
    assert "1" in reply.text and "5" in reply.text


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_repeated_message_sid_is_acted_on_once(hcp):
    case_no, phone, _ = await hcp.reminded()
    sid = "SM" + secrets.token_hex(16)

    first = await hcp.sms(phone, "5", sid=sid)
    again = await hcp.sms(phone, "5", sid=sid)  # Twilio's retry: must not be read as reason 5
    await hcp.sms(phone, "2")

    assert labels_in(first.text) == REASON_LABELS and again.messages == []
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["efficiency"])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_same_message_delivered_three_times_at_once_is_one_rating(hcp):
    case_no, phone, _ = await hcp.reminded()
    sid = "SM" + secrets.token_hex(16)

    replies = await asyncio.gather(*(hcp.sms(phone, "3", sid=sid) for _ in range(3)))

    assert [r.status for r in replies] == [200, 200, 200]
    assert sum(1 for r in replies if r.messages) == 1
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["basically_satisfied"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_bad_grade_reasons_then_an_optional_sentence(hcp):
    case_no, phone, _ = await hcp.reminded()

    ask = await hcp.sms(phone, "不满意")
    stored = await hcp.sms(phone, "１、３")
    [ev] = await hcp.evaluations(case_no)
    more = await hcp.sms(phone, "窗口排队两个小时")

    assert labels_in(ask.text) == REASON_LABELS
    assert not labels_in(stored.text)
    assert (ev["grade"], ev["score"], ev["reasons"], ev["text"]) == ("dissatisfied", 3, ["attitude", "process"], None)
    assert more.messages
    [ev] = await hcp.evaluations(case_no)
    assert ev["text"] == "窗口排队两个小时"


async def test_only_other_needs_words_before_anything_is_stored(hcp):
    case_no, phone, _ = await hcp.reminded()

    await hcp.sms(phone, "5")
    await hcp.sms(phone, "8")  # 其他
    assert await hcp.evaluations(case_no) == []
    await hcp.sms(phone, "。。。")  # no words: asked again
    assert await hcp.evaluations(case_no) == []
    await hcp.sms(phone, "材料被退回三次")

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"]) == ("very_dissatisfied", ["other"], "材料被退回三次")


async def test_two_reprompts_then_the_link(hcp):
    case_no, phone, _ = await hcp.reminded()

    first, second, third = [await hcp.sms(phone, "什么？") for _ in range(3)]

    assert "1" in first.text and "5" in first.text and PUBLIC_URL + "/r/" not in first.text
    assert "1" in second.text and "5" in second.text and PUBLIC_URL + "/r/" not in second.text
    assert PUBLIC_URL + "/r/" in third.text
    assert await hcp.evaluations(case_no) == []
    await hcp.sms(phone, "2")  # the conversation is still open
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_without_a_conversation_the_oldest_case_is_offered_and_the_message_is_not_a_grade(hcp):
    phone = hcp.new_phone()
    older = (await hcp.post_case(phone=phone, completed_at="2026-11-18T09:00:00+08:00"))["case_no"]
    newer = (await hcp.post_case(phone=phone, completed_at="2026-11-20T09:00:00+08:00"))["case_no"]

    menu = await hcp.sms(phone, "1")
    await hcp.sms(phone, "2")
    next_menu = await hcp.sms(phone, "4")

    assert "1" in menu.text and "5" in menu.text and "2026年11月18日" in menu.text
    assert [e["grade"] for e in await hcp.evaluations(older)] == ["satisfied"]
    assert "2026年11月20日" in next_menu.text  # "4" opened the newer case's menu, and rated nothing
    assert await hcp.evaluations(newer) == []


async def test_an_unknown_number_gets_a_polite_answer_and_nothing_is_stored(hcp):
    stranger = hcp.new_phone()

    reply = await hcp.sms(stranger, "1")

    assert reply.status == 200 and reply.messages and reply.messages[0].strip()
    assert hcp.twilio.sms_to(stranger) == []


async def test_a_rated_person_without_cases_left_is_told_so(hcp):
    case_no, phone, _ = await hcp.reminded()
    await hcp.sms(phone, "1")

    reply = await hcp.sms(phone, "1")

    assert reply.messages and len(await hcp.evaluations(case_no)) == 1


@pytest.mark.parametrize("word", ["退订", "TD", "td", " STOP ", "取消", "ＴＤ"])
async def test_opt_out_words_end_the_conversation_and_later_reminders(hcp, word):
    case_no, phone, _ = await hcp.reminded()

    reply = await hcp.sms(phone, word)
    later = await hcp.post_case(phone=phone, completed_at="2026-11-21T09:00:00+08:00")
    await hcp.tick("2026-11-22T09:01:00+08:00")

    assert reply.messages
    assert len(hcp.twilio.sms_to(phone)) == 1
    assert await hcp.evaluations(case_no) == []
    assert [r["status"] for r in (await hcp.case(later["case_no"]))["reminders"]] == ["skipped"]


async def test_a_stranger_who_opts_out_is_never_reminded(hcp):
    phone = hcp.new_phone()
    await hcp.sms(phone, "退订")

    case = await hcp.post_case(phone=phone)
    await hcp.tick("2026-11-21T10:01:00+08:00")

    assert hcp.twilio.sms_to(phone) == []
    assert [r["status"] for r in (await hcp.case(case["case_no"]))["reminders"]] == ["skipped"]


async def test_a_case_rated_elsewhere_ends_the_sms_conversation(hcp):
    case_no, phone, _ = await hcp.reminded()
    await hcp.rate(case_no, "satisfied", "web")

    reply = await hcp.sms(phone, "5")

    assert not labels_in(reply.text)  # not asked for reasons: the conversation is over
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]


async def test_an_expired_conversation_is_not_answered_as_a_grade(hcp):
    phone = hcp.new_phone()
    case_no, _, _ = await hcp.reminded(phone=phone)
    hcp.clock.advance(hours=25)  # the conversation waited 24 hours

    menu = await hcp.sms(phone, "1")  # re-opens with the menu instead of rating

    assert await hcp.evaluations(case_no) == []
    assert "1" in menu.text and "5" in menu.text
    await hcp.sms(phone, "1")
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]


@pytest.mark.parametrize(("locale", "expected"), [
    ("zh-TW", "評價"), ("en-US", "Please rate"), ("zh-CN", "评价"), ("fr-FR", "评价"),
])
async def test_the_person_is_talked_to_in_the_case_locale(hcp, locale, expected):
    phone = hcp.new_phone()
    _, _, reminder = await hcp.reminded(phone=phone, applicant={"name": "Ann", "locale": locale})

    reasons = await hcp.sms(phone, "5")

    assert expected in reminder["body"]
    if locale.startswith("en"):
        assert "November 20, 2026" in reminder["body"]
        assert "Poor attitude" in reasons.text
    else:
        assert "2026年11月20日" in reminder["body"]


async def test_a_request_without_a_sender_is_answered_empty(hcp):
    params = hcp.sms_params("+8613800138000", "1")
    params["From"] = "not-a-number"

    status, raw = await hcp.twilio_post("/webhooks/twilio/sms", params)

    assert status == 200 and ET.fromstring(raw).tag == "Response" and list(ET.fromstring(raw)) == []


async def test_a_webhook_body_over_1_mib_is_413(hcp):
    params = hcp.sms_params(hcp.new_phone(), "x" * (1024 * 1024 + 10))

    status, _ = await hcp.twilio_post("/webhooks/twilio/sms", params)

    assert status == 413
