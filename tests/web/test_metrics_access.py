"""GET /metrics is for the operator (issue 18, finding 14: it was open to anyone): this machine by default, or the
addresses of HAOCHAPING_METRICS_ALLOW, or a bearer token of HAOCHAPING_METRICS_TOKEN."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import Hcp

from bot.infra.config import ConfigError, Settings, load_settings


async def _get(hcp: Hcp, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return (await hcp.client.get("/metrics", headers=headers)).status


async def test_this_machine_reads_the_metrics_by_default(hcp: Hcp) -> None:
    assert hcp.rt.settings.metrics_allow == ("127.0.0.0/8", "::1/128")
    assert await _get(hcp) == 200


@pytest.mark.parametrize("allow", [("10.0.0.0/8",), ("192.168.1.7",)], ids=["network", "address"])
async def test_other_addresses_are_refused_unless_allowed_or_with_the_token(hcp: Hcp, settings: Settings,
                                                                             allow: tuple[str, ...]) -> None:
    hcp.rt.settings = dataclasses.replace(settings, metrics_allow=allow, metrics_token="scrape-" + "t" * 30)

    refused, wrong, right = await _get(hcp), await _get(hcp, "scrape-wrong"), await _get(hcp, "scrape-" + "t" * 30)

    assert (refused, wrong, right) == (403, 403, 200)


async def test_a_star_opens_them_to_anyone(hcp: Hcp, settings: Settings) -> None:
    hcp.rt.settings = dataclasses.replace(settings, metrics_allow=("*",))
    assert await _get(hcp) == 200


def test_the_setting_is_read_and_checked(tmp_path) -> None:
    s = load_settings({"HAOCHAPING_METRICS_ALLOW": "10.1.0.0/16, 127.0.0.1", "HAOCHAPING_METRICS_TOKEN": "x" * 20},
                      tmp_path)
    assert s.metrics_allow == ("10.1.0.0/16", "127.0.0.1") and s.metrics_token == "x" * 20
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        load_settings({"HAOCHAPING_METRICS_ALLOW": "not-a-network"}, tmp_path)


async def test_each_pass_sets_what_waits_for_the_alert_rules(hcp: Hcp) -> None:
    """deploy/alerts.yml watches the outbox's backlog and the overdue work orders: each pass sets both."""
    doc = await hcp.post_case(phone=hcp.new_phone())
    await hcp.rate(doc["case_no"], "very_dissatisfied", reasons=["attitude"])
    await hcp.tick(hcp.clock())
    text = await (await hcp.client.get("/metrics")).text()
    assert "haochaping_outbox_due 0.0" in text and "haochaping_work_orders_overdue 0.0" in text
    hcp.clock.advance(days=40)
    counts = await hcp.tick(hcp.clock())
    assert counts["overdue"] == 1, counts
    text = await (await hcp.client.get("/metrics")).text()
    assert "haochaping_work_orders_overdue 1.0" in text
