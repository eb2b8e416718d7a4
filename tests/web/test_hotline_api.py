"""The JSON keypad dialog (CONTRACT "Hotline keypads beyond Twilio"), driven as a switch's IVR script drives it:
start the call's rating, speak `say`, collect what `ask` asks for, post the keys, until `done`.

The menus, reasons, silences and goodbyes are the Twilio keypad's (tests/web/test_voice.py walks those through
TwiML); here every path is walked through JSON, with what only this dialog has: the state kept by the service
(any worker answers the next step), a step posted twice answered the same way and stored once, and 4xx naming
what was wrong.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from helpers import TOKEN, Hcp
from keypad_texts import GOODBYE, GRADE_MENU, INVALID, NO_INPUT, RATED, REASON_LABELS, THANKS, THANKS_BAD
from servers import BACKENDS

from bot.infra.i18n import SUPPORTED
from bot.policy.rules import DEFAULT_REASONS, RECORDING_LOCALES, PolicyError, parse_policy
from dialogs import keypad

CALLS = "/api/v1/hotline/calls"


class Call:
    """A switch's script for one call: it remembers the last answer's step, as a script would."""

    def __init__(self, hcp: Hcp, ticket: str | None = None, caller: str = "+8613800138000",
                 call_id: str | None = None) -> None:
        self.hcp, self.ticket, self.caller = hcp, ticket, caller
        self.call_id = call_id or "fs-" + secrets.token_hex(8)
        self.last: dict[str, Any] | None = None

    async def start(self, expect: int = 201) -> dict[str, Any]:
        body: dict[str, Any] = {"call_id": self.call_id, "caller": self.caller}
        if self.ticket is not None:
            body["ticket"] = self.ticket
        status, doc = await self.hcp.api("POST", CALLS, body)
        assert status == expect, (status, doc)
        self.last = doc
        return doc

    async def press(self, digits: str, step: int | None = None, expect: int = 200) -> dict[str, Any]:
        assert self.last is not None
        status, doc = await self.hcp.api("POST", f"{CALLS}/{self.call_id}/keys",
                                         {"digits": digits, "step": self.last["step"] if step is None else step})
        assert status == expect, (status, doc)
        if status == 200:
            self.last = doc
        return doc


def text(answer: dict[str, Any]) -> str:
    return "\n".join(answer["say"])


def shape_ok(answer: dict[str, Any]) -> None:
    """The contract's shape: `ask` is null exactly when `done`; `say` is the prompts' texts."""
    assert set(answer) >= {"call_id", "step", "say", "ask", "done"}, answer
    assert (answer["ask"] is None) == answer["done"], answer
    assert answer["say"] == [p["text"] for p in answer["prompts"]] and all(answer["say"]), answer
    if answer["ask"] is not None:
        assert set(answer["ask"]) <= {"max_digits", "finish_on_key", "timeout_s"}, answer
        assert answer["ask"]["max_digits"] >= 1 and answer["ask"]["timeout_s"] > 0, answer


async def posted_case(hcp: Hcp, **kw: Any) -> str:
    return str((await hcp.post_case(phone=kw.pop("phone", None) or hcp.new_phone(), **kw))["case_no"])


# --- whole calls --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_good_grade_is_stored_at_once_and_the_call_ends(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    first = await call.start()
    shape_ok(first)
    assert first["step"] == 1 and first["call_id"] == call.call_id and not first["done"]
    assert all(part in text(first) for part in GRADE_MENU), first
    assert first["ask"] == {"max_digits": 1, "timeout_s": 8}
    assert [p["key"] for p in first["prompts"]] == ["voice.welcome", "voice.grade_menu"]

    end = await call.press("2")
    shape_ok(end)
    assert end["step"] == 2 and end["done"] and THANKS in text(end)
    [ev] = await hcp.evaluations(case_no)
    assert ev["grade"] == "satisfied" and ev["channel"] == "phone"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_bad_grade_asks_for_reasons_by_key_and_opens_one_work_order(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    reasons = await call.press("4")
    shape_ok(reasons)
    assert reasons["ask"] == {"max_digits": keypad.MAX_REASON_KEYS, "finish_on_key": "#", "timeout_s": 10}
    positions = [text(reasons).find(f"{label}请按{n}") for n, label in enumerate(REASON_LABELS, start=1)]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), text(reasons)
    assert await hcp.evaluations(case_no) == []  # nothing stored before the reasons

    end = await call.press("31#")
    assert end["done"] and THANKS_BAD in text(end)
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert ev["grade"] == "dissatisfied" and ev["reasons"] == ["process", "attitude"]
    assert len(case["work_orders"]) == 1


async def test_zero_repeats_the_menu_and_stores_nothing(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    again = await call.press("0")
    assert not again["done"] and again["step"] == 2
    assert all(part in text(again) for part in GRADE_MENU)
    await call.press("5")
    repeated = await call.press("0")
    assert "重听请按0" in text(repeated) and REASON_LABELS[0] in text(repeated)
    assert await hcp.evaluations(case_no) == []
    await call.press("7#")
    assert (await hcp.evaluations(case_no))[0]["reasons"] == [list(DEFAULT_REASONS)[6]]


async def test_silence_is_asked_once_more_then_goodbye_and_nothing_is_stored(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    once = await call.press("")
    assert not once["done"] and NO_INPUT in text(once) and all(part in text(once) for part in GRADE_MENU)
    twice = await call.press("")
    assert twice["done"] and GOODBYE in text(twice)
    assert await hcp.evaluations(case_no) == []
    await call.press("1", expect=409)  # the call is over: no keys are taken


async def test_a_key_after_one_silence_still_rates(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("")
    end = await call.press("3")
    assert end["done"] and end["step"] == 3
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["basically_satisfied"]


@pytest.mark.parametrize("keys", ["9", "6", "*", "12"])
async def test_a_wrong_key_is_re_prompted_and_the_third_says_goodbye(hcp: Hcp, keys: str) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    for _ in range(2):
        wrong = await call.press(keys)
        assert not wrong["done"] and INVALID in text(wrong) and all(part in text(wrong) for part in GRADE_MENU)
    last = await call.press(keys)
    assert last["done"] and INVALID in text(last) and GOODBYE in text(last)
    assert await hcp.evaluations(case_no) == []


async def test_a_key_naming_no_reason_is_re_prompted(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("5")
    wrong = await call.press("19#")  # no ninth reason in the default policy
    assert not wrong["done"] and INVALID in text(wrong)
    end = await call.press("1#")
    assert end["done"]
    assert (await hcp.evaluations(case_no))[0]["reasons"] == ["attitude"]


async def test_a_bad_grade_then_silence_twice_stores_nothing(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("5")
    await call.press("")
    end = await call.press("")
    assert end["done"] and GOODBYE in text(end)
    assert await hcp.evaluations(case_no) == []


async def test_an_unknown_ticket_becomes_a_hotline_case_rated_by_the_caller(hcp: Hcp) -> None:
    ticket = "GD12345-" + secrets.token_hex(4)
    call = Call(hcp, ticket, caller="13800138000")
    await call.start()
    await call.press("1")
    case = await hcp.case(ticket)
    assert case["item_code"] == "12345" and case["evaluations"][0]["grade"] == "very_satisfied"


async def test_a_call_without_a_ticket_is_rated_under_its_own_id(hcp: Hcp) -> None:
    call = Call(hcp, None, caller="")  # a withheld number: rated without a contact
    await call.start()
    await call.press("2")
    case = await hcp.case(f"12345-{call.call_id}")
    assert [e["grade"] for e in case["evaluations"]] == ["satisfied"]


async def test_a_case_rated_already_is_told_so_at_the_start(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    first = Call(hcp, case_no)
    await first.start()
    await first.press("1")
    await first.press("1", step=1)  # the same step again: the same answer, nothing more stored
    second = Call(hcp, case_no)
    await second.start()  # inside the follow-up window: the follow-up
    await second.press("2")
    third = Call(hcp, case_no)
    told = await third.start()
    assert told["done"] and RATED in text(told)
    assert [e["is_followup"] for e in await hcp.evaluations(case_no)] == [False, True]


# --- the state kept by the service ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_step_posted_twice_is_answered_the_same_way_and_stored_once(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    reasons = await call.press("5")
    end = await call.press("26#")
    again = await call.press("26#", step=2)
    assert again == end
    other_keys = await call.press("1#", step=2)  # a step answered already keeps its answer, whatever is posted
    assert other_keys == end
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert ev["reasons"] == ["efficiency", "platform"] and len(case["work_orders"]) == 1
    assert await call.press("1", step=1) == reasons  # an earlier step's answer is the one it had


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_last_step_posted_five_times_at_once_is_one_rating(hcp: Hcp) -> None:
    """Five workers take the same last step at the same moment (a script that retried on a time-out): the call's
    row is taken one step at a time, so one rating and one work order, and five equal answers."""
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("4")
    answers = await asyncio.gather(*(hcp.api("POST", f"{CALLS}/{call.call_id}/keys", {"digits": "13#", "step": 2})
                                     for _ in range(5)))
    assert [status for status, _ in answers] == [200] * 5
    assert all(doc == answers[0][1] for _, doc in answers) and answers[0][1]["done"]
    case = await hcp.case(case_no)
    assert len(case["evaluations"]) == 1 and len(case["work_orders"]) == 1


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_start_posted_again_answers_the_first_step_again(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    first = await call.start()
    again = await call.start(expect=200)
    assert again == first
    both = await asyncio.gather(*(hcp.api("POST", CALLS, {"call_id": "same-" + call.call_id, "caller": "",
                                                           "ticket": case_no}) for _ in range(3)))
    assert sorted(status for status, _ in both) == [200, 200, 201]
    assert len({str(doc) for _, doc in both}) == 1


async def test_a_call_id_reused_for_another_ticket_is_refused(hcp: Hcp) -> None:
    call = Call(hcp, await posted_case(hcp))
    await call.start()
    other = await posted_case(hcp)
    status, doc = await hcp.api("POST", CALLS, {"call_id": call.call_id, "caller": "", "ticket": other})
    assert status == 409 and "another ticket" in doc["error"]


async def test_keys_for_a_step_not_asked_yet_are_refused_with_the_current_step(hcp: Hcp) -> None:
    call = Call(hcp, await posted_case(hcp))
    await call.start()
    doc = await call.press("1", step=3, expect=409)
    assert doc["step"] == 1 and "step 3" in doc["error"]


async def test_without_a_step_the_keys_answer_the_current_one(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    status, doc = await hcp.api("POST", f"{CALLS}/{call.call_id}/keys", {"digits": "1"})
    assert status == 200 and doc["done"] and doc["step"] == 2


# --- bad requests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({"caller": "13800138000"}, "call_id"),
    ({"call_id": "", "caller": ""}, "call_id"),
    ({"call_id": "a b", "caller": ""}, "call_id"),
    ({"call_id": "x" * 65, "caller": ""}, "call_id"),
    ({"call_id": 12, "caller": ""}, "call_id"),
    ({"call_id": "ok-1", "caller": 13800138000}, "caller"),
    ({"call_id": "ok-1", "caller": "1" * 41}, "caller"),
    ({"call_id": "ok-1", "caller": "", "ticket": ""}, "ticket"),
    ({"call_id": "ok-1", "caller": "", "ticket": "t" * 101}, "ticket"),
    ({"call_id": "ok-1", "caller": "", "ticket": "a\nb"}, "ticket"),
    ({"call_id": "ok-1", "caller": "", "digits": "1"}, "digits"),
])
async def test_a_bad_start_is_422_naming_the_field_and_starts_nothing(hcp: Hcp, body: dict[str, Any],
                                                                        field: str) -> None:
    status, doc = await hcp.api("POST", CALLS, body)
    assert status == 422 and field in [e["field"] for e in doc["errors"]], (status, doc)
    status, _ = await hcp.api("POST", f"{CALLS}/ok-1/keys", {"digits": "1"})
    assert status == 404  # nothing was started


@pytest.mark.parametrize(("body", "field"), [
    ({}, "digits"), ({"digits": None}, "digits"), ({"digits": 1}, "digits"), ({"digits": "1a"}, "digits"),
    ({"digits": "1" * 33}, "digits"), ({"digits": "1", "step": 0}, "step"), ({"digits": "1", "step": "2"}, "step"),
    ({"digits": "1", "step": True}, "step"), ({"digits": "1", "extra": 1}, "extra"),
])
async def test_bad_keys_are_422_naming_the_field_and_change_nothing(hcp: Hcp, body: dict[str, Any], field: str) -> None:
    call = Call(hcp, await posted_case(hcp))
    await call.start()
    status, doc = await hcp.api("POST", f"{CALLS}/{call.call_id}/keys", body)
    assert status == 422 and field in [e["field"] for e in doc["errors"]], (status, doc)
    assert (await call.press("1"))["step"] == 2  # the call is where it was


async def test_not_json_and_not_an_object_are_400(hcp: Hcp) -> None:
    resp = await hcp.client.post(CALLS, data=b"{", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 400
    status, _ = await hcp.api("POST", CALLS, ["call_id"])
    assert status == 400


async def test_an_unknown_call_is_404(hcp: Hcp) -> None:
    status, doc = await hcp.api("POST", f"{CALLS}/never-started/keys", {"digits": "1"})
    assert status == 404 and "never-started" in doc["error"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_the_dialog_needs_the_api_token(hcp: Hcp, token: str | None) -> None:
    case_no = await posted_case(hcp)
    status, _ = await hcp.api("POST", CALLS, {"call_id": "tok-1", "caller": "", "ticket": case_no}, token=token)
    assert status == 401
    call = Call(hcp, case_no)
    await call.start()
    status, _ = await hcp.api("POST", f"{CALLS}/{call.call_id}/keys", {"digits": "1"}, token=token)
    assert status == 401
    assert await hcp.evaluations(case_no) == []


# --- recorded prompts ------------------------------------------------------------------------------------------


def test_the_policy_names_recordings_only_for_prompts_without_values() -> None:
    policy = parse_policy({"hotline": {"recordings": {"zh_Hans": {"voice.welcome": "zh/welcome.wav"}}}})
    assert policy.hotline_recordings == {"zh_Hans": {"voice.welcome": "zh/welcome.wav"}}
    for bad in ({"recordings": {"zh_Hans": {"voice.reasons_menu": "r.wav"}}},  # spoken with the reasons
                {"recordings": {"fr": {"voice.welcome": "w.wav"}}},
                {"recordings": {"zh_Hans": {"voice.welcome": "../etc/passwd"}}},
                {"recordings": {"zh_Hans": {"voice.welcome": "/abs.wav"}}},
                {"recordings": {"zh_Hans": {"voice.welcome": 1}}},
                {"other": 1}):
        with pytest.raises(PolicyError):
            parse_policy({"hotline": bad})
    assert tuple(SUPPORTED) == RECORDING_LOCALES


@pytest.fixture
def policy_path(tmp_path: Any) -> str:
    path = tmp_path / "policy.toml"
    path.write_text('[hotline.recordings.zh_Hans]\n"voice.welcome" = "hcp/zh/welcome.wav"\n'
                    '"voice.thanks" = "hcp/zh/thanks.wav"\n', encoding="utf-8")
    return str(path)


async def test_an_answer_names_the_recording_of_each_prompt_the_policy_names(hcp: Hcp) -> None:
    call = Call(hcp, await posted_case(hcp))
    first = await call.start()
    assert first["prompts"][0] == {"key": "voice.welcome", "text": first["say"][0], "audio": "hcp/zh/welcome.wav"}
    assert "audio" not in first["prompts"][1]  # the grade menu has no recording in this policy
    end = await call.press("1")
    assert end["prompts"][0]["audio"] == "hcp/zh/thanks.wav"


# --- housekeeping ---------------------------------------------------------------------------------------------


async def test_the_tick_prunes_calls_untouched_for_a_week_and_keeps_their_ratings(hcp: Hcp) -> None:
    """A call's row serves its own replays: a week after its last step `tick` deletes it (finished or abandoned),
    and what it stored stays."""
    from datetime import timedelta

    from bot.duties import scheduler

    done_case, open_case = await posted_case(hcp), await posted_case(hcp)
    done, abandoned = Call(hcp, done_case), Call(hcp, open_case)
    await done.start()
    await done.press("1")
    await abandoned.start()
    start = hcp.clock()
    await scheduler.tick(hcp.rt, start + timedelta(days=6, hours=23))
    assert (await done.press("1", step=1))["done"]  # still there: the replay answers
    await scheduler.tick(hcp.rt, start + timedelta(days=7, minutes=1))
    for call in (done, abandoned):
        status, _ = await hcp.api("POST", f"{CALLS}/{call.call_id}/keys", {"digits": "1", "step": 1})
        assert status == 404
    assert [e["grade"] for e in await hcp.evaluations(done_case)] == ["very_satisfied"]
