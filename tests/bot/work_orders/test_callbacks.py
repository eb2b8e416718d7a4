"""The callback step (回访) of a work order, asked by the service itself: automated Twilio calls (keys 1/2/3,
retries after no-answer/busy/failed, calling hours, the agents' queue after the last try) and the SMS
callback question ("满意请回复1…").

Driven from outside as in production: the business API takes the work order to `reviewed`, `tick`
(the code path of `haochaping tick --now`) places the calls through the real twilio client against the
local fake of Twilio's REST API, and Twilio's own webhooks (signed as Twilio signs them) answer, press
keys and report call statuses.

CONTRACT "Callback results", "Work-order status", "Webhooks"; bot/duties/callback_calls.py,
bot/work_orders/callback_sms.py.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from callback_support import (
    RATED_AT,
    act,
    answer,
    call_params,
    calls_to,
    local_path,
    press,
    review,
    twiml,
    write_policy,
)
from helpers import PUBLIC_URL, Hcp, cst
from servers import BACKENDS

storing = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

CALLBACK_PATH = "/webhooks/twilio/voice/callback"
STATUS_PATH = "/webhooks/twilio/voice/status"
KEYS_PATH = "/webhooks/twilio/voice/keys"
CALL_FROM = "+8610690012345"
VOICE_MENU = "对整改结果满意请按1，基本满意请按2，不满意请按3"
SMS_ASK = "满意请回复1"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- driving a work order to the callback step ---------------------------------------------------------


async def work_order(hcp: Hcp, wo_id: int) -> dict[str, Any]:
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert status == 200, (status, doc)
    return doc


async def reviewed(hcp: Hcp, review_at: datetime | None = None, phone: str | None = "new"
                   ) -> tuple[int, str, str | None]:
    """A bad review (rated at RATED_AT) whose work order has reached the callback step: (id, case_no, phone)."""
    phone = hcp.new_phone() if phone == "new" else phone
    hcp.clock.set(RATED_AT)
    doc = await hcp.post_case(phone=phone)
    case_no = doc["case_no"]
    await hcp.rate(case_no, "dissatisfied", reasons=["attitude"])
    orders = (await hcp.case(case_no))["work_orders"]
    assert len(orders) == 1, orders
    wo_id = orders[0]["id"]
    await review(hcp, wo_id, review_at)
    return wo_id, case_no, phone


def said(root: ET.Element) -> str:
    return "".join("".join(s.itertext()) for s in root.iter("Say"))


async def call_status(hcp: Hcp, call: dict[str, Any], status: str, expect: int = 204) -> None:
    """Twilio's status callback at the end of the call."""
    assert call["status_callback"] == PUBLIC_URL + STATUS_PATH, call
    more = {"CallStatus": status, "CallDuration": "0" if status != "completed" else "25"}
    code, body = await hcp.twilio_post(local_path(call["status_callback"]), call_params(hcp, call, **more))
    assert code == expect, (code, body)


def hangs_up(root: ET.Element) -> bool:
    return not list(root.iter("Gather")) and bool(list(root.iter("Hangup")))


def snapshot(doc: dict[str, Any]) -> dict[str, Any]:
    """What a status callback must not change after the result was recorded."""
    return {k: doc[k] for k in ("status", "outcome", "reopened", "unreachable", "callback", "closed_at")} | {
        "history": len(doc["history"])}


def callback_evaluations(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in case["evaluations"] if e["channel"] == "callback"]


def callback_answers(doc: dict[str, Any]) -> list[str]:
    """The rater's answers as the work order's history keeps them (a callback, or the reopen it caused):
    where a `dissatisfied` answer is recorded, since it is no rating (Hainan art. 15)."""
    return [e["data"]["result"] for e in doc["history"]
            if e["action"] in ("callback", "reopen") and (e["data"] or {}).get("result") not in (None, "unreachable")]


# === automated callback calls ===========================================================================


