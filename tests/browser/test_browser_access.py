"""Issue 19: phones of every size, and pages everyone can use (互联网应用适老化及无障碍改造).

Every page and state of the rating page, the console, the simulator and the status page is looked at in a
360×640 phone, a 390×844 phone and a 1366×768 laptop: nothing scrolls sideways
(`document.documentElement.scrollWidth <= innerWidth`) and no text is squeezed to one character a line; axe-core
(tests/a11y.py) finds no serious or critical violation. The rating page's 长辈模式 (elder mode) is checked for
what it promises: large type, WCAG AAA contrast (axe's color-contrast-enhanced), big targets, one question a
screen, and a whole rating by keyboard alone, with its errors announced and focused. Screenshots of each page and
mode at 390×844 and 1366×768 go to test-artifacts/screenshots.

Each test collects what it found on every page and state and fails with the whole list, so that one run says
everything that is wrong. The contexts are laptop-like (no mobile emulation): the viewport is resized in place,
and window.innerWidth is the viewport's width exactly.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from a11y import VIEWPORTS, axe_violations
from browser import expect, shot, token_of
from console_support import AGENCY_A, AGENCY_B, AGENCY_B_NAME, PASSWORD, add_user, order_at, stored
from helpers import without_providers

from bot.infra.config import Settings

SHOTS = ("390x844", "1366x768")  # the sizes screenshots are taken at; the overflow check runs at all three
LAPTOP: dict[str, Any] = {"viewport": VIEWPORTS["390x844"], "device_scale_factor": 1, "is_mobile": False,
                          "has_touch": False, "locale": "zh-CN"}
ELDER_FONT_PX = 22
TARGET_PX = 48
AGENCY_C, AGENCY_C_NAME = "11440512MB2C09876Z", "汕头市濠江区人力资源和社会保障局劳动保障监察大队"
LONG_ITEM = "企业职工基本养老保险待遇申领（含退休人员基本养老金调整及一次性补发）"
LONG_CODE = "（事项编码：11440500007502113X4440512001000SZJ2026001）"  # a long code without a break
LONG_URL = "https://zwfw.shantou.gov.cn/rectification/2026/11/notice-of-window-staff-training-and-follow-up-visit"

# Where the page is wider than the window: elements sticking out whose parent does not (the origin of it).
STICKING_OUT = """() => {
  const w = window.innerWidth, out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= w + 0.5) continue;
    const p = el.parentElement && el.parentElement.getBoundingClientRect();
    if (p && p.right > w + 0.5) continue;
    const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes.map(c => '.' + c).join('') +
             ' → ' + Math.round(r.right) + 'px');
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), range = document.createRange();
  for (let node = walker.nextNode(); node && out.length < 6; node = walker.nextNode()) {
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (r.width && r.right > w + 0.5 && node.parentElement.getBoundingClientRect().right <= w + 0.5)
      out.push('text "' + node.data.trim().slice(0, 24) + '" in ' + node.parentElement.tagName.toLowerCase() +
               ' → ' + Math.round(r.right) + 'px');
  }
  return out.slice(0, 6);
}"""

# Visible text set one or two characters a line: a text of at least two characters whose lines hold on average
# fewer than two (a name or a grade squeezed into a column as narrow as a character).
SQUEEZED = """() => {
  const out = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const chars = node.data.replace(/\\s+/g, '').length;
    if (chars < 2) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const lines = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0 && r.height > 0)
                          .map(r => Math.round(r.top)));
    if (lines.size >= 2 && chars / lines.size < 2)
      out.push(node.data.trim().slice(0, 20) + ' (' + lines.size + ' lines, in ' +
               node.parentElement.tagName.toLowerCase() + ')');
  }
  return out.slice(0, 6);
}"""

# In elder mode: the smallest visible text, and the controls smaller than TARGET_PX either way (a choice's target is
# its whole label; a text box's label is not a target, the box is).
SMALLEST_TEXT = """() => {
  let least = 1000, where = '';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim() || !node.parentElement.getClientRects().length) continue;
    const el = node.parentElement, size = parseFloat(getComputedStyle(el).fontSize);
    if (el.closest('.visually-hidden')) continue;
    if (size < least) { least = size; where = el.tagName.toLowerCase() + ': ' + node.data.trim().slice(0, 20); }
  }
  return [least, where];
}"""
SMALL_TARGETS = """min => Array.from(document.querySelectorAll('a[href], button, label:has(input), textarea, select, ' +
    'input:not([type=hidden]):not([type=radio]):not([type=checkbox])'))
  .filter(el => el.getClientRects().length && !el.closest('.visually-hidden'))
  .map(el => [el, el.getBoundingClientRect()])
  .filter(([el, r]) => r.width < min - 0.5 || r.height < min - 0.5)
  .map(([el, r]) => el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 16) + '" ' +
       Math.round(r.width) + '×' + Math.round(r.height))"""


@pytest.fixture
def providers() -> bool:
    """Whether the service has providers (the status page at GET /); False: none, the simulator on."""
    return True


@pytest.fixture
def settings(settings: Settings, providers: bool) -> Settings:
    return settings if providers else without_providers(settings)


class Findings:
    """What the checks found on the pages of one test, each line naming the page, state and viewport."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.lines: list[str] = []

    async def check(self, page: Any, state: str, *, shoot: bool = False, elder: bool = False) -> None:
        """At each viewport: no sideways scroll, no squeezed text (and a screenshot at SHOTS if `shoot`); then
        axe-core at 390×844 (with WCAG AAA contrast in elder mode), and elder mode's type and target sizes."""
        for name, size in VIEWPORTS.items():
            await page.set_viewport_size(size)
            wide, inner = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if wide > min(inner, size["width"]):  # innerWidth is the viewport's here; in a mobile context it would grow
                self.lines.append(f"{state} @ {name}: scrolls sideways ({wide} > {inner}): "
                                  f"{await page.evaluate(STICKING_OUT)}")
            squeezed = await page.evaluate(SQUEEZED)
            if squeezed:
                self.lines.append(f"{state} @ {name}: one character a line: {squeezed}")
            if shoot and name in SHOTS:  # after two frames: a full-page capture right after a resize can miss paint
                await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                await shot(page, self.request, f"{state}-{name}")
        await page.set_viewport_size(VIEWPORTS["390x844"])
        enable = ("color-contrast-enhanced",) if elder else ()
        for v in await axe_violations(page, enable=enable):
            self.lines.append(f"{state}: axe {v['id']} ({v['impact']}): {v['help']} at {v['targets'][:4]}")
        if elder:
            least, where = await page.evaluate(SMALLEST_TEXT)
            if least < ELDER_FONT_PX:
                self.lines.append(f"{state}: text of {least}px in elder mode ({where})")
            small = await page.evaluate(SMALL_TARGETS, TARGET_PX)
            if small:
                self.lines.append(f"{state}: targets under {TARGET_PX}px in elder mode: {small[:6]}")

    def assert_none(self) -> None:
        assert not self.lines, "\n".join(["what the pages got wrong:", *self.lines])


