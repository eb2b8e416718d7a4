"""The agents' console in a real browser: an agent's callback from the queue to the closed work order, an
agency's rectification, the dashboard's charts, and the log-in form on a phone.

The service's PUBLIC_URL is https, so the console's cookies are `Secure`; Chromium keeps them on
http://127.0.0.1 (a secure context), which every test here relies on from the log-in on. Data is made by
the API (tests/console_support.py); what is checked is what the pages show and what the API then stores.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from browser import expect, overflow_x, shot
from console_support import (
    AGENCY_A,
    AGENCY_A_NAME,
    AGENCY_B,
    AGENCY_B_NAME,
    PASSWORD,
    add_user,
    advance,
    api_stats,
    masked,
    national,
    order_at,
    stored,
)
from servers import BACKENDS

NOTE = "已与群众电话沟通，问题已解决"
RECTIFIED = "已对窗口人员进行批评教育并整改"


async def log_in(page: Any, username: str, password: str = PASSWORD, *, start: str = "/console/") -> None:
    """Open a console page, get sent to the log-in form, log in; back at the page asked for."""
    await page.goto(start)
    await expect(page).to_have_url(re.compile(r"/console/login\?next="))
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await expect(page).not_to_have_url(re.compile(r"/console/login"))


def fact(page: Any, term: str) -> Any:
    """The <dd> of a work order's fact list named `term`."""
    return page.locator(f'xpath=//dl[contains(@class, "facts")]/dt[normalize-space()="{term}"]'
                        "/following-sibling::dd[1]")


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_an_agent_calls_back_from_the_queue_and_the_order_closes(hcp, desktop_page, traffic, request):
    page = desktop_page
    case_no, wo_id, phone = await order_at(hcp, "reviewed")
    late = datetime.fromisoformat((await stored(hcp, wo_id))["due_at"]) + timedelta(minutes=1)
    await hcp.tick(late)  # the callback's deadline has passed: the tick marks the work order overdue
    hcp.clock.set(late)
    assert (await stored(hcp, wo_id))["overdue"] is True
    await add_user(hcp, "agent1", "agent")

    await log_in(page, "agent1")
    await expect(page).to_have_url(re.compile(r"/console/queue$"))
    card = page.locator(f'li[data-work-order="{wo_id}"]')
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("已超期")
    await expect(card.locator(".badge.overdue")).to_have_text("已超期")
    await expect(card).to_contain_text(case_no)
    await expect(card).to_contain_text("窗口人员态度冷淡")
    await expect(card).to_contain_text(masked(phone))
    await expect(page.locator("body")).not_to_contain_text(phone)
    await expect(page.locator("body")).not_to_contain_text(national(phone))
    await shot(page, request, "queue")

    await card.get_by_role("link", name="开始回访").click()
    await expect(page).to_have_url(re.compile(rf"/console/orders/{wo_id}$"))
    await expect(page.get_by_role("heading", name="回访话术")).to_be_visible()
    await expect(page.locator("p.script")).to_contain_text("已约谈窗口人员")  # the rectification, in the script
    await expect(page.locator("body")).not_to_contain_text(phone)
    await expect(page.locator('a[href^="tel:"]')).to_have_count(0)
    await shot(page, request, "order")

    await page.get_by_role("button", name="显示完整号码").click()
    tel = page.locator('a[href^="tel:"]')
    await expect(tel).to_have_attribute("href", f"tel:+86{phone}")
    await expect(tel).to_have_text(national(phone))
    await expect(page.locator("ol.history")).to_contain_text("查看评价人号码 · agent1")
    reveals = [h for h in (await stored(hcp, wo_id))["history"] if h["action"] == "reveal"]
    assert [h["actor"] for h in reveals] == ["agent1"]
    await shot(page, request, "revealed")

    await page.get_by_label("满意", exact=True).check()
    await page.get_by_label("备注").fill(NOTE)
    await shot(page, request, "filled")
    await page.get_by_role("button", name="记录回访结果").click()
    await expect(page).to_have_url(re.compile(r"/console/queue\?done=callback$"))
    await expect(page.get_by_role("status")).to_have_text("回访结果已记录。")
    await expect(page.locator(f'li[data-work-order="{wo_id}"]')).to_have_count(0)
    await expect(page.locator("main")).to_contain_text("目前没有待回访的工单")
    await shot(page, request, "recorded")

    doc = await stored(hcp, wo_id)
    assert (doc["status"], doc["outcome"]) == ("closed", "satisfied")
    last = doc["history"][-1]
    assert (last["action"], last["actor"], last["note"]) == ("callback", "agent1", NOTE)
    traffic.assert_local()
    traffic.assert_quiet()


