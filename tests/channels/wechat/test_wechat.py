"""The official account over its real callback: wechatpy's WeChatCrypto plays WeChat's server; a local
fake stands in for WeChat's API (customer-service messages, tokens)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from helpers import WX
from servers import BACKENDS

from bot.web import wechat_hooks

XXE = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>"
       "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>")
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
          '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
          "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>"
          "<MsgType>text</MsgType><Content>&d;</Content><MsgId>2</MsgId></xml>")


async def wechat_case(hcp, openid=None, **kw):
    openid = openid or hcp.new_openid()
    doc = await hcp.post_case(applicant={"name": "王五", "locale": "zh-CN", "wechat_openid": openid}, **kw)
    return doc["case_no"], openid


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


async def test_the_url_check_echoes_only_with_a_valid_signature(hcp):
    ts, nonce = "1763690000", "abc"
    good = await hcp.client.get("/webhooks/wechat", params={
        "signature": sign(WX["token"], ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "hello-123"})
    bad = await hcp.client.get("/webhooks/wechat", params={
        "signature": "0" * 40, "timestamp": ts, "nonce": nonce, "echostr": "hello-123"})

    assert (good.status, await good.text()) == (200, "hello-123")
    assert bad.status == 403 and "hello-123" not in await bad.text()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_grade_from_a_person_with_one_unrated_case_rates_it_and_the_reply_is_encrypted(hcp):
    case_no, openid = await wechat_case(hcp)

    status, reply, raw = await hcp.wechat_post(hcp.wx_text(openid, "2"))

    assert status == 200 and "<Encrypt>" in raw and "感谢" not in raw
    assert "感谢" in hcp.reply_content(reply)
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("satisfied", "wechat")


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_bad_grade_then_reasons(hcp):
    case_no, openid = await wechat_case(hcp)

    _, ask, _ = await hcp.wechat_post(hcp.wx_text(openid, "非常不满意"))
    _, done, _ = await hcp.wechat_post(hcp.wx_text(openid, "2，5"))

    assert "服务态度差" in hcp.reply_content(ask) and "其他" in hcp.reply_content(ask)
    assert hcp.reply_content(done)
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["channel"]) == ("very_dissatisfied", ["efficiency", "trips"], "wechat")


async def test_with_several_unrated_cases_the_menu_of_the_oldest_comes_first(hcp):
    openid = hcp.new_openid()
    older, _ = await wechat_case(hcp, openid, completed_at="2026-11-18T09:00:00+08:00")
    newer, _ = await wechat_case(hcp, openid, completed_at="2026-11-20T09:00:00+08:00")

    _, menu, _ = await hcp.wechat_post(hcp.wx_text(openid, "1"))
    await hcp.wechat_post(hcp.wx_text(openid, "3"))

    assert "2026年11月18日" in hcp.reply_content(menu)
    assert [e["grade"] for e in await hcp.evaluations(older)] == ["basically_satisfied"]
    assert await hcp.evaluations(newer) == []


async def test_the_keyword_lists_the_unrated_cases_and_opens_the_oldest(hcp):
    openid = hcp.new_openid()
    older, _ = await wechat_case(hcp, openid, completed_at="2026-11-18T09:00:00+08:00", item_name="营业执照变更")
    await wechat_case(hcp, openid, completed_at="2026-11-20T09:00:00+08:00", item_name="居住证办理")

    _, listing, _ = await hcp.wechat_post(hcp.wx_text(openid, "评价"))
    await hcp.wechat_post(hcp.wx_text(openid, "1"))

    text = hcp.reply_content(listing)
    assert "营业执照变更" in text and "居住证办理" in text and text.index("营业执照变更") < text.index("居住证办理")
    assert [e["grade"] for e in await hcp.evaluations(older)] == ["very_satisfied"]


async def test_a_new_follower_is_greeted_with_their_cases(hcp):
    case_no, openid = await wechat_case(hcp, item_name="出生医学证明")
    stranger = hcp.new_openid()

    _, greeting, _ = await hcp.wechat_post(hcp.wx_event(openid, "subscribe"))
    _, plain_greeting, _ = await hcp.wechat_post(hcp.wx_event(stranger, "subscribe"))

    assert "出生医学证明" in hcp.reply_content(greeting) and "欢迎" in hcp.reply_content(greeting)
    assert "欢迎" in hcp.reply_content(plain_greeting)
    assert await hcp.evaluations(case_no) == []


async def test_an_unknown_openid_gets_a_polite_answer(hcp):
    _, reply, _ = await hcp.wechat_post(hcp.wx_text(hcp.new_openid(), "1"))
    assert hcp.reply_content(reply).strip()


@pytest.mark.parametrize("variant", ["signature", "msg_signature", "plain-in-safe-mode", "stale", "future"])
async def test_forged_or_replayed_requests_are_refused_and_change_nothing(hcp, variant):
    case_no, openid = await wechat_case(hcp)
    xml = hcp.wx_text(openid, "1")
    now = int(hcp.clock().timestamp())
    kwargs = {"signature": {"good": False}, "msg_signature": {"good_msg_signature": False},
              "plain-in-safe-mode": {"encrypted": False}, "stale": {"timestamp": now - 3600},
              "future": {"timestamp": now + 3600}}[variant]

    status, _, _ = await hcp.wechat_post(xml, **kwargs)

    assert status == 403
    assert await hcp.evaluations(case_no) == []


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_repeated_msg_id_is_acted_on_once(hcp):
    case_no, openid = await wechat_case(hcp)

    first = await hcp.wechat_post(hcp.wx_text(openid, "5", msg_id="700000001"))
    again = await hcp.wechat_post(hcp.wx_text(openid, "5", msg_id="700000001"))  # WeChat's retry
    await hcp.wechat_post(hcp.wx_text(openid, "3"))

    assert "服务态度差" in hcp.reply_content(first[1]) and again[2] == "success"
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", ["process"])


async def test_a_repeated_event_is_acted_on_once(hcp):
    _, openid = await wechat_case(hcp)

    first = await hcp.wechat_post(hcp.wx_event(openid, "subscribe", created=1763690001))
    again = await hcp.wechat_post(hcp.wx_event(openid, "subscribe", created=1763690001))

    assert hcp.reply_content(first[1]) and again[2] == "success"


@pytest.mark.parametrize(("name", "xml"), [("xxe", XXE), ("billion-laughs", LAUGHS)])
@pytest.mark.parametrize("where", ["inside-the-encryption", "as-the-envelope"])
async def test_entities_and_dtds_are_refused(hcp, name, xml, where):
    if where == "inside-the-encryption":
        status, _, _ = await hcp.wechat_post(xml)
    else:
        status, _, _ = await hcp.wechat_post(hcp.wx_text("o1", "1"), raw_body=xml.encode())
    assert status == 400


@pytest.mark.parametrize("body", [b"<xml><unclosed>", b"not xml at all", b"<html></html>", b""])
async def test_a_malformed_body_is_400(hcp, body):
    status, _, _ = await hcp.wechat_post(hcp.wx_text("o1", "1"), raw_body=body)
    assert status == 400


async def test_an_image_is_answered_with_a_polite_prompt_and_rates_nothing(hcp):
    case_no, openid = await wechat_case(hcp)
    image = (f"<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>5</CreateTime>"
             f"<MsgType>image</MsgType><PicUrl>http://x/y.jpg</PicUrl><MediaId>m</MediaId><MsgId>9</MsgId></xml>")

    status, reply, _ = await hcp.wechat_post(image)

    assert status == 200 and "只能看懂文字" in hcp.reply_content(reply)
    assert await hcp.evaluations(case_no) == []


async def test_an_event_other_than_subscribe_is_answered_success(hcp):
    _, openid = await wechat_case(hcp)

    status, _, raw = await hcp.wechat_post(hcp.wx_event(openid, "CLICK"))

    assert (status, raw) == (200, "success")


async def test_a_slow_answer_is_success_then_a_customer_service_message(hcp, monkeypatch):
    monkeypatch.setattr(wechat_hooks, "ANSWER_WITHIN", 0)
    case_no, openid = await wechat_case(hcp)

    status, _, raw = await hcp.wechat_post(hcp.wx_text(openid, "1"))
    await asyncio.gather(*list(wechat_hooks._late))

    assert (status, raw) == (200, "success")
    [ev] = await hcp.evaluations(case_no)
    assert ev["grade"] == "very_satisfied"
    [sent] = hcp.wechat.sent_of("custom", openid)
    assert "感谢" in sent["body"]["text"]["content"]


async def test_an_expired_access_token_is_fetched_again_once(hcp, monkeypatch):
    monkeypatch.setattr(wechat_hooks, "ANSWER_WITHIN", 0)
    _, first = await wechat_case(hcp)
    _, second = await wechat_case(hcp)
    await hcp.wechat_post(hcp.wx_text(first, "1"))
    await asyncio.gather(*list(wechat_hooks._late))
    hcp.wechat.expire_tokens()  # WeChat answers 40001 to the token we hold

    await hcp.wechat_post(hcp.wx_text(second, "2"))
    await asyncio.gather(*list(wechat_hooks._late))

    assert len(hcp.wechat.sent_of("custom", second)) == 1
    official = [t for t in hcp.wechat.tokens_issued if t["appid"] == WX["app_id"]]
    assert len(official) == 2  # one at first, one after the 40001


class TestPlainMode:
    @pytest.fixture
    def wechat_safe_mode(self) -> bool:
        return False

    async def test_plain_mode_is_verified_and_answered_in_plain_xml(self, hcp):
        case_no, openid = await wechat_case(hcp)

        status, reply, raw = await hcp.wechat_post(hcp.wx_text(openid, "1"), encrypted=False)
        forged, _, _ = await hcp.wechat_post(hcp.wx_text(openid, "2"), encrypted=False, good=False)

        assert status == 200 and "<Encrypt>" not in raw and "感谢" in hcp.reply_content(reply)
        assert forged == 403
        assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_satisfied"]
