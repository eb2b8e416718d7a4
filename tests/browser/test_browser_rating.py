"""The rating page in a real browser at phone size: what a citizen sees, taps and gets stored.

Locators are the ones a person uses (labels, roles, visible text), not the markup's classes: the pages'
markup changes, the labels stay. The reminder's link names PUBLIC_URL; the browser opens live + /r/<token>.
"""

from __future__ import annotations

import re

import pytest
from browser import expect, overflow_x, shot, token_of
from servers import BACKENDS

ITEM, AGENCY, COMPLETED = "居民身份证换领", "汕头市公安局金平分局", "2026年11月20日"
NOT_A_CRASH = re.compile(r"Traceback|Internal Server Error|Exception|Error:")


async def open_link(hcp, page):
    """A case reminded by SMS, and the page behind its link: (case_no, token, the navigation's response)."""
    case_no, _, sms = await hcp.reminded()
    token = token_of(sms["body"])
    response = await page.goto(f"/r/{token}")
    return case_no, token, response


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_citizen_rates_satisfied_on_a_phone(hcp, live, page, traffic, request):
    case_no, _, response = await open_link(hcp, page)
    assert response.status == 200
    body = page.locator("body")
    for text in (ITEM, AGENCY, COMPLETED):
        await expect(body).to_contain_text(text)
    await expect(page.get_by_role("radio")).to_have_count(5)
    assert await overflow_x(page) == 0, "the page scrolls sideways on a phone"
    await shot(page, request, "opened")

    await page.get_by_label("满意", exact=True).check()
    await expect(page.get_by_role("radio", name="满意", exact=True)).to_be_checked()
    await shot(page, request, "chosen")
    await page.get_by_role("button").click()
    await expect(body).to_contain_text("感谢")
    await shot(page, request, "thanks")

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"], ev["reasons"], ev["is_followup"]) == ("satisfied", "web", [], False)
    assert any(url.startswith(f"{live}/r/") for url in traffic.requests)
    traffic.assert_local()


async def test_the_page_loads_its_own_styles_and_script_and_nothing_else(hcp, live, page, traffic, request):
    await open_link(hcp, page)
    reason = page.get_by_label("服务态度差")
    await page.get_by_label("满意", exact=True).check()
    await expect(reason).to_be_hidden()  # the script shows the reasons only after a bad grade
    await page.get_by_label("非常不满意", exact=True).check()
    await expect(reason).to_be_visible()
    await shot(page, request, "bad-grade")
    assert any(re.match(re.escape(live) + r"/static/[^?]+\.css", url) for url in traffic.requests)
    assert any(re.match(re.escape(live) + r"/static/[^?]+\.js", url) for url in traffic.requests)
    traffic.assert_local()
    traffic.assert_quiet()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_a_bad_rating_with_two_reasons_and_words(hcp, new_page, traffic, request, javascript):
    page = await new_page(java_script_enabled=javascript)
    case_no, _, _ = await open_link(hcp, page)
    await page.get_by_label("不满意", exact=True).check()
    await page.get_by_label("服务态度差").check()
    await page.get_by_label("多次跑动").check()
    await page.get_by_role("textbox", name=re.compile("说明")).fill("跑了三次才办好")
    await shot(page, request, "filled")
    await page.get_by_role("button").click()
    await expect(page.locator("body")).to_contain_text("感谢")
    await shot(page, request, "thanks")

    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"]) == ("dissatisfied", "web")
    assert (sorted(ev["reasons"]), ev["text"]) == (["attitude", "trips"], "跑了三次才办好")
    traffic.assert_local()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])  # the script checks, then the server
