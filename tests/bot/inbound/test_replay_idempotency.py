"""Issue 18, findings 10 and 11: a WeChat plain-mode signature replayed with another body, and a rating
submitted twice (the API's Idempotency-Key, the mini-program's, the rating page's one-time form token)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from typing import Any

import pytest
from helpers import TOKEN, WX
from servers import BACKENDS

from bot.infra.state import StateUnavailable

BAD = {"grade": "very_dissatisfied", "reasons": ["attitude"], "text": "等了两个小时"}


def signed_query(ts: int, nonce: str | None = None) -> dict[str, str]:
    """The query WeChat puts on a plain-mode POST: its signature covers token, timestamp and nonce only."""
    nonce = nonce or str(secrets.randbelow(10**10))
    signature = hashlib.sha1("".join(sorted([WX["token"], str(ts), nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": str(ts), "nonce": nonce, "openid": "x"}


async def plain_post(hcp: Any, query: dict[str, str], body: str) -> tuple[int, str]:
    resp = await hcp.client.post("/webhooks/wechat", params=query, data=body.encode(),
                                 headers={"Content-Type": "text/xml"})
    return resp.status, await resp.text()


async def wechat_case(hcp: Any) -> tuple[str, str]:
    openid = hcp.new_openid()
    doc = await hcp.post_case(applicant={"name": "王五", "locale": "zh-CN", "wechat_openid": openid})
    return doc["case_no"], openid


class TestPlainModeReplay:
    @pytest.fixture
    def wechat_safe_mode(self) -> bool:
        return False

    @pytest.mark.parametrize("backend", BACKENDS, indirect=True)
    async def test_a_signed_query_replayed_with_another_body_is_403_and_rates_nothing(self, hcp):
        mine, my_openid = await wechat_case(hcp)
        theirs, their_openid = await wechat_case(hcp)
        now = int(hcp.clock().timestamp())
        query = signed_query(now, nonce=str(now - 10))  # WeChat's nonces are digits: this one, a near instant

        first = await plain_post(hcp, query, hcp.wx_text(my_openid, "1"))
        replayed = await plain_post(hcp, query, hcp.wx_text(their_openid, "1"))
        # the same signature with its timestamp and nonce swapped (sha1 over the sorted parts: equal)
        swapped = {**query, "timestamp": query["nonce"], "nonce": query["timestamp"]}
        swapped_status = (await plain_post(hcp, swapped, hcp.wx_text(their_openid, "2")))[0]

        assert first[0] == 200 and "感谢" in hcp.reply_content(first[1])
        assert replayed[0] == 403 and "感谢" not in replayed[1]
        assert swapped_status == 403
        assert [e["grade"] for e in await hcp.evaluations(mine)] == ["very_satisfied"]
        assert await hcp.evaluations(theirs) == []

    @pytest.mark.parametrize("backend", BACKENDS, indirect=True)
    async def test_wechats_own_retry_with_the_same_body_is_accepted_and_acted_on_once(self, hcp):
        case_no, openid = await wechat_case(hcp)
        query = signed_query(int(hcp.clock().timestamp()))
        body = hcp.wx_text(openid, "2", msg_id="800000001")

        first = await plain_post(hcp, query, body)
        retry = await plain_post(hcp, query, body)
        together = await asyncio.gather(plain_post(hcp, query, body), plain_post(hcp, query, body))

        assert first[0] == 200 and "感谢" in hcp.reply_content(first[1])
        assert retry == (200, "success") and all(answer == (200, "success") for answer in together)
        [ev] = await hcp.evaluations(case_no)
        assert (ev["grade"], ev["channel"]) == ("satisfied", "wechat")

    @pytest.mark.parametrize("backend", BACKENDS, indirect=True)
    async def test_without_the_state_a_plain_post_is_503_and_acted_on_by_nobody(self, hcp, monkeypatch):
        case_no, openid = await wechat_case(hcp)

        async def down(*args: Any, **kwargs: Any) -> str | None:
            raise StateUnavailable("redis: gone")

        monkeypatch.setattr(hcp.rt.state, "claim", down, raising=False)
        status, _ = await plain_post(hcp, signed_query(int(hcp.clock().timestamp())), hcp.wx_text(openid, "1"))

        assert status == 503
        assert await hcp.evaluations(case_no) == []


# --- the business API and the mini-program: Idempotency-Key ---------------------------------------------

async def api_post(hcp: Any, body: dict[str, Any], key: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    resp = await hcp.client.post("/api/v1/evaluations", json=body, headers=headers)
    return resp.status, await resp.read()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_two_identical_api_submissions_with_one_key_store_one_rating_and_one_work_order(hcp):
    case_no = (await hcp.post_case())["case_no"]
    body = {"case_no": case_no, "channel": "hall", **BAD}
    key = "rating-" + secrets.token_hex(8)

    one, two = await asyncio.gather(api_post(hcp, body, key), api_post(hcp, body, key))
    hcp.clock.advance(hours=1)
    later = await api_post(hcp, body, key)

    assert one[0] == 201 and one == two == later
    case = await hcp.case(case_no)
    assert [(e["grade"], e["is_followup"]) for e in case["evaluations"]] == [("very_dissatisfied", False)]
    assert len(case["work_orders"]) == 1


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_same_key_with_another_body_is_refused_naming_the_header(hcp):
    case_no = (await hcp.post_case())["case_no"]
    key = secrets.token_hex(8)

    first = await api_post(hcp, {"case_no": case_no, "channel": "hall", **BAD}, key)
    other = await api_post(hcp, {"case_no": case_no, "channel": "hall", "grade": "satisfied"}, key)

    assert first[0] == 201
    assert other[0] in (409, 422) and b"Idempotency-Key" in other[1]
    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["very_dissatisfied"]


@pytest.mark.parametrize("key", ["", "x" * 129, "with space", "semi;colon", "quote\"d", "\u00e9t\u00e9"])
async def test_a_key_too_long_or_outside_the_charset_is_400_naming_the_header(hcp, key):
    case_no = (await hcp.post_case())["case_no"]

    status, body = await api_post(hcp, {"case_no": case_no, "channel": "hall", "grade": "satisfied"}, key)

    assert status == 400 and b"Idempotency-Key" in body
    assert await hcp.evaluations(case_no) == []


async def test_without_a_key_the_second_rating_is_still_the_followup(hcp):
    case_no = (await hcp.post_case())["case_no"]
    body = {"case_no": case_no, "channel": "hall", "grade": "satisfied"}

    first = await api_post(hcp, body, None)
    second = await api_post(hcp, body, None)

    assert (first[0], second[0]) == (201, 201)
    assert [e["is_followup"] for e in await hcp.evaluations(case_no)] == [False, True]


async def mp_login(hcp: Any, openid: str) -> dict[str, str]:
    code = "code-" + secrets.token_hex(6)
    hcp.wechat.add_login(code, openid)
    resp = await hcp.client.post("/api/mp/v1/login", json={"code": code})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['session']}"}


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_mini_program_takes_the_key_per_session(hcp):
    mine, theirs = hcp.new_openid(), hcp.new_openid()
    my_case = (await hcp.post_case(applicant={"locale": "zh-CN", "mp_openid": mine}))["case_no"]
    their_case = (await hcp.post_case(applicant={"locale": "zh-CN", "mp_openid": theirs}))["case_no"]
    key = "mp-" + secrets.token_hex(8)

    async def rate(auth: dict[str, str], body: dict[str, Any], key: str = key) -> tuple[int, bytes]:
        resp = await hcp.client.post("/api/mp/v1/ratings", json=body, headers={**auth, "Idempotency-Key": key})
        return resp.status, await resp.read()

    my_auth, their_auth = await mp_login(hcp, mine), await mp_login(hcp, theirs)
    one, two = await asyncio.gather(rate(my_auth, {"case_no": my_case, **BAD}),
                                    rate(my_auth, {"case_no": my_case, **BAD}))
    other = await rate(my_auth, {"case_no": my_case, "grade": "satisfied"})
    bad_key = await rate(my_auth, {"case_no": my_case, "grade": "satisfied"}, key="no spaces")
    their = await rate(their_auth, {"case_no": their_case, "grade": "satisfied"})  # their session: their key

    assert one[0] == 201 and one == two
    assert other[0] in (409, 422) and b"Idempotency-Key" in other[1]
    assert bad_key[0] == 400 and b"Idempotency-Key" in bad_key[1]
    assert their[0] == 201
    case = await hcp.case(my_case)
    assert [e["grade"] for e in case["evaluations"]] == ["very_dissatisfied"] and len(case["work_orders"]) == 1
    assert [e["grade"] for e in await hcp.evaluations(their_case)] == ["satisfied"]


# --- the rating page: a one-time form token ------------------------------------------------------------

def form_token(html: str) -> str:
    found = re.findall(r'<input type="hidden" name="form_token" value="([A-Za-z0-9_-]+)"', html)
    assert len(found) == 1, "the form carries one form token"
    return found[0]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_two_concurrent_page_submissions_with_one_form_token_store_one_rating(hcp):
    case_no, _, sms = await hcp.reminded()
    [link] = re.findall(r"/r/([A-Za-z0-9._-]+)", sms["body"])
    html = await (await hcp.client.get(f"/r/{link}")).text()
    form = [("form_token", form_token(html)), ("grade", "dissatisfied"), ("reasons", "attitude"),
            ("reasons", "trips"), ("text", "跑了三次")]

    async def submit(fields: list[tuple[str, str]]) -> tuple[int, str]:
        resp = await hcp.client.post(f"/r/{link}", data=fields, allow_redirects=False)
        return resp.status, resp.headers.get("Location", "")

    one, two = await asyncio.gather(submit(form), submit(form))
    again = await submit(form)  # the same page sent once more (a reload of the POST, a third tap)

    assert one[0] == 303 and "thanks=1" in one[1] and one == two == again
    case = await hcp.case(case_no)
    assert [(e["grade"], e["is_followup"]) for e in case["evaluations"]] == [("dissatisfied", False)]
    assert len(case["work_orders"]) == 1

    # a real follow-up: a new page load, a new token
    hcp.clock.advance(days=1)
    fresh = form_token(await (await hcp.client.get(f"/r/{link}")).text())
    followup = await submit([("form_token", fresh), ("grade", "satisfied")])
    assert fresh != form[0][1] and followup[0] == 303
    assert [(e["grade"], e["is_followup"]) for e in await hcp.evaluations(case_no)] == \
        [("dissatisfied", False), ("satisfied", True)]
