"""Real provider payloads (tests/payloads/) replayed against the running app, as the provider sends and signs them.

Twilio: tests/payloads/twilio/*.json, each naming its sources in its `_source`/`_note` keys (dropped before
posting, as Twilio sends no such fields); tests/payloads/FACTS.md §1 for the keyword handling. WeChat:
tests/payloads/wechat/*.xml and *.json, their sources in tests/payloads/wechat/SOURCES.md (one row a file);
FACTS.md §2 for safe mode, the mini-program's JSON push and its customer-service answer.

The only changes made to a payload: the sender (the test's own number or openid), the AccountSid (the fake
Twilio's, whose token signs the request), a fresh MessageSid where one test sends a file more than once; in a
status callback the reminder's own sid, its To (the person) and From (our number); and where a test says so,
one field (Body, From, Recognition, a JSON line) to make a documented variant.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import WX, Hcp
from servers import BACKENDS
from wechatpy.crypto import WeChatCrypto

from bot.web import wechat_hooks

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/sms/status"
OUR_NUMBER = "+8610690012345"  # settings.twilio_sms_from in conftest
FILE_PHONE = "+8613800138000"  # the sender in every Twilio payload
OA_OPENID = "oJx7t-eMv7qV0Ednp0El9BBIKqD9"  # the sender in the official account's payloads (SOURCES.md)
MP_OPENID = "oR4bq9frPoSg-4sfO_WHTq-p-jcp"  # the sender in the mini-program's payloads (SOURCES.md)
MP_GH = "gh_91f6e575920d"  # the mini-program's ToUserName in its payloads
ITEM = "居民身份证换领"  # Hcp.case_body's item_name

TEXT_ONLY = "只能看懂文字"  # rating.text_only
GRADE_MENU = f"请为“{ITEM}”回复1非常满意"  # rating.grade_menu
HELP = "回复TD退订"  # rating.help
OPTED_OUT = "您已退订评价提醒"  # rating.opted_out
THANKS = "感谢您的评价"  # rating.thanks

MODES = pytest.mark.parametrize("wechat_safe_mode", [True, False], ids=["safe", "plain"])
STORING = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


# --- Twilio -------------------------------------------------------------------------------------------------


def twilio_payload(hcp: Hcp, name: str, phone: str | None, *, fresh_sid: bool = False, **fields: str) -> dict[str, str]:
    """tests/payloads/twilio/<name>.json as Twilio posts it: its `_source`/`_note` keys dropped, sent by
    `phone` (+86…; "whatsapp:+86…" stays prefixed) to the fake's account; every other field as in the file."""
    doc = json.loads((PAYLOADS / "twilio" / f"{name}.json").read_text(encoding="utf-8"))
    params = {k: v for k, v in doc.items() if not k.startswith("_")}
    assert all(isinstance(v, str) for v in params.values())  # Twilio posts strings only
    params["AccountSid"] = hcp.twilio.account_sid
    if phone is not None:
        assert FILE_PHONE in params["From"], params["From"]
        params["From"] = params["From"].replace(FILE_PHONE, "+86" + phone)
    if fresh_sid:
        sid = params["MessageSid"][:2] + secrets.token_hex(16)
        params.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    params.update(fields)
    return params


def twiml(raw: str) -> list[str]:
    """The texts of a TwiML answer, which holds nothing but <Message>s."""
    root = ET.fromstring(raw)
    assert root.tag == "Response" and all(child.tag == "Message" for child in root), raw
    return ["".join(message.itertext()) for message in root]


async def post_sms(hcp: Hcp, params: dict[str, str], signature: str | None = None) -> tuple[int, list[str]]:
    status, raw = await hcp.twilio_post(SMS_PATH, params, signature)
    return status, (twiml(raw) if status == 200 else [])