async def test_only_other_without_words_is_refused_and_nothing_is_stored(hcp, new_page, traffic, request, javascript):
    page = await new_page(java_script_enabled=javascript)
    case_no, _, _ = await open_link(hcp, page)
    await page.get_by_label("不满意", exact=True).check()
    await page.get_by_label("其他", exact=True).check()
    await page.get_by_role("button").click()

    alert = page.get_by_role("alert")
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text("其他")
    await shot(page, request, "refused")
    # what was chosen is still chosen, the form is still there, and the case has no rating
    await expect(page.get_by_role("radio", name="不满意", exact=True)).to_be_checked()
    await expect(page.get_by_role("checkbox", name="其他", exact=True)).to_be_checked()
    await expect(page.locator("body")).not_to_contain_text("感谢")
    assert await hcp.evaluations(case_no) == []
    traffic.assert_local()


async def test_after_the_follow_up_window_the_page_says_closed(hcp, clock, page, traffic, request):
    case_no, token, _ = await open_link(hcp, page)
    await page.get_by_label("非常满意", exact=True).check()
    await page.get_by_role("button").click()
    await expect(page.locator("body")).to_contain_text("感谢")

    clock.advance(days=1)  # inside the follow-up window: the form again, for the one follow-up
    await page.goto(f"/r/{token}")
    await expect(page.get_by_role("radio")).to_have_count(5)
    await shot(page, request, "followup")

    clock.advance(days=30)  # 5 working days are long past
    response = await page.goto(f"/r/{token}")
    assert response.status == 200
    body = page.locator("body")
    await expect(body).to_contain_text(re.compile("(无法|不能)再评价"))
    await expect(body).not_to_contain_text(NOT_A_CRASH)
    await expect(page.get_by_role("radio")).to_have_count(0)
    await expect(page.get_by_role("button")).to_have_count(0)
    await shot(page, request, "closed")
    assert [(e["grade"], e["is_followup"]) for e in await hcp.evaluations(case_no)] == [("very_satisfied", False)]


async def test_a_tampered_link_is_a_clear_404_page(hcp, page, traffic, request):
    _, _, sms = await hcp.reminded()
    token = token_of(sms["body"])
    payload, mac = token.split(".", 1)
    tampered = f"{payload}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}"  # one character of the MAC changed

    response = await page.goto(f"/r/{tampered}")
    assert response.status == 404
    await expect(page).to_have_title(re.compile(re.escape(hcp.rt.catalogs.text("zh_Hans", "page.title"))))
    body = page.locator("body")
    await expect(body).to_contain_text("链接无效")
    await expect(body).not_to_contain_text(NOT_A_CRASH)
    await expect(body).not_to_contain_text(ITEM)  # a wrong link tells nothing about any case
    await expect(page.get_by_role("radio")).to_have_count(0)
    await shot(page, request, "invalid")
    traffic.assert_local()


async def test_an_english_browser_gets_the_page_in_english(hcp, new_page, traffic, request):
    page = await new_page(locale="en-US")  # Accept-Language: en-US
    case_no, _, response = await open_link(hcp, page)
    assert response.status == 200
    assert (await page.locator("html").get_attribute("lang") or "").startswith("en")
    body = page.locator("body")
    await expect(body).to_contain_text("November 20, 2026")
    await expect(page.get_by_label("Satisfied", exact=True)).to_have_count(1)
    await expect(page.get_by_label("满意", exact=True)).to_have_count(0)
    await shot(page, request, "opened")

    await page.get_by_label("Very dissatisfied", exact=True).check()
    await page.get_by_label("Slow service").check()
    await page.get_by_role("button").click()
    await expect(body).to_contain_text("Thank you")
    await shot(page, request, "thanks")
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["reasons"], ev["channel"]) == ("very_dissatisfied", ["efficiency"], "web")
    traffic.assert_local()


async def test_the_language_switch_turns_a_chinese_page_english(hcp, page, request):
    await open_link(hcp, page)
    await expect(page.get_by_label("满意", exact=True)).to_have_count(1)
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_label("Satisfied", exact=True)).to_have_count(1)
    await expect(page.locator("html")).to_have_attribute("lang", re.compile("^en"))
    await shot(page, request, "english")