async def focused(page: Any) -> str:
    """What has the keyboard's focus, as a screen reader names it: role and name (a label's text)."""
    return await page.evaluate("""() => {
      const el = document.activeElement;
      if (!el || el === document.body) return 'body';
      const label = el.labels && el.labels.length ? el.labels[0].textContent : el.textContent;
      return (el.getAttribute('role') || el.type || el.tagName.toLowerCase()) + ': ' + label.trim();
    }""")


async def tab_to(page: Any, target: Any, *, limit: int = 30) -> None:
    """Press Tab until `target` has the focus (the keyboard's way there, in the page's order); each stop's
    focus must be visible (an outline)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            outline = await target.evaluate("el => { const s = getComputedStyle(el); "
                                            "return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }")
            assert outline, f"the focus on {await focused(page)} is not visible"
            return
    raise AssertionError(f"{limit} presses of Tab never reached {target}; the focus is on {await focused(page)}")


async def reminded_token(hcp: Any, **case: Any) -> tuple[str, str]:
    case_no, _, sms = await hcp.reminded(**case)
    return case_no, token_of(sms["body"])


async def expire(hcp: Any, clock: Any) -> None:
    """Past every window: the default rating applied by a tick, then its follow-up window over."""
    await hcp.tick(clock.advance(days=30))
    clock.advance(days=30)


# --- the rating page -----------------------------------------------------------------------------------------


async def test_the_rating_page_fits_every_screen_and_passes_axe(hcp, clock, new_page, request):
    found = Findings(request)
    page = await new_page(**LAPTOP)
    case_no, token = await reminded_token(hcp, item_name=LONG_ITEM + LONG_CODE, agency_name=AGENCY_C_NAME)
    _, expiring = await reminded_token(hcp)

    await page.goto(f"/r/{token}")
    await expect(page.get_by_role("radio")).to_have_count(5)
    await found.check(page, "rating-form", shoot=True)
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await found.check(page, "rating-error")
    await page.get_by_label("非常不满意", exact=True).check()
    await expect(page.get_by_label("服务态度差")).to_be_visible()
    await found.check(page, "rating-bad-grade")
    await page.get_by_label("满意", exact=True).check()
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("body")).to_contain_text("感谢")
    await found.check(page, "rating-thanks", shoot=True)

    clock.advance(days=1)  # the follow-up, then the link is used up
    await page.goto(f"/r/{token}")
    await page.get_by_label("基本满意", exact=True).check()
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("body")).to_contain_text("感谢")
    await page.goto(f"/r/{token}")
    await expect(page.locator("body")).to_contain_text("不能再次评价")
    await found.check(page, "rating-used")

    await expire(hcp, clock)
    await page.goto(f"/r/{expiring}")
    await expect(page.locator("body")).to_contain_text("评价期限已过")
    await found.check(page, "rating-expired")
    payload, mac = token.split(".", 1)
    await page.goto(f"/r/{payload}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}")
    await expect(page.locator("body")).to_contain_text("链接无效")
    await found.check(page, "rating-tampered", shoot=True)

    assert [e["grade"] for e in await hcp.evaluations(case_no)] == ["satisfied", "basically_satisfied"]
    found.assert_none()


async def test_the_elder_mode_fits_every_screen_and_passes_axe_with_aaa_contrast(hcp, clock, new_page, request):
    found = Findings(request)
    _, token = await reminded_token(hcp)
    _, expiring = await reminded_token(hcp)
    page = await new_page(**LAPTOP)

    await page.goto(f"/r/{token}?mode=elder")
    switch_off = page.get_by_role("link", name="退出长辈模式")
    await expect(switch_off).to_be_visible()
    grades = page.get_by_role("group", name="您对本次服务满意吗？")
    await expect(grades.get_by_role("radio")).to_have_count(5)
    await expect(page.get_by_label("服务态度差")).to_be_hidden()  # one question a screen: the grade first
    await expect(page.get_by_role("textbox")).to_be_hidden()
    await found.check(page, "elder-grade", shoot=True, elder=True)

    await page.get_by_role("button", name="下一步").click()  # no grade yet
    await expect(page.get_by_role("alert")).to_contain_text("请选择一个评价等级")
    await found.check(page, "elder-error", elder=True)

    await page.get_by_label("不满意", exact=True).check()
    await page.get_by_role("button", name="下一步").click()
    await expect(page.get_by_label("服务态度差")).to_be_visible()
    await expect(grades).to_be_hidden()
    await found.check(page, "elder-reasons", shoot=True, elder=True)
    await page.get_by_label("服务态度差").check()
    await page.get_by_role("button", name="下一步").click()
    await expect(page.get_by_role("textbox")).to_be_visible()
    await expect(page.get_by_label("服务态度差")).to_be_hidden()
    await found.check(page, "elder-text", elder=True)
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("body")).to_contain_text("感谢")
    await expect(switch_off).to_be_visible()  # the cookie keeps the mode across the redirect
    await found.check(page, "elder-thanks", shoot=True, elder=True)

    await expire(hcp, clock)
    await page.goto(f"/r/{expiring}")  # no ?mode=: the cookie
    await expect(page.locator("body")).to_contain_text("评价期限已过")
    await found.check(page, "elder-expired", elder=True)

    _, fresh = await reminded_token(hcp)
    await page.goto(f"/r/{fresh}?lang=en")  # in English, the same (longer words)
    await expect(page.get_by_role("link", name="Leave senior mode")).to_be_visible()
    await expect(page.get_by_role("button", name="Next")).to_be_visible()
    await found.check(page, "elder-english", elder=True)
    # A good grade: its optional box for comments and suggestions on the grade's screen (Shantou art. 23),
    # and the form ends there.
    await page.get_by_label("Satisfied", exact=True).check()
    await expect(page.get_by_role("textbox", name=re.compile("suggestions"))).to_be_visible()
    await expect(page.get_by_role("button", name="Next")).to_be_hidden()
    await expect(page.get_by_role("button", name="Submit")).to_be_visible()
    await found.check(page, "elder-suggestion", elder=True)

    # Without JavaScript every question is on the one page, and the server's refusal has the focus. (The checks
    # evaluate scripts in the page, which a page without JavaScript cannot: they look at one whose script is
    # empty.)
    plain = await new_page(**LAPTOP, java_script_enabled=False)
    scriptless = await new_page(**LAPTOP)
    await scriptless.route("**/static/rating.js*", lambda route: route.fulfill(body="", content_type="text/javascript"))
    for p in (plain, scriptless):
        await p.goto(f"/r/{fresh}?mode=elder")
        for shown in (p.get_by_role("radio", name="满意", exact=True), p.get_by_label("服务态度差"),
                      p.get_by_role("textbox", name=re.compile("说明")),
                      p.get_by_role("textbox", name=re.compile("意见和建议")),
                      p.get_by_role("button", name="提交评价")):
            await expect(shown).to_be_visible()
        await expect(p.get_by_role("button", name="下一步")).to_have_count(0)
        if p is scriptless:
            await found.check(p, "elder-nojs", shoot=True, elder=True)
        await p.get_by_role("button", name="提交评价").click()  # nothing chosen: the server says so
        alert = p.get_by_role("alert")
        await expect(alert).to_contain_text("请选择一个评价等级")
        await expect(alert).to_be_focused()
        if p is scriptless:
            await found.check(p, "elder-nojs-error", elder=True)
    found.assert_none()


async def test_an_elder_rates_by_keyboard_alone(hcp, new_page, request):
    """Tab, arrows, Space and Enter, no mouse: the mode switched on from the page, a good grade sent, then a bad
    grade with two reasons and words; every error announced (role=alert) and given the focus."""
    good_case, good = await reminded_token(hcp)
    bad_case, bad = await reminded_token(hcp)
    page = await new_page(**LAPTOP)

    await page.goto(f"/r/{good}")
    await tab_to(page, page.get_by_role("link", name="长辈模式"))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"mode=elder"))
    assert await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= ELDER_FONT_PX
    first = page.get_by_role("radio", name="非常满意", exact=True)
    await tab_to(page, first)
    await page.keyboard.press("Space")
    await expect(first).to_be_checked()
    await expect(page.get_by_role("button", name="下一步")).to_be_hidden()  # a good grade is the only question
    await tab_to(page, page.get_by_role("button", name="提交评价"))
    await shot(page, request, "good-chosen")
    await page.keyboard.press("Enter")
    await expect(page.locator("body")).to_contain_text("感谢")
    [ev] = await hcp.evaluations(good_case)
    assert (ev["grade"], ev["reasons"], ev["channel"]) == ("very_satisfied", [], "web")

    await page.goto(f"/r/{bad}")  # the mode is remembered
    await expect(page.get_by_role("link", name="退出长辈模式")).to_be_visible()
    next_button = page.get_by_role("button", name="下一步")
    await tab_to(page, next_button)  # no grade chosen: refused, said aloud, and the focus goes to it
    await page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("请选择一个评价等级")
    await expect(alert).to_be_focused()
    await shot(page, request, "error")

    await tab_to(page, page.get_by_role("radio", name="非常满意", exact=True))
    for _ in range(3):
        await page.keyboard.press("ArrowDown")  # 满意, 基本满意, 不满意
    await expect(page.get_by_role("radio", name="不满意", exact=True)).to_be_checked()
    await expect(alert).to_be_hidden()
    await tab_to(page, next_button)
    await page.keyboard.press("Enter")
    attitude = page.get_by_role("checkbox", name="服务态度差")
    await expect(attitude).to_be_focused()  # the next question has the focus, its legend read with it
    await page.keyboard.press("Space")
    await tab_to(page, page.get_by_role("checkbox", name="多次跑动"))
    await page.keyboard.press("Space")
    await tab_to(page, next_button)
    await page.keyboard.press("Enter")
    words = page.get_by_role("textbox")
    await expect(words).to_be_focused()
    await page.keyboard.type("窗口只开了一个")
    await tab_to(page, page.get_by_role("button", name="上一步"))  # back, and the choices are still there
    await page.keyboard.press("Enter")
    await expect(attitude).to_be_checked()
    await expect(attitude).to_be_focused()
    await tab_to(page, next_button)
    await page.keyboard.press("Enter")
    await expect(words).to_have_value("窗口只开了一个")
    await shot(page, request, "bad-words")
    await tab_to(page, page.get_by_role("button", name="提交评价"))
    await page.keyboard.press("Enter")
    await expect(page.locator("body")).to_contain_text("感谢")
    [ev] = await hcp.evaluations(bad_case)
    assert (ev["grade"], sorted(ev["reasons"]), ev["text"]) == ("dissatisfied", ["attitude", "trips"], "窗口只开了一个")

    await tab_to(page, page.get_by_role("link", name="退出长辈模式"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("link", name="长辈模式")).to_be_visible()
    assert await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") < ELDER_FONT_PX


async def test_the_bundle_choice_fits_every_screen_and_passes_axe_in_both_modes(hcp, new_page, request):
    """Shantou art. 31 (一件事): the choice between this item and the whole matter, with the items and their (long)
    agencies listed, fits a phone and passes axe in the standard and the elder mode (AAA contrast, large type, big
    targets); in elder mode it is on the grade's screen, and a good grade for the whole matter is sent from it."""
    found = Findings(request)
    phone = hcp.new_phone()
    item_case, token = await reminded_token(hcp, phone=phone, bundle_no="YJS-A11Y", item_name=LONG_ITEM + LONG_CODE,
                                            agency_name=AGENCY_C_NAME)
    other = (await hcp.post_case(bundle_no="YJS-A11Y", item_name=LONG_ITEM, agency_code=AGENCY_B,
                                 agency_name=AGENCY_B_NAME))["case_no"]
    page = await new_page(**LAPTOP)

    await page.goto(f"/r/{token}")
    scope = page.get_by_role("group", name="评价范围")
    await expect(scope.get_by_role("radio")).to_have_count(2)
    await expect(page.get_by_role("radio", name="只评价本事项")).to_be_checked()
    await expect(page.locator("#bundle-items li")).to_have_count(2)
    await found.check(page, "bundle-form", shoot=True)

    await page.goto(f"/r/{token}?mode=elder")
    await expect(scope).to_be_visible()  # with the grades, on the first screen
    await expect(page.get_by_role("group", name="您对本次服务满意吗？")).to_be_visible()
    await found.check(page, "bundle-elder", shoot=True, elder=True)
    await page.get_by_role("radio", name=re.compile("整件事")).check()
    await page.get_by_label("满意", exact=True).check()
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("body")).to_contain_text("感谢")
    assert [(e["grade"], e["via"]) for e in await hcp.evaluations(item_case)] == [("satisfied", None)]
    assert [(e["grade"], e["via"]) for e in await hcp.evaluations(other)] == [("satisfied", "bundle")]
    found.assert_none()


