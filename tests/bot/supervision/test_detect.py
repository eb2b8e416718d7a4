"""The supervision patterns (bot/supervision/detect.py) on synthetic histories: honest traffic with known fraud
planted in it. Each pattern must find its plant, and the rate at which honest ratings get flagged is measured
(docs/supervision.md states it). The burst rule is also checked against its definition by hypothesis."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.supervision import GoodBurst, SupervisionRules
from bot.supervision import detect
from bot.supervision.detect import Mix, Rated

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, a Monday
RULES = SupervisionRules()
GOOD = ("very_satisfied", 10), ("satisfied", 8)
SCORES = [10] * 70 + [8] * 20 + [6] * 7 + [3] * 2 + [0] * 1  # a typical hall's mix: ~3 % bad
# What honest people write: short common phrases (which many share), or a sentence of their own.
COMMON = ["太慢了", "差", "工作人员态度不好", "办理时间太长", "排队太久", "来回跑了好几趟"]
WHAT = ["排队", "等号", "补材料", "找窗口", "打印证件", "预约", "咨询"]
HOW = ["花了{n}个小时", "跑了{n}趟", "问了{n}个人都说不清楚", "等了{n}十分钟没人理"]
WHY = ["窗口只开了{n}个", "系统又坏了", "材料清单和网上写的不一样", "工作人员在玩手机", "没有人引导"]


class History:
    """Honest traffic: 4 agencies, 3 halls with 4 clerks each, a person per case (a few with two of their own
    cases), answers minutes to hours after the reminder, hall devices used by ~40 % of people, at most one rating
    on a window's device every few minutes."""

    def __init__(self, seed: int, cases: int = 3000) -> None:
        self.rng = random.Random(seed)
        self.facts: list[Rated] = []
        self.next_id = 1
        for _ in range(cases):
            self.honest()

    def add(self, **kw: object) -> Rated:
        base: dict[str, object] = dict(evaluation_id=self.next_id, case_no=f"C{self.next_id}", agency_code="A1",
                                       staff_id=None, hall_code=None, channel="sms", score=10, bad=False, text=None,
                                       at=START)
        base.update(kw)
        fact = Rated(**base)  # type: ignore[arg-type]
        self.next_id += 1
        self.facts.append(fact)
        return fact

    def complaint(self) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            return rng.choice(COMMON)
        n = rng.randrange(2, 9)
        return (f"{rng.choice(WHAT)}{rng.choice(HOW).format(n=n)}，{rng.choice(WHY).format(n=n)}"
                f"{rng.choice(['', '，希望改进', '！', '，太失望了', '，建议多开窗口'])}")

    def honest(self) -> Rated:
        rng = self.rng
        hall = rng.choice(["H1", "H2", "H3"])
        staff = f"{hall}-S{rng.randrange(4)}"
        agency = rng.choice(["A1", "A2", "A3", "A4"])
        score = rng.choice(SCORES)
        served = START + timedelta(days=rng.randrange(28), minutes=rng.randrange(8 * 60))
        on_device = rng.random() < 0.4
        person = rng.randrange(10**9)
        if on_device:
            at = served + timedelta(seconds=rng.randrange(30, 900))
            channel, sources, reminded = "hall", (f"window:{hall}/{staff}",), None
        else:
            reminded = served + timedelta(hours=24)
            at = reminded + timedelta(seconds=max(15.0, rng.lognormvariate(7, 1.2)))  # median ~18 minutes
            channel, sources = rng.choice(["sms", "web", "wechat"]), ()
            if channel == "web":
                sources = (f"device:{person}",)
        return self.add(case_no=f"C{self.next_id}", agency_code=agency, staff_id=staff, hall_code=hall,
                        channel=channel, score=score, bad=score <= 3, at=at, reminded_at=reminded, sources=sources,
                        text=self.complaint() if score <= 3 and rng.random() < 0.7 else None,
                        rater=f"phone:{person}" if channel != "hall" else None, applicant=f"name-{person}")


def names(sealed: str) -> str:
    return sealed  # the synthetic history's "sealed" names are the names


def flagged(found: list[detect.Found]) -> set[int]:
    return {r.evaluation_id for f in found for r in f.ratings}


def test_honest_traffic_is_rarely_flagged() -> None:
    """The false-flag rate on honest traffic, over five histories of 3,000 ratings (docs/supervision.md)."""
    rates = []
    for seed in range(5):
        history = History(seed)
        found = [*detect.detect(history.facts, RULES, names), *detect.own_windows(history.facts, RULES)]
        rates.append(len(flagged(found)) / len(history.facts))
    print(f"false-flag rate on honest traffic: {[f'{r:.4f}' for r in rates]}")
    assert max(rates) <= 0.005, rates


def test_a_tablet_rating_everything_very_satisfied_in_seconds_is_a_burst() -> None:
    history = History(1)
    at = START + timedelta(days=3, hours=2)
    planted = {history.add(case_no=f"P{i}", agency_code="A2", staff_id="H2-S1", hall_code="H2", channel="hall",
                           at=at + timedelta(seconds=20 * i), sources=("window:H2/H2-S1",)).evaluation_id
               for i in range(12)}
    found = [f for f in detect.good_bursts(history.facts, RULES) if f.subject == "window:H2/H2-S1"]
    assert found and planted <= flagged(found)
    assert found[0].staff_id == "H2-S1" and found[0].evidence["densest"] >= 12
    assert found[0].evidence["source"] == "window"


