"""What a callback answer and an upheld appeal do to the figures and to the blacklist (issue 21, items 2, 3, 6).

- Hainan art. 14–15 (seeds/000): the citizen's latest rating is recorded only when they are satisfied at the
  callback; still unsatisfied, the work order goes back to the agency (复核最多1次) and is then closed
  `unresolved`. A dissatisfied answer is no rating: no score, no bad review, no "rectified" figure moves,
  whichever road it came by (an agent through the API or the console, an SMS reply, a keypad on a call).
- Fujian 十三 (seeds/001), Shandong art. 17 (seeds/004): a review found false on appeal is "not adopted"
  (不予采纳). The case is then neither rated nor unrated: it leaves the participation rate's base (`to_rate`),
  so an agency does not lose participation (Shantou art. 33, seeds/003) by winning its appeal; a later
  rating of the rater's own counts again (Hainan art. 14: 记录群众最新的评价数据).
- Shandong art. 17: 3 false *reviews* made within a year bar the rater for a year. A batch or bundle (一件事)
  rating given at once is one review however many agencies' work orders it opened and however they are
  appealed; a strike is dated by when the review was made, and the year slides over those dates.

Everything is driven from outside (the business API, the console, Twilio's webhooks, `tick`), on SQLite and
PostgreSQL, with time moved by the clock the requests carry and by `tick`'s `now`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from callback_support import RATED_AT, answer, calls_to, press, review, write_policy
from console_support import Browser, add_user, dashboard_table, logged_in
from helpers import Hcp, cst
from servers import BACKENDS
from sqlalchemy import insert, text
from sqlmodel import col, select

from bot.work_orders.lifecycle import most_within
from store import migrate, stats
from store.models import Case, Contact, Evaluation, RaterStrike, StatsDay

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

AGENCY = "11440500MB2C01234X"  # Hcp.case_body's agency
FIELDS = ("cases", "to_rate", "rated", "participation_rate", "mean_score", "bad_reviews", "work_orders",
          "rectified", "rectification_rate")


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    """Every callback road open at once (an agent may always record the result), and Shandong's blacklist as
    the contract writes it."""
    return write_policy(tmp_path, 'callback = { by = ["call", "sms"] }\n'
                                  'blacklist = { false_reviews = 3, within_days = 365, barred_days = 365 }\n')


# --- helpers -----------------------------------------------------------------------------------------------


async def api(hcp: Hcp, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    status, doc = await hcp.api(method, path, body)
    assert status == expect, (method, path, status, doc)
    return doc


async def act(hcp: Hcp, wo_id: int, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return await api(hcp, "POST", f"/api/v1/work-orders/{wo_id}/{action}", body or {})


async def figures(hcp: Hcp, by: str = "agency") -> dict[str | None, dict[str, Any]]:
    doc = await api(hcp, "GET", f"/api/v1/stats?by={by}")
    return {g["key"]: {f: g[f] for f in (*FIELDS, "composite_score")} for g in doc["groups"]}


def agency_of(groups: dict[str | None, dict[str, Any]], key: str = AGENCY) -> dict[str, Any]:
    return {f: groups[key][f] for f in FIELDS}


async def both_ways(hcp: Hcp) -> None:
    """The daily figures (stats_days, once a tick rebuilt them) answer what computing live answers."""
    for by in stats.GROUPS:
        async with hcp.rt.db.read() as session:
            rolled = await stats.figures(session, by, None, None, dialect=hcp.rt.db.dialect)
            live = await stats.figures(session, by, None, None, dialect="")
        assert rolled == live, by


async def bad_review(hcp: Hcp, at: datetime = RATED_AT, grade: str = "very_dissatisfied", phone: str | None = None,
                     **case: Any) -> tuple[str, int, int]:
    """A case completed the day before `at`, rated `grade` at `at` by the web page: (case_no, the evaluation's
    id, its one work order's id)."""
    hcp.clock.set(at)
    doc = await hcp.post_case(completed_at=(at - timedelta(days=1)).isoformat(), phone=phone, **case)
    evaluation = await hcp.rate(doc["case_no"], grade, reasons=["process"])
    [wo] = (await hcp.case(doc["case_no"]))["work_orders"]
    return doc["case_no"], evaluation["id"], wo["id"]


async def uphold(hcp: Hcp, wo_id: int, appealed_at: datetime | None = None, decided_at: datetime | None = None
                 ) -> dict[str, Any]:
    if appealed_at is not None:
        hcp.clock.set(appealed_at)
    await act(hcp, wo_id, "appeal", {"reason": "评价人当日未到窗口办理"})
    if decided_at is not None:
        hcp.clock.set(decided_at)
    doc = await act(hcp, wo_id, "decide-appeal", {"upheld": True})
    assert (doc["status"], doc["outcome"]) == ("closed", "excluded"), doc
    return doc


def callback_answers(doc: dict[str, Any]) -> list[str]:
    return [e["data"]["result"] for e in doc["history"]
            if e["action"] in ("callback", "reopen") and (e["data"] or {}).get("result") not in (None, "unreachable")]


async def strikes(hcp: Hcp) -> list[tuple[int, int, datetime]]:
    async with hcp.rt.db.read() as session:
        rows = (await session.exec(select(RaterStrike).order_by(col(RaterStrike.id)))).all()
    return [(r.contact_id, r.evaluation_id, r.at) for r in rows]


async def barred_until(hcp: Hcp) -> list[datetime | None]:
    async with hcp.rt.db.read() as session:
        return list((await session.exec(select(Contact.barred_until).order_by(col(Contact.id)))).all())


# === item 2: the callback's answer (Hainan art. 14–15) =====================================================


async def say_dissatisfied(hcp: Hcp, road: str, wo_id: int, phone: str) -> None:
    """The rater is still unsatisfied, by one road (the console: an agent `agent1` logged in now). The tick
    first delivers what the review queued (the SMS question, the call), as the scheduler would."""
    await hcp.tick(hcp.clock())
    if road == "api":
        await act(hcp, wo_id, "callback", {"result": "dissatisfied", "note": "问题仍未解决"})
    elif road == "console":
        console = Browser(hcp)
        assert (await console.login("agent1", follow=False))[0] == 303
        order = f"/console/orders/{wo_id}"
        status, _page, _location = await console.post(
            f"{order}/act/callback", {"csrf": await console.token(order), "result": "dissatisfied", "note": "仍不满意"})
        assert status == 200, status
    elif road == "sms":
        reply = await hcp.sms(phone, "3")
        assert reply.status == 200 and "感谢" in reply.text, reply.text
    else:
        call = calls_to(hcp, phone)[-1]
        await press(hcp, call, await answer(hcp, call), "3")


@on_both
@pytest.mark.parametrize("road", ["api", "console", "sms", "call"])
async def test_hainan_art_15_still_unsatisfied_goes_back_once_then_closes_unresolved_moving_no_figure(
        hcp: Hcp, road: str) -> None:
    """Hainan art. 15 (seeds/000): 如评价人仍不满意，则将工单复核回原政务服务机构再行办理，复核最多1次. The
    answer is not the case's latest rating: a 非常不满意 case keeps its 0, its one bad review and its
    rectified work order; nothing is stored as an evaluation, whichever road the answer came by."""
    phone = hcp.new_phone()
    case_no, review_id, wo_id = await bad_review(hcp, phone=phone)
    await add_user(hcp, "agent1", "agent")
    await review(hcp, wo_id)
    before = agency_of(await figures(hcp))
    assert before == {"cases": 1, "to_rate": 1, "rated": 1, "participation_rate": 1.0, "mean_score": 0.0,
                      "bad_reviews": 1, "work_orders": 1, "rectified": 1, "rectification_rate": 1.0}

    await say_dissatisfied(hcp, road, wo_id, phone)
    doc = await api(hcp, "GET", f"/api/v1/work-orders/{wo_id}")
    assert (doc["status"], doc["reopened"], doc["outcome"]) == ("dispatched", 1, None)
    assert agency_of(await figures(hcp)) == before

    hcp.clock.set(RATED_AT + timedelta(days=2))  # Monday: the agency puts it right again
    await act(hcp, wo_id, "rectify", {"note": "再次整改"})
    await act(hcp, wo_id, "review")
    await say_dissatisfied(hcp, road, wo_id, phone)
    doc = await api(hcp, "GET", f"/api/v1/work-orders/{wo_id}")
    assert (doc["status"], doc["outcome"], doc["reopened"]) == ("closed", "unresolved", 1)  # the limit is 1
    assert callback_answers(doc) == ["dissatisfied", "dissatisfied"]
    assert agency_of(await figures(hcp)) == before  # not 3.0: the answer scored nothing
    evaluations = (await hcp.case(case_no))["evaluations"]
    assert [(e["id"], e["channel"], e["grade"], e["status"]) for e in evaluations] == [
        (review_id, "web", "very_dissatisfied", "valid")]

    await hcp.tick(hcp.clock() + timedelta(minutes=1))  # the daily figures agree
    await both_ways(hcp)


@on_both
@pytest.mark.parametrize(("result", "score"), [("satisfied", 8.0), ("basically_satisfied", 6.0)])
async def test_hainan_art_15_a_satisfied_answer_is_the_cases_latest_rating(hcp: Hcp, result: str,
                                                                          score: float) -> None:
    """Hainan art. 15 (seeds/000): 如评价人满意，则记录群众最新的评价数据 … 并进行工单办结. The answer scores as the
    case's latest rating; the review it answers is still a bad review that was given and put right."""
    case_no, _review_id, wo_id = await bad_review(hcp, phone=hcp.new_phone())
    await review(hcp, wo_id)
    doc = await act(hcp, wo_id, "callback", {"result": result})
    assert (doc["status"], doc["outcome"]) == ("closed", result)
    assert agency_of(await figures(hcp)) == {
        "cases": 1, "to_rate": 1, "rated": 1, "participation_rate": 1.0, "mean_score": score, "bad_reviews": 1,
        "work_orders": 1, "rectified": 1, "rectification_rate": 1.0}
    assert [(e["channel"], e["grade"]) for e in (await hcp.case(case_no))["evaluations"]] == [
        ("web", "very_dissatisfied"), ("callback", result)]


# === item 6: an upheld appeal and participation (Fujian 十三, Shandong art. 17, Shantou art. 33) ============


@on_both
async def test_fujian_13_a_review_not_adopted_on_appeal_leaves_the_participation_base(hcp: Hcp) -> None:
    """Fujian 十三 (seeds/001) and Shandong art. 17 (seeds/004): 经核实为误评或恶意差评的评价结果不予采纳. The case
    is neither rated nor unrated: out of `to_rate`, the base of Shantou art. 33's participation rate (参评率 =
    已获得评价的办件数 / 应评价办件数). An agency whose only case was wrongly rated has nothing to measure (no
    composite, not ranked), instead of a participation of 0 and a composite of 0.0 for winning its appeal."""
    # ONLY: its one case was rated falsely, and the appeal upheld.
    _no, _id, wo_id = await bad_review(hcp, agency_code="ONLY", agency_name="单件局")
    await uphold(hcp, wo_id)
    # BATCH: a batch of three rated once, falsely (every copy leaves the base), one case rated, one not yet.
    batch = [(await hcp.post_case(batch_no="PC-1", agency_code="BATCH", agency_name="批量局",
                                  completed_at="2026-11-20T10:00:00+08:00"))["case_no"] for _ in range(3)]
    await hcp.rate(batch[0], "very_dissatisfied", reasons=["process"])
    [batch_wo] = (await hcp.case(batch[0]))["work_orders"]
    await uphold(hcp, batch_wo["id"])
    good = await hcp.post_case(agency_code="BATCH", agency_name="批量局", completed_at="2026-11-20T10:00:00+08:00")
    await hcp.rate(good["case_no"], "satisfied")
    await hcp.post_case(agency_code="BATCH", agency_name="批量局", completed_at="2026-11-20T10:00:00+08:00")
    # AGAIN: the false review excluded, then the rater's own follow-up counts (Hainan art. 14: their latest).
    again, _id, wo_id = await bad_review(hcp, agency_code="AGAIN", agency_name="追评局")
    await uphold(hcp, wo_id)
    hcp.clock.advance(hours=2)
    assert (await hcp.rate(again, "satisfied"))["is_followup"] is True

    groups = await figures(hcp)
    assert agency_of(groups, "ONLY") == {"cases": 1, "to_rate": 0, "rated": 0, "participation_rate": None,
                                         "mean_score": None, "bad_reviews": 0, "work_orders": 0, "rectified": 0,
                                         "rectification_rate": None}
    assert groups["ONLY"]["composite_score"] is None
    assert agency_of(groups, "BATCH") == {"cases": 5, "to_rate": 2, "rated": 1, "participation_rate": 0.5,
                                          "mean_score": 8.0, "bad_reviews": 0, "work_orders": 0, "rectified": 0,
                                          "rectification_rate": None}
    assert agency_of(groups, "AGAIN") == {"cases": 1, "to_rate": 1, "rated": 1, "participation_rate": 1.0,
                                          "mean_score": 8.0, "bad_reviews": 0, "work_orders": 0, "rectified": 0,
                                          "rectification_rate": None}
    ranked = {r["key"]: r for r in (await api(hcp, "GET", "/api/v1/rankings?of=agency"))["rankings"]}
    assert (ranked["ONLY"]["rank"], ranked["ONLY"]["unranked"]) == (None, "no composite_score")
    total = (await api(hcp, "GET", "/api/v1/stats?by=agency"))["total"]
    assert (total["cases"], total["to_rate"], total["rated"], total["participation_rate"]) == (7, 3, 2, 0.6667)
    # The console's dashboard shows the base beside the cases, so that its participation rate can be read.
    l1 = await logged_in(hcp, "l1dash", "l1")
    _status, page = await l1.get("/console/dashboard?from=2026-11-01&to=2026-11-30")
    table = dashboard_table(page, "agency")
    assert table["单件局"][:4] == ["1", "0", "0", "-"] and table["批量局"][:4] == ["5", "2", "1", "50.0%"], table

    # The daily figures carry the same base once the tick rebuilt them, and a published period freezes it.
    await hcp.tick(hcp.clock() + timedelta(minutes=1))
    await both_ways(hcp)
    async with hcp.rt.db.read() as session:
        rows = (await session.exec(select(StatsDay.dim, StatsDay.key, StatsDay.cases, StatsDay.to_rate)
                                   .where(StatsDay.agency_code == "ONLY"))).all()
    assert {(dim, cases, to_rate) for dim, _key, cases, to_rate in rows} == {(dim, 1, 0) for dim in stats.GROUPS}
    await api(hcp, "POST", "/api/v1/stats/snapshots", {"label": "2026-11", "from": "2026-11-01", "to": "2026-11-30"},
              expect=201)
    frozen = (await api(hcp, "GET", "/api/v1/stats/snapshots/2026-11"))["content"]
    only = {g["key"]: g for g in frozen["figures"]["agency"]["groups"]}["ONLY"]
    assert (only["cases"], only["to_rate"], only["participation_rate"], only["composite_score"]) == (1, 0, None, None)


# === item 3: the blacklist counts false reviews, dated by the review (Shandong art. 17) ======================


@on_both
async def test_shandong_art_17_a_bundle_review_over_three_agencies_is_one_false_review(hcp: Hcp) -> None:
    """Shandong art. 17 (seeds/004): 同一评价主体一年内作出的评价3次(含)以上被核实为误评或恶意差评的，列入黑名单.
    A 一件事 rating given at once (Shantou art. 31, seeds/003) is one review: its three agencies' work orders,
    appealed and upheld one by one (two of them at the same moment), make one strike, dated by the review."""
    phone = hcp.new_phone()
    made = RATED_AT
    hcp.clock.set(made)
    items = [(await hcp.post_case(phone=phone, bundle_no="YJS-9", item_code=f"ITEM-{i}", agency_code=f"AG-{i}",
                                  agency_name=f"第{i}局", completed_at="2026-11-20T10:00:00+08:00"))["case_no"]
             for i in range(3)]
    review_doc = await hcp.rate(items[0], "very_dissatisfied", reasons=["process"], scope="bundle")
    orders = [(await hcp.case(no))["work_orders"] for no in items]
    assert [len(o) for o in orders] == [1, 1, 1]  # each agency puts its own item right
    wo_ids = [o[0]["id"] for o in orders]

    await uphold(hcp, wo_ids[0], appealed_at=made + timedelta(hours=1), decided_at=made + timedelta(days=2))
    for wo_id in wo_ids[1:]:
        await act(hcp, wo_id, "appeal", {"reason": "评价人并未办理该事项"})
    hcp.clock.set(made + timedelta(days=3))
    decided = await asyncio.gather(*(hcp.api("POST", f"/api/v1/work-orders/{i}/decide-appeal", {"upheld": True})
                                     for i in wo_ids[1:]))
    assert [status for status, _doc in decided] == [200, 200], decided
    [(_contact, review_id, at)] = await strikes(hcp)
    assert (review_id, at) == (review_doc["id"], made)  # the review the rater gave, when they gave it
    assert await barred_until(hcp) == [None]

    # Two more false reviews make three: the rater is barred for barred_days from the third decision.
    for day in (4, 5):
        _no, _id, wo_id = await bad_review(hcp, at=made + timedelta(days=day), phone=phone)
        doc = await uphold(hcp, wo_id, decided_at=made + timedelta(days=day, hours=3))
    assert len(await strikes(hcp)) == 3
    assert doc["history"][-1]["action"] == "blacklist" and doc["history"][-1]["data"]["strikes"] == 3
    assert await barred_until(hcp) == [made + timedelta(days=5, hours=3) + timedelta(days=365)]
    late = await hcp.post_case(phone=phone, completed_at=(made + timedelta(days=5)).isoformat())
    await hcp.rate(late["case_no"], "satisfied", expect=403)


@on_both
async def test_shandong_art_17_a_batch_review_is_one_false_review(hcp: Hcp) -> None:
    """Shandong art. 17 (seeds/004), Shantou art. 24 (seeds/003): a batch rated once is one review, whatever
    number of cases its copies rated."""
    phone = hcp.new_phone()
    hcp.clock.set(RATED_AT)
    nos = [(await hcp.post_case(phone=phone, batch_no="PC-7"))["case_no"] for _ in range(3)]
    rated = await hcp.rate(nos[1], "dissatisfied", reasons=["fees"])
    [wo] = (await hcp.case(nos[1]))["work_orders"]
    await uphold(hcp, wo["id"])
    assert [(e, at) for _c, e, at in await strikes(hcp)] == [(rated["id"], RATED_AT)]


@on_both
@pytest.mark.parametrize(("fourth", "barred"), [
    ("2026-03-20T10:00", True),  # within a year of the second: the second, third and fourth
    ("2026-04-07T10:00", False),  # the year from the second ended on 1 April: only the third and fourth
])
async def test_shandong_art_17_strikes_are_dated_by_the_review_and_the_year_slides(hcp: Hcp, fourth: str,
                                                                                 barred: bool) -> None:
    """Shandong art. 17 (seeds/004) counts the reviews a rater *made* within a year. Two appeals decided a
    year late do not make their reviews new: three false reviews decided the same day, made over more than a
    year, bar nobody; a fourth bars the rater only if three of them were made within one year."""
    phone = hcp.new_phone()
    made = [cst("2025-03-03T10:00"), cst("2025-04-01T10:00"), cst("2026-03-09T10:00")]
    pending = []
    for at in made:
        _no, _id, wo_id = await bad_review(hcp, at=at, phone=phone)
        hcp.clock.set(at + timedelta(hours=1))
        await act(hcp, wo_id, "appeal", {"reason": "恶意差评"})  # in time; decided when the centre gets to it
        pending.append(wo_id)
    hcp.clock.set(cst("2026-03-10T09:00"))
    for wo_id in pending:
        doc = await act(hcp, wo_id, "decide-appeal", {"upheld": True})
        assert "blacklist" not in [e["action"] for e in doc["history"]]
    assert [at for _c, _e, at in await strikes(hcp)] == made
    assert await barred_until(hcp) == [None]

    _no, _id, wo_id = await bad_review(hcp, at=cst(fourth), phone=phone)
    decided = cst(fourth) + timedelta(days=1)
    doc = await uphold(hcp, wo_id, decided_at=decided)
    assert ("blacklist" in [e["action"] for e in doc["history"]]) is barred
    assert await barred_until(hcp) == [decided + timedelta(days=365) if barred else None]


@on_both
async def test_shandong_art_17_counts_a_rater_across_their_phone_and_wechat(hcp: Hcp) -> None:
    """Shandong art. 17 (seeds/004) counts 同一评价主体: false reviews by SMS on one case and by WeChat on another
    are one rater's when some case holds that phone and that openid together, and the bar covers both."""
    phone, openid = hcp.new_phone(), hcp.new_openid()
    day = timedelta(days=1)
    for n, applicant in enumerate(({}, {"wechat_openid": openid}, None)):
        more = {"applicant": {"wechat_openid": openid}} if applicant is None else {"applicant": applicant}
        _no, _id, wo_id = await bad_review(hcp, at=RATED_AT + n * day, phone=None if applicant is None else phone,
                                           **more)
        doc = await uphold(hcp, wo_id, decided_at=RATED_AT + n * day + timedelta(hours=2))
    assert doc["history"][-1]["action"] == "blacklist", doc["history"]
    assert (doc["history"][-1]["data"]["strikes"], doc["history"][-1]["data"]["addresses"]) == (3, 2)
    until = RATED_AT + 2 * day + timedelta(hours=2) + timedelta(days=365)
    assert await barred_until(hcp) == [until, until]  # the phone and the openid
    later = await hcp.post_case(phone=phone, completed_at=(RATED_AT + 3 * day).isoformat())
    await hcp.rate(later["case_no"], "satisfied", expect=403)


@on_both
@pytest.mark.parametrize(("openids", "barred"), [(3, True), (4, False)])
async def test_shandong_art_17_a_shared_phone_joins_nobody(hcp: Hcp, openids: int, barred: bool) -> None:
    """A phone typed on the cases of more than three WeChat users (a hall's number for applicants who gave
    none) is shared: one person's false reviews are not another's through it. With three, it is still taken
    for one family's or one person's, and the false review made with it counts for everyone found with it."""
    hub = hcp.new_phone()
    people = [hcp.new_openid() for _ in range(openids)]
    for openid in people:
        await hcp.post_case(phone=hub, applicant={"wechat_openid": openid})
    day = timedelta(days=1)
    _no, _id, wo_id = await bad_review(hcp, at=RATED_AT, phone=hub, applicant={"wechat_openid": people[1]})
    await uphold(hcp, wo_id, decided_at=RATED_AT + timedelta(hours=2))
    for n in (1, 2):  # the first person's own two, with their openid only
        _no, _id, wo_id = await bad_review(hcp, at=RATED_AT + n * day, applicant={"wechat_openid": people[0]})
        doc = await uphold(hcp, wo_id, decided_at=RATED_AT + n * day + timedelta(hours=2))
    assert ("blacklist" in [e["action"] for e in doc["history"]]) is barred


def test_shandong_art_17_the_year_holds_the_new_review_and_its_edges() -> None:
    """The sliding window of Shandong art. 17 (seeds/004), edges included: 365 days from the first review
    made still counts it; a window that does not hold the new review was counted when its last one was."""
    day = timedelta(days=1)
    t0 = cst("2026-01-01T10:00")
    year = 365 * day
    assert most_within([t0, t0 + 100 * day, t0 + year], t0 + year, year) == 3
    assert most_within([t0, t0 + 100 * day, t0 + year + timedelta(seconds=1)], t0 + year + timedelta(seconds=1),
                       year) == 2
    assert most_within([t0, t0 + day, t0 + 2 * day, t0 + 800 * day], t0 + 800 * day, year) == 1
    assert most_within([t0], t0, year) == 1


# === migration 0011: what was stored before ================================================================


@on_both
async def test_migration_0011_excludes_old_dissatisfied_answers_and_counts_old_strikes_by_review(hcp: Hcp) -> None:
    """Hainan art. 15 and Shandong art. 17 for the data stored before the rules: a dissatisfied callback answer
    that was stored as a rating is excluded (the case scores its review again), and strikes given per appeal
    and dated by the decision become one per review, dated by the review."""
    case_no, review_id, wo_id = await bad_review(hcp, phone=hcp.new_phone())
    await review(hcp, wo_id)
    phone = hcp.new_phone()
    hcp.clock.set(RATED_AT)
    items = [(await hcp.post_case(phone=phone, bundle_no="YJS-OLD", agency_code=f"OLD-{i}",
                                  completed_at="2026-11-20T10:00:00+08:00"))["case_no"] for i in range(3)]
    bundle_review = await hcp.rate(items[0], "very_dissatisfied", reasons=["process"], scope="bundle")
    copies = []
    for i, no in enumerate(items):
        [wo] = (await hcp.case(no))["work_orders"]
        await uphold(hcp, wo["id"], decided_at=RATED_AT + timedelta(days=1 + i))
        copies.append((await hcp.case(no))["evaluations"][0]["id"])
    [(contact_id, _e, _at)] = await strikes(hcp)

    await migrate.downgrade(hcp.rt.db, "0010")
    async with hcp.rt.db.write() as session:  # as the code before 0011 stored them
        case_id = (await session.exec(select(Case.id).where(Case.case_no == case_no))).one()
        # A Core insert names only these columns: the model has columns of later revisions (0012's terminal_id).
        await session.exec(insert(Evaluation).values(  # type: ignore[call-overload]
            case_id=case_id, grade="dissatisfied", score=3, reasons=[], channel="callback", via="callback",
            origin_id=review_id, status="valid", created_at=RATED_AT + timedelta(hours=3)))
        await session.exec(text("DELETE FROM rater_strikes"))  # type: ignore[call-overload]
        for i, evaluation_id in enumerate(copies):
            session.add(RaterStrike(contact_id=contact_id, evaluation_id=evaluation_id,
                                    at=RATED_AT + timedelta(days=1 + i)))
    await migrate.upgrade(hcp.rt.db)

    answers = [(e["channel"], e["grade"], e["status"]) for e in (await hcp.case(case_no))["evaluations"]]
    assert answers == [("web", "very_dissatisfied", "valid"), ("callback", "dissatisfied", "excluded")]
    assert agency_of(await figures(hcp))["mean_score"] == 0.0
    assert await strikes(hcp) == [(contact_id, bundle_review["id"], RATED_AT)]
    await hcp.tick(hcp.clock() + timedelta(minutes=1))
    await both_ways(hcp)

