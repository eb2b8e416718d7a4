"""The page behind the reminder's link: a plain form that rates, follows up, and refuses clearly."""

from __future__ import annotations

import re

import pytest
from helpers import PUBLIC_URL
from servers import BACKENDS


def token_of(sms_body: str) -> str:
    [link] = re.findall(re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9._-]+)", sms_body)
    return link


async def page(hcp, token, method="GET", data=None, headers=None):
    resp = await hcp.client.request(method, f"/r/{token}", data=data, headers=headers or {})
    return resp.status, await resp.text()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_link_opens_a_form_that_rates_the_case(hcp):
    case_no, _, sms = await hcp.reminded()
    token = token_of(sms["body"])

    status, html = await page(hcp, token)
    assert status == 200 and "居民身份证换领" in html and "2026年11月20日" in html
    assert html.count('type="radio" name="grade"') == 5 and html.count('name="reasons"') == 8
    scripts = re.findall(r'<script[^>]*src="([^"]*)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert "<script>" not in html and "http://" not in html.replace(PUBLIC_URL, "")

    status, html = await page(hcp, token, "POST", {"grade": "satisfied"})
    assert status == 200 and "感谢" in html
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"], ev["reasons"]) == ("satisfied", "web", [])


async def test_a_bad_grade_needs_a_reason_and_keeps_what_was_chosen(hcp):
    case_no, _, sms = await hcp.reminded()
    token = token_of(sms["body"])

    status, html = await page(hcp, token, "POST", {"grade": "very_dissatisfied"})
    assert status == 422 and 'role="alert"' in html and 'value="very_dissatisfied" checked' in html
    status, html = await page(hcp, token, "POST", {"grade": "very_dissatisfied", "reasons": "other"})
    assert status == 422  # only 其他: words are required
    assert await hcp.evaluations(case_no) == []

    status, _ = await page(hcp, token, "POST", [("grade", "dissatisfied"), ("reasons", "attitude"),
                                                ("reasons", "trips"), ("text", "跑了三次")])
    assert status == 200
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["text"]) == ("dissatisfied", ["attitude", "trips"], "跑了三次")


async def test_one_followup_then_closed(hcp):
    case_no, phone, sms = await hcp.reminded()
    token = token_of(sms["body"])
    await hcp.sms(phone, "3")

    status, html = await page(hcp, token)
    assert status == 200 and "追加" in html
    assert (await page(hcp, token, "POST", {"grade": "very_satisfied"}))[0] == 200
    status, html = await page(hcp, token)
    assert status == 200 and 'name="grade"' not in html
    assert (await page(hcp, token, "POST", {"grade": "satisfied"}))[0] == 409
    assert [(e["grade"], e["is_followup"]) for e in await hcp.evaluations(case_no)] == \
        [("basically_satisfied", False), ("very_satisfied", True)]


@pytest.mark.parametrize("token", ["1.AAAAAAAAAAAAAAAA", "garbage", "zz.", "1"])
async def test_a_tampered_or_unknown_token_is_a_clear_404(hcp, token):
    await hcp.reminded()
    status, html = await page(hcp, token)
    assert status == 404 and "链接无效" in html
    assert (await page(hcp, token, "POST", {"grade": "satisfied"}))[0] == 404


@pytest.mark.parametrize(("how", "expected"), [
    ({"headers": {"Accept-Language": "en-US,en;q=0.9"}}, "How satisfied"),
    ({"headers": {"Accept-Language": "zh-TW"}}, "滿意"),
    ({"query": "?lang=en"}, "How satisfied"),
])
async def test_the_page_speaks_the_readers_language(hcp, how, expected):
    _, _, sms = await hcp.reminded()
    token = token_of(sms["body"]) + how.get("query", "")
    _, html = await page(hcp, token, headers=how.get("headers"))
    assert expected in html


async def test_a_barred_rater_is_told_before_the_form_and_nothing_is_stored(hcp):
    from datetime import timedelta

    from store import cases as case_store
    from store import contacts as contact_store

    case_no, _, sms = await hcp.reminded()
    token = token_of(sms["body"])
    async with hcp.rt.db.write() as session:
        case = await case_store.by_no(session, case_no)
        await contact_store.bar(session, case.phone_contact_id, hcp.clock() + timedelta(days=30))

    status, html = await page(hcp, token)
    assert status == 403 and 'name="grade"' not in html and "居民身份证换领" in html
    status, html = await page(hcp, token, "POST", {"grade": "very_dissatisfied", "reasons": "attitude"})
    assert status == 403 and 'name="grade"' not in html
    assert await hcp.evaluations(case_no) == []


async def test_a_link_with_non_ascii_in_its_signature_is_a_clear_404(hcp):
    _case_no, _, sms = await hcp.reminded()
    token = token_of(sms["body"])
    for forged in (token[:-1] + "é", token.split(".")[0] + ".²", "²." + token.split(".")[1]):
        status, html = await page(hcp, forged)
        assert status == 404 and "链接无效" in html, forged