async def later_case_reminders(hcp: Hcp, phone: str, item_name: str = "营业执照变更") -> list[str]:
    """A new case of `phone`, ticked a minute after its reminder is due: its reminders' statuses."""
    doc = await hcp.post_case(phone=phone, completed_at=hcp.clock().isoformat(), item_name=item_name)
    await hcp.tick(datetime.fromisoformat(doc["remind_at"]) + timedelta(minutes=1))
    return [r["status"] for r in (await hcp.case(doc["case_no"]))["reminders"]]


def reminded_about(hcp: Hcp, phone: str, item_name: str) -> bool:
    return any(item_name in m["body"] for m in hcp.twilio.sms_to(phone))


@STORING
async def test_an_inbound_sms_after_a_reminder_is_stored_and_thanked(hcp):
    """sms_inbound.json (webhook-request doc, plugin-webhook's emulation), Body "2"."""
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "sms_inbound", phone, Body="2"))

    assert status == 200 and len(messages) == 1 and THANKS in messages[0]
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("satisfied", "sms")


@pytest.mark.parametrize("forgery", ["other-account", "other-sender"])
async def test_the_inbound_sms_with_a_wrong_signature_is_refused(hcp, forgery):
    case_no, phone, _ = await hcp.reminded()
    params = twilio_payload(hcp, "sms_inbound", phone, Body="2")
    signature = {"other-account": hcp.sign(SMS_PATH, params, token="f" * 32),
                 "other-sender": hcp.sign(SMS_PATH, {**params, "From": FILE_PHONE})}[forgery]

    status, messages = await post_sms(hcp, params, signature)

    assert (status, messages) == (403, [])
    assert await hcp.evaluations(case_no) == []


async def test_the_words_of_an_mms_are_read(hcp):
    """mms_inbound.json: NumMedia 1, a picture with the caption 营业厅照片，非常满意."""
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "mms_inbound", phone))

    assert status == 200 and THANKS in "".join(messages)
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]


async def test_an_mms_without_words_is_told_only_words_are_read_and_asked_again(hcp):
    """mms_no_body.json: a picture, Body empty (Twilio still posts Body=)."""
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "mms_no_body", phone))
    stored_meanwhile = await hcp.evaluations(case_no)
    await hcp.sms(phone, "2")

    assert status == 200 and len(messages) == 2
    assert TEXT_ONLY in messages[0] and GRADE_MENU in messages[1]
    assert stored_meanwhile == []
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]


async def test_optout_type_stop_is_answered_empty_and_ends_reminders(hcp):
    """optout_stop.json: Advanced Opt-Out's OptOutType=STOP (FACTS §1.3, §1.4: Twilio confirms it itself)."""
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "optout_stop", phone))

    assert (status, messages) == (200, [])
    assert await later_case_reminders(hcp, phone) == ["skipped"]
    assert len(hcp.twilio.sms_to(phone)) == 1  # the first reminder only
    assert await hcp.evaluations(case_no) == []


async def test_optout_type_start_is_answered_empty_and_reminders_resume(hcp):
    """optout_stop.json, then optout_start.json (OptOutType=START)."""
    _, phone, _ = await hcp.reminded()
    await post_sms(hcp, twilio_payload(hcp, "optout_stop", phone))

    status, messages = await post_sms(hcp, twilio_payload(hcp, "optout_start", phone))

    assert (status, messages) == (200, [])
    assert await later_case_reminders(hcp, phone, item_name="出生医学证明") == ["sent"]
    assert reminded_about(hcp, phone, "出生医学证明")


async def test_optout_type_help_is_answered_with_help_and_keeps_the_conversation(hcp):
    """optout_help.json: OptOutType=HELP, Body HELP."""
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "optout_help", phone))
    stored_meanwhile = await hcp.evaluations(case_no)
    await hcp.sms(phone, "1")

    assert status == 200 and len(messages) == 1 and HELP in messages[0]
    assert stored_meanwhile == []
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]


# Twilio's default keyword handling (Advanced Opt-Out off, FACTS §1.2): the message reaches the webhook as an
# ordinary inbound SMS, without OptOutType. sms_inbound.json with the keyword as its Body.


