"""Issue 20: the simulator shows, under every SMS the service sends, its message key and what Aliyun and Tencent
would be sent instead of the text (the template and its values, from the outbox payload {"key", "values"}), and a
template check lists, per provider, the contract's keys the policy gives no template for: what `serve` with
HAOCHAPING_SMS_PROVIDER=aliyun or tencent would refuse. Through the simulator's HTTP API, on real SQLite files."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import without_providers
from simulator_support import Sim, sms_reminders, world_case

from bot.infra.config import Settings
from bot.infra.i18n import LOCALES_DIR, SUPPORTED, read_catalog
from bot.policy.rules import parse_policy, sms_templates
from bot.web.simulator import template_check, template_preview
from dialogs import messages as m

POLICY = """
[sms.templates."rating.reminder"]
aliyun = "SMS_270000001"
tencent = "1700001"
params = ["completed_at", "agency", "item", "token"]

[sms.templates."rating.ask_reasons"]
aliyun = "SMS_270000006"
params = ["reasons"]

[sms.templates."rating.thanks_bad"]
aliyun = "SMS_270000009"
tencent = "1700009"
params = []
"""
ITEM, AGENCY, DAY = "居民身份证换领", "模拟市公安局", "2026年11月21日"  # the first sample case, completed today
OPTIONAL = [m.GRADE_MENU, m.TEXT_ONLY, m.HELP]  # sent only where a template is given


@pytest.fixture
def policy_text() -> str | None:
    return POLICY


@pytest.fixture
def policy_path(tmp_path: Path, policy_text: str | None) -> str | None:
    if policy_text is None:
        return None
    path = tmp_path / "policy.toml"
    path.write_text(policy_text, encoding="utf-8")
    return str(path)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No provider of any kind (the local provider): the simulator is on."""
    return without_providers(settings)


def by_provider(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["provider"]: p for p in template["providers"]}


