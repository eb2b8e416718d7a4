"""The 12345 after-call keypad rating over the real webhooks: whole calls walked step by step.

Every request is signed as Twilio signs it; every answer is parsed as TwiML; each next step follows the
`<Gather action>` URL of the previous answer (a key) or its `<Redirect>` (silence: no `Digits` at all).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from helpers import PUBLIC_URL
from keypad_texts import (
    GOODBYE,
    GRADE_MENU,
    INVALID,
    NO_INPUT,
    RATED,
    REASON_CODES,
    REASON_LABELS,
    THANKS,
    THANKS_BAD,
)
from servers import BACKENDS
from yarl import URL

VOICE = "/webhooks/twilio/voice"
KEYS = "/webhooks/twilio/voice/keys"


@dataclass
class TwiML:
    """One voice answer: either [Gather(Say…), Redirect] (a question) or [Say…, Hangup] (the end)."""

    status: int
    raw: str
    content_type: str = ""
    says: list[str] = field(default_factory=list)
    languages: set[str] = field(default_factory=set)
    gather: ET.Element | None = None
    action: str | None = None  # the Gather's action URL, unescaped: path and query
    redirect: str | None = None
    hangup: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.says)

    @property
    def state(self) -> dict[str, str]:
        assert self.action is not None, self.raw
        return {k: v[0] for k, v in parse_qs(urlsplit(self.action).query).items()}

    @property
    def asks(self) -> bool:
        return self.gather is not None


def parse_twiml(status: int, raw: str, content_type: str) -> TwiML:
    answer = TwiML(status, raw, content_type)
    if status != 200:
        return answer
    assert content_type == "text/xml", content_type
    root = ET.fromstring(raw)
    assert root.tag == "Response", raw
    tags = [child.tag for child in root]
    if tags and tags[0] == "Gather":
        assert tags == ["Gather", "Redirect"], raw  # a question, and what silence falls through to
        gather, redirect = root[0], root[1]
        assert gather.get("method") == "POST" and redirect.get("method") == "POST", raw
        assert [c.tag for c in gather] and all(c.tag == "Say" for c in gather), raw
        answer.gather = gather
        answer.action = gather.get("action")
        answer.redirect = (redirect.text or "").strip()
        assert answer.action and answer.action.startswith(KEYS + "?"), raw
        assert answer.redirect == answer.action, raw  # silence: the same URL, without Digits
        spoken = list(gather)
    else:
        assert tags and tags[-1] == "Hangup" and all(t == "Say" for t in tags[:-1]) and len(tags) >= 2, raw
        answer.hangup = True
        spoken = list(root)[:-1]
    answer.says = ["".join(s.itertext()) for s in spoken]
    answer.languages = {s.get("language") for s in spoken}
    assert all(text.strip() for text in answer.says), raw
    return answer


class Call:
    """One phone call, as Twilio makes its requests: the CallSid stays, each step follows the last answer."""

    def __init__(self, hcp: Any, ticket: str | None, caller: str = "+8613800138000", sid: str | None = None) -> None:
        self.hcp = hcp
        self.ticket = ticket
        self.sid = sid or "CA" + secrets.token_hex(16)
        self.caller = caller
        self.last: TwiML | None = None
        self.last_request: tuple[str, dict[str, str]] | None = None

    def params(self, **more: str) -> dict[str, str]:
        return {"CallSid": self.sid, "AccountSid": self.hcp.twilio.account_sid, "From": self.caller,
                "To": "+862012345", "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
                **more}

    async def post(self, url: str, params: dict[str, str], signature: str | None = None) -> TwiML:
        self.last_request = (url, params)
        # encoded=True: the request line is exactly the URL signed, as Twilio requests it (yarl would
        # otherwise normalise it, e.g. %2F to /).
        resp = await self.hcp.client.post(URL(url, encoded=True), data=params, headers={
            "X-Twilio-Signature": self.hcp.sign(url, params) if signature is None else signature})
        answer = parse_twiml(resp.status, await resp.text(), resp.content_type)
        if answer.status == 200:
            self.last = answer
        return answer

    async def start(self) -> TwiML:
        url = VOICE if self.ticket is None else f"{VOICE}?ticket={self.ticket}"
        return await self.post(url, self.params())

    async def press(self, digits: str) -> TwiML:
        assert self.last is not None and self.last.action, "no question is open on this call"
        return await self.post(self.last.action, self.params(Digits=digits))

    async def silence(self) -> TwiML:
        assert self.last is not None and self.last.redirect, "no question is open on this call"
        return await self.post(self.last.redirect, self.params())

    async def retry(self) -> TwiML:
        """Twilio repeats the last request as it was (its own retry after a timeout)."""
        assert self.last_request is not None
        return await self.post(*self.last_request)


async def posted_case(hcp: Any, **kw: Any) -> str:
    return (await hcp.post_case(phone=kw.pop("phone", None) or hcp.new_phone(), **kw))["case_no"]


async def find_case(hcp: Any, case_no: str) -> tuple[int, Any]:
    return await hcp.api("GET", "/api/v1/cases/" + case_no)


def grade_menu_in(text: str) -> bool:
    return all(part in text for part in GRADE_MENU)


def reasons_menu_in(text: str) -> bool:
    positions = [text.find(f"{label}请按{n}") for n, label in enumerate(REASON_LABELS, start=1)]
    return all(p >= 0 for p in positions) and positions == sorted(positions) and "重听请按0" in text


# --- the start of a call ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_call_is_greeted_and_asked_for_one_key(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)

    answer = await call.start()

    assert answer.status == 200 and answer.content_type == "text/xml"
    root = ET.fromstring(answer.raw)
    assert [c.tag for c in root] == ["Gather", "Redirect"]
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1" and gather.get("finishOnKey") is None
    assert answer.languages == {"zh-CN"}
    assert grade_menu_in(answer.text)
    assert answer.action.startswith("/webhooks/twilio/voice/keys?")
    assert answer.state == {"ticket": case_no, "ask": "grade", "s": "0", "i": "0"}
    assert (await hcp.case(case_no))["evaluations"] == []


async def test_the_gather_action_is_escaped_in_the_xml_and_relative(hcp):
    case_no = await posted_case(hcp)

    answer = await Call(hcp, case_no).start()

    assert "&amp;" in answer.raw  # the query's "&" written as XML wants it
    assert not answer.action.startswith("http")  # Twilio resolves it against the URL it called: ours
    assert "&" in answer.action and "&amp;" not in answer.action


# --- good grades -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("digit", "grade", "score"), [
    ("1", "very_satisfied", 10), ("2", "satisfied", 8), ("3", "basically_satisfied", 6),
])
async def test_a_good_grade_is_stored_at_once_and_the_call_ends(hcp, digit, grade, score):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    answer = await call.press(digit)

    assert answer.hangup and not answer.asks
    assert THANKS in answer.text and answer.languages == {"zh-CN"}
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["score"], ev["channel"], ev["reasons"]) == (grade, score, "phone", [])
    assert (ev["is_default"], ev["is_followup"], ev["status"]) == (False, False, "valid")
    assert case["work_orders"] == []
    assert case["rated"] is True


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_rating_by_phone_cancels_the_pending_reminder(hcp):
    doc = await hcp.post_case(phone=hcp.new_phone())
    assert doc["remind_at"] is not None
    call = Call(hcp, doc["case_no"])
    await call.start()

    await call.press("2")

    case = await hcp.case(doc["case_no"])
    assert case["remind_at"] is None and case["default_at"] is None
    assert [e["grade"] for e in case["evaluations"]] == ["satisfied"]


# --- bad grades and their reasons ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("keys", ["13", "13#"])
async def test_a_bad_grade_asks_for_reasons_and_opens_one_work_order(hcp, keys):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    menu = await call.press("4")

    assert menu.asks and menu.gather.get("finishOnKey") == "#" and menu.gather.get("numDigits") is None
    assert reasons_menu_in(menu.text)
    assert menu.state == {"ticket": case_no, "ask": "reasons", "g": "dissatisfied", "s": "0", "i": "0"}
    assert (await hcp.case(case_no))["evaluations"] == []  # nothing stored before the reasons

    done = await call.press(keys)

    assert done.hangup and THANKS_BAD in done.text
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["score"], ev["reasons"], ev["channel"]) == ("dissatisfied", 3, ["attitude", "process"],
                                                                        "phone")
    [wo] = case["work_orders"]
    assert (wo["grade"], wo["reasons"], wo["status"]) == ("dissatisfied", ["attitude", "process"], "created")


@pytest.mark.parametrize(("keys", "codes"), [
    ("31", ["process", "attitude"]),  # in the order pressed
    ("313", ["process", "attitude"]),  # each reason once
    ("8", ["other"]),  # "other" needs no words on a keypad
    ("12345678#", REASON_CODES),
])
async def test_reason_keys_are_read_in_pressed_order_each_once(hcp, keys, codes):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("5")

    done = await call.press(keys)

    assert done.hangup
    [ev] = (await hcp.case(case_no))["evaluations"]
    assert (ev["grade"], ev["reasons"]) == ("very_dissatisfied", codes)


# --- repeat and wrong keys -------------------------------------------------------------------------------


async def test_zero_repeats_the_grade_menu_and_stores_nothing(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    first = await call.start()

    again = await call.press("0")

    assert again.asks and again.gather.get("numDigits") == "1"
    assert grade_menu_in(again.text) and INVALID not in again.text
    assert again.state == first.state  # the same question, no wrong key counted
    assert (await hcp.case(case_no))["evaluations"] == []
    await call.press("1")
    assert [e["grade"] for e in (await hcp.case(case_no))["evaluations"]] == ["very_satisfied"]


async def test_zero_repeats_the_reasons_menu(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    menu = await call.press("4")

    again = await call.press("0")

    assert again.asks and again.gather.get("finishOnKey") == "#"
    assert reasons_menu_in(again.text) and again.state == menu.state
    assert (await hcp.case(case_no))["evaluations"] == []
    await call.press("2#")
    [ev] = (await hcp.case(case_no))["evaluations"]
    assert (ev["grade"], ev["reasons"]) == ("dissatisfied", ["efficiency"])


@pytest.mark.parametrize("key", ["7", "9", "6", "*"])
async def test_a_wrong_key_at_the_grade_menu_is_re_prompted(hcp, key):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    answer = await call.press(key)

    assert answer.asks and INVALID in answer.text and grade_menu_in(answer.text)
    assert answer.state["ask"] == "grade" and answer.state["i"] == "1"
    assert (await hcp.case(case_no))["evaluations"] == []


async def test_two_wrong_keys_then_a_good_one_still_rates(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    await call.press("7")
    await call.press("8")
    done = await call.press("3")

    assert done.hangup and THANKS in done.text
    assert [e["grade"] for e in (await hcp.case(case_no))["evaluations"]] == ["basically_satisfied"]


async def test_the_third_wrong_key_at_the_grade_menu_says_goodbye_and_stores_nothing(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    first, second = await call.press("7"), await call.press("9")
    third = await call.press("6")

    assert first.asks and second.asks and second.state["i"] == "2"
    assert third.hangup and not third.asks
    assert INVALID in third.text and GOODBYE in third.text and not grade_menu_in(third.text)
    case = await hcp.case(case_no)
    assert case["evaluations"] == [] and case["work_orders"] == []


@pytest.mark.parametrize("keys", ["9", "9#", "19", "0#1", "*#"])
async def test_a_key_naming_no_reason_is_re_prompted(hcp, keys):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("5")

    answer = await call.press(keys)

    assert answer.asks and INVALID in answer.text and reasons_menu_in(answer.text)
    assert answer.state["ask"] == "reasons" and answer.state["g"] == "very_dissatisfied" and answer.state["i"] == "1"
    assert (await hcp.case(case_no))["evaluations"] == []


async def test_the_third_wrong_key_at_the_reasons_menu_ends_the_call_without_a_rating(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("4")

    answers = [await call.press("9") for _ in range(3)]

    assert [a.asks for a in answers] == [True, True, False]
    assert answers[-1].hangup and GOODBYE in answers[-1].text
    case = await hcp.case(case_no)
    assert case["evaluations"] == [] and case["work_orders"] == []


# --- silence ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_silence_at_the_grade_question_is_asked_once_more_then_goodbye(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    once_more = await call.silence()
    goodbye = await call.silence()

    assert once_more.asks and NO_INPUT in once_more.text and grade_menu_in(once_more.text)
    assert once_more.gather.get("numDigits") == "1" and once_more.state["s"] == "1"
    assert goodbye.hangup and GOODBYE in goodbye.text and not goodbye.asks
    assert (await hcp.case(case_no))["evaluations"] == []


async def test_a_key_after_one_silence_still_rates(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.silence()

    done = await call.press("2")

    assert done.hangup and THANKS in done.text
    assert [e["grade"] for e in (await hcp.case(case_no))["evaluations"]] == ["satisfied"]


async def test_an_empty_digits_parameter_is_silence_too(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    answer = await call.press("")

    assert answer.asks and NO_INPUT in answer.text and answer.state["s"] == "1"
    assert (await hcp.case(case_no))["evaluations"] == []


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_bad_grade_without_reasons_is_not_stored(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("5")

    once_more = await call.silence()
    goodbye = await call.silence()

    assert once_more.asks and NO_INPUT in once_more.text and reasons_menu_in(once_more.text)
    assert once_more.gather.get("finishOnKey") == "#"
    assert goodbye.hangup and GOODBYE in goodbye.text
    case = await hcp.case(case_no)
    assert case["evaluations"] == [] and case["work_orders"] == [] and case["rated"] is False


async def test_each_question_gets_its_own_second_chance(hcp):
    """"Silence at any keypad question: asked once more": a silence at the grade does not use up the reasons'."""
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.silence()
    await call.press("4")

    once_more = await call.silence()
    done = await call.press("3#")

    assert once_more.asks and reasons_menu_in(once_more.text)
    assert done.hangup
    [ev] = (await hcp.case(case_no))["evaluations"]
    assert (ev["grade"], ev["reasons"]) == ("dissatisfied", ["process"])


