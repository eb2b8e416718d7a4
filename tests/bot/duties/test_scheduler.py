"""The scheduler's timed duties: reminders (edges, quiet hours, exactly once, opt-out, one conversation
at a time) and default ratings (working days, National Day, policy files, calendar overrides), through
`bot.duties.scheduler.tick` (the code path of `haochaping tick --now`) and through the CLI itself.

CONTRACT "Install and run", "Policy file", "Rules of detail", "Counting days"; ARCHITECTURE invariant 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
from helpers import PUBLIC_URL, Hcp, cst
from servers import BACKENDS

from bot.duties import scheduler
from bot.infra.config import KEYS, Settings
from bot.infra.runtime import open_runtime
from bot.rating.intake import CaseIn, ingest

storing = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

SMS_FROM = "+8610690012345"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/r/([0-9a-z]+\.[A-Za-z0-9_-]+)")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def e164(phone: str) -> str:
    return "+86" + phone


async def reminders_of(hcp: Hcp, case_no: str) -> list[dict[str, Any]]:
    return (await hcp.case(case_no))["reminders"]


async def post_cases(hcp: Hcp, n: int, completed_at: str) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        phone = hcp.new_phone()
        doc = await hcp.post_case(phone=phone, completed_at=completed_at)
        out.append((doc["case_no"], phone))
    return out


# --- the reminder and its edge ------------------------------------------------------------------


@storing
async def test_reminder_due_at_exactly_24_hours_with_the_contract_content(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    assert at(doc["remind_at"]) == cst("2026-11-21T10:00")

    counts = await hcp.tick(at("2026-11-21T09:59:59+08:00"))
    assert counts == {"reminders": 0, "defaults": 0, "overdue": 0, "sent": 0, "calls": 0, "stats_days": 1,
                      "published": 0, "reported": 0, "signals": 0, "supervisory_calls": 0,
                      "appeals_overdue": 0, "contacts_overdue": 0}
    assert hcp.twilio.messages == []
    assert await reminders_of(hcp, doc["case_no"]) == []

    counts = await hcp.tick(cst("2026-11-21T10:00"))
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    assert len(hcp.twilio.messages) == 1
    msg = hcp.twilio.messages[0]
    assert msg["to"] == e164(phone)
    assert msg["from"] == SMS_FROM
    assert msg["status_callback"] == PUBLIC_URL + "/webhooks/twilio/sms/status"
    body = msg["body"]
    assert re.search(r"1\D{0,4}非常满意", body), body
    assert re.search(r"5\D{0,4}非常不满意", body), body
    assert "居民身份证换领" in body
    assert "2026年11月20日" in body
    link = LINK.search(body)
    assert link, body
    assert hcp.rt.links.case_id(link.group(1)) == doc["id"]

    reminders = await reminders_of(hcp, doc["case_no"])
    assert [(r["channel"], r["status"], r["attempts"]) for r in reminders] == [("sms", "sent", 1)]
    assert (await hcp.case(doc["case_no"]))["remind_at"] is None


# --- quiet hours -------------------------------------------------------------------------------


@storing
async def test_quiet_hours_make_the_reminder_wait_for_8_am(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T22:30:00+08:00")
    assert at(doc["remind_at"]) == cst("2026-11-22T08:00")

    for instant in ("2026-11-21T22:30", "2026-11-22T00:00", "2026-11-22T07:59:59"):
        counts = await hcp.tick(cst(instant))
        assert counts["reminders"] == 0 and counts["sent"] == 0, (instant, counts)
    assert hcp.twilio.sms_to(phone) == []

    counts = await hcp.tick(cst("2026-11-22T08:00"))
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    assert len(hcp.twilio.sms_to(phone)) == 1


@pytest.mark.parametrize(("completed", "remind"), [
    ("2026-11-20T20:59:59", "2026-11-21T20:59:59"),  # just before 21:00: not quiet
    ("2026-11-20T21:00:00", "2026-11-22T08:00:00"),  # 21:00 is inside
    ("2026-11-20T07:59:00", "2026-11-21T08:00:00"),  # 07:59 is inside: the same morning at 08:00
    ("2026-11-20T08:00:00", "2026-11-21T08:00:00"),  # 08:00 is outside
])
@storing
async def test_quiet_hour_edges_of_remind_at(hcp: Hcp, completed: str, remind: str) -> None:
    doc = await hcp.post_case(phone=hcp.new_phone(), completed_at=completed + "+08:00")
    assert at(doc["remind_at"]) == cst(remind)


@storing
async def test_a_tick_inside_quiet_hours_sends_no_reminder_even_for_an_old_due_case(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-18T10:00:00+08:00")
    assert at(doc["remind_at"]) == cst("2026-11-19T10:00")  # long overdue when the ticks come
    for instant in ("2026-11-21T21:00", "2026-11-21T23:30", "2026-11-22T03:00", "2026-11-22T07:59:59"):
        counts = await hcp.tick(cst(instant))
        assert counts["reminders"] == 0 and counts["sent"] == 0, (instant, counts)
    assert hcp.twilio.messages == []
    counts = await hcp.tick(cst("2026-11-22T08:00"))
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    assert len(hcp.twilio.sms_to(phone)) == 1


# --- exactly once --------------------------------------------------------------------------------


@storing
async def test_repeated_later_and_earlier_ticks_send_the_reminder_once(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    due = cst("2026-11-21T10:00")

    first = await hcp.tick(due + timedelta(minutes=5))
    assert first["reminders"] == 1 and first["sent"] == 1, first
    for instant in (due + timedelta(minutes=5),  # the same tick again
                    due + timedelta(hours=3),  # a later one
                    due,  # an earlier one than the previous: at the due instant itself
                    due - timedelta(hours=1)):  # before it was even due
        counts = await hcp.tick(instant)
        assert counts["reminders"] == 0 and counts["sent"] == 0, (instant, counts)
    assert len(hcp.twilio.sms_to(phone)) == 1
    assert len(await reminders_of(hcp, doc["case_no"])) == 1


@storing
async def test_a_tick_at_an_earlier_instant_still_does_what_is_due_then(hcp: Hcp) -> None:
    """Due-ness comes from the rows, not from a "last tick" mark."""
    early = hcp.new_phone()
    late = hcp.new_phone()
    await hcp.post_case(phone=early, completed_at="2026-11-20T10:00:00+08:00")
    await hcp.post_case(phone=late, completed_at="2026-11-20T15:00:00+08:00")
    counts = await hcp.tick(cst("2026-11-23T12:00"))  # both due: both sent
    assert counts["reminders"] == 2 and counts["sent"] == 2, counts

    a = hcp.new_phone()
    await hcp.post_case(phone=a, completed_at="2026-11-20T11:00:00+08:00")
    counts = await hcp.tick(cst("2026-11-21T11:00"))  # earlier than the previous tick
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    assert [len(hcp.twilio.sms_to(p)) for p in (early, late, a)] == [1, 1, 1]


@storing
async def test_two_concurrent_ticks_send_each_of_30_reminders_once(hcp: Hcp) -> None:
    cases = await post_cases(hcp, 30, "2026-11-20T10:00:00+08:00")
    t = cst("2026-11-21T10:00")
    results = await asyncio.gather(hcp.tick(t), hcp.tick(t))
    assert sum(r["reminders"] for r in results) == 30, results
    assert sum(r["sent"] for r in results) == 30, results
    assert len(hcp.twilio.messages) == 30
    for case_no, phone in cases:
        assert len(hcp.twilio.sms_to(phone)) == 1, case_no
    assert await hcp.tick(t) == {"reminders": 0, "defaults": 0, "overdue": 0, "sent": 0, "calls": 0,
                                 "stats_days": 0, "published": 0, "reported": 0, "signals": 0,
                                 "supervisory_calls": 0, "appeals_overdue": 0, "contacts_overdue": 0}


@storing
async def test_two_runtimes_on_one_database_send_each_of_30_reminders_once(hcp: Hcp) -> None:
    cases = await post_cases(hcp, 30, "2026-11-20T10:00:00+08:00")
    t = cst("2026-11-21T10:00")
    other = await open_runtime(hcp.rt.settings)
    try:
        results = await asyncio.gather(scheduler.tick(hcp.rt, t), scheduler.tick(other, t),
                                       scheduler.tick(other, t + timedelta(seconds=1)))
    finally:
        await other.close()
    assert sum(r["reminders"] for r in results) == 30, results
    assert sum(r["sent"] for r in results) == 30, results
    assert len(hcp.twilio.messages) == 30
    for case_no, phone in cases:
        assert len(hcp.twilio.sms_to(phone)) == 1, case_no
        assert [r["status"] for r in await reminders_of(hcp, case_no)] == ["sent"]


# --- opted out -----------------------------------------------------------------------------------


@storing
async def test_after_opting_out_a_later_case_is_skipped_and_a_control_is_sent(hcp: Hcp) -> None:
    _first, phone, _sms = await hcp.reminded()
    reply = await hcp.sms(phone, "退订")
    assert reply.status == 200 and reply.messages

    control = hcp.new_phone()
    later = await hcp.post_case(phone=phone, completed_at="2026-11-22T10:00:00+08:00")
    ctrl = await hcp.post_case(phone=control, completed_at="2026-11-22T10:00:00+08:00")
    counts = await hcp.tick(cst("2026-11-23T10:00"))
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts

    assert len(hcp.twilio.sms_to(phone)) == 1  # only the first reminder, from before the opt-out
    assert len(hcp.twilio.sms_to(control)) == 1
    assert [(r["channel"], r["status"]) for r in await reminders_of(hcp, later["case_no"])] == [("sms", "skipped")]
    assert [r["status"] for r in await reminders_of(hcp, ctrl["case_no"])] == ["sent"]
    # skipped for good: later ticks do not try again
    await hcp.tick(cst("2026-11-24T10:00"))
    assert len(hcp.twilio.sms_to(phone)) == 1
    assert [r["status"] for r in await reminders_of(hcp, later["case_no"])] == ["skipped"]


@storing
async def test_a_stranger_who_opts_out_gets_no_reminder_for_a_later_case(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    hcp.clock.set(cst("2026-11-19T12:00"))
    reply = await hcp.sms(phone, "STOP")
    assert reply.status == 200
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    counts = await hcp.tick(cst("2026-11-21T10:00"))
    assert counts["sent"] == 0, counts
    assert hcp.twilio.sms_to(phone) == []
    assert [r["status"] for r in await reminders_of(hcp, doc["case_no"])] == ["skipped"]


# --- one conversation at a time --------------------------------------------------------------------


@storing
async def test_two_due_cases_one_reminder_then_the_next_after_the_answer(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    older = await hcp.post_case(phone=phone, completed_at="2026-11-20T09:00:00+08:00")
    newer = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    t = cst("2026-11-21T10:00")

    counts = await hcp.tick(t)
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    sms = hcp.twilio.sms_to(phone)
    assert len(sms) == 1
    assert hcp.rt.links.case_id(LINK.search(sms[0]["body"]).group(1)) == older["id"]
    assert await reminders_of(hcp, newer["case_no"]) == []

    counts = await hcp.tick(t + timedelta(minutes=1))  # still in the first conversation
    assert counts["reminders"] == 0, counts

    hcp.clock.set(t + timedelta(minutes=5))
    reply = await hcp.sms(phone, "1")
    assert reply.status == 200
    assert [e["grade"] for e in await hcp.evaluations(older["case_no"])] == ["very_satisfied"]
    assert await hcp.evaluations(newer["case_no"]) == []

    counts = await hcp.tick(t + timedelta(minutes=10))
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    sms = hcp.twilio.sms_to(phone)
    assert len(sms) == 2
    assert hcp.rt.links.case_id(LINK.search(sms[1]["body"]).group(1)) == newer["id"]

    # and the reply now rates the newer case
    hcp.clock.set(t + timedelta(minutes=15))
    await hcp.sms(phone, "2")
    assert [e["grade"] for e in await hcp.evaluations(newer["case_no"])] == ["satisfied"]


@storing
async def test_an_unanswered_reminder_holds_the_next_until_its_conversation_expires(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    older = await hcp.post_case(phone=phone, completed_at="2026-11-20T09:00:00+08:00")
    newer = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    opened = cst("2026-11-21T10:00")
    assert (await hcp.tick(opened))["sent"] == 1

    for instant in (opened + timedelta(hours=1), opened + timedelta(hours=12),
                    opened + timedelta(hours=24) - timedelta(seconds=1)):
        counts = await hcp.tick(instant)
        assert counts["reminders"] == 0 and counts["sent"] == 0, (instant, counts)
    assert len(hcp.twilio.sms_to(phone)) == 1

    counts = await hcp.tick(opened + timedelta(hours=24))  # the first conversation has expired
    assert counts["reminders"] == 1 and counts["sent"] == 1, counts
    sms = hcp.twilio.sms_to(phone)
    assert len(sms) == 2
    assert hcp.rt.links.case_id(LINK.search(sms[1]["body"]).group(1)) == newer["id"]
    assert [r["status"] for r in await reminders_of(hcp, older["case_no"])] == ["sent"]
    assert await hcp.evaluations(older["case_no"]) == []


# --- no reminder at all ------------------------------------------------------------------------


@pytest.mark.parametrize("applicant", [None, {"name": "张三"}, {"wechat_openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}],
                         ids=["no-applicant", "name-only", "wechat-only"])
@storing
async def test_a_case_without_a_phone_never_gets_a_reminder(hcp: Hcp, applicant: dict[str, str] | None) -> None:
    doc = await hcp.post_case(applicant=applicant, completed_at="2026-11-20T10:00:00+08:00")
    assert doc["remind_at"] is None
    for instant in ("2026-11-21T10:00", "2026-11-22T10:00", "2026-11-27T12:00"):
        counts = await hcp.tick(cst(instant))
        assert counts["reminders"] == 0 and counts["sent"] == 0, counts
    assert hcp.twilio.requests == []
    assert await reminders_of(hcp, doc["case_no"]) == []


@storing
async def test_a_case_rated_before_its_reminder_gets_none(hcp: Hcp) -> None:
    phone = hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-20T10:00:00+08:00")
    hcp.clock.set(cst("2026-11-20T15:00"))
    await hcp.rate(doc["case_no"], "satisfied", channel="hall")
    assert (await hcp.case(doc["case_no"]))["remind_at"] is None
    for instant in ("2026-11-21T10:00", "2026-11-22T10:00"):
        counts = await hcp.tick(cst(instant))
        assert counts["reminders"] == 0 and counts["sent"] == 0, counts
    assert hcp.twilio.sms_to(phone) == []
    assert await reminders_of(hcp, doc["case_no"]) == []


# --- defaults -------------------------------------------------------------------------------------


@storing
async def test_default_applies_at_00_00_after_the_fifth_working_day(hcp: Hcp) -> None:
    doc = await hcp.post_case(phone=hcp.new_phone(), completed_at="2026-11-20T10:00:00+08:00")  # a Friday
    assert at(doc["default_at"]) == cst("2026-11-28T00:00")

    counts = await hcp.tick(at("2026-11-27T23:59:59+08:00"))
    assert counts["defaults"] == 0, counts
    assert await hcp.evaluations(doc["case_no"]) == []

    counts = await hcp.tick(cst("2026-11-28T00:00"))
    assert counts["defaults"] == 1, counts
    evs = await hcp.evaluations(doc["case_no"])
    assert len(evs) == 1
    ev = evs[0]
    assert (ev["grade"], ev["score"], ev["is_default"], ev["channel"], ev["reasons"]) == (
        "basically_satisfied", 6, True, "default", [])
    assert at(ev["created_at"]) == cst("2026-11-28T00:00")
    assert (await hcp.case(doc["case_no"]))["default_at"] is None

    for instant in ("2026-11-28T00:00", "2026-11-29T00:00", "2026-11-27T23:59:59"):
        counts = await hcp.tick(cst(instant))
        assert counts["defaults"] == 0, (instant, counts)
    assert len(await hcp.evaluations(doc["case_no"])) == 1


@storing
async def test_concurrent_ticks_on_two_runtimes_apply_each_default_once(hcp: Hcp) -> None:
    docs = [await hcp.post_case(completed_at="2026-11-20T10:00:00+08:00") for _ in range(30)]
    t = cst("2026-11-28T00:00")
    other = await open_runtime(hcp.rt.settings)
    try:
        results = await asyncio.gather(scheduler.tick(hcp.rt, t), scheduler.tick(other, t), hcp.tick(t))
    finally:
        await other.close()
    assert sum(r["defaults"] for r in results) == 30, results
    for doc in docs:
        assert [e["is_default"] for e in await hcp.evaluations(doc["case_no"])] == [True], doc["case_no"]


@storing
async def test_a_case_posted_after_its_default_is_due_gets_no_dead_end_reminder(hcp: Hcp) -> None:
    """Regression (found at 6f88d6f, where the sweep ran before the defaults): the person got a "please
    rate" SMS, the same tick applied the default, and the reply "1" was answered "nothing to rate"."""
    phone = hcp.new_phone()
    # posted late: by the first tick both its reminder (11 Nov) and its default (18 Nov) are due
    doc = await hcp.post_case(phone=phone, completed_at="2026-11-10T10:00:00+08:00")
    counts = await hcp.tick(cst("2026-11-21T10:00"))
    assert counts["defaults"] == 1, counts
    if not hcp.twilio.sms_to(phone):  # no reminder for a case that is defaulted at once: fine
        assert [r["status"] for r in await reminders_of(hcp, doc["case_no"])] in ([], ["skipped"])
        return
    # a reminder went out: the person's answer must then count (the follow-up of the default, CONTRACT)
    hcp.clock.set(cst("2026-11-21T10:05"))
    reply = await hcp.sms(phone, "1")
    grades = [(e["grade"], e["is_default"]) for e in await hcp.evaluations(doc["case_no"])]
    assert ("very_satisfied", False) in grades, (reply.messages, grades)


