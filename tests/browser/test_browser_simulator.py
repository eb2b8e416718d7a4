"""The simulator in a real browser at desktop size: a citizen's SMS conversation from the sample case to
the stored rating, the WeChat chat, the 12345 keypad, and one simulated person per browser.

The simulator exists only without Twilio (the `local` provider), so this module's settings have none, as
tests/web/test_simulator.py's do. Every click posts to /simulator/api/… and the page's script refuses a second
one while the first is under way, so each step waits for its answer and for the page to be idle again.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from browser import DESKTOP, expect, overflow_x, shot
from helpers import PUBLIC_URL, without_providers
from servers import BACKENDS
from simulator_support import world_case, world_evaluations

from bot.infra.config import Settings

THANKS = "感谢您的评价！"
THANKS_BAD = "已记录您的评价，我们将督促整改并回访"
REASONS_MENU = "请回复原因编号"
VOICE_REASONS = "请选择不满意的原因"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The embedded default's providers: none of any kind, so the simulator is on."""
    return without_providers(settings)


async def open_simulator(page: Any) -> None:
    response = await page.goto("/simulator/")
    assert response.status == 200
    await expect(page.locator("#clock")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))  # state shown


async def act(page: Any, control: Any) -> dict[str, Any]:
    """Click a control (or submit a form) that posts to the simulator; its answer, once the page is idle."""
    async with page.expect_response(lambda r: "/simulator/api/" in r.url and r.request.method == "POST") as info:
        await control()
    response = await info.value
    assert response.ok, (response.status, await response.text())
    await expect(page.locator("#sim")).not_to_have_attribute("aria-busy", "true")
    return await response.json()


async def say(page: Any, channel: str, text: str, clock: Any = None) -> dict[str, Any]:
    """Type and send a message; with `clock`, a minute later (the service's clock stands still in tests, and
    what is said in the same second as the reminder would be listed before it)."""
    if clock is not None:
        clock.advance(minutes=1)
    await page.locator(f"#text-{channel}").fill(text)
    return await act(page, page.locator(f"form.compose[data-channel={channel}] button[type=submit]").click)


async def record_of(page: Any, case_no: str | None = None) -> tuple[str, dict[str, Any]]:
    """The records panel's stored case (the newest, or `case_no`): (case_no, its JSON as the page shows it)."""
    boxes = page.locator("#records details.record[data-case]")
    box = boxes.first if case_no is None else page.locator(f'#records details.record[data-case="{case_no}"]')
    await expect(box).to_be_visible()
    return await box.get_attribute("data-case"), json.loads(await box.locator("pre.json").text_content())


def bubbles(page: Any, channel: str, direction: str) -> Any:
    return page.locator(f"#screen-{channel} .bubble[data-dir={direction}]")


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_whole_sms_conversation_in_the_simulator(hcp, clock, desktop_page, traffic, request):
    page = desktop_page
    await open_simulator(page)
    await expect(page.locator("#screen-sms")).to_contain_text("还没有消息")
    await shot(page, request, "opened")

    await act(page, page.locator("#case-sms").click)
    case_no, stored = await record_of(page)
    assert case_no.startswith("SIM-") and stored["evaluations"] == [] and stored["reminders"] == []
    await expect(page.locator("#to-next")).to_be_enabled()  # a reminder is due
    await expect(bubbles(page, "sms", "out")).to_have_count(0)
    await shot(page, request, "case-posted")

    await act(page, page.locator("#plus-day").click)
    reminder = bubbles(page, "sms", "out").last
    await expect(bubbles(page, "sms", "out")).to_have_count(1)
    await expect(reminder).to_contain_text("回复1非常满意，2满意，3基本满意，4不满意，5非常不满意")  # the digits 1–5
    await expect(page.locator("#last-tick")).to_contain_text("提醒 1 条")  # the counts in the page's words
    await shot(page, request, "reminder")

    await say(page, "sms", "4", clock)
    await expect(page.locator("#text-sms")).to_have_value("")
    await expect(bubbles(page, "sms", "in").last).to_contain_text("4")
    menu = bubbles(page, "sms", "out").last
    await expect(menu).to_contain_text(REASONS_MENU)
    await expect(menu).to_contain_text("1.服务态度差")
    await expect(menu).to_contain_text("3.办事流程繁琐")
    await shot(page, request, "reasons-menu")

    await say(page, "sms", "1 3", clock)
    await expect(bubbles(page, "sms", "in").last).to_have_text(re.compile("^1 3"))
    await expect(bubbles(page, "sms", "out").last).to_contain_text(THANKS_BAD)
    summary = page.locator(f'#records details.record[data-case="{case_no}"] summary')
    await expect(summary).to_contain_text("dissatisfied [attitude, process]")
    _, stored = await record_of(page, case_no)
    [shown] = stored["evaluations"]
    assert (shown["grade"], shown["reasons"], shown["channel"]) == ("dissatisfied", ["attitude", "process"], "sms")
    [order] = stored["work_orders"]
    assert order["grade"] == "dissatisfied" and order["reasons"] == ["attitude", "process"]
    await shot(page, request, "thanks")

    case = await world_case(hcp, case_no)  # the business system's view of the same case
    [ev] = case["evaluations"]
    assert (ev["grade"], ev["reasons"], ev["channel"], ev["is_followup"]) == (
        "dissatisfied", ["attitude", "process"], "sms", False)
    assert [w["id"] for w in case["work_orders"]] == [order["id"]]
    assert len(case["reminders"]) == 1
    traffic.assert_local()
    traffic.assert_quiet()