async def test_a_hang_up_midway_leaves_nothing(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("4")  # the caller hangs up here: Twilio makes no further request

    case = await hcp.case(case_no)
    assert case["evaluations"] == [] and case["work_orders"] == [] and case["remind_at"] is not None


# --- unknown tickets: hotline cases ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_an_unknown_ticket_becomes_a_hotline_case_rated_by_the_caller(hcp):
    ticket = "RX-2026-" + secrets.token_hex(4).upper()
    assert (await find_case(hcp, ticket))[0] == 404
    call = Call(hcp, ticket, caller="+8613800138000")

    answer = await call.start()
    done = await call.press("2")

    assert answer.asks and grade_menu_in(answer.text) and answer.state["ticket"] == ticket
    assert done.hangup and THANKS in done.text
    case = await hcp.case(ticket)
    assert case["item_code"] == "12345" and case["agency_code"] == "12345"
    assert case["item_name"] == "12345热线"
    assert case["applicant"]["phone"] == "138****8000"
    assert "13800138000" not in str(case)
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["channel"], ev["reasons"]) == ("satisfied", "phone", [])


async def test_a_hotline_case_takes_a_bad_rating_and_its_work_order(hcp):
    ticket = "RX-" + secrets.token_hex(4)
    call = Call(hcp, ticket, caller="+8613900139000")
    await call.start()
    await call.press("4")

    await call.press("1#")

    case = await hcp.case(ticket)
    assert case["applicant"]["phone"] == "139****9000"
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["reasons"]) == ("dissatisfied", ["attitude"])
    [wo] = case["work_orders"]
    assert wo["item_code"] == "12345" and wo["reasons"] == ["attitude"]


