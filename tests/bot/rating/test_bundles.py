"""一件事 (bundles), Shantou art. 31 (seeds/003): 对"一件事"的评价，按照事项分别评价，也可对整件事进行评价.

CONTRACT "Rules of detail", Bundles: a rating of a case that has a `bundle_no` rates that item only; with
`"scope": "bundle"` (the API, the mini-program, the rating page's 整件事 choice) it rates the whole bundle: every
item not yet rated gets the same grade, reasons and text, each bad item opens its own agency's work order, and it
is one review. An item rated already keeps its rating. An SMS or WeChat reply rates the item its reminder named
(docs/architecture.md, "Choices where the contract is silent").

Everything runs from outside (the business API, the rating page, Twilio's webhook, `tick`) on SQLite and on
PostgreSQL with Redis, with real stores and no mock of our code.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import pytest
from helpers import PUBLIC_URL, TOKEN, Hcp, cst
from servers import BACKENDS
from sqlmodel import col, select

from store import evaluations as evaluation_store
from store import stats
from store.models import Evaluation

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

COMPLETED = "2026-11-20T10:00:00+08:00"
AGENCIES = [("AG-SCJG", "市场监督管理局"), ("AG-SW", "税务局"), ("AG-RS", "人力资源和社会保障局")]
BAD = {"grade": "very_dissatisfied", "reasons": ["process", "trips"], "text": "一件事跑了三个窗口"}


async def bundle(hcp: Hcp, bundle_no: str | None = None, agencies: list[tuple[str, str]] = AGENCIES,
                 **case: Any) -> list[str]:
    """The items of one 一件事 (开办企业: licence, tax, social insurance), each at its own agency."""
    bundle_no = bundle_no or f"YJS-{secrets.token_hex(4)}"
    return [(await hcp.post_case(bundle_no=bundle_no, item_code=f"ITEM-{i}", item_name=f"事项{i}",
                                 agency_code=code, agency_name=name, completed_at=COMPLETED, **case))["case_no"]
            for i, (code, name) in enumerate(agencies)]


async def rated(hcp: Hcp, case_no: str) -> list[tuple[str, str | None, bool]]:
    return [(e["grade"], e["via"], e["is_followup"]) for e in await hcp.evaluations(case_no)]


async def orders(hcp: Hcp, case_no: str) -> list[str]:
    return [wo["agency_code"] for wo in (await hcp.case(case_no))["work_orders"]]


async def stored(hcp: Hcp) -> list[tuple[int, int, str | None, int | None]]:
    async with hcp.rt.db.read() as session:
        rows = (await session.exec(select(Evaluation).order_by(col(Evaluation.id)))).all()
    return [(e.id, e.case_id, e.via, e.origin_id) for e in rows]  # type: ignore[misc]


async def groups(hcp: Hcp, by: str) -> dict[str, dict[str, Any]]:
    status, doc = await hcp.api("GET", f"/api/v1/stats?by={by}")
    assert status == 200, doc
    return {g["key"]: g for g in doc["groups"]}


# --- the API: item scope ------------------------------------------------------------------------------------


@on_both
async def test_shantou_art_31_a_rating_of_an_item_rates_that_item_only(hcp: Hcp) -> None:
    """Shantou art. 31: 按照事项分别评价. The other items stay unrated and keep their reminders; each is rated on
    its own later, its own bad rating opening its own agency's work order (not a follow-up of another's)."""
    items = await bundle(hcp, phone=hcp.new_phone())
    doc = await hcp.rate(items[0], "dissatisfied", reasons=["attitude"])
    assert (doc["via"], doc["is_followup"]) == (None, False)

    assert await rated(hcp, items[0]) == [("dissatisfied", None, False)]
    assert await orders(hcp, items[0]) == ["AG-SCJG"]
    for no in items[1:]:
        case = await hcp.case(no)
        assert (case["evaluations"], case["work_orders"]) == ([], []), no
        assert case["remind_at"] is not None  # still reminded on its own

    await hcp.rate(items[1], "very_dissatisfied", reasons=["fees"], scope="item")  # "item" said aloud: the same
    assert await rated(hcp, items[1]) == [("very_dissatisfied", None, False)]
    assert await orders(hcp, items[1]) == ["AG-SW"]
    assert await rated(hcp, items[2]) == []
    assert await rated(hcp, items[0]) == [("dissatisfied", None, False)]  # nothing travelled back either


# --- the API: bundle scope ----------------------------------------------------------------------------------


@on_both
async def test_shantou_art_31_a_bundle_rating_goes_to_every_item_not_yet_rated(hcp: Hcp) -> None:
    """Shantou art. 31: 也可对整件事进行评价. Every item not yet rated gets the same grade, reasons and text (a copy,
    via "bundle", naming the review); each bad item opens its own agency's work order; an item rated already
    keeps its own rating, and the bundle rating is not its follow-up."""
    items = await bundle(hcp, agencies=[*AGENCIES, ("AG-GJJ", "住房公积金管理中心")])
    await hcp.rate(items[1], "satisfied")  # rated on its own first
    review = await hcp.rate(items[0], **BAD, scope="bundle")

    assert await rated(hcp, items[1]) == [("satisfied", None, False)]
    assert await orders(hcp, items[1]) == []
    assert await rated(hcp, items[0]) == [("very_dissatisfied", None, False)]
    for no in (items[2], items[3]):
        [copy] = await hcp.evaluations(no)
        assert (copy["grade"], copy["reasons"], copy["text"], copy["via"], copy["is_followup"], copy["channel"]) == \
            ("very_dissatisfied", ["process", "trips"], "一件事跑了三个窗口", "bundle", False, "web")
    assert [await orders(hcp, no) for no in items] == [["AG-SCJG"], [], ["AG-RS"], ["AG-GJJ"]]

    # One review: each copy names it, and the blacklist's review_of finds it.
    copies = [(i, c, via, origin) for i, c, via, origin in await stored(hcp) if via == "bundle"]
    assert len(copies) == 2 and {origin for *_rest, origin in copies} == {review["id"]}
    async with hcp.rt.db.read() as session:
        for evaluation_id, *_rest in copies:
            copy = await session.get(Evaluation, evaluation_id)
            assert copy is not None
            assert (await evaluation_store.review_of(session, copy)).id == review["id"]

    # Every item is rated now: a later bundle rating from another item is that item's follow-up only.
    hcp.clock.advance(hours=2)
    later = await hcp.rate(items[2], "satisfied", scope="bundle")
    assert later["is_followup"] is True
    assert [len(await hcp.evaluations(no)) for no in items] == [1, 1, 2, 1]


@on_both
async def test_shantou_art_31_a_good_bundle_rating_opens_no_work_order_and_defaults_stand(hcp: Hcp) -> None:
    """Shantou art. 31 with the default (Shantou art. 25): an item defaulted already is rated, so a bundle rating
    given later leaves its default; a good bundle rating opens no work order."""
    items = await bundle(hcp)
    late = (await hcp.post_case(bundle_no=(await hcp.case(items[0]))["bundle_no"], item_name="事项3",
                                agency_code="AG-LATE", agency_name="晚办结机构",
                                completed_at="2026-12-20T10:00:00+08:00"))["case_no"]
    counts = await hcp.tick("2026-12-01T09:00:00+08:00")  # the first three are defaulted; the late one is not due
    assert counts["defaults"] == 3, counts
    hcp.clock.set(cst("2026-12-21T09:00"))
    await hcp.rate(late, "very_satisfied", scope="bundle")
    assert await rated(hcp, late) == [("very_satisfied", None, False)]
    for no in items:
        assert [(e["is_default"], e["via"]) for e in await hcp.evaluations(no)] == [(True, None)], no
        assert await orders(hcp, no) == []


@on_both
@pytest.mark.parametrize(("scope", "why"), [("all", "unknown"), ("Bundle", "case"), (None, "null"), (1, "number"),
                                            ("bundle", "no bundle")])
async def test_shantou_art_31_a_scope_that_does_not_fit_is_422_naming_scope(hcp: Hcp, scope: Any, why: str) -> None:
    """Shantou art. 31: a scope the API does not know, or "bundle" for a case in no bundle, rates nothing."""
    case_no = (await hcp.post_case(bundle_no=None if why == "no bundle" else "YJS-X"))["case_no"]
    sibling = None if why == "no bundle" else (await hcp.post_case(bundle_no="YJS-X"))["case_no"]
    status, doc = await hcp.api("POST", "/api/v1/evaluations",
                                {"case_no": case_no, "grade": "satisfied", "channel": "web", "scope": scope})
    assert status == 422, doc
    assert [e["field"] for e in doc["errors"]] == ["scope"]
    assert await hcp.evaluations(case_no) == []
    if sibling:
        assert await hcp.evaluations(sibling) == []


@on_both
async def test_shantou_art_31_a_bundle_rating_is_stored_exactly_once_with_one_idempotency_key(hcp: Hcp) -> None:
    """Shantou art. 31 and the API's Idempotency-Key: two copies of one bundle rating sent at once, and a third
    later, store one rating per item and one work order per agency."""
    items = await bundle(hcp)
    body = {"case_no": items[1], "channel": "hall", "scope": "bundle", **BAD}
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "yjs-" + secrets.token_hex(8)}

    async def send() -> tuple[int, bytes]:
        resp = await hcp.client.post("/api/v1/evaluations", json=body, headers=headers)
        return resp.status, await resp.read()

    one, two = await asyncio.gather(send(), send())
    hcp.clock.advance(hours=1)
    assert one[0] == 201 and one == two == await send()
    assert [len(await hcp.evaluations(no)) for no in items] == [1, 1, 1]
    assert [await orders(hcp, no) for no in items] == [["AG-SCJG"], ["AG-SW"], ["AG-RS"]]


# --- statistics ---------------------------------------------------------------------------------------------


@on_both
async def test_shantou_art_31_statistics_count_each_item_once(hcp: Hcp) -> None:
    """Shantou art. 31 and the figures (Shantou art. 33): a copy is its item's rating, so each agency counts its
    items once: two items at one agency are two rated cases and two bad reviews there, one at the other is one;
    the daily figures a tick rolls up agree with the live ones."""
    items = await bundle(hcp, agencies=[AGENCIES[0], AGENCIES[0], AGENCIES[1]])
    await hcp.rate(items[2], **BAD, scope="bundle")
    by_agency = await groups(hcp, "agency")
    got = {k: (g["cases"], g["rated"], g["bad_reviews"], g["work_orders"], g["mean_score"])
           for k, g in by_agency.items()}
    assert got == {"AG-SCJG": (2, 2, 2, 2, 0.0), "AG-SW": (1, 1, 1, 1, 0.0)}
    by_item = await groups(hcp, "item")
    assert {k: (g["cases"], g["rated"], g["bad_reviews"]) for k, g in by_item.items()} == \
        {"ITEM-0": (1, 1, 1), "ITEM-1": (1, 1, 1), "ITEM-2": (1, 1, 1)}

    await hcp.tick(hcp.clock())
    for by in stats.GROUPS:
        async with hcp.rt.db.read() as session:
            rolled = await stats.figures(session, by, None, None, dialect=hcp.rt.db.dialect)
            live = await stats.figures(session, by, None, None, dialect="")
        assert rolled == live, by


# --- the SMS dialog -----------------------------------------------------------------------------------------


@on_both
async def test_shantou_art_31_an_sms_reply_rates_the_item_its_reminder_named(hcp: Hcp) -> None:
    """Shantou art. 31 on SMS: the reminder names one item, and the reply rates that item only (our choice,
    docs/architecture.md); the other item of the 一件事, another person's, stays unrated and reminded."""
    case_no, phone, _sms = await hcp.reminded(bundle_no="YJS-SMS", completed_at=COMPLETED)
    other = (await hcp.post_case(bundle_no="YJS-SMS", agency_code="AG-SW", agency_name="税务局",
                                 phone=hcp.new_phone(), completed_at="2026-11-21T10:00:00+08:00"))["case_no"]
    reply = await hcp.sms(phone, "5")
    assert reply.status == 200
    reply = await hcp.sms(phone, "2")  # a reason
    assert reply.status == 200
    assert [(e["grade"], e["channel"], e["via"]) for e in await hcp.evaluations(case_no)] == \
        [("very_dissatisfied", "sms", None)]
    assert await orders(hcp, case_no) == ["11440500MB2C01234X"]
    case = await hcp.case(other)
    assert (case["evaluations"], case["work_orders"]) == ([], [])
    assert case["remind_at"] is not None