@pytest.mark.parametrize("word", ["STOPALL", "CANCEL"])
async def test_twilios_stop_words_without_optout_type_are_answered_empty_and_opt_out(hcp, word):
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "sms_inbound", phone, Body=word))

    assert (status, messages) == (200, [])
    assert await later_case_reminders(hcp, phone) == ["skipped"]
    assert await hcp.evaluations(case_no) == []


@pytest.mark.parametrize("word", ["START", "UNSTOP"])
async def test_twilios_start_words_without_optout_type_opt_back_in(hcp, word):
    _, phone, _ = await hcp.reminded()
    await post_sms(hcp, twilio_payload(hcp, "sms_inbound", phone, fresh_sid=True, Body="STOPALL"))
    assert await later_case_reminders(hcp, phone) == ["skipped"]

    status, messages = await post_sms(hcp, twilio_payload(hcp, "sms_inbound", phone, fresh_sid=True, Body=word))

    assert (status, messages) == (200, [])
    assert await later_case_reminders(hcp, phone, item_name="出生医学证明") == ["sent"]
    assert reminded_about(hcp, phone, "出生医学证明")


async def test_twilios_info_word_without_optout_type_is_answered_with_help(hcp):
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "sms_inbound", phone, Body="INFO"))

    assert status == 200 and len(messages) == 1 and HELP in messages[0]
    assert await hcp.evaluations(case_no) == []


@pytest.mark.parametrize("word", ["退订", "STOP"])
async def test_our_own_opt_out_words_without_optout_type_are_confirmed(hcp, word):
    case_no, phone, _ = await hcp.reminded()

    status, messages = await post_sms(hcp, twilio_payload(hcp, "sms_inbound", phone, Body=word))

    assert status == 200 and len(messages) == 1 and OPTED_OUT in messages[0]
    assert await later_case_reminders(hcp, phone) == ["skipped"]
    assert await hcp.evaluations(case_no) == []


@pytest.mark.parametrize(("sender", "reason"), [("whatsapp", "whatsapp"), ("empty", "From")])
async def test_a_sender_we_cannot_text_is_answered_empty_and_logged_once_masked(hcp, caplog, sender, reason):
    """whatsapp_inbound.json (From whatsapp:+86…), and sms_inbound.json with From empty."""
    case_no, phone, _ = await hcp.reminded()
    params = (twilio_payload(hcp, "whatsapp_inbound", phone) if sender == "whatsapp"
              else twilio_payload(hcp, "sms_inbound", None, From=""))
    caplog.set_level(logging.INFO, logger="haochaping.twilio")

    status, messages = await post_sms(hcp, params)

    assert (status, messages) == (200, [])
    assert await hcp.evaluations(case_no) == []
    [record] = [r for r in caplog.records if r.name == "haochaping.twilio"]
    assert record.levelno == logging.INFO and reason in record.getMessage()
    assert phone not in record.getMessage()
    if sender == "whatsapp":
        assert phone[:3] + "****" + phone[-4:] in record.getMessage()


@STORING
@pytest.mark.parametrize("outcome", ["delivered", "undelivered"])
async def test_a_status_callback_records_the_reminders_delivery(hcp, outcome):
    """sms_status_delivered.json / sms_status_undelivered.json (ErrorCode 30003), for the reminder's own sid."""
    case_no, phone, sms = await hcp.reminded()
    sid = sms["sid"]
    params = twilio_payload(hcp, f"sms_status_{outcome}", None, MessageSid=sid, SmsSid=sid, To="+86" + phone,
                            From=OUR_NUMBER)

    status, _ = await hcp.twilio_post(STATUS_PATH, params)

    assert status == 204
    assert [r["status"] for r in (await hcp.case(case_no))["reminders"]] == [outcome]


async def test_a_status_callback_with_a_wrong_signature_is_refused(hcp):
    case_no, phone, sms = await hcp.reminded()
    params = twilio_payload(hcp, "sms_status_undelivered", None, MessageSid=sms["sid"], SmsSid=sms["sid"],
                            To="+86" + phone, From=OUR_NUMBER)

    status, _ = await hcp.twilio_post(STATUS_PATH, params, signature=hcp.sign(STATUS_PATH, params, token="f" * 32))

    assert status == 403
    assert [r["status"] for r in (await hcp.case(case_no))["reminders"]] == ["sent"]