# --- the console and the status page ---------------------------------------------------------------------------


async def test_the_console_and_the_status_page_fit_every_screen_and_pass_axe(hcp, new_page, request):
    found = Findings(request)
    page = await new_page(**LAPTOP)
    await page.goto("/")
    await expect(page.get_by_role("link", name=re.compile("工作台"))).to_be_visible()
    await found.check(page, "status", shoot=True)

    # Several agencies, one with a very long name; a work order with a long history and a long link in it.
    _, wo_id, _ = await order_at(hcp, "created", agency=(AGENCY_C, AGENCY_C_NAME))
    steps = [("dispatch", {}), ("rectify", {"note": f"已约谈窗口人员，培训通知见 {LONG_URL}"}), ("review", {}),
             ("callback", {"result": "unreachable", "note": "无人接听"}),
             ("callback", {"result": "dissatisfied", "note": "群众认为仍需改进，重新整改"}),
             ("rectify", {"note": "已增设一个窗口并公示办事指南" * 3}), ("review", {"note": "整改到位"})]
    for action, body in steps:
        code, doc = await hcp.api("POST", f"/api/v1/work-orders/{wo_id}/{action}", body)
        assert code == 200, (action, code, doc)
    await order_at(hcp, "dispatched", agency=(AGENCY_B, AGENCY_B_NAME))
    await order_at(hcp, "rectified")
    for agency in ((AGENCY_A, "汕头市公安局金平分局"), (AGENCY_C, AGENCY_C_NAME)):
        doc = await hcp.post_case(completed_at="2026-11-18T10:00:00+08:00", phone=hcp.new_phone(),
                                  agency_code=agency[0], agency_name=agency[1], item_name=LONG_ITEM)
        await hcp.rate(doc["case_no"], "satisfied", channel="sms")
    _, late_id, _ = await order_at(hcp, "reviewed")  # and one overdue: its callback's deadline passed
    late = datetime.fromisoformat((await stored(hcp, late_id))["due_at"]) + timedelta(minutes=1)
    await hcp.tick(late)
    hcp.clock.set(late)
    await add_user(hcp, "admin1", "admin")

    await page.goto("/console/")
    await expect(page).to_have_url(re.compile(r"/console/login"))
    await found.check(page, "login", shoot=True)
    await page.get_by_label("用户名").fill("admin1")
    await page.get_by_label("密码").fill("not the password")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await found.check(page, "login-refused")
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/console/queue$"))
    await expect(page.locator("li[data-work-order]").first).to_be_visible()
    await found.check(page, "queue", shoot=True)

    await page.goto("/console/orders?status=")
    await expect(page.get_by_role("link", name=str(wo_id), exact=True)).to_be_visible()
    await found.check(page, "orders", shoot=True)

    await page.goto(f"/console/orders/{wo_id}")
    await expect(page.get_by_role("heading", name="回访话术")).to_be_visible()
    assert await page.locator("ol.history li").count() > len(steps)
    await found.check(page, "order-script", shoot=True)
    await page.get_by_role("button", name="显示完整号码").click()
    await expect(page.locator('a[href^="tel:"]')).to_be_visible()
    await found.check(page, "order-revealed")

    await page.goto("/console/dashboard")
    for n in range(2):
        await expect(page.locator("[data-chart]").nth(n)).to_have_attribute("data-drawn", "true")
    await expect(page.locator("main")).to_contain_text(AGENCY_C_NAME)
    await found.check(page, "dashboard", shoot=True)

    await page.goto("/console/audit")
    await expect(page.locator("tr[data-audit]").first).to_be_visible()
    await found.check(page, "audit", shoot=True)
    found.assert_none()


