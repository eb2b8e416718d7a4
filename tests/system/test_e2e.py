"""The whole loop of issue 2, on every backend: a business system posts a completed case; 24 hours
later the citizen gets an SMS at (the fake) Twilio; they reply "4", then the reasons; the rating is
read back through the API."""

from __future__ import annotations

import re

import pytest
from helpers import PUBLIC_URL
from servers import ALL_BACKENDS


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
async def test_post_tick_sms_reply_reasons_read_back(hcp):
    phone = hcp.new_phone()
    hcp.clock.set("2026-11-20T10:00:05+08:00")
    posted = await hcp.post_case(case_no="E2E-0001", phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    assert posted["applicant"]["phone"] == phone[:3] + "****" + phone[-4:]

    assert (await hcp.tick("2026-11-21T09:59:00+08:00"))["reminders"] == 0
    counts = await hcp.tick("2026-11-21T10:00:00+08:00")
    assert (counts["reminders"], counts["sent"]) == (1, 1)
    [sms] = hcp.twilio.sms_to(phone)
    assert sms["to"] == "+86" + phone and sms["from"] == "+8610690012345"
    assert "居民身份证换领" in sms["body"] and "2026年11月20日" in sms["body"]
    [link] = re.findall(re.escape(PUBLIC_URL) + r"/r/[A-Za-z0-9._-]+", sms["body"])

    hcp.clock.set("2026-11-21T10:20:00+08:00")
    ask = await hcp.sms(phone, "4")
    assert "服务态度差" in ask.text and "其他" in ask.text
    done = await hcp.sms(phone, "1 3")
    assert done.status == 200 and done.messages

    case = await hcp.case("E2E-0001")
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["score"], ev["channel"], ev["reasons"], ev["status"]) == \
        ("dissatisfied", 3, "sms", ["attitude", "process"], "valid")
    assert ev["is_default"] is False and ev["is_followup"] is False
    assert ev["created_at"] == "2026-11-21T10:20:00+08:00"
    assert [(r["channel"], r["status"]) for r in case["reminders"]] == [("sms", "sent")]
    assert case["remind_at"] is None and case["default_at"] is None
    assert (await hcp.tick("2026-11-30T10:00:00+08:00"))["defaults"] == 0  # rated: no default
    assert hcp.rt.links.case_id(link.rsplit("/", 1)[1]) == case["id"]
