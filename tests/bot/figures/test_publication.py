"""Periodic publication (Shantou art. 34, 38): the tick freezes the last whole period once the policy's
delay after its last day has run out, with the defaults of that same pass counted; a period published
by hand, or one without a case, is left alone. The periods themselves are checked by property."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from figures_support import PERIOD, POLICY, build, get, policy_file
from helpers import TOKEN, Hcp
from hypothesis import given
from hypothesis import strategies as st
from servers import BACKENDS

from bot.policy.statistics import EVERY, MONTHS, PublishSchedule

# November 2026 ends on a Monday; five working days after it are 1–7 December: due 8 December 00:00.
MONTHLY = 'publish = { every = "month", after = { days = 5, unit = "working" } }\n'
SCHEDULED = POLICY.replace("rank_min_cases = 2\n", "rank_min_cases = 2\n" + MONTHLY)
@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    return policy_file(tmp_path, SCHEDULED)


async def snapshots(hcp: Hcp) -> dict[str, dict[str, Any]]:
    return {s["label"]: s for s in (await get(hcp, "/api/v1/stats/snapshots"))["snapshots"]}


async def content(hcp: Hcp, label: str) -> dict[str, Any]:
    resp = await hcp.client.get(f"/api/v1/stats/snapshots/{label}", headers={"Authorization": "Bearer " + TOKEN})
    assert resp.status == 200
    return (json.loads(await resp.text()))["content"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_tick_publishes_last_month_after_its_delay_with_that_passs_defaults(hcp: Hcp) -> None:
    await build(hcp)  # its tick on 12 November published October (c7 only), due since 7 November
    october = (await snapshots(hcp))["2026-10"]
    assert october["created_by"] == "schedule" and october["from"] == "2026-10-01T00:00:00+08:00"
    assert october["to"] == "2026-11-01T00:00:00+08:00"
    assert (await content(hcp, "2026-10"))["figures"]["agency"]["total"]["cases"] == 1

    # The month's last case: its default falls due at the very instant the month is published.
    await hcp.post_case(case_no="c10", completed_at="2026-11-30T18:00:00+08:00", applicant=None,
                        agency_code="A3", agency_name="A3 局")
    counts = await hcp.tick("2026-12-07T23:59:59+08:00")  # the delay's last day: c6's default, nothing frozen
    assert (counts["defaults"], counts["published"]) == (1, 0), counts
    assert set(await snapshots(hcp)) == {"2026-10"}
    counts = await hcp.tick("2026-12-08T00:00:00+08:00")
    assert (counts["defaults"], counts["published"]) == (1, 1), counts  # c10's default is in the snapshot
    frozen = await content(hcp, "2026-11")
    total = frozen["figures"]["agency"]["total"]
    assert (total["cases"], total["rated"], total["mean_score"]) == (9, 5, 6.875)  # (43 + 6 + 6) / 8 scored
    for by in ("agency", "hall", "district", "channel"):
        assert frozen["figures"][by] == await get(hcp, f"/api/v1/stats?by={by}&{PERIOD}"), by
    for of in ("agency", "hall", "district"):
        assert frozen["rankings"][of] == await get(hcp, f"/api/v1/rankings?of={of}&{PERIOD}"), of
    verified = await get(hcp, "/api/v1/stats/snapshots/2026-11/verify")
    assert verified["matches"] and verified["stored_content_intact"]
    assert (await hcp.tick("2026-12-08T00:05:00+08:00"))["published"] == 0  # once
    assert (await hcp.tick("2026-12-20T00:00:00+08:00"))["published"] == 0
    assert set(await snapshots(hcp)) == {"2026-10", "2026-11"}
    # Each publication is an audit row of the service itself (issue 18).
    published = (await get(hcp, "/api/v1/audit?action=snapshot.publish"))["events"]
    assert [(e["actor"], e["target"]["id"], e["details"]["created_by"]) for e in published] == [
        ("system", "2026-11", "schedule"), ("system", "2026-10", "schedule")]
    assert published[0]["at"] == "2026-12-08T00:00:00+08:00"


@pytest.mark.parametrize("backend", BACKENDS[:1], indirect=True)
async def test_a_period_published_by_hand_or_without_a_case_is_left_alone(hcp: Hcp) -> None:
    assert (await hcp.tick("2026-12-08T00:00:00+08:00"))["published"] == 0  # no case in November
    assert await snapshots(hcp) == {}
    await hcp.post_case(case_no="n1", completed_at="2026-11-30T23:59:59+08:00", applicant=None)
    status, mine = await hcp.api("POST", "/api/v1/stats/snapshots",
                                 {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-15"})
    assert status == 201
    assert (await hcp.tick("2026-12-09T00:00:00+08:00"))["published"] == 0
    assert (await snapshots(hcp))["2026-11"]["sha256"] == mine["sha256"]


@given(every=st.sampled_from(EVERY), day=st.dates(date(1900, 1, 1), date(2999, 12, 31)))
def test_the_period_before_a_day_is_the_whole_period_just_before_the_one_it_is_in(every: str, day: date) -> None:
    first, last, label = PublishSchedule(every).period_before(day)  # type: ignore[arg-type]
    after = last + timedelta(days=1)
    assert first.day == 1 and after.day == 1 and first < after <= day
    months = (after.year - first.year) * 12 + after.month - first.month
    assert months == MONTHS[every]  # type: ignore[index]
    assert (first.month - 1) % months == 0  # quarters start in January, April, July, October
    # `day` lies in the period that begins where this one ends
    assert (day.year - after.year) * 12 + day.month - after.month < months
    expected = {"month": f"{first:%Y-%m}", "quarter": f"{first.year}-Q{(first.month + 2) // 3}",
                "year": f"{first.year}"}[every]
    assert label == expected