async def test_the_wechat_tab_rates_satisfied(hcp, desktop_page, traffic, request):
    page = desktop_page
    await open_simulator(page)
    await act(page, page.locator("#case-wechat").click)
    case_no, _ = await record_of(page)
    tab = page.get_by_role("tab", name="微信")
    await tab.click()
    await expect(tab).to_have_attribute("aria-selected", "true")
    await expect(page.locator("#screen-wechat")).to_be_visible()
    await expect(page.locator("#screen-sms")).to_be_hidden()
    await expect(page.locator("#screen-wechat")).to_contain_text(case_no)  # the system line of the posted case

    await say(page, "wechat", "2")
    await expect(bubbles(page, "wechat", "in").last).to_contain_text("2")
    await expect(bubbles(page, "wechat", "out").last).to_contain_text(THANKS)
    await expect(page.locator(f'#records details.record[data-case="{case_no}"] summary')).to_contain_text(
        "· satisfied")
    await shot(page, request, "thanks")

    [ev] = await world_evaluations(hcp, case_no)
    assert (ev["grade"], ev["channel"], ev["reasons"]) == ("satisfied", "wechat", [])
    await expect(bubbles(page, "sms", "in")).to_have_count(0)  # nothing was said by SMS
    traffic.assert_local()
    traffic.assert_quiet()


async def test_the_keypad_rates_a_call_with_a_reason(hcp, desktop_page, traffic, request):
    page = desktop_page
    await open_simulator(page)
    tab = page.get_by_role("tab", name="12345 按键")
    await tab.click()
    await expect(page.locator("#screen-phone")).to_be_visible()
    keys = page.locator("#keypad button[data-key]")
    await expect(keys).to_have_count(12)
    await expect(keys.first).to_be_disabled()  # no call yet

    await act(page, page.locator("#call").click)
    ticket, _ = await record_of(page)
    await expect(page.locator("#call")).to_be_disabled()
    await expect(page.locator("#hangup")).to_be_enabled()
    await expect(page.locator("#screen-phone")).to_contain_text("不满意请按4")
    await shot(page, request, "called")

    await act(page, page.locator('#keypad button[data-key="4"]').click)
    await expect(bubbles(page, "phone", "out").last).to_contain_text(VOICE_REASONS)
    await expect(bubbles(page, "phone", "out").last).to_contain_text("办事效率低请按2")
    await expect(page.locator("#call-state")).to_contain_text("以 # 结束")
    await page.locator('#keypad button[data-key="2"]').click()  # gathered in the page, nothing posted yet
    await expect(page.locator("#call-state")).to_contain_text(" 2")
    await shot(page, request, "reasons")
    await act(page, page.locator('#keypad button[data-key="#"]').click)

    await expect(page.locator("#screen-phone")).to_contain_text(THANKS_BAD)
    await expect(page.locator("#call-state")).to_have_text("未通话。")
    await expect(page.locator("#call")).to_be_enabled()
    await expect(keys.first).to_be_disabled()
    await expect(page.locator(f'#records details.record[data-case="{ticket}"] summary')).to_contain_text(
        "dissatisfied [efficiency]")
    await shot(page, request, "ended")

    [ev] = await world_evaluations(hcp, ticket)
    assert (ev["grade"], ev["reasons"], ev["channel"]) == ("dissatisfied", ["efficiency"], "phone")
    traffic.assert_local()
    traffic.assert_quiet()