def test_a_clerk_rating_for_citizens_from_their_own_phone_is_a_shared_rater_and_fast() -> None:
    history = History(2)
    reminded = START + timedelta(days=5, hours=1)
    planted = {history.add(case_no=f"P{i}", agency_code="A3", staff_id="H3-S2", hall_code="H3", channel="sms",
                           rater="phone:clerk", applicant=f"申请人{i}", reminded_at=reminded + timedelta(minutes=i),
                           at=reminded + timedelta(minutes=i, seconds=4)).evaluation_id for i in range(5)}
    shared = [f for f in detect.shared_raters(history.facts, RULES, names) if f.subject == "rater:phone:clerk"]
    assert shared and flagged(shared) == planted and shared[0].evidence["applicants"] == 5
    fast = [f for f in detect.fast_answers(history.facts, RULES) if f.subject == "staff:A3/H3-S2"]
    assert fast and planted <= flagged(fast) and fast[0].evidence["quickest_seconds"] == 4


def test_one_browser_opening_several_applicants_links_is_a_shared_rater_and_a_terminal_is_not() -> None:
    history = History(7)
    planted = {history.add(case_no=f"P{i}", channel="web", applicant=f"申请人{i}", sources=("device:clerk-phone",),
                           at=START + timedelta(days=i)).evaluation_id for i in range(3)}
    for i in range(6):
        history.add(case_no=f"T{i}", channel="terminal", applicant=f"路人{i}", sources=("terminal:T-01",))
    found = [f for f in detect.shared_raters(history.facts, RULES, names) if f.subject.startswith(("device:", "term"))]
    assert [f.subject for f in found] == ["device:clerk-phone"] and flagged(found) == planted
    assert found[0].evidence["source"] == "device"


def test_the_same_applicant_rating_their_own_cases_is_not_a_shared_rater() -> None:
    history = History(3, cases=0)
    for i in range(6):
        history.add(case_no=f"P{i}", rater="phone:me", applicant="王 小明" if i % 2 else "王小明")
    assert detect.shared_raters(history.facts, RULES, names) == []


def test_a_serial_bad_reviewer_with_a_pasted_text_is_found_in_every_agency() -> None:
    history = History(4)
    text = "你们这些部门全都是不作为，我要投诉到底！"
    planted = set()
    for i, agency in enumerate(["A1", "A2", "A3", "A4"]):
        planted.add(history.add(case_no=f"P{i}", agency_code=agency, channel="wechat", rater="wechat:angry",
                                score=0, bad=True, text=text + " " * i, at=START + timedelta(days=i)).evaluation_id)
    serial = [f for f in detect.serial_bad(history.facts, RULES) if f.subject == "rater:wechat:angry"]
    assert {f.agency_code for f in serial} == {"A1", "A2", "A3", "A4"} and flagged(serial) == planted
    assert all(f.evidence["agencies"] == 4 for f in serial)
    repeated = [f for f in detect.repeated_texts(history.facts, RULES) if planted & flagged([f])]
    assert repeated and flagged(repeated) == planted


def test_short_common_complaints_are_not_copies() -> None:
    assert detect.text_key("太慢了", RULES.repeated_text.chars) is None
    assert detect.text_key("排队等了两个多小时！", 8) == detect.text_key("排队 等了两个多小时", 8)
    assert detect.text_key("ＡＢＣＤＥＦＧＨ", 8) == detect.text_key("abcdefgh", 8)


def test_a_clerk_whose_cases_are_rated_only_at_their_own_device_stands_out_from_the_hall() -> None:
    history = History(5)
    planted = {history.add(case_no=f"P{i}", agency_code="A1", staff_id="H1-S9", hall_code="H1", channel="hall",
                           at=START + timedelta(days=i % 28, hours=i % 7)).evaluation_id for i in range(25)}
    found = detect.own_windows(history.facts, RULES)
    assert [f.subject for f in found] == ["window:H1/H1-S9"] and flagged(found) == planted
    assert found[0].evidence["device_share"] == 1.0 and found[0].evidence["hall_share"] < 0.65


def test_a_hall_where_everyone_rates_at_the_device_flags_no_clerk() -> None:
    history = History(6, cases=0)
    for i in range(200):
        history.add(staff_id=f"S{i % 4}", hall_code="H", channel="hall", at=START + timedelta(hours=i))
    assert detect.own_windows(history.facts, RULES) == []


def test_a_break_in_an_agencys_own_mix_is_a_grade_shift_and_noise_is_not() -> None:
    rule = RULES
    assert detect.grade_shifts([Mix("A1", 100, 3, 1000, 30)], rule, "2026-W48") == []
    [shift] = detect.grade_shifts([Mix("A1", 100, 40, 1000, 30)], rule, "2026-W48")
    assert shift.evidence["direction"] == "more_bad" and shift.subject == "agency:A1/2026-W48"
    [praise] = detect.grade_shifts([Mix("A2", 400, 0, 2000, 200)], rule, "2026-W48")
    assert praise.evidence["direction"] == "less_bad"
    assert detect.grade_shifts([Mix("A3", 10, 9, 1000, 30)], rule, "2026-W48") == []  # too few to say


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=120), min_size=0, max_size=40),
       st.integers(min_value=2, max_value=6), st.integers(min_value=1, max_value=15))
def test_a_burst_is_exactly_what_its_rule_says(minutes: list[int], count: int, width: int) -> None:
    """Flagged = every good rating in some span of `width` minutes holding `count` or more good ratings of the
    source, against that definition computed by brute force."""
    history = History(0, cases=0)
    facts = [history.add(at=START + timedelta(minutes=m), sources=("device:x",)) for m in minutes]
    rules = replace(RULES, good_burst=GoodBurst(count=count, minutes=width))
    expected = set()
    for a in facts:
        span = [b for b in facts if a.at <= b.at <= a.at + timedelta(minutes=width)]
        if len(span) >= count:
            expected |= {b.evaluation_id for b in span}
    assert flagged(detect.good_bursts(facts, rules)) == expected