class TestCallbackCalls:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        return write_policy(tmp_path, 'callback = { by = ["call"] }\n')

    # --- placing the call ------------------------------------------------------------------------------

    @storing
    async def test_the_review_schedules_one_call_to_the_rater_that_the_tick_places_once(self, hcp: Hcp) -> None:
        wo_id, _, phone = await reviewed(hcp)
        assert phone is not None
        doc = await work_order(hcp, wo_id)
        assert doc["callback"]["by"] == ["call"]
        assert at(doc["callback"]["next_call_at"]) == RATED_AT
        assert doc["callback"]["calls"] == 0 and doc["callback"]["agent_queue"] is False
        assert hcp.twilio.calls == []  # nothing dials before a tick

        counts = await hcp.tick(RATED_AT)
        assert counts["calls"] == 1, counts
        assert len(hcp.twilio.calls) == 1
        call = hcp.twilio.calls[0]
        assert call["to"] == "+86" + phone
        assert call["from"] == CALL_FROM
        assert call["url"] == f"{PUBLIC_URL}{CALLBACK_PATH}?wo={wo_id}"
        assert call["url"].endswith(f"/webhooks/twilio/voice/callback?wo={wo_id}")
        assert call["status_callback"] == PUBLIC_URL + STATUS_PATH
        assert call["form"].get("Method") == "POST"
        assert call["form"].get("StatusCallbackEvent") == "completed"

        doc = await work_order(hcp, wo_id)
        assert doc["callback"]["calls"] == 1 and doc["callback"]["next_call_at"] is None
        assert doc["status"] == "reviewed"
        assert hcp.twilio.sms_to(phone) == []  # the policy says call, not text

        # Repeating the tick, at the same instant or later, dials nobody again.
        assert (await hcp.tick(RATED_AT))["calls"] == 0
        assert (await hcp.tick(RATED_AT + timedelta(hours=3)))["calls"] == 0
        assert len(hcp.twilio.calls) == 1

    async def test_a_case_without_a_phone_goes_straight_to_the_agents(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp, phone=None)
        doc = await work_order(hcp, wo_id)
        assert doc["callback"]["agent_queue"] is True and doc["callback"]["next_call_at"] is None
        assert "callback" in doc["allowed"]
        assert (await hcp.tick(RATED_AT + timedelta(minutes=1)))["calls"] == 0
        assert hcp.twilio.calls == []

    # --- the call answered -------------------------------------------------------------------------------

    @storing
    async def test_answered_and_1_pressed_closes_satisfied_like_an_agents_callback(self, hcp: Hcp) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]

        hcp.clock.set(RATED_AT + timedelta(seconds=20))
        root = await answer(hcp, call)
        gathers = list(root.iter("Gather"))
        assert len(gathers) == 1  # its numDigits: test_the_callback_question_takes_a_single_key
        says = list(gathers[0].iter("Say"))
        assert says and all(s.get("language") == "zh-CN" for s in says)
        assert VOICE_MENU in said(gathers[0])
        assert "居民身份证换领" in said(gathers[0])  # the call says which case it is about
        action = urlsplit(gathers[0].get("action") or "")
        assert action.path == KEYS_PATH
        query = parse_qs(action.query)
        assert query["wo"] == [str(wo_id)] and query["ask"] == ["callback"]

        hcp.clock.set(RATED_AT + timedelta(seconds=30))
        root = await press(hcp, call, root, "1")
        assert hangs_up(root)
        assert "感谢" in said(root)

        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "satisfied"
        assert at(doc["closed_at"]) == RATED_AT + timedelta(seconds=30)
        assert doc["callback"]["next_call_at"] is None and doc["callback"]["agent_queue"] is False
        case = await hcp.case(case_no)
        recorded = callback_evaluations(case)
        assert len(recorded) == 1
        assert recorded[0]["grade"] == "satisfied" and recorded[0]["score"] == 8
        assert recorded[0]["reasons"] == [] and recorded[0]["status"] == "valid"
        assert recorded[0]["is_default"] is False

        # The status callback that ends the call changes nothing; nor does a later tick.
        before = snapshot(await work_order(hcp, wo_id))
        hcp.clock.set(RATED_AT + timedelta(minutes=1))
        await call_status(hcp, call, "completed")
        assert snapshot(await work_order(hcp, wo_id)) == before
        assert (await hcp.tick(RATED_AT + timedelta(hours=2)))["calls"] == 0
        assert len(hcp.twilio.calls) == 1
        assert len(callback_evaluations(await hcp.case(case_no))) == 1
    async def test_the_callback_question_takes_a_single_key(self, hcp: Hcp) -> None:
        await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        root = await answer(hcp, call)
        gather = next(root.iter("Gather"))
        assert gather.get("numDigits") == "1", ET.tostring(root, encoding="unicode")
        assert gather.get("finishOnKey") in (None, "")
        # After a wrong key, the question asked again takes one key too.
        again = next((await press(hcp, call, root, "9")).iter("Gather"))
        assert again.get("numDigits") == "1"

    async def test_answered_and_2_pressed_closes_basically_satisfied(self, hcp: Hcp) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        root = await press(hcp, call, await answer(hcp, call), "2")
        assert hangs_up(root)
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "basically_satisfied"
        assert [e["grade"] for e in callback_evaluations(await hcp.case(case_no))] == ["basically_satisfied"]

    @storing
    async def test_answered_and_3_pressed_reopens_the_work_order(self, hcp: Hcp) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        root = await press(hcp, call, await answer(hcp, call), "3")
        assert hangs_up(root)

        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "dispatched" and doc["reopened"] == 1 and doc["outcome"] is None
        assert doc["callback"]["next_call_at"] is None
        assert doc["allowed"][:1] == ["rectify"]
        # Hainan art. 15: still unsatisfied goes back to the agency and is no rating of the case
        assert callback_answers(doc) == ["dissatisfied"]
        assert callback_evaluations(await hcp.case(case_no)) == []

        before = snapshot(doc)
        await call_status(hcp, call, "completed")
        assert snapshot(await work_order(hcp, wo_id)) == before
        assert (await hcp.tick(RATED_AT + timedelta(hours=2)))["calls"] == 0
        assert len(hcp.twilio.calls) == 1

    @pytest.mark.parametrize("key", ["1", "3"])
    async def test_a_repeated_key_request_is_acted_on_once(self, hcp: Hcp, key: str) -> None:
        """Twilio retries a webhook that timed out: the same CallSid and Digits arrive twice."""
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        question = await answer(hcp, call)
        await press(hcp, call, question, key)
        first = snapshot(await work_order(hcp, wo_id))
        again = await press(hcp, call, question, key)
        assert hangs_up(again)
        assert snapshot(await work_order(hcp, wo_id)) == first
        assert len(callback_answers(await work_order(hcp, wo_id))) == 1
        assert len(callback_evaluations(await hcp.case(case_no))) == (1 if key == "1" else 0)  # Hainan art. 15

    async def test_a_second_round_is_called_afresh_and_a_second_3_closes_unresolved(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await reviewed(hcp)
        assert phone is not None
        await hcp.tick(RATED_AT)
        first = hcp.twilio.calls[0]
        await press(hcp, first, await answer(hcp, first), "3")
        await call_status(hcp, first, "completed")

        # The agency rectifies again; the new review schedules a new call, with the attempts counted afresh.
        again = RATED_AT + timedelta(days=2)  # Monday 10:00
        hcp.clock.set(again)
        await act(hcp, wo_id, "rectify", {"note": "再次整改"})
        await act(hcp, wo_id, "review")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "reviewed" and doc["reopened"] == 1
        assert doc["callback"]["calls"] == 0 and at(doc["callback"]["next_call_at"]) == again

        assert (await hcp.tick(again))["calls"] == 1
        second = calls_to(hcp, phone)[-1]
        assert second["sid"] != first["sid"]
        await press(hcp, second, await answer(hcp, second), "3")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "unresolved"  # callback_reopen_limit = 1
        assert callback_answers(doc) == ["dissatisfied"] * 2
        assert callback_evaluations(await hcp.case(case_no)) == []  # Hainan art. 15: no rating either time

    async def test_a_wrong_key_and_0_ask_again_then_a_good_key_counts(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        root = await answer(hcp, call)
        root = await press(hcp, call, root, "9")
        assert VOICE_MENU in said(root) and not hangs_up(root)
        root = await press(hcp, call, root, "0")  # repeat the menu
        assert VOICE_MENU in said(root) and not hangs_up(root)
        assert (await work_order(hcp, wo_id))["status"] == "reviewed"
        root = await press(hcp, call, root, "2")
        assert hangs_up(root)
        assert (await work_order(hcp, wo_id))["outcome"] == "basically_satisfied"

    async def test_an_answered_call_after_an_agent_recorded_the_result_only_says_goodbye(self, hcp: Hcp) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        await act(hcp, wo_id, "callback", {"result": "satisfied", "note": "坐席回访"})
        root = await answer(hcp, call)
        assert hangs_up(root)
        await call_status(hcp, call, "completed")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "satisfied"
        assert len(callback_evaluations(await hcp.case(case_no))) == 1

    async def test_an_upheld_appeal_stops_the_calls(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        await call_status(hcp, call, "no-answer")
        await act(hcp, wo_id, "appeal", {"reason": "评价人并未到窗口办理"})
        doc = await act(hcp, wo_id, "decide-appeal", {"upheld": True})
        assert doc["status"] == "closed" and doc["outcome"] == "excluded"
        assert doc["callback"]["next_call_at"] is None
        assert (await hcp.tick(RATED_AT + timedelta(hours=3)))["calls"] == 0
        assert len(hcp.twilio.calls) == 1

    @storing
    async def test_two_ticks_at_once_dial_each_rater_once(self, hcp: Hcp) -> None:
        ids = [(await reviewed(hcp))[0] for _ in range(3)]
        counts = await asyncio.gather(hcp.tick(RATED_AT), hcp.tick(RATED_AT))
        assert sum(c["calls"] for c in counts) == 3, counts
        assert sorted(c["url"].rsplit("=", 1)[1] for c in hcp.twilio.calls) == sorted(str(i) for i in ids)
        for wo_id in ids:
            assert (await work_order(hcp, wo_id))["callback"]["calls"] == 1

    # --- not reached: retries ------------------------------------------------------------------------

    @storing
    async def test_no_answer_and_busy_are_retried_60_minutes_apart_then_the_agents_queue(self, hcp: Hcp) -> None:
        wo_id, _, phone = await reviewed(hcp)
        assert phone is not None
        placed_at = RATED_AT
        assert (await hcp.tick(placed_at))["calls"] == 1
        statuses = ["no-answer", "busy", "no-answer", "busy"]
        for attempt, status in enumerate(statuses, start=1):
            calls = calls_to(hcp, phone)
            assert len(calls) == attempt
            ended = placed_at + timedelta(seconds=40)
            hcp.clock.set(ended)
            await call_status(hcp, calls[-1], status)
            doc = await work_order(hcp, wo_id)
            assert doc["status"] == "reviewed" and doc["callback"]["calls"] == attempt
            if attempt == len(statuses):
                break
            assert doc["callback"]["agent_queue"] is False
            nxt = at(doc["callback"]["next_call_at"])
            assert nxt == ended + timedelta(minutes=60), (attempt, doc["callback"])
            assert (await hcp.tick(nxt - timedelta(minutes=1)))["calls"] == 0
            assert len(calls_to(hcp, phone)) == attempt
            assert (await hcp.tick(nxt))["calls"] == 1
            assert (await hcp.tick(nxt))["calls"] == 0
            placed_at = nxt

        # 1 call + 3 retries, none reached: a 12345 agent takes over; the status stays at the callback step.
        doc = await work_order(hcp, wo_id)
        assert doc["callback"]["agent_queue"] is True
        assert doc["callback"]["next_call_at"] is None
        assert doc["callback"]["calls"] == 4
        assert doc["status"] == "reviewed" and doc["outcome"] is None
        assert doc["unreachable"] == 0  # unanswered calls are not an agent's "unreachable" result
        assert "callback" in doc["allowed"]
        assert (await hcp.tick(placed_at + timedelta(days=1)))["calls"] == 0
        assert len(calls_to(hcp, phone)) == 4
        # The agent's result is still taken.
        done = await act(hcp, wo_id, "callback", {"result": "satisfied"})
        assert done["status"] == "closed" and done["callback"]["agent_queue"] is False

    async def test_a_failed_call_is_retried_too(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        hcp.clock.set(RATED_AT + timedelta(seconds=5))
        await call_status(hcp, hcp.twilio.calls[0], "failed")
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == RATED_AT + timedelta(minutes=60, seconds=5)

    async def test_a_repeated_status_callback_schedules_one_retry(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        hcp.clock.set(RATED_AT + timedelta(minutes=1))
        await call_status(hcp, call, "no-answer")
        first = await work_order(hcp, wo_id)
        hcp.clock.set(RATED_AT + timedelta(minutes=3))  # Twilio delivers it again
        await call_status(hcp, call, "no-answer")
        again = await work_order(hcp, wo_id)
        assert snapshot(again) == snapshot(first)
        assert at(again["callback"]["next_call_at"]) == RATED_AT + timedelta(minutes=61)

    async def test_progress_statuses_change_nothing(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        before = snapshot(await work_order(hcp, wo_id))
        for status in ("initiated", "ringing", "in-progress"):
            await call_status(hcp, call, status)
        assert snapshot(await work_order(hcp, wo_id)) == before

    async def test_an_agents_result_while_a_retry_waits_cancels_the_retry(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        await call_status(hcp, hcp.twilio.calls[0], "no-answer")
        assert (await work_order(hcp, wo_id))["callback"]["next_call_at"] is not None
        hcp.clock.set(RATED_AT + timedelta(minutes=30))
        doc = await act(hcp, wo_id, "callback", {"result": "basically_satisfied"})
        assert doc["status"] == "closed" and doc["callback"]["next_call_at"] is None
        assert (await hcp.tick(RATED_AT + timedelta(hours=2)))["calls"] == 0
        assert len(hcp.twilio.calls) == 1

    @storing
    async def test_an_answered_call_without_a_key_counts_as_not_reached(self, hcp: Hcp) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        root = await answer(hcp, call)
        root = await press(hcp, call, root, None)  # silence: asked once more
        assert not hangs_up(root) and VOICE_MENU in said(root)
        root = await press(hcp, call, root, None)  # silence again: goodbye
        assert hangs_up(root)
        assert (await work_order(hcp, wo_id))["status"] == "reviewed"

        ended = RATED_AT + timedelta(minutes=1)
        hcp.clock.set(ended)
        await call_status(hcp, call, "completed")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "reviewed" and doc["callback"]["agent_queue"] is False
        assert at(doc["callback"]["next_call_at"]) == ended + timedelta(minutes=60)
        assert callback_evaluations(await hcp.case(case_no)) == []
        assert (await hcp.tick(ended + timedelta(minutes=60)))["calls"] == 1

    @pytest.mark.parametrize("keys", [("9", "9", "9"), ("#",), ()], ids=["three-wrong-keys", "hash", "hung-up"])
    async def test_an_answered_call_that_ends_without_a_result_is_retried(self, hcp: Hcp,
                                                                         keys: tuple[str, ...]) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        root = await answer(hcp, call)
        for key in keys:
            if hangs_up(root):
                break
            root = await press(hcp, call, root, key)
        if keys == ("9", "9", "9"):
            assert hangs_up(root)
        assert (await work_order(hcp, wo_id))["status"] == "reviewed"
        hcp.clock.set(RATED_AT + timedelta(minutes=2))
        await call_status(hcp, call, "completed")
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == RATED_AT + timedelta(minutes=62)
        assert callback_evaluations(await hcp.case(case_no)) == []

    @pytest.mark.parametrize("wo", ["abc", "", "99999", "-1", "1" * 20])
    async def test_a_callback_url_naming_no_waiting_work_order_says_goodbye(self, hcp: Hcp, wo: str) -> None:
        await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        path = f"{CALLBACK_PATH}?wo={wo}"
        status, raw = await hcp.twilio_post(path, call_params(hcp, call, CallStatus="in-progress"))
        assert status == 200, raw
        assert hangs_up(twiml(raw))
        keys = f"{KEYS_PATH}?wo={wo}&ask=callback&s=0&i=0"
        status, raw = await hcp.twilio_post(keys, call_params(hcp, call, CallStatus="in-progress", Digits="1"))
        assert status == 200, raw
        assert hangs_up(twiml(raw))

    async def test_keys_for_another_work_order_record_nothing_there(self, hcp: Hcp) -> None:
        """The work order named in the URL is the one answered; one waiting for its own call is untouched."""
        first, _, _ = await reviewed(hcp)
        second, second_case, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        by_wo = {c["url"].rsplit("=", 1)[1]: c for c in hcp.twilio.calls}
        assert set(by_wo) == {str(first), str(second)}
        # The rater of `first` answers, but the keys are posted (signed) against `second` with first's CallSid.
        call = by_wo[str(first)]
        keys = f"{KEYS_PATH}?wo={second}&ask=callback&s=0&i=0"
        status, _ = await hcp.twilio_post(keys, call_params(hcp, call, CallStatus="in-progress", Digits="1"))
        assert status == 200
        assert (await work_order(hcp, second))["status"] == "reviewed"
        assert callback_evaluations(await hcp.case(second_case)) == []

    # --- Twilio refuses the call ----------------------------------------------------------------------

    @pytest.mark.parametrize(("status", "code"), [(500, 20500), (429, 20429), (400, 21211)])
    async def test_a_call_twilio_refuses_is_retried_not_lost(self, hcp: Hcp, status: int, code: int) -> None:
        wo_id, _, phone = await reviewed(hcp)
        assert phone is not None
        hcp.twilio.fail_next(1, status=status, code=code, message="refused by the test")
        counts = await hcp.tick(RATED_AT)
        assert counts["calls"] == 0, counts
        assert hcp.twilio.calls == []
        assert [r["status"] for r in hcp.twilio.requests if r["path"].endswith("/Calls.json")] == [status]
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "reviewed" and doc["callback"]["agent_queue"] is False
        assert doc["callback"]["calls"] == 1
        nxt = at(doc["callback"]["next_call_at"])
        assert nxt == RATED_AT + timedelta(minutes=60)
        assert (await hcp.tick(nxt - timedelta(seconds=1)))["calls"] == 0
        assert (await hcp.tick(nxt))["calls"] == 1
        assert len(calls_to(hcp, phone)) == 1

    async def test_refused_every_time_ends_in_the_agents_queue(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)
        hcp.twilio.fail_next(4)
        when = RATED_AT
        for _ in range(4):
            assert (await hcp.tick(when))["calls"] == 0
            doc = await work_order(hcp, wo_id)
            if doc["callback"]["next_call_at"] is None:
                break
            when = at(doc["callback"]["next_call_at"])
        doc = await work_order(hcp, wo_id)
        assert doc["callback"]["calls"] == 4 and doc["callback"]["agent_queue"] is True
        assert doc["status"] == "reviewed"
        assert hcp.twilio.calls == []

    # --- calling hours ---------------------------------------------------------------------------------

    @storing
    async def test_a_retry_falling_after_21_waits_for_8_next_morning(self, hcp: Hcp) -> None:
        review_at = cst("2026-11-21T20:30")
        wo_id, _, phone = await reviewed(hcp, review_at=review_at)
        assert phone is not None
        assert (await hcp.tick(review_at))["calls"] == 1
        await call_status(hcp, calls_to(hcp, phone)[0], "no-answer")  # at 20:30: a retry would be 21:30
        doc = await work_order(hcp, wo_id)
        assert doc["callback"]["next_call_at"] == "2026-11-22T08:00:00+08:00"  # local, with its offset
        for quiet in ("2026-11-21T21:30", "2026-11-21T23:59", "2026-11-22T07:59"):
            assert (await hcp.tick(cst(quiet)))["calls"] == 0, quiet
        assert len(calls_to(hcp, phone)) == 1
        assert (await hcp.tick(cst("2026-11-22T08:00")))["calls"] == 1
        assert len(calls_to(hcp, phone)) == 2

    @storing
    async def test_a_review_at_22_is_first_called_at_8_next_day(self, hcp: Hcp) -> None:
        wo_id, _, phone = await reviewed(hcp, review_at=cst("2026-11-21T22:00"))
        assert phone is not None
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == cst("2026-11-22T08:00")
        assert (await hcp.tick(cst("2026-11-21T22:00")))["calls"] == 0
        assert (await hcp.tick(cst("2026-11-22T07:59")))["calls"] == 0
        assert hcp.twilio.calls == []
        assert (await hcp.tick(cst("2026-11-22T08:00")))["calls"] == 1
        assert calls_to(hcp, phone)[0]["url"].endswith(f"?wo={wo_id}")

    @pytest.mark.parametrize(("review_local", "first_call_local"), [
        ("2026-11-21T20:59", "2026-11-21T20:59"),
        ("2026-11-21T21:00", "2026-11-22T08:00"),  # the end of the calling hours is outside them
        ("2026-11-21T23:30", "2026-11-22T08:00"),
        ("2026-11-22T07:59", "2026-11-22T08:00"),
        ("2026-11-22T08:00", "2026-11-22T08:00"),  # the start is inside
    ])
    async def test_the_first_call_is_inside_the_calling_hours(self, hcp: Hcp, review_local: str,
                                                              first_call_local: str) -> None:
        wo_id, _, _ = await reviewed(hcp, review_at=cst(review_local))
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == cst(first_call_local)
        assert (await hcp.tick(cst(first_call_local) - timedelta(seconds=1)))["calls"] == 0
        assert (await hcp.tick(cst(first_call_local)))["calls"] == 1

    async def test_a_call_due_in_hours_but_ticked_late_at_night_waits_for_the_morning(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp, review_at=cst("2026-11-21T20:30"))
        # The scheduler was down; its next pass comes at 21:15, outside the calling hours.
        assert (await hcp.tick(cst("2026-11-21T21:15")))["calls"] == 0
        assert hcp.twilio.calls == []
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == cst("2026-11-22T08:00")
        assert doc["callback"]["calls"] == 0  # not dialled, so no attempt used
        assert (await hcp.tick(cst("2026-11-22T08:00")))["calls"] == 1

    # --- signatures ---------------------------------------------------------------------------------

    async def test_the_callback_webhooks_refuse_a_bad_signature(self, hcp: Hcp) -> None:
        wo_id, case_no, _ = await reviewed(hcp)
        await hcp.tick(RATED_AT)
        call = hcp.twilio.calls[0]
        path = local_path(call["url"])
        params = call_params(hcp, call, CallStatus="in-progress")
        forged = hcp.sign(path, params, token="not-the-auth-token")
        assert (await hcp.twilio_post(path, params, signature=forged))[0] == 403
        assert (await hcp.twilio_post(path, params, signature=""))[0] == 403
        # Signed for another work order's URL: refused too.
        other = hcp.sign(f"{CALLBACK_PATH}?wo={wo_id + 1}", params)
        assert (await hcp.twilio_post(path, params, signature=other))[0] == 403

        keys = f"{KEYS_PATH}?wo={wo_id}&ask=callback&s=0&i=0"
        pressed = call_params(hcp, call, CallStatus="in-progress", Digits="1")
        assert (await hcp.twilio_post(keys, pressed, signature=hcp.sign(keys, pressed, token="x" * 32)))[0] == 403

        status = call_params(hcp, call, CallStatus="no-answer")
        assert (await hcp.twilio_post(STATUS_PATH, status, signature=hcp.sign(STATUS_PATH, status, token="y")))[0] \
            == 403
        assert (await hcp.twilio_post(STATUS_PATH, status, signature=""))[0] == 403
        # A signature over other parameters does not carry over.
        tampered = hcp.sign(STATUS_PATH, {**status, "CallStatus": "completed"})
        assert (await hcp.twilio_post(STATUS_PATH, status, signature=tampered))[0] == 403

        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "reviewed" and doc["callback"]["next_call_at"] is None
        assert doc["callback"]["calls"] == 1
        assert callback_evaluations(await hcp.case(case_no)) == []


# === the SMS callback ===================================================================================


class TestCallbackSms:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        return write_policy(tmp_path, 'callback = { by = ["sms"] }\n')

    async def asked(self, hcp: Hcp, review_at: datetime | None = None) -> tuple[int, str, str]:
        """A work order at the callback step whose SMS question reached the rater."""
        wo_id, case_no, phone = await reviewed(hcp, review_at=review_at)
        assert phone is not None
        assert hcp.twilio.sms_to(phone) == []  # queued by the review, sent by the tick
        counts = await hcp.tick(hcp.clock())
        assert counts["sent"] == 1 and counts["calls"] == 0, counts
        texts = hcp.twilio.sms_to(phone)
        assert len(texts) == 1
        return wo_id, case_no, phone

    @storing
    async def test_the_review_texts_the_rater_and_1_closes_satisfied(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        body = hcp.twilio.sms_to(phone)[0]["body"]
        assert SMS_ASK in body and "基本满意请回复2" in body and "不满意请回复3" in body
        assert "居民身份证换领" in body
        assert hcp.twilio.calls == []

        hcp.clock.set(RATED_AT + timedelta(minutes=10))
        reply = await hcp.sms(phone, "1")
        assert reply.status == 200 and len(reply.messages) == 1
        assert "感谢" in reply.text
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "satisfied"
        assert at(doc["closed_at"]) == RATED_AT + timedelta(minutes=10)
        recorded = callback_evaluations(await hcp.case(case_no))
        assert [(e["grade"], e["score"]) for e in recorded] == [("satisfied", 8)]

        # The conversation is over: a second "1" records nothing more.
        await hcp.sms(phone, "1")
        assert len(callback_evaluations(await hcp.case(case_no))) == 1
        assert (await work_order(hcp, wo_id))["outcome"] == "satisfied"

    @storing
    async def test_a_full_width_3_reopens(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        reply = await hcp.sms(phone, "３")
        assert "感谢" in reply.text
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "dispatched" and doc["reopened"] == 1 and doc["outcome"] is None
        assert callback_answers(doc) == ["dissatisfied"]
        assert callback_evaluations(await hcp.case(case_no)) == []  # Hainan art. 15: no rating

    @pytest.mark.parametrize(("text", "outcome"), [
        ("2", "basically_satisfied"), ("基本满意", "basically_satisfied"), ("满意，谢谢", "satisfied"),
        ("２", "basically_satisfied"),
    ])
    async def test_replies_in_words_and_digits(self, hcp: Hcp, text: str, outcome: str) -> None:
        wo_id, _, phone = await self.asked(hcp)
        await hcp.sms(phone, text)
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == outcome

    async def test_words_for_not_satisfied_reopen(self, hcp: Hcp) -> None:
        wo_id, _, phone = await self.asked(hcp)
        await hcp.sms(phone, "还是不满意")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "dispatched" and doc["reopened"] == 1

    @storing
    async def test_hello_is_asked_again_politely_and_nothing_is_recorded(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        before = snapshot(await work_order(hcp, wo_id))
        reply = await hcp.sms(phone, "hello")
        assert reply.status == 200 and len(reply.messages) == 1, reply
        assert "回复1" in reply.text and "回复3" in reply.text, reply.text
        assert "感谢" not in reply.text
        assert callback_evaluations(await hcp.case(case_no)) == []
        assert snapshot(await work_order(hcp, wo_id)) == before
        # The question is still open: the answer that follows counts.
        reply = await hcp.sms(phone, "1")
        assert "感谢" in reply.text
        assert (await work_order(hcp, wo_id))["outcome"] == "satisfied"

    @pytest.mark.parametrize("text", ["4", "13", "1 3", "满意 3", "0", "好的", "   "])
    async def test_an_unclear_reply_records_nothing(self, hcp: Hcp, text: str) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        before = snapshot(await work_order(hcp, wo_id))
        reply = await hcp.sms(phone, text)
        assert reply.status == 200 and "回复1" in reply.text and "感谢" not in reply.text, (text, reply.text)
        assert callback_evaluations(await hcp.case(case_no)) == []
        assert snapshot(await work_order(hcp, wo_id)) == before

    async def test_after_three_unclear_replies_the_question_is_left_to_an_agent(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        for text in ("hello", "?", "嗯"):
            assert "回复1" in (await hcp.sms(phone, text)).text
        await hcp.sms(phone, "1")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "reviewed" and doc["callback"]["agent_queue"] is True
        assert callback_evaluations(await hcp.case(case_no)) == []

    async def test_a_repeated_message_sid_is_acted_on_once(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        await hcp.sms(phone, "3", sid="SM" + "a" * 32)
        again = await hcp.sms(phone, "3", sid="SM" + "a" * 32)
        assert again.status == 200
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "dispatched" and doc["reopened"] == 1
        assert callback_answers(doc) == ["dissatisfied"]
        assert callback_evaluations(await hcp.case(case_no)) == []

    @storing
    async def test_an_agents_result_ends_the_sms_callback(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        hcp.clock.set(RATED_AT + timedelta(minutes=30))
        doc = await act(hcp, wo_id, "callback", {"result": "satisfied", "note": "坐席电话回访"})
        assert doc["status"] == "closed" and doc["outcome"] == "satisfied"
        assert len(callback_evaluations(await hcp.case(case_no))) == 1

        hcp.clock.set(RATED_AT + timedelta(minutes=40))
        reply = await hcp.sms(phone, "3")
        assert reply.status == 200
        assert "感谢您的反馈，我们已记录" not in reply.text
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "satisfied" and doc["reopened"] == 0
        case = await hcp.case(case_no)
        assert [e["grade"] for e in callback_evaluations(case)] == ["satisfied"]
        assert len(case["evaluations"]) == 2  # the bad review and the one callback result

    async def test_an_agents_unreachable_keeps_the_sms_question_open(self, hcp: Hcp) -> None:
        wo_id, _, phone = await self.asked(hcp)
        doc = await act(hcp, wo_id, "callback", {"result": "unreachable"})
        assert doc["status"] == "reviewed" and doc["unreachable"] == 1
        await hcp.sms(phone, "2")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "basically_satisfied"

    async def test_an_opt_out_word_records_nothing(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        reply = await hcp.sms(phone, "退订")
        assert reply.status == 200 and "感谢" not in reply.text
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "reviewed" and callback_evaluations(await hcp.case(case_no)) == []
    async def test_a_reply_after_an_upheld_appeal_does_not_claim_to_be_recorded(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        await act(hcp, wo_id, "appeal", {"reason": "评价人并未到窗口办理"})
        doc = await act(hcp, wo_id, "decide-appeal", {"upheld": True})
        assert doc["status"] == "closed" and doc["outcome"] == "excluded"
        reply = await hcp.sms(phone, "1")
        assert reply.status == 200
        assert callback_evaluations(await hcp.case(case_no)) == []
        assert (await work_order(hcp, wo_id))["outcome"] == "excluded"
        # Replies are rendered after the commit so that they never promise what the store does not hold.
        assert "已记录" not in reply.text, reply.text
    async def test_a_reply_after_the_third_unreachable_does_not_claim_to_be_recorded(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await self.asked(hcp)
        for _ in range(3):
            doc = await act(hcp, wo_id, "callback", {"result": "unreachable"})
        assert doc["status"] == "closed" and doc["outcome"] == "unreachable"
        reply = await hcp.sms(phone, "1")
        assert callback_evaluations(await hcp.case(case_no)) == []
        assert (await work_order(hcp, wo_id))["outcome"] == "unreachable"
        assert "已记录" not in reply.text, reply.text

    async def test_a_pending_question_holds_another_cases_reminder_until_answered(self, hcp: Hcp) -> None:
        """One conversation at a time: the callback question is one; the reminder waits for the answer."""
        wo_id, _, phone = await self.asked(hcp)
        other = await hcp.post_case(phone=phone, completed_at="2026-11-20T11:00:00+08:00")
        assert at(other["remind_at"]) == cst("2026-11-21T11:00")
        assert (await hcp.tick(cst("2026-11-21T11:00")))["reminders"] == 0
        hcp.clock.set(cst("2026-11-21T11:05"))
        await hcp.sms(phone, "1")
        assert (await work_order(hcp, wo_id))["outcome"] == "satisfied"
        assert (await hcp.tick(cst("2026-11-21T11:06")))["reminders"] == 1
        assert "非常满意" in hcp.twilio.sms_to(phone)[-1]["body"]
    async def test_an_upheld_appeal_frees_the_rater_for_other_reminders(self, hcp: Hcp) -> None:
        wo_id, _, phone = await self.asked(hcp)
        hcp.clock.set(cst("2026-11-21T10:30"))
        await act(hcp, wo_id, "appeal", {"reason": "评价人并未到窗口办理"})
        await act(hcp, wo_id, "decide-appeal", {"upheld": True})
        await hcp.post_case(phone=phone, completed_at="2026-11-20T11:00:00+08:00")
        assert (await hcp.tick(cst("2026-11-21T11:00")))["reminders"] == 1

    async def test_the_question_keeps_the_quiet_hours(self, hcp: Hcp) -> None:
        wo_id, _, phone = await reviewed(hcp, review_at=cst("2026-11-21T22:00"))
        assert phone is not None
        assert (await hcp.tick(cst("2026-11-21T22:00")))["sent"] == 0
        assert (await hcp.tick(cst("2026-11-22T07:59")))["sent"] == 0
        assert hcp.twilio.sms_to(phone) == []
        assert (await hcp.tick(cst("2026-11-22T08:00")))["sent"] == 1
        assert SMS_ASK in hcp.twilio.sms_to(phone)[0]["body"]
        hcp.clock.set(cst("2026-11-22T08:05"))
        await hcp.sms(phone, "1")
        assert (await work_order(hcp, wo_id))["outcome"] == "satisfied"

    async def test_the_sms_question_is_sent_once(self, hcp: Hcp) -> None:
        _, _, phone = await self.asked(hcp)
        assert (await hcp.tick(RATED_AT + timedelta(hours=1)))["sent"] == 0
        assert len(hcp.twilio.sms_to(phone)) == 1


# === a policy of its own ================================================================================


class TestCallPolicy:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        return write_policy(tmp_path, 'callback = { by = ["call"], call_retries = 1, call_interval_minutes = 30, '
                                      'call_hours = ["09:00", "18:00"] }\n')

    async def test_retries_interval_and_hours_come_from_the_policy(self, hcp: Hcp) -> None:
        wo_id, _, phone = await reviewed(hcp, review_at=cst("2026-11-21T17:00"))
        assert phone is not None
        assert (await hcp.tick(cst("2026-11-21T17:00")))["calls"] == 1
        hcp.clock.set(cst("2026-11-21T17:40"))
        await call_status(hcp, calls_to(hcp, phone)[0], "busy")
        # 17:40 + 30 min = 18:10, after the policy's calling hours: 09:00 next morning.
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == cst("2026-11-22T09:00")
        assert (await hcp.tick(cst("2026-11-22T08:59")))["calls"] == 0
        assert (await hcp.tick(cst("2026-11-22T09:00")))["calls"] == 1
        hcp.clock.set(cst("2026-11-22T09:01"))
        await call_status(hcp, calls_to(hcp, phone)[1], "no-answer")
        doc = await work_order(hcp, wo_id)  # one retry only: the agents' queue now
        assert doc["callback"]["agent_queue"] is True and doc["callback"]["next_call_at"] is None
        assert doc["callback"]["calls"] == 2 and doc["status"] == "reviewed"

    async def test_a_30_minute_interval(self, hcp: Hcp) -> None:
        wo_id, _, _ = await reviewed(hcp)  # 10:00, inside 09:00–18:00
        await hcp.tick(RATED_AT)
        await call_status(hcp, hcp.twilio.calls[0], "no-answer")
        doc = await work_order(hcp, wo_id)
        assert at(doc["callback"]["next_call_at"]) == RATED_AT + timedelta(minutes=30)


class TestCallAndSms:
    """Both roads at once: the first answer wins, the other then records nothing."""

    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        return write_policy(tmp_path, 'callback = { by = ["sms", "call"] }\n')

    async def test_an_sms_answer_cancels_the_calls(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await reviewed(hcp)
        assert phone is not None
        counts = await hcp.tick(RATED_AT)
        assert counts["sent"] == 1 and counts["calls"] == 1, counts
        call = calls_to(hcp, phone)[0]
        await call_status(hcp, call, "no-answer")
        assert (await work_order(hcp, wo_id))["callback"]["next_call_at"] is not None
        await hcp.sms(phone, "2")
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "basically_satisfied"
        assert doc["callback"]["next_call_at"] is None
        assert (await hcp.tick(RATED_AT + timedelta(hours=3)))["calls"] == 0
        assert len(hcp.twilio.calls) == 1
        assert len(callback_evaluations(await hcp.case(case_no))) == 1

    async def test_a_keyed_answer_ends_the_sms_question(self, hcp: Hcp) -> None:
        wo_id, case_no, phone = await reviewed(hcp)
        assert phone is not None
        await hcp.tick(RATED_AT)
        call = calls_to(hcp, phone)[0]
        await press(hcp, call, await answer(hcp, call), "1")
        await call_status(hcp, call, "completed")
        reply = await hcp.sms(phone, "3")
        assert "感谢您的反馈，我们已记录" not in reply.text
        doc = await work_order(hcp, wo_id)
        assert doc["status"] == "closed" and doc["outcome"] == "satisfied" and doc["reopened"] == 0
        assert [e["grade"] for e in callback_evaluations(await hcp.case(case_no))] == ["satisfied"]