def answers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The SMS the service answered at once (not from the outbox), in order."""
    return [e for e in doc["sms"] if e["dir"] == "out" and "kind" not in e]


async def templates(sim: Sim) -> dict[str, Any]:
    status, kind, text = await sim.request("GET", "/simulator/api/templates", headers=sim.headers())
    assert status == 200 and kind == "application/json", text
    return json.loads(text)


async def test_each_sms_shows_what_aliyun_and_tencent_would_be_sent(hcp):
    sim = Sim(hcp)
    page = await sim.open()
    assert 'id="template-check"' in page and "data-tpl-absent=" in page
    await sim.do("case", {"channel": "sms"})
    doc = await sim.do("clock", {"hours": 24})

    # The reminder (an outbox row): the real token of its rating link, the values by name for Aliyun, the same
    # values in the policy's order for Tencent.
    [reminder] = sms_reminders(doc)
    token = re.search(r"/simulator/r/([A-Za-z0-9._-]+)", reminder["text"]).group(1)
    [case_no] = (await sim.person()).cases
    assert hcp.rt.simulator.rt.links.case_id(token) == (await world_case(hcp, case_no))["id"]
    assert reminder["template"]["key"] == m.REMINDER
    shown = by_provider(reminder["template"])
    assert list(shown) == ["aliyun", "tencent"]
    assert shown["aliyun"]["request"] == {"TemplateCode": "SMS_270000001", "TemplateParam": {
        "completed_at": DAY, "agency": AGENCY, "item": ITEM, "token": token}}
    assert list(shown["aliyun"]["request"]["TemplateParam"]) == ["completed_at", "agency", "item", "token"]
    assert len(token) <= sms_templates.ALIYUN_VALUE_MAX and shown["aliyun"]["too_long"] == []
    assert shown["tencent"]["request"] == {"TemplateId": "1700001", "TemplateParamSet": [DAY, AGENCY, ITEM, token]}
    # Tencent takes 6 characters a value unless its review approved more: the date, the item and the token.
    assert shown["tencent"]["too_long"] == ["completed_at", "item", "token"] and shown["tencent"]["max"] == 6
    assert shown["aliyun"]["missing"] == shown["tencent"]["missing"] == []

    # A bad grade: the reasons question, answered at once. Aliyun has a template, whose one value (the list of
    # reasons) is longer than Aliyun takes; Tencent has none.
    doc = await sim.do("text", {"channel": "sms", "text": "4"})
    ask = answers(doc)[-1]
    assert ask["template"]["key"] == m.ASK_REASONS
    shown = by_provider(ask["template"])
    reasons = " ".join(ask["text"][ask["text"].index("1."):].split())  # the lines of reasons, as one line
    assert shown["aliyun"]["too_long"] == ["reasons"] and shown["aliyun"]["max"] == 35
    sent = shown["aliyun"]["request"]["TemplateParam"]["reasons"]
    assert len(reasons) > 35 and len(sent) == 35 and sent == reasons[:34] + "…"  # as the Aliyun channel cuts it
    assert shown["tencent"] == {"provider": "tencent", "request": None}  # no template there: said plainly

    # A fixed template: no values at either.
    doc = await sim.do("text", {"channel": "sms", "text": "1 3"})
    thanks = answers(doc)[-1]
    assert thanks["template"]["key"] == m.THANKS_BAD
    shown = by_provider(thanks["template"])
    assert shown["aliyun"]["request"] == {"TemplateCode": "SMS_270000009"}
    assert shown["tencent"]["request"] == {"TemplateId": "1700009", "TemplateParamSet": []}
    assert shown["aliyun"]["too_long"] == shown["tencent"]["too_long"] == []

    # The same in the stored session: read again, the previews are the same; WeChat has none.
    assert (await sim.state())["sms"] == doc["sms"]
    await sim.do("case", {"channel": "wechat"})
    doc = await sim.do("text", {"channel": "wechat", "text": "1"})
    assert doc["wechat"] and not any("template" in e for e in doc["wechat"])
    assert not any("payload" in e for e in doc["sms"])


async def test_the_check_lists_exactly_the_missing_contract_keys(hcp):
    sim = Sim(hcp)
    await sim.open()
    check = await templates(sim)
    assert check["configured"] is True
    shown = {p["provider"]: p for p in check["providers"]}
    assert list(shown) == ["aliyun", "tencent"]
    assert shown["aliyun"]["missing"] == [k for k in sms_templates.CONTRACT_KEYS
                                          if k not in (m.REMINDER, m.ASK_REASONS, m.THANKS_BAD)]
    assert shown["tencent"]["missing"] == [k for k in sms_templates.CONTRACT_KEYS
                                           if k not in (m.REMINDER, m.THANKS_BAD)]
    assert shown["aliyun"]["unsent"] == shown["tencent"]["unsent"] == OPTIONAL


async def test_a_complete_template_set_leaves_nothing_missing(hcp):
    """The check agrees with `serve`: a policy giving every contract key an Aliyun template is complete there."""
    doc = {"sms": {"templates": {key: {"aliyun": f"SMS_{i:09d}", "params": []}
                                 for i, key in enumerate(sms_templates.CONTRACT_KEYS)}}}
    check = {p["provider"]: p for p in template_check(parse_policy(doc))["providers"]}
    assert check["aliyun"]["missing"] == [] and check["aliyun"]["unsent"] == OPTIONAL
    assert check["tencent"]["missing"] == list(sms_templates.CONTRACT_KEYS)


@pytest.mark.parametrize("policy_text", [None], ids=["no-templates"])
async def test_without_templates_only_the_key_is_shown(hcp):
    sim = Sim(hcp)
    await sim.open()
    await sim.do("case", {"channel": "sms"})
    doc = await sim.do("clock", {"hours": 24})
    [reminder] = sms_reminders(doc)
    assert reminder["template"] == {"key": m.REMINDER, "providers": []}
    doc = await sim.do("text", {"channel": "sms", "text": "2"})
    assert answers(doc)[-1]["template"] == {"key": m.THANKS, "providers": []}

    check = await templates(sim)
    assert check["configured"] is False
    for provider in check["providers"]:
        assert provider["missing"] == list(sms_templates.CONTRACT_KEYS) and provider["unsent"] == OPTIONAL


async def test_the_check_is_404_with_a_real_provider(hcp, settings):
    hcp.rt.settings = dataclasses.replace(settings, sms_provider="aliyun")
    response = await hcp.client.get("/simulator/api/templates")
    assert response.status == 404


def test_too_long_counts_characters_against_each_providers_limit():
    token = "2s." + "A" * 32  # 35 characters: fits Aliyun's limit exactly
    assert len(token) == sms_templates.ALIYUN_VALUE_MAX
    values = {"token": token, "item": "居" * 36, "agency": "局" * 35, "count": "2"}
    assert sms_templates.too_long("aliyun", values) == ["item"]
    assert sms_templates.too_long("tencent", values) == ["token", "item", "agency"]
    assert sms_templates.too_long("tencent", {"count": "123456"}) == []
    assert sms_templates.too_long("cmpp", values) == []  # a text provider has no such limit


def test_a_value_the_message_lacks_is_flagged():
    policy = parse_policy({"sms": {"templates": {m.LIST: {"aliyun": "SMS_1", "tencent": "2", "params": ["count"]}}}})
    preview = template_preview(policy, {"key": m.LIST, "values": {"cases": "x"}})
    assert [p["missing"] for p in preview["providers"]] == [["count"], ["count"]]
    assert template_preview(policy, None) is None and template_preview(policy, {"values": {}}) is None


NEW_TEXTS = sorted(k for k in read_catalog(LOCALES_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po")
                   if k.startswith(("sim.tpl.", "sim.check.", "sim.provider.")))
PLACEHOLDER = re.compile(r"\{\w+\}")


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_new_texts_are_in_the_pages_language(locale):
    """The labels the script fills in (placeholders aside) hold no English in Chinese, no Chinese in English: the
    page's own language test reads the page without running its script."""
    assert len(NEW_TEXTS) >= 19
    catalog = read_catalog(LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po")
    for key in NEW_TEXTS:
        text = PLACEHOLDER.sub(" ", catalog[key])
        if locale == "en":
            assert not re.search(r"[\u2e80-\u9fff]", text), (key, text)
        else:
            assert not re.search(r"[A-Za-z]", text), (key, text)


# --- in a browser: the bubbles' previews and the check panel on a phone ------------------------------------------

# The text of the previews and of the check panel a reader reads, without the codes, keys and values (<code>).
READ = """() => Array.from(document.querySelectorAll('#screen-sms .tpl, #template-check')).map(el => {
  const copy = el.cloneNode(true);
  copy.querySelectorAll('code').forEach(c => c.remove());
  return copy.textContent;
}).join(' ')"""


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
async def test_the_previews_and_the_check_fit_a_phone_and_pass_axe(hcp, new_page, request, language):
    from a11y import VIEWPORTS, axe_violations
    from browser import expect, overflow_x, shot

    page = await new_page(viewport=VIEWPORTS["360x640"], device_scale_factor=1, is_mobile=False, has_touch=False,
                          locale=language)
    await page.goto("/simulator/")
    for provider, missing in (("aliyun", 15), ("tencent", 16)):  # the contract's keys without a template
        keys = page.locator(f"#template-check details.check[data-provider={provider}] ul[data-missing] li")
        await expect(keys).to_have_count(missing)

    async def act(control: Any) -> None:
        async with page.expect_response(lambda r: "/simulator/api/" in r.url and r.request.method == "POST"):
            await control()
        await expect(page.locator("#sim")).not_to_have_attribute("aria-busy", "true")

    await act(page.locator("#case-sms").click)
    await act(page.locator("#plus-day").click)
    hcp.clock.advance(minutes=1)
    await page.locator("#text-sms").fill("4")
    await act(page.locator("form.compose[data-channel=sms] button[type=submit]").click)

    reminder, ask = page.locator("#screen-sms .bubble[data-dir=out]").nth(0), page.locator(
        "#screen-sms .bubble[data-dir=out]").nth(1)
    await expect(reminder.locator(".tpl summary code")).to_have_text(m.REMINDER)
    await expect(reminder.locator(".tpl-warn")).to_have_count(1)  # Tencent: three values over 6 characters
    await expect(reminder.locator(".tpl-warn code")).to_have_text(["completed_at", "item", "token"])
    await expect(ask.locator(".tpl-warn")).to_have_count(2)  # no Tencent template; the reasons too long for Aliyun
    await expect(reminder.get_by_role("link")).to_have_count(1)  # the preview adds no link
    for details in await page.locator("#screen-sms .tpl details").all():
        await details.locator("summary").click()
    await expect(reminder.locator(".tpl dt code")).to_have_text(["SMS_270000001", "1700001"])

    read = await page.evaluate(READ)
    if language == "zh-CN":
        assert "腾讯云" in read and not re.search(r"[A-Za-z]", read), read
    else:
        assert "Tencent Cloud" in read and not re.search(r"[\u2e80-\u9fff]", read), read
    found = []
    for name, size in VIEWPORTS.items():
        await page.set_viewport_size(size)
        if await overflow_x(page):
            found.append(f"scrolls sideways at {name}")
        wide = await page.evaluate("() => Array.from(document.querySelectorAll('.bubble, #template-check'))"
                                   ".filter(b => b.scrollWidth > b.clientWidth).length")
        if wide:
            found.append(f"{wide} bubbles or panels wider than their box at {name}")
    await page.set_viewport_size(VIEWPORTS["390x844"])
    found += [f"axe {v['id']} ({v['impact']}): {v['help']} at {v['targets'][:4]}" for v in await axe_violations(page)]
    await page.set_viewport_size(VIEWPORTS["360x640"])
    await shot(page, request, f"templates-{language}")
    assert not found, found
