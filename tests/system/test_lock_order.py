"""Ratings that meet on PostgreSQL wait for each other; they never deadlock (issue 21's review).

A rating locks its case, a batch rating its siblings, and storing any rating ends the conversations still
asking about the case. Two writers taking the same rows in different orders deadlock: PostgreSQL then aborts
one of them, and the rater would get a 500. The rules (store/cases.py `lock`, store/conversations.py
`close_for_case`): a case is locked with its batch and bundle, all in id order; a rating does not wait for a
conversation another message holds (that message sees the case rated once it has the case).
"""

from __future__ import annotations

import asyncio

import pytest
from helpers import Hcp

pytestmark = pytest.mark.parametrize("backend", [pytest.param(("postgres", "redis"), id="postgres-redis")],
                                     indirect=True)

ROUNDS = 12


async def test_two_items_of_one_batch_rated_at_once_never_deadlock(hcp: Hcp) -> None:
    """Shantou art. 24: a batch is rated once, from whichever of its cases comes first; the other case's rating,
    arriving at the same moment, waits and is its follow-up."""
    for n in range(ROUNDS):
        batch = f"B-LOCK-{n}"
        first = (await hcp.post_case(batch_no=batch))["case_no"]
        second = (await hcp.post_case(batch_no=batch))["case_no"]
        answers = await asyncio.gather(*(
            hcp.api("POST", "/api/v1/evaluations", {"case_no": no, "grade": "satisfied", "channel": "hall"})
            for no in (first, second)))
        assert sorted(status for status, _doc in answers) == [201, 201], answers
        for no in (first, second):  # each: its own rating and the other's copy, one of them its follow-up
            evaluations = (await hcp.case(no))["evaluations"]
            assert sorted(e["via"] or "own" for e in evaluations) == ["batch", "own"], (no, evaluations)
            assert sorted(e["is_followup"] for e in evaluations) == [False, True], (no, evaluations)


async def test_an_sms_reply_and_an_api_rating_of_one_case_at_once_never_deadlock(hcp: Hcp) -> None:
    """The reply holds the person's conversation and wants the case; the API rating holds the case and ends the
    conversations about it. Both are answered; the case keeps one rating (and at most its follow-up)."""
    for _ in range(ROUNDS):
        case_no, phone, _sms = await hcp.reminded()
        reply, (status, doc) = await asyncio.gather(
            hcp.sms(phone, "1"),
            hcp.api("POST", "/api/v1/evaluations", {"case_no": case_no, "grade": "dissatisfied",
                                                    "reasons": ["attitude"], "channel": "hall"}))
        assert reply.status == 200 and status == 201, (reply, status, doc)
        evaluations = (await hcp.case(case_no))["evaluations"]
        assert 1 <= len(evaluations) <= 2 and not evaluations[0]["is_followup"], evaluations