async def test_a_call_without_a_ticket_is_rated_under_its_call_sid(hcp):
    call = Call(hcp, None)

    answer = await call.start()
    await call.press("3")

    ticket = f"12345-{call.sid}"
    assert answer.state["ticket"] == ticket
    case = await hcp.case(ticket)
    assert case["item_code"] == "12345"
    assert [e["grade"] for e in case["evaluations"]] == ["basically_satisfied"]


async def test_a_hotline_case_is_created_once_across_the_steps_of_a_call(hcp):
    ticket = "RX-" + secrets.token_hex(4)
    call = Call(hcp, ticket)
    await call.start()
    await call.retry()  # Twilio repeats the start

    await call.press("1")

    status, doc = await hcp.api("GET", "/api/v1/stats?by=item")
    assert status == 200
    [group] = [g for g in doc["groups"] if g["key"] == "12345"]
    assert group["cases"] == 1 and group["rated"] == 1


async def test_a_ticket_over_100_characters_is_refused(hcp):
    ticket = "R" * 101

    answer = await Call(hcp, ticket).start()

    assert answer.status == 400
    assert (await find_case(hcp, ticket))[0] == 404


# --- Twilio's retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_repeated_final_request_stores_one_rating_and_answers_the_same(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()

    first = await call.press("1")
    again = await call.retry()

    assert again.status == 200 and again.hangup
    assert again.says == first.says
    [ev] = (await hcp.case(case_no))["evaluations"]
    assert ev["grade"] == "very_satisfied" and ev["is_followup"] is False


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_repeated_reasons_request_stores_one_rating_and_one_work_order(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("5")

    first = await call.press("26#")
    again = await call.retry()

    assert again.hangup and again.says == first.says and THANKS_BAD in again.text
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert ev["reasons"] == ["efficiency", "platform"]
    assert len(case["work_orders"]) == 1


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_same_final_request_delivered_three_times_at_once_is_one_rating(hcp):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    await call.press("4")
    url, params = call.last.action, call.params(Digits="13#")

    answers = await asyncio.gather(*(call.post(url, params) for _ in range(3)))

    assert [a.status for a in answers] == [200, 200, 200]
    assert all(a.hangup and THANKS_BAD in a.text for a in answers)
    case = await hcp.case(case_no)
    assert len(case["evaluations"]) == 1 and len(case["work_orders"]) == 1


# --- signatures ------------------------------------------------------------------------------------------


def _bad_signature(hcp: Any, variant: str, path: str, params: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    if variant == "garbage":
        return "bm90LWEtc2lnbmF0dXJl"
    if variant == "missing":
        return ""
    if variant == "other-url":
        return RequestValidator(hcp.twilio.auth_token).compute_signature("https://evil.example" + path, params)
    if variant == "other-token":
        return hcp.sign(path, params, token="f" * 32)
    if variant == "tampered-body":
        return hcp.sign(path, {**params, "Digits": "9", "From": "+8613700137000"})
    if variant == "without-query":
        return hcp.sign(path.split("?", 1)[0], params)
    if variant == "http-not-https":
        return RequestValidator(hcp.twilio.auth_token).compute_signature(
            PUBLIC_URL.replace("https://", "http://") + path, params)
    raise AssertionError(variant)


SIGNATURE_VARIANTS = ["garbage", "missing", "other-url", "other-token", "tampered-body", "without-query",
                      "http-not-https"]


@pytest.mark.parametrize("variant", SIGNATURE_VARIANTS)
async def test_a_call_start_with_a_wrong_signature_is_refused_and_creates_nothing(hcp, variant):
    ticket = "RX-" + secrets.token_hex(4)
    call = Call(hcp, ticket)
    path = f"{VOICE}?ticket={ticket}"
    params = call.params()

    answer = await call.post(path, params, signature=_bad_signature(hcp, variant, path, params))

    assert answer.status == 403
    assert (await find_case(hcp, ticket))[0] == 404  # the unknown ticket did not become a case
    assert (await call.start()).asks  # the same request, signed properly, is taken


@pytest.mark.parametrize("variant", SIGNATURE_VARIANTS)
async def test_a_key_press_with_a_wrong_signature_is_refused_and_stores_nothing(hcp, variant):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    path, params = call.last.action, call.params(Digits="1")

    answer = await call.post(path, params, signature=_bad_signature(hcp, variant, path, params))

    assert answer.status == 403
    assert (await hcp.case(case_no))["evaluations"] == []
    assert (await call.post(path, params)).hangup  # the same key, signed properly, rates
    assert [e["grade"] for e in (await hcp.case(case_no))["evaluations"]] == ["very_satisfied"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_state_rewritten_by_the_caller_breaks_the_signature(hcp):
    """Someone replaying a signed step with a query of their own (a bad grade skipped to its reasons)."""
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)
    await call.start()
    genuine = call.last.action
    forged = genuine.replace("ask=grade", "ask=reasons&g=very_dissatisfied")
    params = call.params(Digits="1")

    answer = await call.post(forged, params, signature=hcp.sign(genuine, params))

    assert answer.status == 403
    assert (await hcp.case(case_no))["evaluations"] == []


@pytest.mark.parametrize("path", [VOICE + "?ticket=X-1", KEYS + "?ticket=X-1&ask=grade&s=0&i=0"])
async def test_voice_webhooks_without_any_signature_header_are_403(hcp, path):
    resp = await hcp.client.post(path, data={"CallSid": "CA" + "0" * 32, "From": "+8613800138000", "Digits": "1"})

    assert resp.status == 403
    assert (await find_case(hcp, "X-1"))[0] == 404


# --- the case's language ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_case_in_english_is_spoken_in_english(hcp):
    case_no = await posted_case(hcp, applicant={"phone": hcp.new_phone(), "locale": "en"})
    call = Call(hcp, case_no)

    start = await call.start()
    reasons = await call.press("4")
    done = await call.press("1#")

    for answer in (start, reasons, done):
        assert answer.languages == {"en-US"}
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in answer.text), answer.text
    assert "press 1" in start.text and "press 5" in start.text and "press 0" in start.text
    assert "Poor attitude, press 1." in reasons.text and "Complicated procedure, press 3." in reasons.text
    assert "Goodbye" in done.text
    [ev] = (await hcp.case(case_no))["evaluations"]
    assert (ev["grade"], ev["reasons"]) == ("dissatisfied", ["attitude"])


@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW", "fr-FR"])
async def test_other_cases_are_spoken_with_the_chinese_voice(hcp, locale):
    case_no = await posted_case(hcp, applicant={"phone": hcp.new_phone(), "locale": locale})

    answer = await Call(hcp, case_no).start()

    assert answer.asks and answer.languages == {"zh-CN"}


# --- cases rated already ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_case_rated_and_past_its_follow_up_window_is_told_so(hcp):
    case_no = await posted_case(hcp)
    await hcp.rate(case_no, "satisfied", "web")
    hcp.clock.advance(days=30)

    answer = await Call(hcp, case_no).start()

    assert answer.status == 200 and answer.hangup and not answer.asks
    assert ET.fromstring(answer.raw).find("Gather") is None
    assert RATED in answer.text and answer.languages == {"zh-CN"}
    assert [e["grade"] for e in (await hcp.case(case_no))["evaluations"]] == ["satisfied"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_inside_the_follow_up_window_the_call_rating_is_the_follow_up(hcp):
    case_no = await posted_case(hcp)
    await hcp.rate(case_no, "satisfied", "web")
    hcp.clock.advance(days=1)
    call = Call(hcp, case_no)

    answer = await call.start()
    await call.press("5")
    done = await call.press("2#")

    assert answer.asks and grade_menu_in(answer.text)
    assert done.hangup and THANKS_BAD in done.text
    case = await hcp.case(case_no)
    first, followup = case["evaluations"]
    assert (first["grade"], first["is_followup"]) == ("satisfied", False)
    assert (followup["grade"], followup["channel"], followup["is_followup"]) == ("very_dissatisfied", "phone", True)
    assert len(case["work_orders"]) == 1


async def test_after_the_rating_and_its_follow_up_a_call_is_told_so(hcp):
    case_no = await posted_case(hcp)
    await hcp.rate(case_no, "satisfied", "web")
    first_call = Call(hcp, case_no)
    await first_call.start()
    await first_call.press("1")

    answer = await Call(hcp, case_no).start()

    assert answer.hangup and RATED in answer.text
    assert [e["is_followup"] for e in (await hcp.case(case_no))["evaluations"]] == [False, True]


async def test_a_second_call_inside_the_window_is_the_follow_up_of_the_first_call(hcp):
    case_no = await posted_case(hcp)
    for digit in ("3", "1"):
        call = Call(hcp, case_no)
        await call.start()
        await call.press(digit)

    evaluations = (await hcp.case(case_no))["evaluations"]
    assert [(e["grade"], e["is_followup"]) for e in evaluations] == [("basically_satisfied", False),
                                                                     ("very_satisfied", True)]


async def test_a_window_closing_during_the_call_refuses_the_rating_politely(hcp):
    case_no = await posted_case(hcp)
    await hcp.rate(case_no, "satisfied", "web")
    hcp.clock.set("2026-11-27T23:59:00+08:00")  # the last minute of the follow-up window (from Saturday 21st)
    call = Call(hcp, case_no)
    assert (await call.start()).asks
    hcp.clock.set("2026-11-28T00:00:30+08:00")

    answer = await call.press("1")

    assert answer.status == 200 and answer.hangup and RATED in answer.text
    assert [e["grade"] for e in (await hcp.case(case_no))["evaluations"]] == ["satisfied"]


async def test_after_the_default_deadline_without_a_tick_the_call_is_the_first_rating(hcp):
    case_no = await posted_case(hcp)
    hcp.clock.set("2026-12-10T09:00:00+08:00")  # past the default deadline; no tick has applied it

    call = Call(hcp, case_no)
    await call.start()
    await call.press("2")

    [ev] = (await hcp.case(case_no))["evaluations"]
    assert (ev["grade"], ev["is_default"], ev["is_followup"]) == ("satisfied", False, False)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_after_a_default_the_call_rating_is_its_follow_up(hcp):
    case_no = await posted_case(hcp)  # completed Friday 2026-11-20: the default applies from Saturday 28th
    counts = await hcp.tick("2026-11-28T00:00:00+08:00")
    assert counts["defaults"] >= 1
    hcp.clock.set("2026-11-30T09:00:00+08:00")
    call = Call(hcp, case_no)

    assert (await call.start()).asks
    await call.press("1")

    default, followup = (await hcp.case(case_no))["evaluations"]
    assert (default["grade"], default["is_default"]) == ("basically_satisfied", True)
    assert (followup["grade"], followup["is_followup"], followup["channel"]) == ("very_satisfied", True, "phone")


# --- states this service never wrote --------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "ask=reasons&s=0&i=0",  # reasons without a grade
    "ask=grade&g=bogus&s=0&i=0",
    "ask=reasons&g=bogus&s=0&i=0",
    "ask=reasons&g=satisfied&s=0&i=0",  # reasons for a good grade
    "ask=grade&g=dissatisfied&s=0&i=0",  # a grade question that already has a grade
    "ask=weather&s=0&i=0",
    "ask=grade&s=x&i=0",
    "ask=grade&s=0&i=-1",
    "ask=grade&s=10&i=0",
    "ask=grade&s=0&i=99",
])
async def test_a_state_this_service_never_wrote_is_400_even_when_signed(hcp, query):
    case_no = await posted_case(hcp)
    call = Call(hcp, case_no)

    answer = await call.post(f"{KEYS}?ticket={case_no}&{query}", call.params(Digits="1"))

    assert answer.status == 400
    case = await hcp.case(case_no)
    assert case["evaluations"] == [] and case["work_orders"] == []