# --- WeChat: the official account ---------------------------------------------------------------------------


def wechat_payload(name: str, openid: str) -> str:
    """tests/payloads/wechat/<name> as WeChat posts it, from `openid`; every other byte as in the file (each test
    has state of its own, so the files' MsgIds dedupe nothing across tests)."""
    text = (PAYLOADS / "wechat" / name).read_text(encoding="utf-8")
    placeholder = MP_OPENID if name.startswith("mp_") else OA_OPENID
    assert text.count(placeholder) == 1, name
    return text.replace(placeholder, openid)


async def oa_case(hcp: Hcp, **kw: Any) -> tuple[str, str]:
    openid = hcp.new_openid()
    doc = await hcp.post_case(applicant={"name": "王五", "locale": "zh-CN", "wechat_openid": openid}, **kw)
    return doc["case_no"], openid


@STORING
@MODES
async def test_a_text_rates_the_one_unrated_case(hcp, wechat_safe_mode):
    """text.xml (DOC-RECV, CAPTURE-OA TextDemo): 非常满意."""
    case_no, openid = await oa_case(hcp)

    status, reply, raw = await hcp.wechat_post(wechat_payload("text.xml", openid), encrypted=wechat_safe_mode)

    assert status == 200 and ("<Encrypt>" in raw) is wechat_safe_mode
    assert THANKS in hcp.reply_content(reply)
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "wechat")


@MODES
async def test_a_recognised_voice_is_read_as_its_words(hcp, wechat_safe_mode):
    """voice_recognition.xml (DOC-RECV 语音识别, CAPTURE-OA VoiceDemo): Recognition 非常满意。"""
    case_no, openid = await oa_case(hcp)

    status, reply, _ = await hcp.wechat_post(wechat_payload("voice_recognition.xml", openid),
                                             encrypted=wechat_safe_mode)

    assert status == 200 and THANKS in hcp.reply_content(reply)
    assert [(e["grade"], e["channel"]) for e in await hcp.evaluations(case_no)] == [("very_satisfied", "wechat")]


def voice_with_empty_recognition(openid: str) -> str:
    """voice_recognition.xml with <Recognition><![CDATA[]]></Recognition>: as real captures show it (FACTS §2 (d))."""
    xml = wechat_payload("voice_recognition.xml", openid)
    assert "<Recognition><![CDATA[非常满意。]]></Recognition>" in xml
    return xml.replace("<Recognition><![CDATA[非常满意。]]></Recognition>", "<Recognition><![CDATA[]]></Recognition>")


@MODES
@pytest.mark.parametrize("voice", ["voice.xml", "empty-recognition"])
async def test_a_voice_without_recognised_words_gets_the_polite_prompt(hcp, wechat_safe_mode, voice):
    """voice.xml (no Recognition: 接收语音识别结果 off), and a voice whose Recognition is empty."""
    case_no, openid = await oa_case(hcp)
    xml = wechat_payload(voice, openid) if voice == "voice.xml" else voice_with_empty_recognition(openid)

    status, reply, _ = await hcp.wechat_post(xml, encrypted=wechat_safe_mode)

    assert status == 200 and TEXT_ONLY in hcp.reply_content(reply)
    assert await hcp.evaluations(case_no) == []


@pytest.mark.parametrize("wechat_safe_mode", [True, False], ids=["safe", "plain"])
@pytest.mark.parametrize("name", ["image.xml", "video.xml", "shortvideo.xml", "location.xml", "link.xml"])
async def test_media_get_the_polite_prompt_and_the_question_again(hcp, wechat_safe_mode, name):
    case_no, openid = await oa_case(hcp)

    status, reply, _ = await hcp.wechat_post(wechat_payload(name, openid), encrypted=wechat_safe_mode)

    content = hcp.reply_content(reply)
    assert status == 200 and TEXT_ONLY in content and ITEM in content
    assert await hcp.evaluations(case_no) == []