@storing
async def test_default_across_national_day_2026(hcp: Hcp) -> None:
    # the official calendar: 1–7 October off, Saturday 10 October a make-up working day, the 11th a Sunday off
    assert not any(chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    counted = [d for d in (date(2026, 10, n) for n in range(1, 15)) if chinese_calendar.is_workday(d)][:5]
    assert counted == [date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10), date(2026, 10, 12),
                       date(2026, 10, 13)]
    assert date(2026, 10, 10).weekday() == 5 and not chinese_calendar.is_workday(date(2026, 10, 11))

    doc = await hcp.post_case(completed_at="2026-09-30T16:00:00+08:00")
    assert at(doc["default_at"]) == cst("2026-10-14T00:00")
    assert (await hcp.tick(at("2026-10-13T23:59:59+08:00")))["defaults"] == 0
    assert (await hcp.tick(cst("2026-10-14T00:00")))["defaults"] == 1
    assert [(e["grade"], e["is_default"]) for e in await hcp.evaluations(doc["case_no"])] == [
        ("basically_satisfied", True)]


@storing
async def test_a_rated_case_gets_no_default(hcp: Hcp) -> None:
    doc = await hcp.post_case(completed_at="2026-11-20T10:00:00+08:00")
    hcp.clock.set(cst("2026-11-23T10:00"))
    await hcp.rate(doc["case_no"], "very_satisfied")
    counts = await hcp.tick(cst("2026-11-28T00:00"))
    assert counts["defaults"] == 0, counts
    assert [(e["grade"], e["is_default"]) for e in await hcp.evaluations(doc["case_no"])] == [
        ("very_satisfied", False)]


