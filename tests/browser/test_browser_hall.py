"""The window's rating device in a real browser at a counter tablet's size (issue 28; Shantou art. 17 (一)):
paired by its link, idle until a case is completed at its window, then the rating screen within two seconds, a
tap, thanks, idle again; a rating given while the network is down is kept and sent once when it is back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from browser import PHONE, expect, overflow_x, shot
from helpers import TOKEN, Hcp

TABLET: dict[str, Any] = {"viewport": {"width": 1024, "height": 768}, "device_scale_factor": 1, "is_mobile": True,
                          "has_touch": True, "locale": "zh-CN"}
HALL = "440507-ZW01"


async def register(hcp: Hcp, window_no: str) -> dict[str, Any]:
    resp = await hcp.client.post("/api/v1/hall/devices", headers={"Authorization": f"Bearer {TOKEN}"}, json={
        "kind": "window", "hall_code": HALL, "window_no": window_no, "staff_id": "G1024", "staff_name": "李四"})
    assert resp.status == 201
    return await resp.json()


async def stored(hcp: Hcp, case_no: str, count: int = 1) -> list[dict[str, Any]]:
    """The case's evaluations once the page's request has landed (it posts in the background)."""
    for _ in range(100):
        found = await hcp.evaluations(case_no)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no rating of {case_no} arrived")


async def completed_at_window(hcp: Hcp, window_no: str) -> dict[str, Any]:
    return await hcp.post_case(hall_code=HALL, window_no=window_no, completed_at=hcp.clock().isoformat())


@pytest.mark.parametrize("size", [TABLET, PHONE], ids=["tablet", "phone"])
async def test_the_device_turns_to_a_case_of_its_window_and_takes_the_grade(hcp, live, new_page, traffic, request,
                                                                            size):
    device = await register(hcp, "3")
    page = await new_page(**size)
    await page.goto(f"/hall/pair?token={device['token']}")
    idle = page.locator("#idle")
    await expect(idle).to_be_visible()
    await expect(page.locator("#place")).to_have_text("3号窗口")
    await shot(page, request, "idle")

    case = await completed_at_window(hcp, "3")
    rating = page.locator("#rating")
    await expect(rating).to_be_visible(timeout=2000)  # within two seconds of the case's posting
    for text in (case["case_no"], "居民身份证换领", "李四（工号 G1024）"):
        await expect(rating).to_contain_text(text)
    assert await overflow_x(page) == 0, "the device's page scrolls sideways"
    await shot(page, request, "rating")
    await page.get_by_role("button", name="非常满意", exact=True).click()
    await expect(page.locator("#thanks")).to_be_visible()
    [ev] = await stored(hcp, case["case_no"])
    assert (ev["grade"], ev["channel"], ev["window_no"]) == ("very_satisfied", "hall", "3")
    if size is PHONE:
        return  # the rest is the counter's: the same page, the same code
    await expect(idle).to_be_visible(timeout=10_000)  # back to waiting by itself

    # A bad grade asks the reasons; given with the network down, it is kept and sent once it is back.
    second = await completed_at_window(hcp, "3")
    await expect(rating).to_be_visible(timeout=2000)
    await page.get_by_role("button", name="不满意", exact=True).click()
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("#error")).to_have_text("不满意的评价请至少选择一个原因或填写说明。")
    await page.get_by_role("button", name="多次跑动").click()
    await page.context.set_offline(True)
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("#status")).to_contain_text("评价")
    await shot(page, request, "offline")
    assert await hcp.evaluations(second["case_no"]) == []
    await page.context.set_offline(False)
    [bad] = await stored(hcp, second["case_no"])
    assert (bad["grade"], bad["reasons"], bad["channel"]) == ("dissatisfied", ["trips"], "hall")
    await asyncio.sleep(0.3)
    assert len(await hcp.evaluations(second["case_no"])) == 1
    traffic.assert_local()
