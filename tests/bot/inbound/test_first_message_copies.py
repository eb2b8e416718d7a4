"""Copies of a person's first message, delivered at once, before they have a conversation row to queue on.

The inbound road serialises a person's messages on their conversation row and recognises a copy by the row's
recent message ids (bot/inbound/conversation.py). A follower who never had a reminder has no row yet, and a
stranger has no contact either: the first gets an empty row inserted before anything is read (a concurrent
copy waits for it, then finds its id), the second claims the message id after its transaction. Either way
each message is acted on once and answered once, on PostgreSQL (row locks) as on SQLite (one writer).
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

import pytest
from helpers import Hcp
from servers import BACKENDS

from dialogs import messages as m

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

SMS_PATH = "/webhooks/twilio/sms"


def said(hcp: Hcp, key: str, **values: str) -> str:
    return hcp.rt.catalogs.text("zh_Hans", key, **values)


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


def delivery(hcp: Hcp, phone: str, body: str) -> Callable[[], Awaitable[tuple[int, list[str]]]]:
    """One signed delivery, to be posted as often as wanted; each post gives (status, the TwiML's texts)."""
    params = hcp.sms_params(phone, body)
    signature = hcp.sign(SMS_PATH, params)

    async def post() -> tuple[int, list[str]]:
        resp = await hcp.client.post(SMS_PATH, data=params, headers={"X-Twilio-Signature": signature})
        root = ET.fromstring(await resp.text())
        return resp.status, ["".join(msg.itertext()) for msg in root.iter("Message")]

    return post


@pytest.mark.parametrize("body", ["1", "你好"])
async def test_a_strangers_message_three_times_at_once_is_answered_once_and_a_later_copy_not_at_all(
        hcp: Hcp, body: str) -> None:
    phone = hcp.new_phone()
    post = delivery(hcp, phone, body)

    answers = await asyncio.gather(*(post() for _ in range(3)))

    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert sorted(len(texts) for _, texts in answers) == [0, 0, 1], answers
    assert await post() == (200, [])  # the copy Twilio sends a minute later


async def test_a_strangers_opt_out_three_times_at_once_is_answered_once_and_a_later_copy_not_at_all(
        hcp: Hcp) -> None:
    phone = hcp.new_phone()
    post = delivery(hcp, phone, "退订")

    answers = await asyncio.gather(*(post() for _ in range(3)))

    assert [status for status, _ in answers] == [200, 200, 200], answers
    assert sorted(len(texts) for _, texts in answers) == [0, 0, 1], answers
    assert await post() == (200, [])  # the copy Twilio sends a minute later
    case = await hcp.post_case(phone=phone)  # and the opt-out holds: no reminder
    await hcp.tick("2026-11-21T10:01:00+08:00")
    assert hcp.twilio.sms_to(phone) == []
    assert [r["status"] for r in (await hcp.case(case["case_no"]))["reminders"]] == ["skipped"]