async def test_another_browser_is_another_person(hcp, clock, desktop_page, new_page, traffic, request):
    first = desktop_page
    await open_simulator(first)
    await act(first, first.locator("#case-sms").click)
    await act(first, first.locator("#plus-day").click)
    await say(first, "sms", "4", clock)
    mine, _ = await record_of(first)
    await expect(bubbles(first, "sms", "out")).to_have_count(2)  # the reminder and the reasons menu
    who = await first.locator("#identity").text_content()

    second = await new_page(**DESKTOP)
    await open_simulator(second)
    other = await second.locator("#identity").text_content()
    assert other and who and other != who
    await expect(second.locator("#screen-sms")).to_contain_text("还没有消息")
    await expect(second.locator("#screen-sms .bubble")).to_have_count(0)
    await expect(second.locator("#records")).to_have_text("还没有办件。先办结一件。")
    await shot(second, request, "second-empty")

    # The second person's "4" is no answer to the first one's reminder: they have nothing to rate.
    await say(second, "sms", "4", clock)
    await expect(bubbles(second, "sms", "out").last).to_contain_text("暂未查到您需要评价的办件")
    await expect(second.locator("#screen-sms")).not_to_contain_text(mine)
    await shot(second, request, "second-said")

    await first.reload()
    await expect(first.locator("#identity")).to_have_text(who)  # the cookie keeps the first person
    await expect(bubbles(first, "sms", "in")).to_have_count(1)
    await expect(bubbles(first, "sms", "out").last).to_contain_text(REASONS_MENU)
    await expect(first.locator("#records details.record")).to_have_count(1)
    await shot(first, request, "first-again")
    assert await world_evaluations(hcp, mine) == []  # the first person is still at the reasons
    traffic.assert_local()
    traffic.assert_quiet()


async def test_a_reminders_link_opens_the_simulated_case_at_the_simulated_date(hcp, clock, page, traffic, request):
    """Issue 19: the link in the reminder's bubble is a link; clicked, it opens the simulated case's rating page
    (a new tab, as a phone's browser would) at the simulator's clock, not the service's."""
    await open_simulator(page)
    await act(page, page.locator("#plus-day").click)  # the case is completed a simulated day from now
    await act(page, page.locator("#case-sms").click)
    case_no, _ = await record_of(page)
    await act(page, page.locator("#plus-day").click)  # the reminder: simulated 2026-11-23 10:00, really 11-21
    await expect(page.locator("#clock")).to_have_text("2026-11-23 10:00")
    reminder = bubbles(page, "sms", "out").last
    link = reminder.get_by_role("link")
    await expect(link).to_have_count(1)
    shown, href = await link.text_content(), await link.get_attribute("href")
    assert href and re.fullmatch(r"/simulator/r/[A-Za-z0-9._-]+", href), href
    assert shown == PUBLIC_URL + href  # the message's own text; it opens on the origin the simulator is on
    await expect(reminder).to_contain_text(f"也可点击 {shown} 评价")  # the words around it are text still
    assert await reminder.evaluate("b => getComputedStyle(b).overflowWrap") == "anywhere"
    assert await reminder.evaluate("b => b.scrollWidth <= b.clientWidth"), "the link widens its bubble"
    assert await overflow_x(page) == 0, "the simulator scrolls sideways on a phone"
    await shot(page, request, "reminder-link")

    async with page.context.expect_page() as opened:
        await link.click()
    rating = await opened.value
    await expect(rating).to_have_url(re.compile(re.escape(href) + "$"))
    body = rating.locator("body")
    await expect(body).to_contain_text("居民身份证换领")
    await expect(body).to_contain_text("2026年11月22日")  # completed at the simulated instant
    await rating.get_by_label("满意", exact=True).check()
    await rating.get_by_role("button").click()
    await expect(rating.locator(".summary")).to_have_text("您的评价：满意（2026年11月23日）")
    await expect(body).not_to_contain_text("2026年11月21日")
    await shot(rating, request, "rated")

    [ev] = await world_evaluations(hcp, case_no)
    assert (ev["grade"], ev["channel"], ev["created_at"]) == ("satisfied", "web", "2026-11-23T10:00:00+08:00")
    await page.reload()
    _, stored = await record_of(page, case_no)
    assert [e["created_at"] for e in stored["evaluations"]] == ["2026-11-23T10:00:00+08:00"]
    traffic.assert_local()
    traffic.assert_quiet()
