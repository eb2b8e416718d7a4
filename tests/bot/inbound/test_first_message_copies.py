"""Copies of a person's first message, delivered at once, before they have a conversation row to queue on.

The inbound road serialises a person's messages on their conversation row and recognises a copy by the row's
recent message ids (bot/inbound/conversation.py). A follower who never had a reminder has no row yet, and a
stranger has no contact either: the first gets an empty row inserted before anything is read (a concurrent
copy waits for it, then finds its id), the second claims the message id after its transaction. Either way
each message is acted on once and answered once, on PostgreSQL (row locks) as on SQLite (one writer).
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from corpus_support import said
from helpers import Hcp, SmsReply
from servers import BACKENDS

from dialogs import messages as m

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


async def test_a_followers_first_message_three_times_at_once_rates_once_and_is_answered_once(hcp: Hcp) -> None:
    openid = hcp.new_openid()
    doc = await hcp.post_case(applicant={"wechat_openid": openid, "locale": "zh-CN"})
    xml = hcp.wx_text(openid, "2")

    answers = await asyncio.gather(*(hcp.wechat_post(xml) for _ in range(3)))

    assert [status for status, _, _ in answers] == [200, 200, 200], answers
    contents = sorted(hcp.reply_content(reply) for _, reply, _ in answers)
    assert contents == ["", "", said(hcp, m.THANKS)], answers  # the copies: "success", no reply
    assert [(e["grade"], e["channel"]) for e in await hcp.evaluations(doc["case_no"])] == [("satisfied", "wechat")]
    status, _, raw = await hcp.wechat_post(xml)  # and a copy later still is one
    assert (status, raw) == (200, "success"), raw


async def three_at_once(hcp: Hcp, phone: str, body: str, sid: str) -> list[SmsReply]:
    """One delivery (same MessageSid, body and signature) posted three times concurrently."""
    return list(await asyncio.gather(*(hcp.sms(phone, body, sid=sid) for _ in range(3))))


@pytest.mark.parametrize("body", ["1", "你好"])
async def test_a_strangers_message_three_times_at_once_is_answered_once_and_a_later_copy_not_at_all(
        hcp: Hcp, body: str) -> None:
    phone, sid = hcp.new_phone(), "SM" + secrets.token_hex(16)

    answers = await three_at_once(hcp, phone, body, sid)

    assert [a.status for a in answers] == [200, 200, 200], answers
    assert sorted(len(a.messages) for a in answers) == [0, 0, 1], answers
    later = await hcp.sms(phone, body, sid=sid)  # the copy Twilio sends a minute later
    assert (later.status, later.messages) == (200, []), later


async def test_a_strangers_opt_out_three_times_at_once_is_answered_once_and_a_later_copy_not_at_all(
        hcp: Hcp) -> None:
    phone, sid = hcp.new_phone(), "SM" + secrets.token_hex(16)

    answers = await three_at_once(hcp, phone, "退订", sid)

    assert [a.status for a in answers] == [200, 200, 200], answers
    assert sorted(len(a.messages) for a in answers) == [0, 0, 1], answers
    later = await hcp.sms(phone, "退订", sid=sid)  # the copy Twilio sends a minute later
    assert (later.status, later.messages) == (200, []), later
    case = await hcp.post_case(phone=phone)  # and the opt-out holds: no reminder
    await hcp.tick("2026-11-21T10:01:00+08:00")
    assert hcp.twilio.sms_to(phone) == []
    assert [r["status"] for r in (await hcp.case(case["case_no"]))["reminders"]] == ["skipped"]