async def test_an_agency_user_rectifies_a_dispatched_order(hcp, desktop_page, traffic, request):
    page = desktop_page
    _case_no, wo_id, _phone = await order_at(hcp, "dispatched")
    _other_case, other_id, _ = await order_at(hcp, "dispatched", agency=(AGENCY_B, AGENCY_B_NAME))
    await add_user(hcp, "l2a", "l2", AGENCY_A)

    await log_in(page, "l2a")
    await expect(page).to_have_url(re.compile(r"/console/orders$"))  # no queue for an agency
    await expect(page.get_by_role("link", name="回访队列")).to_have_count(0)
    await expect(page.get_by_role("link", name=str(wo_id), exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name=str(other_id), exact=True)).to_have_count(0)  # not its agency
    await expect(page.locator("main")).not_to_contain_text(AGENCY_B_NAME)
    await shot(page, request, "orders")

    await page.get_by_role("link", name=str(wo_id), exact=True).click()
    await expect(page).to_have_url(re.compile(rf"/console/orders/{wo_id}$"))
    await expect(fact(page, "状态")).to_contain_text("整改中")
    await expect(fact(page, "整改情况")).to_have_count(0)
    await expect(page.get_by_role("button", name="显示完整号码")).to_have_count(0)  # agencies do not call
    await page.get_by_label("整改情况说明（必填）").fill(RECTIFIED)
    await shot(page, request, "filled")
    await page.get_by_role("button", name="提交整改").click()

    await expect(page).to_have_url(re.compile(rf"/console/orders/{wo_id}\?done=rectify$"))
    await expect(page.get_by_role("status")).to_have_text("整改情况已提交。")
    await expect(fact(page, "整改情况")).to_have_text(RECTIFIED)
    await expect(fact(page, "状态")).to_contain_text("待审核")
    await expect(page.locator("ol.history li").last).to_contain_text(f"整改 · l2a · “{RECTIFIED}”")
    await expect(page.get_by_role("button", name="提交整改")).to_have_count(0)
    await shot(page, request, "rectified")

    doc = await stored(hcp, wo_id)
    assert doc["status"] == "rectified"
    assert (doc["history"][-1]["action"], doc["history"][-1]["actor"], doc["history"][-1]["note"]) == (
        "rectify", "l2a", RECTIFIED)
    assert (await stored(hcp, other_id))["status"] == "dispatched"
    traffic.assert_local()
    traffic.assert_quiet()


def _shown(value: float | None, kind: str) -> str:
    """A value as charts.js writes it next to its bar."""
    if value is None:
        return "-"
    return {"rate": f"{value * 100:.1f}%", "score": f"{value:.2f}"}.get(kind, str(value))


def _label(name: str) -> str:
    return name[:10] + "…" if len(name) > 11 else name  # charts.js shortens long names


