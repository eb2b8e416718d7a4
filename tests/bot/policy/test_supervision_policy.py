"""`[supervision]` in the policy (bot/policy/supervision.py): the defaults docs/supervision.md justifies, a table
changed key by key, and every wrong value refused with a message naming it."""

from __future__ import annotations

import pytest

from bot.policy.rules import PolicyError, parse_policy
from bot.policy.supervision import SupervisionRules


def test_the_defaults_are_the_documented_ones() -> None:
    rules = parse_policy({}).supervision
    assert rules == SupervisionRules()
    assert (rules.good_burst.count, rules.good_burst.minutes) == (8, 10)
    assert (rules.repeated_text.chars, rules.grade_shift.z) == (15, 4.0)
    assert (rules.callbacks.share, rules.callbacks.minimum, rules.callbacks.period) == (0.02, 5, "month")
    assert rules.lookback_days == 30


def test_a_table_changes_only_the_keys_it_names() -> None:
    rules = parse_policy({"supervision": {"good_burst": {"count": 5}, "own_window": {"share": 1},
                                          "callbacks": {"period": "week", "share": 0.1}}}).supervision
    assert (rules.good_burst.count, rules.good_burst.minutes) == (5, 10)
    assert rules.own_window.share == 1 and rules.own_window.margin == 0.3
    assert (rules.callbacks.period, rules.callbacks.share, rules.callbacks.minimum) == ("week", 0.1, 5)


@pytest.mark.parametrize(("doc", "named"), [
    ({"supervision": "on"}, "supervision: expected a table"),
    ({"supervision": {"bursts": {}}}, "unknown table(s) bursts"),
    ({"supervision": {"good_burst": {"size": 3}}}, "supervision.good_burst: unknown key(s) size"),
    ({"supervision": {"good_burst": {"count": 0}}}, "supervision.good_burst.count"),
    ({"supervision": {"good_burst": {"count": 2.5}}}, "expected a whole number"),
    ({"supervision": {"good_burst": {"count": True}}}, "supervision.good_burst.count"),
    ({"supervision": {"fast_answer": {"seconds": "10"}}}, "supervision.fast_answer.seconds"),
    ({"supervision": {"callbacks": {"share": 1.5}}}, "supervision.callbacks.share: expected a fraction"),
    ({"supervision": {"own_window": {"margin": 2}}}, "supervision.own_window.margin"),
    ({"supervision": {"callbacks": {"period": "year"}}}, "supervision.callbacks.period"),
    ({"supervision": {"grade_shift": []}}, "supervision.grade_shift: expected a table"),
])
def test_a_wrong_value_is_refused_by_name(doc: dict, named: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc)
    assert named in str(caught.value)