# --- the rating page ----------------------------------------------------------------------------------------


async def page(hcp: Hcp, token: str, method: str = "GET", data: Any = None, lang: str = "zh-CN"
               ) -> tuple[int, str]:
    resp = await hcp.client.request(method, f"/r/{token}", data=data, headers={"Accept-Language": lang})
    return resp.status, await resp.text()


def link_of(hcp: Hcp, case_id: int) -> str:
    return hcp.rt.links.token(case_id)


@on_both
async def test_shantou_art_31_the_rating_page_offers_this_item_or_the_whole_matter(hcp: Hcp) -> None:
    """Shantou art. 31 on the rating page: an item of a 一件事 offers 只评价本事项 (checked) or 整件事, listing the
    bundle's items with their agencies; a form sent as it comes rates the item only."""
    items = await bundle(hcp)
    ids = [(await hcp.case(no))["id"] for no in items]
    status, html = await page(hcp, link_of(hcp, ids[0]))
    assert status == 200
    assert 'name="scope" value="item" checked' in html and 'name="scope" value="bundle"' in html
    assert "只评价本事项" in html and "整件事（一件事）" in html
    assert "事项0（市场监督管理局，本事项）" in html
    assert "事项1（税务局）" in html and "事项2（人力资源和社会保障局）" in html

    status, _html = await page(hcp, link_of(hcp, ids[0]), "POST", {"grade": "satisfied", "scope": "item"})
    assert status == 200
    assert [await rated(hcp, no) for no in items] == [[("satisfied", None, False)], [], []]

    # The second item's page marks the first as rated (its rating stays); English says it in English.
    status, html = await page(hcp, link_of(hcp, ids[1]))
    assert "事项0（市场监督管理局，已评价，保留原评价）" in html and "事项1（税务局，本事项）" in html
    status, html = await page(hcp, link_of(hcp, ids[1]), lang="en-US")
    assert "The whole matter" in html and "事项0 (市场监督管理局, rated already: its rating stays)" in html


