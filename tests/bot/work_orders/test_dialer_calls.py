"""Automated callback calls placed by the centre's own dialer (issue 24): `callback.placed_by = "dialer"`, the due
calls leased from GET /api/v1/hotline/due-calls, each run as the JSON keypad dialog with its `work_order_id`.

A lease goes to one dialer only, even when several ask at once; a call that brings no result is due again after
`call_interval_minutes`, and after the last try the work order waits in the agents' queue; the answer is recorded
once, as an agent's callback result would be; the number that leaves the service is audited.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from callback_support import RATED_AT, review, write_policy
from helpers import Hcp
from servers import BACKENDS

DUE = "/api/v1/hotline/due-calls"
CALLS = "/api/v1/hotline/calls"
MENU = "对整改结果满意请按1，基本满意请按2，不满意请按3"


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    return write_policy(tmp_path, '[callback]\nby = ["call"]\nplaced_by = "dialer"\ncall_retries = 1\n'
                                  'call_interval_minutes = 30\n')


async def reviewed(hcp: Hcp) -> tuple[int, str, str]:
    phone = hcp.new_phone()
    hcp.clock.set(RATED_AT)
    case_no = (await hcp.post_case(phone=phone))["case_no"]
    await hcp.rate(case_no, "dissatisfied", reasons=["attitude"])
    [wo] = (await hcp.case(case_no))["work_orders"]
    await review(hcp, wo["id"])
    return int(wo["id"]), str(case_no), phone


async def lease(hcp: Hcp, limit: int = 10, expect: int = 200) -> list[dict[str, Any]]:
    status, doc = await hcp.api("GET", f"{DUE}?limit={limit}")
    assert status == expect, (status, doc)
    return list(doc["calls"]) if status == 200 else []


async def work_order(hcp: Hcp, wo_id: int) -> dict[str, Any]:
    status, doc = await hcp.api("GET", f"/api/v1/work-orders/{wo_id}")
    assert status == 200, (status, doc)
    return dict(doc)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_leased_call_run_as_the_json_dialog_records_the_answer_once(hcp: Hcp) -> None:
    wo_id, case_no, phone = await reviewed(hcp)
    [call] = await lease(hcp)
    assert call["work_order_id"] == wo_id and call["phone"] == "+86" + phone and call["attempt"] == 1
    assert call["start"]["body"] == {"call_id": call["call_id"], "work_order_id": wo_id}
    assert await lease(hcp) == []  # leased: no other dialer gets it

    status, first = await hcp.api("POST", CALLS, call["start"]["body"])
    assert status == 201 and MENU in "".join(first["say"]) and first["ask"]["max_digits"] == 1
    status, end = await hcp.api("POST", f"{CALLS}/{call['call_id']}/keys", {"digits": "1", "step": 1})
    assert status == 200 and end["done"]
    again = await hcp.api("POST", f"{CALLS}/{call['call_id']}/keys", {"digits": "1", "step": 1})
    assert again == (200, end)

    wo = await work_order(hcp, wo_id)
    assert wo["status"] == "closed" and wo["outcome"] == "satisfied"
    evaluations = (await hcp.case(case_no))["evaluations"]
    assert [e["via"] for e in evaluations].count("callback") == 1
    hcp.clock.set(RATED_AT + timedelta(hours=2))
    assert await lease(hcp) == []  # answered: never due again


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_two_dialers_asking_at_once_never_get_the_same_call(hcp: Hcp) -> None:
    ids = {(await reviewed(hcp))[0] for _ in range(6)}
    batches = await asyncio.gather(*(lease(hcp, limit=4) for _ in range(3)))
    got = [c["work_order_id"] for batch in batches for c in batch]
    assert sorted(got) == sorted(ids), batches  # each once, none twice


async def test_a_call_without_a_result_is_due_again_then_goes_to_the_agents(hcp: Hcp) -> None:
    wo_id, _case_no, _phone = await reviewed(hcp)
    [first] = await lease(hcp)
    await hcp.api("POST", CALLS, first["start"]["body"])  # answered, then hung up without a key
    assert datetime.fromisoformat(first["lease_until"]) == RATED_AT + timedelta(minutes=30)
    hcp.clock.set(RATED_AT + timedelta(minutes=29))
    assert await lease(hcp) == []
    hcp.clock.set(RATED_AT + timedelta(minutes=31))
    [second] = await lease(hcp)
    assert second["attempt"] == 2 and second["call_id"] != first["call_id"]
    # the first call's keys come too late: its lease ended and another call is out
    status, _ = await hcp.api("POST", f"{CALLS}/{first['call_id']}/keys", {"digits": "1", "step": 1})
    assert status == 200
    assert (await work_order(hcp, wo_id))["status"] == "reviewed"
    hcp.clock.set(RATED_AT + timedelta(minutes=62))
    assert await lease(hcp) == []  # call_retries = 1: two calls, then a person calls
    wo = await work_order(hcp, wo_id)
    assert wo["callback"]["agent_queue"] is True and wo["callback"]["calls"] == 2 and wo["status"] == "reviewed"


async def test_a_dissatisfied_answer_reopens_the_work_order(hcp: Hcp) -> None:
    wo_id, _case_no, _phone = await reviewed(hcp)
    [call] = await lease(hcp)
    await hcp.api("POST", CALLS, call["start"]["body"])
    await hcp.api("POST", f"{CALLS}/{call['call_id']}/keys", {"digits": "3", "step": 1})
    assert (await work_order(hcp, wo_id))["status"] == "dispatched"


async def test_a_start_under_a_call_id_the_lease_did_not_give_is_refused(hcp: Hcp) -> None:
    wo_id, _case_no, _phone = await reviewed(hcp)
    status, doc = await hcp.api("POST", CALLS, {"call_id": "made-up", "work_order_id": wo_id})
    assert status == 409 and "due-calls" in doc["error"]
    status, doc = await hcp.api("POST", CALLS, {"call_id": "x1", "work_order_id": wo_id, "ticket": "T-1"})
    assert status == 422 and doc["errors"][0]["field"] == "ticket"
    status, _ = await hcp.api("POST", CALLS, {"call_id": "x2", "work_order_id": 99_999_999})
    assert status == 404


async def test_each_lease_is_audited_with_the_number_masked(hcp: Hcp) -> None:
    wo_id, _case_no, phone = await reviewed(hcp)
    await lease(hcp)
    status, doc = await hcp.api("GET", "/api/v1/audit?action=number.dial")
    assert status == 200, doc
    [event] = doc["events"]
    assert event["target"] == {"kind": "work_order", "id": str(wo_id)}
    assert phone not in str(event) and phone[-4:] in event["details"]["masked"]


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
                                              ("limit=-1", "limit"), ("dialer=a%20b", "dialer"),
                                              ("dialer=" + "d" * 41, "dialer")])
async def test_a_bad_query_is_422_and_leases_nothing(hcp: Hcp, query: str, field: str) -> None:
    await reviewed(hcp)
    status, doc = await hcp.api("GET", f"{DUE}?{query}")
    assert status == 422 and doc["errors"][0]["field"] == field
    assert len(await lease(hcp)) == 1


async def test_due_calls_need_the_api_token(hcp: Hcp) -> None:
    await reviewed(hcp)
    status, _ = await hcp.api("GET", DUE, token=None)
    assert status == 401
    assert len(await lease(hcp)) == 1  # nothing was leased by the refused request


def test_placed_by_is_twilio_or_dialer() -> None:
    from bot.policy.rules import PolicyError, parse_policy

    assert parse_policy({}).callback.placed_by == "twilio"
    assert parse_policy({"callback": {"placed_by": "dialer"}}).callback.placed_by == "dialer"
    for bad in ("fax", "", 1):
        with pytest.raises(PolicyError, match="placed_by"):
            parse_policy({"callback": {"placed_by": bad}})


async def test_with_twilio_placing_the_calls_there_is_nothing_to_lease(hcp: Hcp, monkeypatch: pytest.MonkeyPatch
                                                                       ) -> None:
    import dataclasses

    policy = hcp.rt.policy
    monkeypatch.setattr(hcp.rt, "policy", dataclasses.replace(
        policy, callback=dataclasses.replace(policy.callback, placed_by="twilio")))
    status, doc = await hcp.api("GET", DUE)
    assert status == 409 and "placed_by" in doc["error"]
