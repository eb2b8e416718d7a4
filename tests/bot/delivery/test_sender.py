"""The outbox sender against a fake Twilio: retries with backoff, time-outs, final failures, provider
opt-outs, delivery status callbacks, and the local provider.

bot/delivery/sender.py (BACKOFF, MAX_ATTEMPTS), channels/twilio_sms.py (classify, SEND_TIMEOUT),
bot/web/twilio_hooks.py (status callbacks); ARCHITECTURE invariant 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from helpers import Hcp, cst
from servers import BACKENDS
from sqlmodel import select

from bot.delivery.sender import MAX_ATTEMPTS, backoff
from bot.duties import scheduler
from bot.infra.runtime import open_runtime
from store.models import Contact, OutboxMessage

storing = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

STATUS_PATH = "/webhooks/twilio/sms/status"
DUE = cst("2026-11-21T10:00")  # the reminder instant of a case completed at the default 2026-11-20T10:00


async def due_case(hcp: Hcp, phone: str | None = None, completed_at: str = "2026-11-20T10:00:00+08:00"
                   ) -> tuple[dict[str, Any], str]:
    phone = phone or hcp.new_phone()
    doc = await hcp.post_case(phone=phone, completed_at=completed_at)
    return doc, phone


async def reminder(hcp: Hcp, case_no: str) -> dict[str, Any]:
    reminders = (await hcp.case(case_no))["reminders"]
    assert len(reminders) == 1, reminders
    return reminders[0]


async def outbox_row(hcp: Hcp, case_id: int) -> OutboxMessage:
    async with hcp.rt.db.read() as session:
        rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.case_id == case_id))).all()
    assert len(rows) == 1, rows
    return rows[0]


async def opted_out(hcp: Hcp, case_doc: dict[str, Any]) -> bool:
    row = await outbox_row(hcp, case_doc["id"])
    async with hcp.rt.db.read() as session:
        contact = (await session.exec(select(Contact).where(Contact.id == row.contact_id))).one()
    return contact.opted_out_at is not None


def message_posts(hcp: Hcp) -> list[dict[str, Any]]:
    return [r for r in hcp.twilio.requests if r["method"] == "POST" and r["path"].endswith("/Messages.json")]


def status_params(hcp: Hcp, sid: str, status: str, to: str, error_code: str | None = None) -> dict[str, str]:
    params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
              "AccountSid": hcp.twilio.account_sid, "From": "+8610690012345", "To": to, "ApiVersion": "2010-04-01"}
    if error_code:
        params["ErrorCode"] = error_code
    return params


# --- retries ----------------------------------------------------------------------------------------


@storing
async def test_a_500_is_retried_after_the_first_backoff_and_sent_once(hcp: Hcp) -> None:
    doc, phone = await due_case(hcp)
    hcp.twilio.fail_next(1)

    counts = await hcp.tick(DUE)
    assert counts["reminders"] == 1 and counts["sent"] == 0, counts
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("pending", 1)
    assert hcp.twilio.messages == [] and len(message_posts(hcp)) == 1

    counts = await hcp.tick(DUE)  # the same instant: not yet due again
    assert counts["sent"] == 0, counts
    assert len(message_posts(hcp)) == 1
    counts = await hcp.tick(DUE + backoff(1) - timedelta(seconds=1))
    assert counts["sent"] == 0, counts
    assert len(message_posts(hcp)) == 1

    assert backoff(1) == timedelta(seconds=30)
    counts = await hcp.tick(DUE + timedelta(seconds=30))
    assert counts["sent"] == 1, counts
    assert len(hcp.twilio.sms_to(phone)) == 1
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("sent", 2)

    assert (await hcp.tick(DUE + timedelta(hours=1)))["sent"] == 0
    assert len(hcp.twilio.sms_to(phone)) == 1


@storing
async def test_a_429_is_retried_too(hcp: Hcp) -> None:
    doc, phone = await due_case(hcp)
    hcp.twilio.fail_next(1, status=429, code=20429, message="Too Many Requests")
    assert (await hcp.tick(DUE))["sent"] == 0
    assert (await reminder(hcp, doc["case_no"]))["status"] == "pending"
    assert (await hcp.tick(DUE + timedelta(seconds=30)))["sent"] == 1
    assert len(hcp.twilio.sms_to(phone)) == 1


@storing
async def test_a_send_timeout_is_retried_and_a_slow_accept_is_found_not_sent_twice(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service gives up on a request after its send timeout, but the fake (like a slow Twilio)
    still accepts the abandoned request once its wait is over. Twilio's Messages API has no idempotency
    key, so the next attempt asks Twilio first, finds the late message, and records it: one SMS."""
    monkeypatch.setattr(hcp.rt.sms, "timeout", 0.3)
    doc, phone = await due_case(hcp)
    hcp.twilio.hang_next(1, seconds=1.5)

    loop = asyncio.get_running_loop()
    started = loop.time()
    counts = await hcp.tick(DUE)
    assert loop.time() - started < 1.4  # the tick did not wait for the hung request
    assert counts["reminders"] == 1 and counts["sent"] == 0, counts
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("pending", 1)
    row = await outbox_row(hcp, doc["id"])
    assert row.error and "Timeout" in row.error
    assert row.next_attempt_at == DUE + backoff(1)
    assert row.unsure_since is not None and row.unsure_since == row.attempted_at

    # the abandoned request completes at the fake a little later: accepted there
    for _ in range(100):
        if hcp.twilio.hanging == 0 and hcp.twilio.sms_to(phone):
            break
        await asyncio.sleep(0.05)
    assert len(hcp.twilio.sms_to(phone)) == 1
    assert (await reminder(hcp, doc["case_no"]))["status"] == "pending"  # the service does not know yet

    counts = await hcp.tick(DUE + timedelta(seconds=30))
    assert counts["sent"] == 1, counts
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("sent", 2)
    sms = hcp.twilio.sms_to(phone)
    assert len(sms) == 1  # found at Twilio, not sent again
    assert (await outbox_row(hcp, doc["id"])).provider_id == sms[0]["sid"]
    listed = [q for q in hcp.twilio.requests if q["method"] == "GET"]
    assert len(listed) == 1 and listed[0]["status"] == 200