async def test_a_tap_on_a_menu_message_is_read_as_its_text(hcp):
    """text_msgmenu.xml (DOC-KF 发送菜单消息): the tapped item 满意, with <bizmsgmenuid>."""
    case_no, openid = await oa_case(hcp)

    status, reply, _ = await hcp.wechat_post(wechat_payload("text_msgmenu.xml", openid))

    assert status == 200 and THANKS in hcp.reply_content(reply)
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]


@pytest.mark.parametrize("name", ["event_click.xml", "event_location.xml", "event_scan.xml",
                                  "event_templatesendjobfinish.xml", "event_unsubscribe.xml", "event_view.xml"])
async def test_events_other_than_subscribe_are_answered_success(hcp, name):
    case_no, openid = await oa_case(hcp)

    status, reply, raw = await hcp.wechat_post(wechat_payload(name, openid))
    await asyncio.gather(*list(wechat_hooks._late))

    assert (status, reply, raw) == (200, None, "success")
    assert await hcp.evaluations(case_no) == []
    assert hcp.wechat.sent == []


async def test_a_new_follower_with_a_case_is_greeted(hcp):
    """event_subscribe.xml (DOC-EVENT, WECHATPY test_parse_subscribe_event)."""
    case_no, openid = await oa_case(hcp, item_name="出生医学证明")

    status, reply, raw = await hcp.wechat_post(wechat_payload("event_subscribe.xml", openid))

    content = hcp.reply_content(reply)
    assert status == 200 and raw != "success" and "欢迎" in content and "出生医学证明" in content
    assert await hcp.evaluations(case_no) == []


async def test_a_repeated_msg_id_is_acted_on_once(hcp):
    """text.xml twice with its own MsgId: WeChat's retry of a message it got no answer to in 5 s."""
    case_no, openid = await oa_case(hcp)
    xml = wechat_payload("text.xml", openid)

    _, first, _ = await hcp.wechat_post(xml)
    _, again, raw = await hcp.wechat_post(xml)

    assert THANKS in hcp.reply_content(first)
    assert (again, raw) == (None, "success")  # not "nothing left to rate": the retry is not read again
    assert len(await hcp.evaluations(case_no)) == 1


# --- WeChat: a mini-program's message push on the same URL --------------------------------------------------


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


