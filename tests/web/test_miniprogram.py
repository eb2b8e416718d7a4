"""Mini-program: subscribe-message reminders (43101 falls back to SMS), shared access tokens, and the
small backend the mini-program's page talks to."""

from __future__ import annotations

import asyncio

import pytest
from helpers import WX
from miniprogram_support import login
from servers import BACKENDS

from bot.infra.runtime import open_runtime

LONG_ITEM = "不动产登记（国有建设用地使用权及房屋所有权首次登记）"  # 27 characters


async def mp_case(hcp, openid=None, phone=None, **kw):
    openid = openid or hcp.new_openid()
    applicant = {"name": "赵六", "locale": "zh-CN", "mp_openid": openid}
    if phone:
        applicant["phone"] = phone
    doc = await hcp.post_case(applicant=applicant, **kw)
    return doc["case_no"], openid


def mp_tokens(hcp) -> list[dict]:
    return [t for t in hcp.wechat.tokens_issued if t["appid"] == WX["mp_app_id"]]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_the_reminder_is_a_subscribe_message_with_fields_cut_to_fit(hcp):
    phone = hcp.new_phone()
    case_no, openid = await mp_case(hcp, phone=phone, item_name=LONG_ITEM)

    counts = await hcp.tick("2026-11-21T10:00:00+08:00")

    assert (counts["reminders"], counts["sent"]) == (1, 1)
    [sent] = hcp.wechat.sent_of("subscribe", openid)
    body = sent["body"]
    assert body["template_id"] == WX["template_id"] and body["page"].startswith("pages/rate/index?token=")
    assert body["data"]["thing1"]["value"] == LONG_ITEM[:20]
    assert body["data"]["time2"]["value"] == "2026-11-20 10:00"
    assert body["data"]["thing3"]["value"] == "汕头市公安局金平分局"
    token = body["page"].split("token=", 1)[1]
    assert hcp.rt.links.case_id(token) == (await hcp.case(case_no))["id"]
    assert hcp.twilio.sms_to(phone) == []  # the subscribe message was enough
    assert [(r["channel"], r["status"]) for r in (await hcp.case(case_no))["reminders"]] == [("miniprogram", "sent")]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_refused_subscribe_message_falls_back_to_sms_in_the_same_tick(hcp):
    phone = hcp.new_phone()
    case_no, openid = await mp_case(hcp, phone=phone)
    hcp.wechat.refuse_subscribe(openid)

    counts = await hcp.tick("2026-11-21T10:00:00+08:00")
    again = await hcp.tick("2026-11-21T11:00:00+08:00")

    assert counts["sent"] == 1 and again["sent"] == 0
    assert len(hcp.twilio.sms_to(phone)) == 1
    reminders = sorted((r["channel"], r["status"]) for r in (await hcp.case(case_no))["reminders"])
    assert reminders == [("miniprogram", "refused"), ("sms", "sent")]


async def test_a_refused_subscribe_message_without_a_phone_is_recorded(hcp):
    case_no, openid = await mp_case(hcp)
    hcp.wechat.refuse_subscribe(openid)

    await hcp.tick("2026-11-21T10:00:00+08:00")
    await hcp.tick("2026-11-22T10:00:00+08:00")

    assert [(r["channel"], r["status"]) for r in (await hcp.case(case_no))["reminders"]] == \
        [("miniprogram", "refused")]


async def test_the_access_token_is_fetched_once_for_many_sends_and_again_after_40001(hcp):
    for _ in range(3):
        await mp_case(hcp)
    await hcp.tick("2026-11-21T10:00:00+08:00")
    assert len(mp_tokens(hcp)) == 1 and len(hcp.wechat.sent_of("subscribe")) == 3

    hcp.wechat.expire_tokens()
    await mp_case(hcp, completed_at="2026-11-20T11:00:00+08:00")
    counts = await hcp.tick("2026-11-21T11:00:00+08:00")

    assert counts["sent"] == 1 and len(mp_tokens(hcp)) == 2


@pytest.mark.parametrize("backend", [("postgres", "redis"), ("sqlite", "redis")], indirect=True,
                         ids=["postgres-redis", "sqlite-redis"])
async def test_processes_share_one_token_through_redis_and_only_one_refreshes(hcp):
    other = await open_runtime(hcp.rt.settings)
    try:
        tokens = await asyncio.gather(*(rt.mp_api.token() for rt in (hcp.rt, other, hcp.rt, other)))
        assert len(set(tokens)) == 1 and len(mp_tokens(hcp)) == 1
        hcp.wechat.expire_tokens()
        await mp_case(hcp)
        await hcp.tick("2026-11-21T10:00:00+08:00")  # 40001 once: this process refreshes
        assert len(mp_tokens(hcp)) == 2
        assert await other.mp_api.token() == mp_tokens(hcp)[-1]["token"]  # and the other one sees it
    finally:
        await other.close()