# --- the simulator ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("providers", [False], ids=["simulator"])
async def test_the_simulator_fits_every_screen_and_passes_axe(hcp, new_page, request):
    found = Findings(request)
    page = await new_page(**LAPTOP)
    await page.goto("/simulator/")
    await expect(page.locator("#clock")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))

    async def act(control: Any) -> None:
        async with page.expect_response(lambda r: "/simulator/api/" in r.url and r.request.method == "POST"):
            await control.click()
        await expect(page.locator("#sim")).not_to_have_attribute("aria-busy", "true")

    await act(page.locator("#case-sms"))
    await act(page.locator("#plus-day"))
    reminder = page.locator("#screen-sms .bubble[data-dir=out]").last
    await expect(reminder.get_by_role("link")).to_have_text(re.compile(r"^https://\S{40,}$"))  # a long URL
    # the tick's counts in words of the page's language, in the controls and in the SMS screen's system line
    for where in ("#last-tick", "#screen-sms .bubble[data-dir=system] >> nth=-1"):
        said = await page.locator(where).inner_text()
        if "提醒" not in said or re.search("[A-Za-z]", said):
            found.lines.append(f"sim-sms: the tick's line is not in Chinese: {said!r}")
    await found.check(page, "sim-sms", shoot=True)

    await act(page.locator("#case-wechat"))
    await page.get_by_role("tab", name="微信").click()
    await page.locator("#text-wechat").fill("2")
    await act(page.locator("form.compose[data-channel=wechat] button[type=submit]"))
    await expect(page.locator("#screen-wechat .bubble[data-dir=out]").last).to_contain_text("感谢")
    await found.check(page, "sim-wechat", shoot=True)

    await page.get_by_role("tab", name="12345 按键").click()
    await act(page.locator("#call"))
    await expect(page.locator("#hangup")).to_be_enabled()
    await found.check(page, "sim-keypad", shoot=True)
    found.assert_none()