async def push(hcp: Hcp, body: str, *, safe: bool, app_id: str = WX["mp_app_id"], encrypt_type: bool = True,
               good_msg_signature: bool = True) -> tuple[int, str, str]:
    """POST /webhooks/wechat as WeChat pushes for a mini-program (FACTS §2 (a)): in plain mode `body` as is;
    in safe mode `body` sealed with `app_id` in an envelope of the same format (JSON or XML), the query
    carrying encrypt_type=aes and msg_signature. (status, raw answer, its plaintext when encrypted)."""
    is_json = body.lstrip().startswith(("{", "["))
    ts, nonce = str(int(hcp.clock().timestamp())), secrets.token_hex(5)
    sender = re.search(r"FromUserName(?:><!\[CDATA\[|\": \")([\w-]+)", body)  # WeChat names it in the query too
    query = {"signature": signature(WX["token"], ts, nonce), "timestamp": ts, "nonce": nonce,
             "openid": sender.group(1) if sender else ""}
    data = body
    if safe:
        sealed = WeChatCrypto(WX["token"], WX["aes_key"], app_id).encrypt_message(body, nonce, ts)
        encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", sealed, re.S).group(1)
        msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", sealed, re.S).group(1)
        if encrypt_type:
            query.update(encrypt_type="aes", msg_signature=msg_signature if good_msg_signature else "0" * 40)
        data = (json.dumps({"ToUserName": MP_GH, "Encrypt": encrypt}) if is_json else
                f"<xml><ToUserName><![CDATA[{MP_GH}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    content_type = "application/json" if is_json else "text/xml"
    resp = await hcp.client.post("/webhooks/wechat", params=query, data=data.encode(),
                                 headers={"Content-Type": content_type})
    raw = await resp.text()
    plain = raw
    if resp.status == 200 and "Encrypt" in raw:
        fields = json.loads(raw) if raw.lstrip().startswith("{") else {
            k: re.search(rf"<{k}>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</{k}>", raw, re.S).group(1)
            for k in ("Encrypt", "MsgSignature", "TimeStamp", "Nonce")}
        plain = WeChatCrypto(WX["token"], WX["aes_key"], app_id).decrypt_message(
            {"Encrypt": fields["Encrypt"]}, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
    return resp.status, raw, plain


async def mp_case(hcp: Hcp) -> tuple[str, str]:
    openid = hcp.new_openid()
    doc = await hcp.post_case(applicant={"name": "赵六", "locale": "zh-CN", "mp_openid": openid})
    return doc["case_no"], openid


async def custom_texts(hcp: Hcp, openid: str) -> list[str]:
    """The customer-service texts the mini-program sent `openid`, once the replies sent late have gone."""
    await asyncio.gather(*list(wechat_hooks._late))
    sent = hcp.wechat.sent_of("custom", openid)
    assert all(s["appid"] == WX["mp_app_id"] for s in sent), sent
    return [s["body"]["text"]["content"] for s in sent]


@STORING
@MODES
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_mini_program_text_is_rated_and_thanked_by_customer_service_message(hcp, wechat_safe_mode, fmt):
    """mp_text.json / mp_text.xml (DOC-MP-RECV 文本消息, CAPTURE-MP TextDemo): 非常满意."""
    case_no, openid = await mp_case(hcp)

    status, raw, _ = await push(hcp, wechat_payload(f"mp_text.{fmt}", openid), safe=wechat_safe_mode)
    texts = await custom_texts(hcp, openid)

    assert (status, raw) == (200, "success")
    assert len(texts) == 1 and THANKS in texts[0]
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "miniprogram")


@MODES
@pytest.mark.parametrize("name", ["mp_image.json", "mp_image.xml", "mp_miniprogrampage.json",
                                  "mp_miniprogrampage.xml"])
async def test_a_mini_program_picture_or_card_gets_the_polite_prompt_by_customer_service_message(
        hcp, wechat_safe_mode, name):
    """mp_image.* (DOC-MP-RECV 图片消息), mp_miniprogrampage.* (DOC-MP-RECV 小程序卡片消息). In plain mode an XML
    push is told from the official account's by its openid, known to the mini-program only."""
    case_no, openid = await mp_case(hcp)

    status, raw, _ = await push(hcp, wechat_payload(name, openid), safe=wechat_safe_mode)
    texts = await custom_texts(hcp, openid)

    assert (status, raw) == (200, "success")
    [text] = texts  # one message holding the apology, then the question
    assert TEXT_ONLY in text and ITEM in text and text.index(TEXT_ONLY) < text.index(ITEM)
    assert await hcp.evaluations(case_no) == []


async def test_the_replies_to_one_push_arrive_in_the_order_they_were_written(hcp, monkeypatch):
    """mp_image.json: the answer is the apology (rating.text_only), then the question. A slow network on the
    first must not let the second overtake it: both go as one customer-service message."""
    _, openid = await mp_case(hcp)
    send_text = hcp.rt.mp_api.send_text

    async def jittery(to: str, text: str) -> Any:
        if TEXT_ONLY in text:
            await asyncio.sleep(0.2)
        return await send_text(to, text)

    monkeypatch.setattr(hcp.rt.mp_api, "send_text", jittery)

    await push(hcp, wechat_payload("mp_image.json", openid), safe=True)
    texts = await custom_texts(hcp, openid)

    [text] = texts
    assert text.index(TEXT_ONLY) < text.index(ITEM)


@MODES
@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_entering_the_mini_program_chat_is_answered_success_and_nothing_is_sent(hcp, wechat_safe_mode, fmt):
    """mp_event_user_enter_tempsession.* (DOC-MP-RECV 进入会话事件, CAPTURE-MP)."""
    _, openid = await mp_case(hcp)

    status, raw, _ = await push(hcp, wechat_payload(f"mp_event_user_enter_tempsession.{fmt}", openid),
                                safe=wechat_safe_mode)
    await asyncio.gather(*list(wechat_hooks._late))

    assert (status, raw) == (200, "success")
    assert hcp.wechat.sent == []


async def test_safe_mode_xml_sealed_with_the_official_accounts_appid_is_the_official_accounts(hcp):
    """mp_text.xml sealed with the official account's AppId: the AppId inside says whose it is (FACTS §2 (a)),
    so it is answered passively, encrypted."""
    case_no, openid = await oa_case(hcp)

    status, raw, plain = await push(hcp, wechat_payload("mp_text.xml", openid), safe=True, app_id=WX["app_id"])
    await asyncio.gather(*list(wechat_hooks._late))

    assert status == 200 and "<Encrypt>" in raw and THANKS not in raw
    assert THANKS in Hcp.reply_content(plain)
    assert hcp.wechat.sent == []
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "wechat")