@storing
async def test_a_timed_out_send_that_twilio_never_took_is_sent_again(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other half of the unknown outcome: Twilio has nothing, so the retry sends. Once."""
    monkeypatch.setattr(hcp.rt.sms, "timeout", 0.3)
    doc, phone = await due_case(hcp)
    hcp.twilio.hang_next(1, seconds=1.0)
    hcp.twilio.fail_next(1)  # after its wait, the hung request is refused: nothing accepted
    assert (await hcp.tick(DUE))["sent"] == 0
    for _ in range(100):
        if hcp.twilio.hanging == 0:
            break
        await asyncio.sleep(0.05)
    assert hcp.twilio.sms_to(phone) == []
    assert (await hcp.tick(DUE + timedelta(seconds=30)))["sent"] == 1
    assert len(hcp.twilio.sms_to(phone)) == 1
    assert (await reminder(hcp, doc["case_no"]))["status"] == "sent"


@storing
async def test_an_unsure_message_waits_while_twilio_cannot_be_asked(
        hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the question itself fails, sending anyway could deliver twice: the message waits instead."""
    monkeypatch.setattr(hcp.rt.sms, "timeout", 0.3)
    doc, phone = await due_case(hcp)
    hcp.twilio.hang_next(1, seconds=1.0)
    hcp.twilio.fail_next(1)
    assert (await hcp.tick(DUE))["sent"] == 0
    for _ in range(100):
        if hcp.twilio.hanging == 0:
            break
        await asyncio.sleep(0.05)
    hcp.twilio.hang_next(1, seconds=1.0)  # the list request hangs past the timeout
    assert (await hcp.tick(DUE + timedelta(seconds=30)))["sent"] == 0
    row = await outbox_row(hcp, doc["id"])
    assert row.status == "pending" and row.error and "could not ask" in row.error
    assert hcp.twilio.sms_to(phone) == []
    for _ in range(100):
        if hcp.twilio.hanging == 0:
            break
        await asyncio.sleep(0.05)
    assert (await hcp.tick(DUE + timedelta(minutes=3)))["sent"] == 1
    assert len(hcp.twilio.sms_to(phone)) == 1


@storing
async def test_after_max_attempts_retryable_failures_the_message_is_failed_for_good(hcp: Hcp) -> None:
    doc, phone = await due_case(hcp)
    hcp.twilio.fail_next(MAX_ATTEMPTS + 3)
    t = DUE
    for attempt in range(1, MAX_ATTEMPTS + 1):
        counts = await hcp.tick(t)
        assert counts["sent"] == 0, (attempt, counts)
        assert len(message_posts(hcp)) == attempt
        row = await outbox_row(hcp, doc["id"])
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert row.status == "pending", (attempt, row.status)
            assert row.next_attempt_at is not None and row.next_attempt_at >= t + backoff(attempt)
            # the next tick at the row's own next attempt (or, should retries respect quiet hours, at their end)
            t = hcp.rt.timing.after_quiet(row.next_attempt_at)
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert (await outbox_row(hcp, doc["id"])).next_attempt_at is None

    for later in (t + timedelta(hours=1), t + timedelta(days=3)):
        assert (await hcp.tick(later))["sent"] == 0
    assert len(message_posts(hcp)) == MAX_ATTEMPTS
    assert hcp.twilio.sms_to(phone) == []
    assert not await opted_out(hcp, doc)


@storing
async def test_a_retried_reminder_waits_for_the_end_of_the_quiet_hours(hcp: Hcp) -> None:
    """Regression (found at 6f88d6f): only the first send was held by the sweep; a retry went out at 23:00."""
    _doc, phone = await due_case(hcp, completed_at="2026-11-20T20:50:00+08:00")
    due = cst("2026-11-21T20:50")
    hcp.twilio.fail_next(1)
    assert (await hcp.tick(due))["sent"] == 0
    # the scheduler's next pass comes at 23:00 (the retry fell due at 20:50:30)
    counts = await hcp.tick(cst("2026-11-21T23:00"))
    assert counts["sent"] == 0, "a reminder went out at 23:00, inside the quiet hours"
    assert hcp.twilio.sms_to(phone) == []
    assert (await hcp.tick(cst("2026-11-22T08:00")))["sent"] == 1
    assert len(hcp.twilio.sms_to(phone)) == 1


# --- final refusals ------------------------------------------------------------------------------------


@storing
async def test_21610_fails_the_message_and_opts_the_person_out(hcp: Hcp) -> None:
    doc, phone = await due_case(hcp)
    hcp.twilio.refuse(phone, code=21610)
    counts = await hcp.tick(DUE)
    assert counts["reminders"] == 1 and counts["sent"] == 0, counts
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("failed", 1)
    assert await opted_out(hcp, doc)

    assert (await hcp.tick(DUE + timedelta(hours=1)))["sent"] == 0
    assert len(message_posts(hcp)) == 1  # not retried

    later = await hcp.post_case(phone=phone, completed_at="2026-11-22T10:00:00+08:00")
    control = hcp.new_phone()
    await hcp.post_case(phone=control, completed_at="2026-11-22T10:00:00+08:00")
    counts = await hcp.tick(cst("2026-11-23T10:00"))
    assert counts["sent"] == 1, counts
    assert (await reminder(hcp, later["case_no"]))["status"] == "skipped"
    assert len(message_posts(hcp)) == 2  # the control's only
    assert len(hcp.twilio.sms_to(control)) == 1


@storing
async def test_21211_invalid_number_fails_without_retry_or_opt_out(hcp: Hcp) -> None:
    doc, phone = await due_case(hcp)
    hcp.twilio.refuse(phone, code=21211, message="The 'To' number is not a valid phone number.")
    counts = await hcp.tick(DUE)
    assert counts["sent"] == 0, counts
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("failed", 1)
    assert (await outbox_row(hcp, doc["id"])).next_attempt_at is None
    for later in (DUE + timedelta(seconds=30), DUE + timedelta(hours=2), DUE + timedelta(days=1)):
        assert (await hcp.tick(later))["sent"] == 0
    assert len(message_posts(hcp)) == 1
    assert not await opted_out(hcp, doc)

    # a later case for the same number is attempted (not skipped as an opt-out would be)
    later = await hcp.post_case(phone=phone, completed_at="2026-11-22T10:00:00+08:00")
    await hcp.tick(cst("2026-11-23T10:00"))
    assert (await reminder(hcp, later["case_no"]))["status"] == "failed"
    assert len(message_posts(hcp)) == 2


# --- delivery status callbacks --------------------------------------------------------------------------


@storing
async def test_status_callbacks_update_the_reminder_and_never_downgrade_it(hcp: Hcp) -> None:
    case_no, phone, sms = await hcp.reminded()
    assert sms["status_callback"].endswith(STATUS_PATH)
    assert (await reminder(hcp, case_no))["status"] == "sent"
    to = "+86" + phone

    status, _ = await hcp.twilio_post(STATUS_PATH, status_params(hcp, sms["sid"], "delivered", to))
    assert status in (200, 204)
    assert (await reminder(hcp, case_no))["status"] == "delivered"

    for late in ("sent", "queued", "sending"):
        status, _ = await hcp.twilio_post(STATUS_PATH, status_params(hcp, sms["sid"], late, to))
        assert status in (200, 204)
        assert (await reminder(hcp, case_no))["status"] == "delivered", late

    # a wrong signature (forged, or signed with another token) is refused and changes nothing
    params = status_params(hcp, sms["sid"], "undelivered", to, error_code="21610")
    for signature in ("not-a-signature", hcp.sign(STATUS_PATH, params, token="0" * 32)):
        status, _ = await hcp.twilio_post(STATUS_PATH, params, signature=signature)
        assert status == 403
    status, _ = await hcp.twilio_post(STATUS_PATH, params, signature="")
    assert status == 403
    assert (await reminder(hcp, case_no))["status"] == "delivered"
    doc = await hcp.case(case_no)
    assert not await opted_out(hcp, doc)

    # an unknown MessageSid is answered and ignored
    status, _ = await hcp.twilio_post(STATUS_PATH, status_params(hcp, "SM" + "0" * 32, "failed", to))
    assert status in (200, 204)
    assert (await reminder(hcp, case_no))["status"] == "delivered"


@storing
async def test_a_callback_arriving_while_the_batch_is_still_sending_is_not_lost(hcp: Hcp) -> None:
    """Regression (found at 6f88d6f): results are recorded only once the whole batch is sent, and a status
    callback that came before its MessageSid was recorded was answered 204 and dropped."""
    first, _ = await due_case(hcp)
    second, _ = await due_case(hcp)
    hcp.twilio.hang_next(1, seconds=1.0)  # one of the two sends is slow, the other accepted at once
    tick = asyncio.create_task(hcp.tick(DUE))
    for _ in range(200):
        if hcp.twilio.messages and hcp.twilio.hanging:
            break
        await asyncio.sleep(0.01)
    assert hcp.twilio.messages and hcp.twilio.hanging, "the sends did not overlap"
    fast = hcp.twilio.messages[0]
    status, _ = await hcp.twilio_post(STATUS_PATH, status_params(hcp, fast["sid"], "delivered", fast["to"]))
    assert status in (200, 204)
    counts = await tick
    assert counts["sent"] == 2, counts
    statuses = {}
    for doc in (first, second):
        row = await outbox_row(hcp, doc["id"])
        statuses[row.provider_id] = row.status
    assert statuses[fast["sid"]] == "delivered", statuses


@storing
async def test_an_undelivered_callback_with_21610_opts_the_person_out(hcp: Hcp) -> None:
    case_no, phone, sms = await hcp.reminded()
    params = status_params(hcp, sms["sid"], "undelivered", "+86" + phone, error_code="21610")
    status, _ = await hcp.twilio_post(STATUS_PATH, params)
    assert status in (200, 204)
    assert (await reminder(hcp, case_no))["status"] == "undelivered"
    assert await opted_out(hcp, await hcp.case(case_no))

    later = await hcp.post_case(phone=phone, completed_at="2026-11-22T10:00:00+08:00")
    await hcp.tick(cst("2026-11-23T10:00"))
    assert (await reminder(hcp, later["case_no"]))["status"] == "skipped"
    assert len(hcp.twilio.sms_to(phone)) == 1


@storing
async def test_an_undelivered_callback_with_another_error_does_not_opt_out(hcp: Hcp) -> None:
    case_no, phone, sms = await hcp.reminded()
    params = status_params(hcp, sms["sid"], "undelivered", "+86" + phone, error_code="30003")
    status, _ = await hcp.twilio_post(STATUS_PATH, params)
    assert status in (200, 204)
    assert (await reminder(hcp, case_no))["status"] == "undelivered"
    assert not await opted_out(hcp, await hcp.case(case_no))


# --- the local provider -------------------------------------------------------------------------------


@storing
async def test_the_local_provider_marks_reminders_sent_without_any_request(hcp: Hcp) -> None:
    settings = dataclasses.replace(hcp.rt.settings, twilio_account_sid=None, twilio_auth_token=None)
    assert not settings.twilio_enabled
    doc, _phone = await due_case(hcp)
    local = await open_runtime(settings)
    try:
        assert local.sms.name == "local"
        counts = await scheduler.tick(local, DUE)
        assert counts["reminders"] == 1 and counts["sent"] == 1, counts
        assert (await scheduler.tick(local, DUE))["sent"] == 0
    finally:
        await local.close()
    assert hcp.twilio.requests == []
    r = await reminder(hcp, doc["case_no"])
    assert (r["status"], r["attempts"]) == ("sent", 1)
    row = await outbox_row(hcp, doc["id"])
    assert row.provider == "local" and row.provider_id and row.body
    assert isinstance(row.sent_at, datetime) and row.sent_at == DUE