@pytest.mark.parametrize("path", [VOICE + "?ticket=X-2", KEYS + "?ticket=X-2&ask=grade&s=0&i=0"])
async def test_a_request_without_a_call_sid_is_400(hcp, path):
    params = {"From": "+8613800138000", "Digits": "1"}

    status, _ = await hcp.twilio_post(path, params)

    assert status == 400
    assert (await find_case(hcp, "X-2"))[0] == 404


async def test_keys_for_a_ticket_never_started_say_goodbye_and_create_nothing(hcp):
    call = Call(hcp, "RX-NEVER")

    answer = await call.post(f"{KEYS}?ticket=RX-NEVER&ask=grade&s=0&i=0", call.params(Digits="1"))

    assert answer.status == 200 and answer.hangup and GOODBYE in answer.text
    assert (await find_case(hcp, "RX-NEVER"))[0] == 404



# --- odd tickets, several calls at once ------------------------------------------------------------------


@pytest.mark.parametrize("ticket", ["热线 2026/#1", "A+B&C=D", "x%20y"])
async def test_a_ticket_with_reserved_characters_survives_the_round_trip(hcp, ticket):
    call = Call(hcp, None)

    start = await call.post(f"{VOICE}?{urlencode({'ticket': ticket})}", call.params())
    done = await call.press("1")

    assert start.asks and start.state["ticket"] == ticket
    assert done.hangup and THANKS in done.text
    case = await hcp.case(ticket)
    assert case["case_no"] == ticket and [e["grade"] for e in case["evaluations"]] == ["very_satisfied"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_calls_handed_over_at_once_with_one_new_ticket_make_one_hotline_case(hcp):
    ticket = "RX-" + secrets.token_hex(4)
    calls = [Call(hcp, ticket) for _ in range(3)]

    answers = await asyncio.gather(*(c.start() for c in calls))
    await calls[0].press("2")

    assert all(a.status == 200 and a.asks for a in answers)
    status, doc = await hcp.api("GET", "/api/v1/stats?by=item")
    assert status == 200
    [group] = [g for g in doc["groups"] if g["key"] == "12345"]
    assert group["cases"] == 1
    assert [e["grade"] for e in (await hcp.case(ticket))["evaluations"]] == ["satisfied"]


# --- the policy's reasons, the blacklist -----------------------------------------------------------------


class TestThePolicysOwnReasons:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        path = tmp_path / "policy.toml"
        path.write_text('[reasons]\nqueue = "排队时间长"\nrude = "态度生硬"\nmaterials = "材料反复补交"\n',
                        encoding="utf-8")
        return str(path)

    async def test_the_reasons_menu_reads_the_policys_reasons_in_order(self, hcp):
        case_no = await posted_case(hcp)
        call = Call(hcp, case_no)
        await call.start()

        menu = await call.press("4")
        wrong = await call.press("4#")  # a fourth reason does not exist here
        done = await call.press("32#")

        text = menu.text
        assert text.index("排队时间长请按1") < text.index("态度生硬请按2") < text.index("材料反复补交请按3")
        assert not any(label in text for label in REASON_LABELS if label != "其他")
        assert wrong.asks and INVALID in wrong.text
        assert done.hangup
        [ev] = (await hcp.case(case_no))["evaluations"]
        assert (ev["grade"], ev["reasons"]) == ("dissatisfied", ["materials", "rude"])


class TestABarredRater:
    @pytest.fixture
    def policy_path(self, tmp_path: Path) -> str:
        path = tmp_path / "policy.toml"
        path.write_text("blacklist = { false_reviews = 1, within_days = 365, barred_days = 365 }\n", encoding="utf-8")
        return str(path)

    async def bar(self, hcp, phone: str) -> None:
        case_no = await posted_case(hcp, phone=phone)
        await hcp.rate(case_no, "very_dissatisfied", reasons=["other"], text="乱评")
        [wo] = (await hcp.case(case_no))["work_orders"]
        for action, body in (("appeal", {"reason": "恶意差评"}), ("decide-appeal", {"upheld": True})):
            status, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/{action}", body)
            assert status == 200, (status, doc)

    async def test_a_barred_rater_is_told_so_and_not_asked(self, hcp):
        phone = hcp.new_phone()
        await self.bar(hcp, phone)
        case_no = await posted_case(hcp, phone=phone)

        answer = await Call(hcp, case_no, caller="+86" + phone).start()

        assert answer.hangup and not answer.asks and "暂时无法进行评价" in answer.text
        assert (await hcp.case(case_no))["evaluations"] == []

    async def test_a_barred_caller_with_a_new_ticket_rates_nothing(self, hcp):
        phone = hcp.new_phone()
        await self.bar(hcp, phone)
        ticket = "RX-" + secrets.token_hex(4)

        answer = await Call(hcp, ticket, caller="+86" + phone).start()

        assert answer.hangup and "暂时无法进行评价" in answer.text
        assert (await hcp.case(ticket))["evaluations"] == []

    async def test_a_rater_barred_during_the_call_rates_nothing(self, hcp):
        phone = hcp.new_phone()
        case_no = await posted_case(hcp, phone=phone)
        call = Call(hcp, case_no)
        assert (await call.start()).asks
        await self.bar(hcp, phone)

        answer = await call.press("1")

        assert answer.status == 200 and answer.hangup and "暂时无法进行评价" in answer.text
        assert (await hcp.case(case_no))["evaluations"] == []



@pytest.mark.parametrize("caller", ["+862088888888", "+266696687", "", "anonymous", "Anonymous", "client:alice"])
async def test_a_caller_without_a_mobile_number_still_rates_the_hotline_case(hcp, caller):
    """A landline, Twilio's anonymous number, a withheld or a client id: no phone kept, the rating is."""
    ticket = "RX-" + secrets.token_hex(4)
    call = Call(hcp, ticket, caller=caller)

    start = await call.start()
    done = await call.press("3")

    assert start.asks and done.hangup
    case = await hcp.case(ticket)
    assert case["applicant"]["phone"] is None
    assert [e["grade"] for e in case["evaluations"]] == ["basically_satisfied"]


async def test_no_log_line_holds_the_callers_whole_number(hcp, caplog):
    caplog.set_level(logging.DEBUG)
    ticket = "RX-" + secrets.token_hex(4)
    call = Call(hcp, ticket, caller="+8613800138000")

    await call.start()
    await call.press("4")
    await call.press("12#")
    case = await hcp.case(ticket)

    assert len(case["evaluations"]) == 1 and len(case["work_orders"]) == 1
    assert caplog.records  # something was logged, and none of it names the number
    for record in caplog.records:
        assert "13800138000" not in record.getMessage()
    assert "13800138000" not in str(case)
