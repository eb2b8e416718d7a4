"""The published figures on a small data set, against numbers computed by hand (Shantou art. 33–34):
participation, mean score, bad reviews, rectification, hall coverage, the composite score, the three
rankings with their ties, and the frozen snapshots.

The data set (November 2026; A1/A2/A3 agencies, halls H1 (on), H2 (rating off) in district D1, H3 (on)
in D2):
  c1 A1 H1 very_satisfied 10 · c2 A1 H1 dissatisfied 3 → work order rectified · c3 A1 H2 default 6
  c4 A2 H3 satisfied 8 · c5 A2 H3 very_dissatisfied 0 → appeal upheld (excluded: neither rated nor to be rated)
  c6 A2 no hall, unrated
  c8, c9 A3 no hall, satisfied 8 each · c7 A1 H1 satisfied, completed in October (outside the period)
Weights score 40, rectification 30, coverage 10, participation 20; rank_min_cases 2.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from console_support import PASSWORD, add_user, advance, logged_in
from figures_support import PERIOD, POLICY, build, case, get, policy_file
from helpers import TOKEN, Hcp
from servers import BACKENDS
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    return policy_file(tmp_path, POLICY)


def by_key(doc: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {g["key"]: g for g in doc["groups"]}


FIELDS = ("cases", "to_rate", "rated", "participation_rate", "mean_score", "bad_reviews", "work_orders",
          "rectification_rate", "hall_coverage", "composite_score")
# Hand-computed (see the module's docstring): composite = Σ weight × figure on 0–100 / Σ weights of the figures
# that have something to measure. A1: (40×63.333 + 30×100 + 20×66.67) / 90 = 76.30.
AGENCIES = {
    "A1": (3, 3, 2, 0.6667, 6.3333, 1, 1, 1.0, None, 76.30),
    # c5 excluded on appeal: not rated, not scored, no order, and out of the participation base (1 of 2)
    "A2": (3, 2, 1, 0.5, 8.0, 0, 0, None, None, 70.0),  # (40×80 + 20×50) / 60
    "A3": (2, 2, 2, 1.0, 8.0, 0, 0, None, None, 86.67),  # (40×80 + 20×100) / 60
}
HALLS = {
    "H1": (2, 2, 2, 1.0, 6.5, 1, 1, 1.0, 1.0, 86.0),  # (40×65 + 30×100 + 10×100 + 20×100) / 100
    "H2": (1, 1, 0, 0.0, 6.0, 0, 0, None, 0.0, 34.29),  # (40×60 + 0 + 0) / 70
    "H3": (2, 1, 1, 1.0, 8.0, 0, 0, None, 1.0, 88.57),  # c5 out of the base; (40×80 + 10×100 + 20×100) / 70
    None: (3, 3, 2, 0.6667, 8.0, 0, 0, None, None, 75.56),  # c6, c8, c9: no hall; (40×80 + 20×66.67) / 60
}
DISTRICTS = {
    "D1": (3, 3, 2, 0.6667, 6.3333, 1, 1, 1.0, 0.5, 73.67),  # coverage 1 of 2 halls
    "D2": (2, 1, 1, 1.0, 8.0, 0, 0, None, 1.0, 88.57),
    None: (3, 3, 2, 0.6667, 8.0, 0, 0, None, None, 75.56),
}
# Every case of the period: 8, of which 7 to be rated (c5's rating not adopted); rated 5; scores
# 10+3+6+8+8+8 = 43 over 6; halls 2 of 3 with rating. (40×71.667 + 30×100 + 10×66.67 + 20×71.43) / 100
TOTAL = (8, 7, 5, 0.7143, 7.1667, 1, 1, 1.0, 0.6667, 79.62)


def figures_of(group: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(group[f] for f in FIELDS)


async def test_figures_per_agency_hall_district_and_total_match_the_hand_computed_ones(hcp: Hcp) -> None:
    await build(hcp)
    for rolled in (False, True):  # computed live (days dirty), then from the daily figures the tick built
        if rolled:
            await hcp.tick("2026-11-12T09:05:00+08:00")
        agencies = await get(hcp, f"/api/v1/stats?by=agency&{PERIOD}")
        assert {k: figures_of(g) for k, g in by_key(agencies).items()} == AGENCIES
        assert figures_of(agencies["total"]) == TOTAL
        halls = await get(hcp, f"/api/v1/stats?by=hall&{PERIOD}")
        assert {k: figures_of(g) for k, g in by_key(halls).items()} == HALLS
        assert by_key(halls)["H2"]["name"] == "二号大厅"  # filled from the policy's hall list
        districts = await get(hcp, f"/api/v1/stats?by=district&{PERIOD}")
        assert {k: figures_of(g) for k, g in by_key(districts).items()} == DISTRICTS
        assert by_key(districts)["D2"]["name"] == "龙湖区"
        channels = by_key(await get(hcp, f"/api/v1/stats?by=channel&{PERIOD}"))
        assert {k: g["cases"] for k, g in channels.items()} == {
            "default": 1, "hall": 1, "qr": 1, "terminal": 2, "web": 1, None: 2}  # c5 excluded, c6 unrated
    # October holds only c7; with no period every case counts.
    october = await get(hcp, "/api/v1/stats?by=agency&from=2026-10-01&to=2026-10-31")
    assert [(g["key"], g["cases"], g["mean_score"]) for g in october["groups"]] == [("A1", 1, 8.0)]
    assert (await get(hcp, "/api/v1/stats?by=agency"))["total"]["cases"] == 9


async def test_rankings_share_a_rank_on_a_tie_skip_the_next_and_leave_small_groups_unranked(hcp: Hcp) -> None:
    await build(hcp)

    def places(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(r["key"], r["rank"], r["tied"], r["value"]) for r in doc["rankings"]]

    halls = await get(hcp, f"/api/v1/rankings?of=hall&{PERIOD}")
    assert places(halls) == [("H3", 1, False, 88.57), ("H1", 2, False, 86.0), ("H2", None, False, 34.29)]
    assert halls["rankings"][2]["unranked"] == "fewer than 2 cases"
    districts = await get(hcp, f"/api/v1/rankings?of=district&{PERIOD}")
    assert places(districts) == [("D2", 1, False, 88.57), ("D1", 2, False, 73.67)]  # no hall: no district
    agencies = await get(hcp, f"/api/v1/rankings?of=agency&{PERIOD}")
    assert places(agencies) == [("A3", 1, False, 86.67), ("A1", 2, False, 76.30), ("A2", 3, False, 70.0)]
    by_mean = await get(hcp, f"/api/v1/rankings?of=agency&metric=mean_score&{PERIOD}")
    assert places(by_mean) == [("A2", 1, True, 8.0), ("A3", 1, True, 8.0), ("A1", 3, False, 6.3333)]
    by_rectification = await get(hcp, f"/api/v1/rankings?of=agency&metric=rectification_rate&{PERIOD}")
    assert places(by_rectification) == [("A1", 1, False, 1.0), ("A2", None, False, None), ("A3", None, False, None)]
    assert by_rectification["rankings"][1]["unranked"] == "no rectification_rate"
    status, doc = await hcp.api("GET", "/api/v1/rankings?of=clerk&metric=fame")  # staff is `of=staff`
    assert status == 422 and {e["field"] for e in doc["errors"]} == {"of", "metric"}


async def test_a_published_snapshot_is_frozen_and_a_later_recomputation_shows_what_changed(hcp: Hcp) -> None:
    await build(hcp)
    status, snap = await hcp.api("POST", "/api/v1/stats/snapshots",
                                 {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-30"})
    assert status == 201 and len(snap["sha256"]) == 64 and snap["from"] == "2026-11-01T00:00:00+08:00"
    status, again = await hcp.api("POST", "/api/v1/stats/snapshots",
                                  {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-02"})
    assert status == 409 and again["snapshot"]["sha256"] == snap["sha256"]
    resp = await hcp.client.get("/api/v1/stats/snapshots/2026-11", headers={"Authorization": "Bearer " + TOKEN})
    raw = await resp.text()
    content = raw[raw.index(',"content":') + len(',"content":'):-1]
    assert hashlib.sha256(content.encode()).hexdigest() == snap["sha256"]  # the hash is over the bytes served
    frozen = json.loads(content)
    assert figures_of({g["key"]: g for g in frozen["figures"]["hall"]["groups"]}["H1"]) == HALLS["H1"]
    assert [r["key"] for r in frozen["rankings"]["agency"]["rankings"]] == ["A3", "A1", "A2"]
    verified = await get(hcp, "/api/v1/stats/snapshots/2026-11/verify")
    assert verified["matches"] and verified["stored_content_intact"] and verified["differences"] == []
    # A late rating of c6 (completed in the period) changes the recomputation, not the snapshot.
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    await hcp.rate("c6", "very_satisfied", channel="web")
    verified = await get(hcp, "/api/v1/stats/snapshots/2026-11/verify")
    assert not verified["matches"] and verified["recomputed_sha256"] != snap["sha256"]
    changes = {d["path"]: (d["frozen"], d["now"]) for d in verified["differences"]}
    assert changes["figures.agency.groups[A2].rated"] == (1, 2)
    assert changes["figures.agency.total.rated"] == (5, 6)
    assert (await get(hcp, "/api/v1/stats/snapshots"))["snapshots"][0]["sha256"] == snap["sha256"]
    # Nobody edits a snapshot, not even with SQL: the database refuses the update.
    with pytest.raises((DBAPIError, IntegrityError)):
        async with hcp.rt.db.write() as session:
            await session.exec(text("UPDATE stats_snapshots SET content = '{}' WHERE label = '2026-11'"))  # type: ignore[call-overload]
    with pytest.raises((DBAPIError, IntegrityError)):  # nor deletes it to publish another under its label
        async with hcp.rt.db.write() as session:
            await session.exec(text("DELETE FROM stats_snapshots WHERE label = '2026-11'"))  # type: ignore[call-overload]
    async with hcp.rt.db.read() as session:
        stored = (await session.exec(text("SELECT sha256 FROM stats_snapshots"))).all()  # type: ignore[call-overload]
    assert [r[0] for r in stored] == [snap["sha256"]]


async def test_only_whole_jurisdiction_supervisors_publish_and_bad_periods_are_refused(hcp: Hcp) -> None:
    await add_user(hcp, "l2user", "l2", "A1")
    await add_user(hcp, "boss", "l1")
    tokens = {}
    for name in ("l2user", "boss"):
        resp = await hcp.client.post("/api/v1/login", json={"username": name, "password": PASSWORD})
        tokens[name] = (await resp.json())["token"]
    body = {"from": "2026-11-01", "to": "2026-11-30"}
    status, doc = await hcp.api("POST", "/api/v1/stats/snapshots", body, token=tokens["l2user"])
    assert status == 403 and "publishing" in doc["error"]
    status, doc = await hcp.api("POST", "/api/v1/stats/snapshots", body, token=tokens["boss"])
    assert status == 201 and doc["label"] == "2026-11-01..2026-11-30" and doc["created_by"] == "boss"
    status, doc = await hcp.api("POST", "/api/v1/stats/snapshots", {"from": "2026-11-30", "to": "2026-11-01"})
    assert status == 422 and doc["errors"][0]["field"] == "to"
    status, doc = await hcp.api("POST", "/api/v1/stats/snapshots", {"from": "November", "label": "bad label!"})
    assert status == 422 and {e["field"] for e in doc["errors"]} == {"from", "to", "label"}
    assert (await hcp.api("GET", "/api/v1/stats/snapshots/nothing"))[0] == 404
    # The console's cookie reads the figures, but publishes nothing: a POST with it alone is not enough.
    browser = await logged_in(hcp, "sup", "l1")
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    assert (await hcp.client.get(f"/api/v1/stats?{PERIOD}", headers={"Cookie": cookie})).status == 200
    resp = await hcp.client.post("/api/v1/stats/snapshots", data='{"label": "x", "from": "2026-01-01", '
                                 '"to": "2026-01-02"}', headers={"Cookie": cookie, "Content-Type": "text/plain"})
    assert resp.status == 401 and (await hcp.api("GET", "/api/v1/stats/snapshots/x"))[0] == 404
    assert (await hcp.api("GET", "/api/v1/stats/snapshots", token=None))[0] == 401
    # An L2 user's statistics are its agencies' only, and the total carries no hall coverage.
    await build(hcp)
    status, mine = await hcp.api("GET", f"/api/v1/stats?by=agency&{PERIOD}", token=tokens["l2user"])
    assert status == 200 and [g["key"] for g in mine["groups"]] == ["A1"]
    assert mine["total"]["cases"] == 3 and mine["total"]["hall_coverage"] is None


async def test_the_cli_prints_the_same_figures_publishes_and_verify_exits_1_after_a_change(
        hcp: Hcp, keep_logging: None, policy_path: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main as cli

    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", hcp.rt.settings.database_url)
    monkeypatch.setenv("HAOCHAPING_POLICY", policy_path)

    async def run(*args: str) -> tuple[int, Any]:
        capsys.readouterr()
        status = await asyncio.to_thread(cli.main, ["stats", *args])
        return status, json.loads(capsys.readouterr().out)

    await build(hcp)
    status, doc = await run("--by", "hall", "--from", "2026-11-01", "--to", "2026-11-30")
    assert status == 0 and doc == await get(hcp, f"/api/v1/stats?by=hall&{PERIOD}")
    status, doc = await run("rankings", "--of", "district", "--from", "2026-11-01", "--to", "2026-11-30")
    assert status == 0 and [r["key"] for r in doc["rankings"]] == ["D2", "D1"]
    # The period and the agencies may also stand before the subcommand: October holds only c7 (A1).
    status, doc = await run("--from", "2026-10-01", "--to", "2026-10-31", "rankings", "--of", "agency")
    assert status == 0 and [r["key"] for r in doc["rankings"]] == ["A1"]
    status, doc = await run("--agency", "A3", "rankings", "--from", "2026-11-01", "--to", "2026-11-30")
    assert status == 0 and [r["key"] for r in doc["rankings"]] == ["A3"]
    status, snap = await run("publish", "--from", "2026-11-01", "--to", "2026-11-30", "--label", "nov")
    assert status == 0 and snap["label"] == "nov" and snap["created_by"] == "cli"
    assert (await run("publish", "--from", "2026-11-01", "--to", "2026-11-30", "--label", "nov"))[0] == 1
    status, verified = await run("verify", "nov")
    assert status == 0 and verified["matches"]
    hcp.clock.set("2026-11-21T09:00:00+08:00")
    await hcp.rate("c6", "satisfied", channel="web")
    status, verified = await run("verify", "nov")
    assert status == 1 and not verified["matches"] and verified["differences"]
    assert (await run("--from", "yesterday"))[0] == 2
    assert (await run("verify", "nothing"))[0] == 1


async def test_an_appeal_upheld_after_the_callback_takes_the_callbacks_answer_with_the_review(hcp: Hcp) -> None:
    """The steps may run ahead of an appeal's decision; the figures must not depend on which came first."""
    hcp.clock.set("2026-11-20T11:00:00+08:00")
    for no in ("early", "late"):
        await case(hcp, no, no.upper(), None, completed="2026-11-20T10:00:00+08:00")
        await hcp.rate(no, "very_dissatisfied", channel="web", reasons=["attitude"])
        [wo] = (await hcp.case(no))["work_orders"]
        assert (await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/appeal", {"reason": "恶意差评"}))[0] == 200
        if no == "late":
            assert (await advance(hcp, wo["id"], "closed"))["outcome"] == "satisfied"  # the callback: satisfied
        assert (await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/decide-appeal", {"upheld": True}))[0] == 200
    agencies = by_key(await get(hcp, "/api/v1/stats?by=agency&from=2026-11-01&to=2026-11-30"))
    for key in ("EARLY", "LATE"):
        group = agencies[key]
        assert (group["rated"], group["mean_score"], group["bad_reviews"]) == (0, None, 0), key
        # not adopted (Fujian 十三): neither rated nor unrated, so no participation rate and no composite
        assert (group["cases"], group["to_rate"], group["participation_rate"], group["composite_score"]) == (
            1, 0, None, None), key
    late = (await hcp.case("late"))["evaluations"]
    assert [(e["channel"], e["status"]) for e in late] == [("web", "excluded"), ("callback", "excluded")]


async def test_migration_0008_links_the_answers_stored_before_it_and_excludes_those_of_excluded_reviews(
        hcp: Hcp) -> None:
    from store import migrate

    hcp.clock.set("2026-11-20T11:00:00+08:00")
    for no in ("kept", "false"):
        await case(hcp, no, "A1", None, completed="2026-11-20T10:00:00+08:00")
        await hcp.rate(no, "dissatisfied", channel="web", reasons=["fees"])
        [wo] = (await hcp.case(no))["work_orders"]
        if no == "false":
            assert (await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/appeal", {"reason": "误评"}))[0] == 200
        await advance(hcp, wo["id"], "closed")
        if no == "false":
            assert (await hcp.api("POST", f"/api/v1/work-orders/{wo['id']}/decide-appeal", {"upheld": True}))[0] == 200
    answers = "SELECT c.case_no, e.origin_id, e.status FROM evaluations e JOIN cases c ON c.id = e.case_id " \
              "WHERE e.via = 'callback' ORDER BY c.case_no"
    reviews = "SELECT c.case_no, e.id FROM evaluations e JOIN cases c ON c.id = e.case_id WHERE e.via IS NULL"
    async with hcp.rt.db.read() as session:
        review_of = dict((await session.exec(text(reviews))).all())  # type: ignore[call-overload]
        linked = [tuple(r) for r in (await session.exec(text(answers))).all()]  # type: ignore[call-overload]
    assert linked == [("false", review_of["false"], "excluded"), ("kept", review_of["kept"], "valid")]
    # As 0007 left them: no link, and the false review's answer still valid.
    async with hcp.rt.db.write() as session:
        await session.exec(text("UPDATE evaluations SET origin_id = NULL, status = 'valid' "  # type: ignore[call-overload]
                                "WHERE via = 'callback'"))
    await migrate.downgrade(hcp.rt.db, "0007")
    await migrate.upgrade(hcp.rt.db)
    async with hcp.rt.db.read() as session:
        assert [tuple(r) for r in (await session.exec(text(answers))).all()] == linked  # type: ignore[call-overload]


async def test_two_publications_of_one_label_at_once_store_one_and_the_other_names_it(hcp: Hcp) -> None:
    await build(hcp)
    bodies = [{"label": "race", "from": "2026-11-01", "to": "2026-11-30"},
              {"label": "race", "from": "2026-10-01", "to": "2026-10-31"}]
    answers = await asyncio.gather(*(hcp.api("POST", "/api/v1/stats/snapshots", b) for b in bodies))
    assert sorted(status for status, _doc in answers) == [201, 409]
    [stored] = [doc for status, doc in answers if status == 201]
    [refused] = [doc for status, doc in answers if status == 409]
    assert refused["snapshot"]["sha256"] == stored["sha256"] and refused["snapshot"]["from"] == stored["from"]
