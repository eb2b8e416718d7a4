"""bench/providers.py still measures what it says (issue 20): with 20 numbers on the embedded configuration, every
provider's path (Twilio, Aliyun, Tencent, CMPP) takes 20 replies without an error, stores 20 ratings, and the
three that cannot answer inline get 20 answers, one a number, to their double.

Why a test of a benchmark: it drives the real `haochaping serve` and `tick` against the tests' own provider
doubles from outside, so a change that breaks a provider's inbound path end to end (configuration, the push's
acknowledgement, the outbox's answers) shows here too, and the benchmark cannot rot unnoticed between full runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import providers

NUMBERS = 20


@pytest.mark.slow
def test_every_provider_stores_every_reply_and_answers_it() -> None:
    outcomes, baseline = providers.measure_outcomes("embedded", NUMBERS, duration=60.0)

    assert [o.row.benchmark for o in outcomes] == [f"reply {p}" for p in providers.PROVIDERS]
    for outcome in outcomes:
        row = outcome.row
        assert (row.n, row.errors, outcome.sent, outcome.stored) == (NUMBERS, 0, NUMBERS, NUMBERS), row.note
        assert outcome.problems == [], row.note
        if row.benchmark == "reply twilio":
            assert outcome.inline_answers == NUMBERS, row.note
        else:
            assert (outcome.answers, outcome.repeated) == (NUMBERS, 0), row.note
        assert row.per_second and row.p50_ms is not None and row.p99_ms is not None
    assert (baseline.n, baseline.errors) == (NUMBERS, 0), baseline.note