@on_both
async def test_shantou_art_31_the_whole_matter_chosen_on_the_page_rates_every_item_not_yet_rated(hcp: Hcp) -> None:
    """Shantou art. 31 on the rating page: 整件事 chosen with a bad grade gives each unrated item the same rating,
    each opening its own agency's work order; the item rated already keeps its rating. Once no other item
    waits, the page offers no choice."""
    items = await bundle(hcp)
    ids = [(await hcp.case(no))["id"] for no in items]
    await hcp.rate(items[2], "very_satisfied")
    status, _html = await page(hcp, link_of(hcp, ids[0]), "POST",
                               [("grade", "dissatisfied"), ("reasons", "trips"), ("text", "来回跑"),
                                ("scope", "bundle")])
    assert status == 200
    assert await rated(hcp, items[0]) == [("dissatisfied", None, False)]
    assert await rated(hcp, items[1]) == [("dissatisfied", "bundle", False)]
    assert await rated(hcp, items[2]) == [("very_satisfied", None, False)]
    assert [await orders(hcp, no) for no in items] == [["AG-SCJG"], ["AG-SW"], []]

    hcp.clock.advance(hours=1)
    status, html = await page(hcp, link_of(hcp, ids[0]))  # its follow-up: nothing else left to rate
    assert status == 200 and 'name="grade"' in html and 'name="scope"' not in html