@storing
async def test_a_year_chinesecalendar_does_not_know_is_guessed_monday_friday_and_its_defaults_wait(hcp: Hcp) -> None:
    """CONTRACT "Calendar": the deadline is counted Monday-Friday, but no tick applies it until the year is known
    (tests/bot/policy/test_official_calendar.py imports one)."""
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2031, 1, 10))
    assert date(2031, 1, 10).weekday() == 4  # a Friday
    doc = await hcp.post_case(completed_at="2031-01-10T10:00:00+08:00")
    assert at(doc["default_at"]) == cst("2031-01-18T00:00")  # 13–17 January, guessed
    assert (await hcp.tick(at("2031-01-17T23:59:59+08:00")))["defaults"] == 0
    assert (await hcp.tick(cst("2031-01-18T00:00")))["defaults"] == 0
    assert (await hcp.tick(cst("2031-03-01T00:00")))["defaults"] == 0


# --- the policy from a file ------------------------------------------------------------------------


@storing
class TestPolicyFile:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        path = tmp_path / "policy.toml"
        path.write_text('default_grade = "satisfied"\n'
                        'default_after = { days = 7, unit = "natural" }\n'
                        "reminder_after_hours = 2\n", encoding="utf-8")
        return str(path)

    async def test_reminder_after_2_hours_and_default_after_7_natural_days(self, hcp: Hcp) -> None:
        assert hcp.rt.policy.reminder_after_hours == 2
        phone = hcp.new_phone()
        # a Saturday: 7 natural days end with the 28th (5 working days would end with Friday the 27th)
        doc = await hcp.post_case(phone=phone, completed_at="2026-11-21T10:00:00+08:00")
        assert at(doc["remind_at"]) == cst("2026-11-21T12:00")
        assert at(doc["default_at"]) == cst("2026-11-29T00:00")

        assert (await hcp.tick(at("2026-11-21T11:59:59+08:00")))["sent"] == 0
        counts = await hcp.tick(cst("2026-11-21T12:00"))
        assert counts["reminders"] == 1 and counts["sent"] == 1, counts
        assert len(hcp.twilio.sms_to(phone)) == 1

        assert (await hcp.tick(cst("2026-11-28T00:00")))["defaults"] == 0  # the built-in would apply here
        assert (await hcp.tick(at("2026-11-28T23:59:59+08:00")))["defaults"] == 0
        assert (await hcp.tick(cst("2026-11-29T00:00")))["defaults"] == 1
        assert [(e["grade"], e["score"], e["is_default"], e["channel"])
                for e in await hcp.evaluations(doc["case_no"])] == [("satisfied", 8, True, "default")]