# --- the backend of the mini-program's page -----------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_login_list_and_rate_then_follow_up(hcp):
    case_no, openid = await mp_case(hcp)
    await mp_case(hcp)  # someone else's
    auth = await login(hcp, openid)

    listed = await (await hcp.client.get("/api/mp/v1/cases", headers=auth)).json()
    [item] = listed["cases"]
    first = await hcp.client.post("/api/mp/v1/ratings", headers=auth,
                                  json={"token": item["token"], "grade": "dissatisfied", "reasons": ["trips"]})
    again = await (await hcp.client.get("/api/mp/v1/cases", headers=auth)).json()
    followup = await hcp.client.post("/api/mp/v1/ratings", headers=auth,
                                     json={"case_no": case_no, "grade": "satisfied"})
    third = await hcp.client.post("/api/mp/v1/ratings", headers=auth, json={"case_no": case_no, "grade": "satisfied"})

    assert (item["case_no"], item["rating"]) == (case_no, "first")
    assert first.status == 201 and [c["rating"] for c in again["cases"]] == ["followup"]
    assert (followup.status, third.status) == (201, 409)
    evs = await hcp.evaluations(case_no)
    assert [(e["grade"], e["channel"], e["is_followup"]) for e in evs] == \
        [("dissatisfied", "miniprogram", False), ("satisfied", "miniprogram", True)]


async def test_one_person_cannot_rate_anothers_case(hcp):
    theirs, _ = await mp_case(hcp)
    _, mine = await mp_case(hcp)
    auth = await login(hcp, mine)

    resp = await hcp.client.post("/api/mp/v1/ratings", headers=auth, json={"case_no": theirs, "grade": "satisfied"})

    assert resp.status == 404 and await hcp.evaluations(theirs) == []


async def test_sessions_are_refused_when_missing_forged_or_expired(hcp):
    _, openid = await mp_case(hcp)
    auth = await login(hcp, openid)
    forged = {"Authorization": auth["Authorization"][:-3] + "AAA"}

    assert (await hcp.client.get("/api/mp/v1/cases")).status == 401
    assert (await hcp.client.get("/api/mp/v1/cases", headers=forged)).status == 401
    hcp.clock.advance(hours=2, seconds=1)
    assert (await hcp.client.get("/api/mp/v1/cases", headers=auth)).status == 401


async def test_a_bad_login_code_is_401_and_a_missing_one_422(hcp):
    unknown = await hcp.client.post("/api/mp/v1/login", json={"code": "never-issued"})
    missing = await hcp.client.post("/api/mp/v1/login", json={})
    assert (unknown.status, missing.status) == (401, 422)


async def test_a_bad_rating_body_is_422(hcp):
    case_no, openid = await mp_case(hcp)
    auth = await login(hcp, openid)

    resp = await hcp.client.post("/api/mp/v1/ratings", headers=auth, json={"case_no": case_no, "grade": "dissatisfied"})

    assert resp.status == 422 and "reasons" in await resp.text()
    assert await hcp.evaluations(case_no) == []


# --- the mini-program's rating page (issue 27): a rating link's token is enough ------------------------------

async def test_the_page_shows_the_case_a_token_names_and_rates_it_without_a_session(hcp):
    case_no, _ = await mp_case(hcp)
    case_id = (await hcp.case(case_no))["id"]
    token = hcp.rt.links.token(case_id)

    shown = await hcp.client.get(f"/api/mp/v1/rating?token={token}")
    doc = await shown.json()
    rated = await hcp.client.post("/api/mp/v1/ratings", json={"token": token, "grade": "very_dissatisfied",
                                                              "reasons": ["other"], "text": "窗口无人"})
    followup = await (await hcp.client.get(f"/api/mp/v1/rating?token={token}&locale=en")).json()

    assert shown.status == 200 and doc["state"] == "first" and doc["locale"] == "zh_Hans"
    assert doc["case"]["item_name"] == "居民身份证换领" and doc["case"]["completed"] == "2026年11月20日"
    assert [r["code"] for r in doc["reasons"]] == list(hcp.rt.policy.reasons)
    assert doc["reasons"][0]["label"] == "服务态度差" and doc["subscribe"] == {"template_id": WX["template_id"]}
    assert "mp_openid" not in str(doc) and case_no not in str(doc)  # nothing of the person, nor the case number
    assert rated.status == 201 and (await rated.json())["next"] == "work_order"
    assert followup["state"] == "followup" and followup["rated"] == ["very_dissatisfied"]
    assert followup["reasons"][0]["label"] == hcp.rt.catalogs.reason_label("en", "attitude", hcp.rt.policy.reasons)
    assert followup["reasons"][0]["label"] != doc["reasons"][0]["label"]
    [ev] = await hcp.evaluations(case_no)
    assert (ev["grade"], ev["channel"], ev["reasons"]) == ("very_dissatisfied", "miniprogram", ["other"])


