"""FreeSWITCH's mod_httapi driving the after-call rating (CONTRACT "Hotline keypads beyond Twilio"): whole calls
run by a stand-in that makes mod_httapi's requests and runs our documents as mod_httapi does
(tests/fakes/freeswitch_httapi.py), refusing a document mod_httapi would not run."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import pytest
from fakes.freeswitch_httapi import HttapiCall
from helpers import Hcp
from keypad_texts import GOODBYE, NO_INPUT, RATED, THANKS, THANKS_BAD
from servers import BACKENDS

from bot.infra.config import ConfigError, Settings, load_settings
from bot.policy.rules import DEFAULT_REASONS

PATH = "/webhooks/freeswitch/httapi"
SECRET = "fs-" + secrets.token_hex(12)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, freeswitch_httapi_token=SECRET)


def call(hcp: Hcp, ticket: str | None = None, **kw: Any) -> HttapiCall:
    data = {"method": "POST", "tts_engine": "unimrcp", "tts_voice": "xiaoyan"}
    if ticket:
        data["ticket"] = ticket
    return HttapiCall(hcp.client, PATH, data_params=data, password=kw.pop("password", SECRET), **kw)


async def posted_case(hcp: Hcp) -> str:
    return str((await hcp.post_case(phone=hcp.new_phone()))["case_no"])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_good_grade_by_keypad_is_stored_and_the_call_hung_up(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    fs = call(hcp, case_no)
    steps = await fs.run(["1"])
    first, last = steps[0], steps[1]
    assert "非常满意请按1" in "".join(first.said) and first.collected == "1"
    speak = first.document.find("work/speak[@name]")  # type: ignore[union-attr]
    assert speak is not None and speak.get("engine") == "unimrcp" and speak.get("voice") == "xiaoyan"
    assert speak.get("input-timeout") == "8000"
    assert THANKS in "".join(last.said) and fs.hung_up
    assert fs.requests[-1]["exiting"] == "true" and steps[-1].status == 200
    [ev] = await hcp.evaluations(case_no)
    assert ev["grade"] == "very_satisfied" and ev["channel"] == "phone"


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_bad_grade_and_its_reason_keys_then_hash_open_a_work_order(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    fs = call(hcp, case_no)
    steps = await fs.run(["5", "26#"])
    reasons = steps[1]
    bind = reasons.document.find("work/speak/bind")  # type: ignore[union-attr]
    assert bind is not None and bind.get("strip") == "#"
    assert DEFAULT_REASONS["attitude"] in "".join(reasons.said) and reasons.collected == "26"
    assert THANKS_BAD in "".join(steps[2].said)
    case = await hcp.case(case_no)
    assert case["evaluations"][0]["reasons"] == ["efficiency", "platform"] and len(case["work_orders"]) == 1


async def test_silence_is_asked_once_more_then_goodbye_and_nothing_is_stored(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    fs = call(hcp, case_no)
    steps = await fs.run([None, None])
    assert NO_INPUT in "".join(steps[1].said) and GOODBYE in "".join(steps[2].said) and fs.hung_up
    assert "hcp_digits" not in fs.requests[1]  # silence: the request carries no digits
    assert await hcp.evaluations(case_no) == []


async def test_a_key_after_one_silence_still_rates_and_wrong_keys_are_re_prompted(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    steps = await call(hcp, case_no).run([None, "9", "2"])
    assert "您的按键有误" in "".join(steps[2].said)
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]


async def test_the_step_is_mirrored_back_through_params(hcp: Hcp) -> None:
    fs = call(hcp, await posted_case(hcp))
    await fs.run(["0", "1"])  # 0 repeats the menu
    assert [r.get("hcp_step") for r in fs.requests] == [None, "1", "2", "3"]


async def test_a_request_posted_again_gets_the_same_document_and_one_rating(hcp: Hcp) -> None:
    """curl may send a request twice (a retried connection): the step in the params makes the second one a
    repeat of the first, answered the same and stored once."""
    case_no = await posted_case(hcp)
    fs = call(hcp, case_no)
    await fs.run(["4", "1#"])
    final = fs.requests[2]
    resp = await hcp.client.post(PATH, params=final, headers=_basic(SECRET))  # as mod_httapi sends it
    again = await resp.text()
    assert resp.status == 200 and THANKS_BAD in again and "<hangup" in again
    case = await hcp.case(case_no)
    assert len(case["evaluations"]) == 1 and len(case["work_orders"]) == 1


async def test_an_unknown_ticket_becomes_a_hotline_case_rated_by_the_caller(hcp: Hcp) -> None:
    ticket = "FS-" + secrets.token_hex(4)
    await call(hcp, ticket).run(["3"])
    case = await hcp.case(ticket)
    assert case["item_code"] == "12345" and case["evaluations"][0]["grade"] == "basically_satisfied"


async def test_without_a_ticket_the_channel_is_rated_under_its_uuid(hcp: Hcp) -> None:
    fs = call(hcp, None)
    await fs.run(["1"])
    assert (await hcp.case(f"12345-{fs.session_id}"))["evaluations"][0]["grade"] == "very_satisfied"


async def test_a_case_rated_already_is_told_so_and_hung_up(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    await call(hcp, case_no).run(["1"])
    await call(hcp, case_no).run(["2"])  # the follow-up
    steps = await call(hcp, case_no).run([])
    assert RATED in "".join(steps[0].said) and len(await hcp.evaluations(case_no)) == 2


@pytest.fixture
def policy_path(tmp_path: Any) -> str:
    path = tmp_path / "policy.toml"
    path.write_text('[hotline.recordings.zh_Hans]\n"voice.welcome" = "haochaping/zh/welcome.wav"\n', encoding="utf-8")
    return str(path)


async def test_a_recorded_prompt_is_played_and_the_others_spoken(hcp: Hcp) -> None:
    steps = await call(hcp, await posted_case(hcp)).run(["1"])
    assert steps[0].played == ["haochaping/zh/welcome.wav"] and "非常满意请按1" in "".join(steps[0].said)


# --- who may ask -------------------------------------------------------------------------------------------------


def _basic(password: str, user: str = "freeswitch") -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("password", [None, "wrong-" + "x" * 20, ""])
async def test_wrong_or_missing_credentials_are_401_and_start_nothing(hcp: Hcp, password: str | None) -> None:
    case_no = await posted_case(hcp)
    fs = call(hcp, case_no, password=password)
    steps = await fs.run(["1"])
    assert [s.status for s in steps] == [401]
    assert await hcp.evaluations(case_no) == []


async def test_the_token_may_be_in_the_url_instead(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    fs = HttapiCall(hcp.client, f"{PATH}?token={SECRET}", data_params={"ticket": case_no, "tts_engine": "unimrcp"},
                    password=None)
    await fs.run(["2"])
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied"]
    resp = await hcp.client.post(f"{PATH}?token=nope", data={"session_id": "x"})
    assert resp.status == 401


async def test_mod_httapi_s_default_get_is_answered_too(hcp: Hcp) -> None:
    case_no = await posted_case(hcp)
    resp = await hcp.client.get(PATH, params={"session_id": "get-" + secrets.token_hex(4), "ticket": case_no,
                                              "Caller-Caller-ID-Number": "13800138000"}, headers=_basic(SECRET))
    assert resp.status == 200 and "非常满意请按1" in await resp.text()


@pytest.mark.parametrize(("form", "wrong"), [
    ({}, "session_id"), ({"session_id": "a b"}, "session_id"), ({"session_id": "ok", "hcp_step": "x"}, "hcp_step"),
    ({"session_id": "ok", "hcp_step": "0"}, "hcp_step"), ({"session_id": "ok", "ticket": "t" * 101}, "ticket"),
])
async def test_a_request_mod_httapi_would_not_make_is_400_naming_it(hcp: Hcp, form: dict[str, str],
                                                                     wrong: str) -> None:
    resp = await hcp.client.post(PATH, data=form, headers=_basic(SECRET))
    assert resp.status == 400 and wrong in await resp.text()


async def test_without_the_setting_the_route_is_404(hcp: Hcp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hcp.rt, "settings", dataclasses.replace(hcp.rt.settings, freeswitch_httapi_token=None))
    resp = await hcp.client.post(PATH, data={"session_id": "x"}, headers=_basic(SECRET))
    assert resp.status == 404


def test_the_setting_must_be_long_and_fit_a_url() -> None:
    assert load_settings({"FREESWITCH_HTTAPI_TOKEN": "a" * 16}).freeswitch_httapi_token == "a" * 16
    for bad in ("short", "a" * 15, "with space and more", "ünicode-secret-123456"):
        with pytest.raises(ConfigError, match="FREESWITCH_HTTAPI_TOKEN"):
            load_settings({"FREESWITCH_HTTAPI_TOKEN": bad})
