"""The small data set of the published figures (November 2026; agencies A1–A3, halls H1–H3 in districts D1 and
D2; described case by case in bot/figures/test_figures.py's docstring), its policy, and reading the statistics
API for a period. Used by bot/figures/test_figures.py and bot/figures/test_publication.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console_support import advance
from helpers import Hcp

POLICY = """
[statistics]
weights = { score = 40, rectification = 30, coverage = 10, participation = 20 }
rank_min_cases = 2
[halls.H1]
name = "一号大厅"
district = "D1"
district_name = "金平区"
[halls.H2]
name = "二号大厅"
district = "D1"
district_name = "金平区"
rating = false
[halls.H3]
name = "三号大厅"
district = "D2"
district_name = "龙湖区"
"""
PERIOD = "from=2026-11-01&to=2026-11-30"


def policy_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def case(hcp: Hcp, no: str, agency: str, hall: str | None, completed: str = "2026-11-02T10:00:00+08:00") -> None:
    more: dict[str, Any] = {"agency_code": agency, "agency_name": f"{agency} 局"}
    if hall:
        more["hall_code"] = hall  # name and district come from the policy's hall list
    await hcp.post_case(case_no=no, completed_at=completed, applicant=None, **more)


async def build(hcp: Hcp) -> None:
    hcp.clock.set("2026-11-03T09:00:00+08:00")
    await case(hcp, "c1", "A1", "H1")
    await case(hcp, "c2", "A1", "H1")
    await case(hcp, "c3", "A1", "H2")
    await case(hcp, "c4", "A2", "H3")
    await case(hcp, "c5", "A2", "H3")
    await case(hcp, "c6", "A2", None, completed="2026-11-20T10:00:00+08:00")
    await case(hcp, "c7", "A1", "H1", completed="2026-10-20T10:00:00+08:00")
    await case(hcp, "c8", "A3", None)
    await case(hcp, "c9", "A3", None)
    await hcp.rate("c1", "very_satisfied", channel="web")
    await hcp.rate("c2", "dissatisfied", channel="hall", reasons=["attitude"])
    await hcp.rate("c4", "satisfied", channel="qr")
    await hcp.rate("c5", "very_dissatisfied", channel="web", reasons=["fees"])
    await hcp.rate("c7", "satisfied", channel="web")
    await hcp.rate("c8", "satisfied", channel="terminal")
    await hcp.rate("c9", "satisfied", channel="terminal")
    [wo2] = (await hcp.case("c2"))["work_orders"]
    await advance(hcp, wo2["id"], "rectified")
    [wo5] = (await hcp.case("c5"))["work_orders"]
    assert (await hcp.api("POST", f"/api/v1/work-orders/{wo5['id']}/appeal", {"reason": "恶意差评"}))[0] == 200
    assert (await hcp.api("POST", f"/api/v1/work-orders/{wo5['id']}/decide-appeal", {"upheld": True}))[0] == 200
    hcp.clock.set("2026-11-12T09:00:00+08:00")
    assert (await hcp.tick(hcp.clock()))["defaults"] == 1  # c3 (c6 is not due until the 28th)


async def get(hcp: Hcp, path: str) -> dict[str, Any]:
    status, doc = await hcp.api("GET", path)
    assert status == 200, (status, doc)
    return doc