async def test_the_page_says_why_a_case_cannot_be_rated_in_the_web_pages_words(hcp):
    case_no, _ = await mp_case(hcp)
    token = hcp.rt.links.token((await hcp.case(case_no))["id"])
    t = hcp.rt.catalogs.text

    invalid = await hcp.client.get("/api/mp/v1/rating?token=" + token[:-2] + "xx")
    posted_invalid = await hcp.client.post("/api/mp/v1/ratings",
                                           json={"token": token[:-2] + "xx", "grade": "satisfied"})
    await hcp.client.post("/api/mp/v1/ratings", json={"token": token, "grade": "satisfied"})
    await hcp.client.post("/api/mp/v1/ratings", json={"token": token, "grade": "very_satisfied"})  # the follow-up
    used = await hcp.client.get(f"/api/mp/v1/rating?token={token}&locale=zh-TW")
    third = await hcp.client.post("/api/mp/v1/ratings", json={"token": token, "grade": "satisfied"})
    no_session = await hcp.client.post("/api/mp/v1/ratings", json={"case_no": case_no, "grade": "satisfied"})

    assert invalid.status == 404 and (await invalid.json())["problem"] == "invalid"
    assert (await invalid.json())["message"] == t("zh_Hans", "page.invalid")
    assert posted_invalid.status == 404 and (await posted_invalid.json())["problem"] == "invalid"
    assert used.status == 409 and (await used.json())["problem"] == "used"
    assert (await used.json())["heading"] == t("zh_Hant", "page.used_heading")
    assert third.status == 409 and (await third.json())["problem"] == "used"
    assert no_session.status == 401  # a case_no is only for the person's own session


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_refused_subscription_sends_the_next_reminder_by_sms_at_once_and_an_accepted_one_by_wechat(hcp):
    phone = hcp.new_phone()
    first, openid = await mp_case(hcp, phone=phone)
    token = hcp.rt.links.token((await hcp.case(first))["id"])
    refused = await hcp.client.post("/api/mp/v1/subscriptions", json={"token": token, "result": "reject"})
    bad = await hcp.client.post("/api/mp/v1/subscriptions", json={"token": token, "result": "maybe"})
    anonymous = await hcp.client.post("/api/mp/v1/subscriptions", json={"result": "accept"})

    counts = await hcp.tick("2026-11-21T10:00:00+08:00")

    assert (await refused.json()) == {"recorded": True, "grants": 0}
    assert (bad.status, anonymous.status) == (422, 401)
    assert counts["sent"] == 1 and hcp.wechat.sent_of("subscribe", openid) == []  # no send WeChat would refuse
    assert len(hcp.twilio.sms_to(phone)) == 1
    # The person accepts in the mini-program (logged in): the next reminder goes as a subscribe message.
    auth = await login(hcp, openid)
    accepted = await hcp.client.post("/api/mp/v1/subscriptions", headers=auth, json={"result": "accept"})
    second, _ = await mp_case(hcp, openid=openid, phone=phone, completed_at="2026-11-23T10:00:00+08:00")
    await hcp.tick("2026-11-24T10:00:00+08:00")

    assert (await accepted.json()) == {"recorded": True, "grants": 1}
    assert len(hcp.wechat.sent_of("subscribe", openid)) == 1 and len(hcp.twilio.sms_to(phone)) == 1
    assert [(r["channel"], r["status"]) for r in (await hcp.case(second))["reminders"]] == [("miniprogram", "sent")]
    grants = await hcp.client.post("/api/mp/v1/subscriptions", headers=auth, json={"result": "ban"})
    assert (await grants.json())["grants"] == 0  # the one grant was used by the reminder


async def test_a_barred_rater_is_told_so_before_and_after_choosing_a_grade(hcp):
    from datetime import timedelta

    from store import contacts

    case_no, openid = await mp_case(hcp)
    case = await hcp.case(case_no)
    token = hcp.rt.links.token(case["id"])
    async with hcp.rt.db.write() as session:  # the blacklist's bar, as upheld false reviews set it
        found = await contacts.find(session, "miniprogram", hcp.rt.sealer.lookup_hashes("miniprogram", openid))
        await contacts.bar(session, found.id, hcp.clock() + timedelta(days=365))

    shown = await hcp.client.get(f"/api/mp/v1/rating?token={token}")
    posted = await hcp.client.post("/api/mp/v1/ratings", json={"token": token, "grade": "very_dissatisfied",
                                                               "reasons": ["attitude"]})

    assert shown.status == 403 and (await shown.json())["problem"] == "barred"
    assert (await shown.json())["heading"] == hcp.rt.catalogs.text("zh_Hans", "page.barred_heading")
    assert posted.status == 403 and (await posted.json())["problem"] == "barred"
    assert await hcp.evaluations(case_no) == []