@on_both
async def test_shantou_art_31_a_case_in_no_bundle_has_no_choice_and_a_forged_one_rates_the_case(hcp: Hcp) -> None:
    """Shantou art. 31 concerns 一件事 only: a case without a bundle_no shows no choice, and a form that sends
    scope=bundle anyway rates the case as usual."""
    case_no, _phone, sms = await hcp.reminded()
    [token] = re.findall(re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9._-]+)", sms["body"])
    status, html = await page(hcp, token)
    assert status == 200 and 'name="scope"' not in html
    status, _html = await page(hcp, token, "POST", {"grade": "satisfied", "scope": "bundle"})
    assert status == 200
    assert await rated(hcp, case_no) == [("satisfied", None, False)]


# --- the mini-program ---------------------------------------------------------------------------------------


@on_both
async def test_shantou_art_31_the_mini_program_rates_an_item_or_the_bundle_as_the_api_does(hcp: Hcp) -> None:
    """Shantou art. 31 in the mini-program: `scope` as in the business API (item by default; "bundle" copies to
    the items not yet rated; an unknown scope, or "bundle" for a case in no bundle, is 422 naming it)."""
    from miniprogram_support import login

    openid = hcp.new_openid()
    applicant = {"name": "赵六", "locale": "zh-CN", "mp_openid": openid}
    items = await bundle(hcp, applicant=applicant)
    alone = (await hcp.post_case(applicant=applicant))["case_no"]
    auth = await login(hcp, openid)

    async def rate(body: dict[str, Any]) -> tuple[int, Any]:
        resp = await hcp.client.post("/api/mp/v1/ratings", headers=auth, json=body)
        return resp.status, await resp.json()

    status, doc = await rate({"case_no": items[0], "grade": "satisfied", "scope": "whole"})
    assert status == 422 and [e["field"] for e in doc["errors"]] == ["scope"]
    status, doc = await rate({"case_no": alone, "grade": "satisfied", "scope": "bundle"})
    assert status == 422 and [e["field"] for e in doc["errors"]] == ["scope"]
    assert await hcp.evaluations(alone) == []

    assert (await rate({"case_no": items[0], "grade": "basically_satisfied"}))[0] == 201
    assert [await rated(hcp, no) for no in items] == [[("basically_satisfied", None, False)], [], []]
    assert (await rate({"case_no": items[1], "grade": "very_satisfied", "scope": "bundle"}))[0] == 201
    assert [await rated(hcp, no) for no in items] == [[("basically_satisfied", None, False)],
                                                      [("very_satisfied", None, False)],
                                                      [("very_satisfied", "bundle", False)]]