async def test_the_dashboard_draws_its_charts_from_the_stats(hcp, desktop_page, live, traffic, request):
    page = desktop_page
    b = {"agency_code": AGENCY_B, "agency_name": AGENCY_B_NAME}
    a1 = await hcp.post_case(completed_at="2026-11-16T10:00:00+08:00", phone=hcp.new_phone())
    a2 = await hcp.post_case(completed_at="2026-11-17T10:00:00+08:00", phone=hcp.new_phone())
    await hcp.post_case(completed_at="2026-11-18T10:00:00+08:00", phone=hcp.new_phone())  # never rated
    b1 = await hcp.post_case(completed_at="2026-11-17T15:00:00+08:00", phone=hcp.new_phone(), **b)
    await hcp.rate(a1["case_no"], "dissatisfied", reasons=["efficiency"])
    await hcp.rate(a2["case_no"], "satisfied", channel="sms")
    await hcp.rate(b1["case_no"], "very_dissatisfied", channel="wechat", reasons=["fees"])
    [wo_b] = (await hcp.case(b1["case_no"]))["work_orders"]
    await advance(hcp, wo_b["id"], "rectified")
    await add_user(hcp, "l1user", "l1")
    by_agency = (await api_stats(hcp, by="agency"))["groups"]
    by_channel = (await api_stats(hcp, by="channel"))["groups"]
    assert {g["name"] for g in by_agency} == {AGENCY_A_NAME, AGENCY_B_NAME}

    await log_in(page, "l1user", start="/console/dashboard")
    await expect(page).to_have_url(re.compile(r"/console/dashboard$"))
    holders = page.locator("[data-chart]")
    await expect(holders).to_have_count(2)
    for n in range(2):
        await expect(holders.nth(n)).to_have_attribute("data-drawn", "true")
    await shot(page, request, "drawn")

    agency = page.locator('[data-chart][data-by="agency"]')
    charts = agency.locator("svg.chart")
    await expect(charts).to_have_count(5)
    for metric, kind in (("participation_rate", "rate"), ("mean_score", "score"), ("bad_reviews", "count"),
                         ("rectification_rate", "rate"), ("overdue", "count")):
        chart = agency.locator(f'svg.chart[data-metric="{metric}"]')
        await expect(chart.locator("rect.bar")).to_have_count(len(by_agency))
        texts = await chart.locator("text").all_text_contents()
        expected = [t for g in by_agency for t in (_label(g["name"]), _shown(g[metric], kind))]
        assert texts[1:] == expected, (metric, texts)  # the first text is the chart's title
    # A rate's bar is as long as the rate says: 192 px (380 − 130 − 58) for 100 %.
    widths = [float(w) for w in await agency.locator('svg[data-metric="participation_rate"] rect.bar')
              .evaluate_all("bars => bars.map(b => b.getAttribute('width'))")]
    for width, g in zip(widths, by_agency, strict=True):
        assert abs(width - 192 * g["participation_rate"]) < 0.06, (width, g)
    assert any(w < 192 for w in widths) and max(widths) == pytest.approx(192)  # A: 2 of 3 rated; B: 1 of 1

    channel = page.locator('[data-chart][data-by="channel"]')
    await expect(channel.locator('svg[data-metric="bad_reviews"] rect.bar')).to_have_count(len(by_channel))
    for name in ("短信", "微信公众号", "评价网页"):
        await expect(channel).to_contain_text(name)
    stats_calls = [u for u in traffic.requests if u.startswith(f"{live}/api/v1/stats?by=")]
    assert sorted(stats_calls) == [f"{live}/api/v1/stats?by=agency", f"{live}/api/v1/stats?by=channel"]
    await page.locator("[data-chart]").first.scroll_into_view_if_needed()
    await shot(page, request, "charts", full_page=False)
    traffic.assert_local()
    traffic.assert_quiet()


async def test_the_channel_charts_name_their_rows_as_the_table_does(hcp, desktop_page, request):
    page = desktop_page
    rated = await hcp.post_case(completed_at="2026-11-17T10:00:00+08:00", phone=hcp.new_phone())
    await hcp.post_case(completed_at="2026-11-18T10:00:00+08:00", phone=hcp.new_phone())  # never rated
    await hcp.rate(rated["case_no"], "satisfied", channel="sms")
    await add_user(hcp, "l1user", "l1")

    await log_in(page, "l1user", start="/console/dashboard")
    section = page.locator('section[aria-labelledby="by-channel"]')
    await expect(section.locator("[data-chart]")).to_have_attribute("data-drawn", "true")
    rows = await section.locator("tbody th[scope=row]").all_text_contents()
    assert sorted(rows) == ["未评价", "短信"]
    await shot(page, request, "channels")
    chart = section.locator('svg.chart[data-metric="participation_rate"]')
    labels = (await chart.locator("text").all_text_contents())[1::2]  # title, then (label, value) per row
    assert sorted(labels) == sorted(rows)


async def test_the_log_in_form_fits_a_phone(hcp, page, traffic, request):
    await add_user(hcp, "agent1", "agent")
    await page.goto("/console/login")
    for label in ("用户名", "密码"):
        await expect(page.get_by_label(label)).to_be_visible()
    await expect(page.get_by_role("button", name="登录")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    assert await overflow_x(page) == 0
    await shot(page, request, "form")

    await page.get_by_label("用户名").fill("agent1")
    await page.get_by_label("密码").fill("not the password")
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_role("alert")).to_have_text("用户名或密码错误。")
    await expect(page.get_by_label("用户名")).to_have_value("agent1")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await shot(page, request, "refused")

    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/console/queue$"))
    await expect(page.locator(".who")).to_contain_text("agent1")
    await shot(page, request, "logged-in")
    traffic.assert_local()