@storing
class TestCalendarOverrides:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        path = tmp_path / "policy.toml"
        path.write_text('calendar_overrides = { holidays = ["2026-11-24", 2031-01-14], workdays = [] }\n',
                        encoding="utf-8")
        return str(path)

    async def test_a_holiday_override_pushes_the_default_a_working_day_later(self, hcp: Hcp) -> None:
        assert chinese_calendar.is_workday(date(2026, 11, 24))  # an ordinary Tuesday to the official calendar
        doc = await hcp.post_case(completed_at="2026-11-23T10:00:00+08:00")  # a Monday
        # built-in: 24, 25, 26, 27, 30 → 1 December; with the 24th off: 25, 26, 27, 30, 1 → 2 December
        assert at(doc["default_at"]) == cst("2026-12-02T00:00")
        assert (await hcp.tick(cst("2026-12-01T00:00")))["defaults"] == 0
        assert (await hcp.tick(at("2026-12-01T23:59:59+08:00")))["defaults"] == 0
        assert (await hcp.tick(cst("2026-12-02T00:00")))["defaults"] == 1

    async def test_an_override_in_an_unknown_year_corrects_the_monday_friday_fallback(self, hcp: Hcp) -> None:
        doc = await hcp.post_case(completed_at="2031-01-10T10:00:00+08:00")  # a Friday
        # Monday–Friday with the 14th off: 13, 15, 16, 17, 20 → 21 January
        assert at(doc["default_at"]) == cst("2031-01-21T00:00")
        assert (await hcp.tick(cst("2031-01-18T00:00")))["defaults"] == 0
        assert (await hcp.tick(cst("2031-01-21T00:00")))["defaults"] == 1