async def test_safe_mode_json_sealed_with_the_official_accounts_appid_is_the_official_accounts(hcp):
    """mp_text.json sealed with the official account's AppId. An official account's push is XML only (FACTS
    §2 (e)), so no passive reply in XML is given to a JSON push: "success", then the official account's
    customer-service message."""
    case_no, openid = await oa_case(hcp)

    status, raw, _ = await push(hcp, wechat_payload("mp_text.json", openid), safe=True, app_id=WX["app_id"])
    await asyncio.gather(*list(wechat_hooks._late))

    assert (status, raw) == (200, "success")
    [sent] = hcp.wechat.sent_of("custom", openid)
    assert sent["appid"] == WX["app_id"] and THANKS in sent["body"]["text"]["content"]
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("very_satisfied", "wechat")


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_safe_mode_a_message_sealed_with_another_appid_is_400(hcp, fmt):
    case_no, openid = await mp_case(hcp)

    status, _, _ = await push(hcp, wechat_payload(f"mp_text.{fmt}", openid), safe=True, app_id="wx9999999999999999")

    assert status == 400
    assert await hcp.evaluations(case_no) == []


async def test_safe_mode_a_json_push_without_encrypt_type_is_refused(hcp):
    """mp_text.json posted plain, and sealed but without encrypt_type=aes in the query."""
    case_no, openid = await mp_case(hcp)
    body = wechat_payload("mp_text.json", openid)

    plain, _, _ = await push(hcp, body, safe=False)
    unmarked, _, _ = await push(hcp, body, safe=True, encrypt_type=False)

    assert (plain, unmarked) == (403, 403)
    assert await hcp.evaluations(case_no) == []


async def test_safe_mode_a_json_push_with_a_wrong_msg_signature_is_refused(hcp):
    case_no, openid = await mp_case(hcp)

    status, _, _ = await push(hcp, wechat_payload("mp_text.json", openid), safe=True, good_msg_signature=False)

    assert status == 403
    assert await hcp.evaluations(case_no) == []


def without_sender(openid: str) -> str:
    """mp_text.json without its FromUserName line."""
    text = wechat_payload("mp_text.json", openid)
    line = f'  "FromUserName": "{openid}",\n'
    assert line in text
    return text.replace(line, "")


@MODES
@pytest.mark.parametrize("bad", ["truncated", "array", "no-sender"])
async def test_a_json_push_that_is_not_a_message_object_is_400(hcp, wechat_safe_mode, bad):
    case_no, openid = await mp_case(hcp)
    body = {"truncated": '{"ToUserName":', "array": f"[{wechat_payload('mp_text.json', openid)}]",
            "no-sender": without_sender(openid)}[bad]

    status, _, _ = await push(hcp, body, safe=wechat_safe_mode)
    await asyncio.gather(*list(wechat_hooks._late))

    assert status == 400
    assert await hcp.evaluations(case_no) == []
    assert hcp.wechat.sent == []