# --- the CLI --------------------------------------------------------------------------------------


def cli_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env["HAOCHAPING_DATABASE_URL"] = database_url
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class TestCli:
    """Subprocesses on a SQLite file of their own (no fixtures of the app)."""

    async def test_tick_on_an_empty_database_prints_one_json_object(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        code, out, err = await run_cli("tick", "--now", "2026-11-21T10:00:00+08:00", env=cli_env(url), cwd=tmp_path)
        assert code == 0, err
        assert len(out.strip().splitlines()) == 1, out
        doc = json.loads(out)
        assert isinstance(doc, dict)
        for key in ("reminders", "defaults", "overdue", "sent"):
            assert type(doc[key]) is int, doc
        assert doc["reminders"] == doc["sent"] == doc["defaults"] == 0

    async def test_tick_sends_the_due_reminder_through_the_local_provider(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        rt = await open_runtime(Settings(database_url=url, public_url=PUBLIC_URL))
        try:
            assert rt.sms.name == "local"
            case_in = CaseIn.model_validate(Hcp.case_body(phone="13800138000",
                                                          completed_at="2026-11-20T10:00:00+08:00"))
            _case, created = await ingest(rt, case_in, cst("2026-11-20T10:05"))
            assert created
        finally:
            await rt.close()

        env = cli_env(url)
        # a bare local time is read in the policy's zone: 09:59:59 in Shanghai, one second early
        code, out, err = await run_cli("tick", "--now", "2026-11-21T09:59:59", env=env, cwd=tmp_path)
        assert code == 0, err
        assert json.loads(out)["reminders"] == 0, out
        code, out, err = await run_cli("tick", "--now", "2026-11-21T10:00:00+08:00", env=env, cwd=tmp_path)
        assert code == 0, err
        doc = json.loads(out)
        assert (doc["reminders"], doc["sent"]) == (1, 1), doc

        code, out, err = await run_cli("tick", "--now", "2026-11-21T10:00:00+08:00", env=env, cwd=tmp_path)
        assert code == 0, err
        doc = json.loads(out)
        assert (doc["reminders"], doc["sent"]) == (0, 0), doc

    async def test_an_invalid_now_exits_2_with_a_message(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        code, out, err = await run_cli("tick", "--now", "tomorrow-ish", env=cli_env(url), cwd=tmp_path)
        assert code == 2
        assert out == ""
        assert "--now" in err and "tomorrow-ish" in err
