"""The patterns of fake praise (刷好评) and malicious reviews (恶意差评), as pure functions of ratings already stored
(Haikou 002, 九: "对刷好评、恶意差评等行为进行甄别"). Each detector takes the facts and its rule from the policy
(bot/policy/supervision.py) and returns what it found; bot/supervision/scan.py loads the facts and records the
findings as signals. A finding only flags: people decide (docs/supervision.md says each rule and why its
default is what it is).

A rating's *sources* are where it was given, as far as the channel tells: a page's device cookie and client
address (keyed hashes), a self-service terminal's number, a hall window's device (the case's hall and clerk).
Its *rater* is the account it came from: the phone that answered by SMS or on the link it was sent, a WeChat
or mini-program account. Neither is ever a value a person could read.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.policy.supervision import SupervisionRules

# A rating answering the reminder (the SMS, the link in it, a WeChat message): the time it took is a fact.
ANSWERS_REMINDER = ("sms", "web", "wechat", "miniprogram")
GOOD_SCORE = 8  # 满意 and 非常满意 (dialogs/grades.py SCORES)


@dataclass(frozen=True)
class Rated:
    """One rating as the detectors see it."""

    evaluation_id: int
    case_no: str
    agency_code: str
    staff_id: str | None
    hall_code: str | None
    channel: str
    score: int
    bad: bool
    text: str | None
    at: datetime
    rater: str | None = None  # "phone:12", "wechat:7", "miniprogram:3"
    applicant: str | None = None  # the applicant's sealed name (opened only when a rater's cases are counted)
    sources: tuple[str, ...] = ()  # "device:<hash>", "client:<hash>", "terminal:<no>", "window:<hall>/<clerk>"
    reminded_at: datetime | None = None

    @property
    def good(self) -> bool:
        return self.score >= GOOD_SCORE


@dataclass(frozen=True)
class Found:
    """A pattern found: about one subject, within one agency (a pattern across agencies is one finding per
    agency, each for that agency's supervisors)."""

    kind: str
    subject: str
    agency_code: str
    ratings: tuple[Rated, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    staff_id: str | None = None


def _per_agency(kind: str, subject: str, ratings: Sequence[Rated], evidence: dict[str, Any],
                staff_id: str | None = None) -> list[Found]:
    by: dict[str, list[Rated]] = defaultdict(list)
    for r in ratings:
        by[r.agency_code].append(r)
    agencies = len(by)
    return [Found(kind, subject, code, tuple(sorted(rs, key=lambda r: r.evaluation_id)),
                  {**evidence, **({"agencies": agencies} if agencies > 1 else {})}, staff_id)
            for code, rs in sorted(by.items())]


def _span(ratings: Sequence[Rated]) -> dict[str, Any]:
    first, last = min(r.at for r in ratings), max(r.at for r in ratings)
    return {"first": first.isoformat(), "last": last.isoformat(), "ratings": len(ratings)}


def good_bursts(facts: Iterable[Rated], rules: SupervisionRules) -> list[Found]:
    """`count` or more good ratings from one source within `minutes`: more praise than a window serves, or a
    page reloaded and tapped over and over."""
    rule = rules.good_burst
    width = timedelta(minutes=rule.minutes)
    by: dict[str, list[Rated]] = defaultdict(list)
    for r in facts:
        if r.good:
            for source in r.sources:
                by[source].append(r)
    found: list[Found] = []
    for source, rs in sorted(by.items()):
        rs.sort(key=lambda r: (r.at, r.evaluation_id))
        flagged: dict[int, Rated] = {}
        start = 0
        densest = 0
        for end in range(len(rs)):
            while rs[end].at - rs[start].at > width:
                start += 1
            if end - start + 1 >= rule.count:
                densest = max(densest, end - start + 1)
                for r in rs[start:end + 1]:
                    flagged[r.evaluation_id] = r
        if flagged:
            kind = source.split(":", 1)[0]
            staff = source.split("/", 1)[1] if kind == "window" else None
            found += _per_agency("good_burst", source, list(flagged.values()),
                                 {**_span(list(flagged.values())), "source": kind, "densest": densest,
                                  "minutes": rule.minutes}, staff)
    return found


def answered_fast(r: Rated, rules: SupervisionRules) -> bool:
    return (r.channel in ANSWERS_REMINDER and r.reminded_at is not None and r.at >= r.reminded_at
            and (r.at - r.reminded_at).total_seconds() < rules.fast_answer.seconds)


def fast_answers(facts: Iterable[Rated], rules: SupervisionRules) -> list[Found]:
    """`count` or more of one clerk's (or, without a clerk, one agency's) ratings given within `seconds` of
    the reminder: faster than a person receives, reads and answers it."""
    rule = rules.fast_answer
    by: dict[tuple[str, str | None], list[Rated]] = defaultdict(list)
    for r in facts:
        if answered_fast(r, rules):
            by[(r.agency_code, r.staff_id)].append(r)
    found = []
    for (agency, staff), rs in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if len(rs) >= rule.count:
            quickest = min((r.at - r.reminded_at).total_seconds() for r in rs if r.reminded_at)
            subject = f"staff:{agency}/{staff}" if staff else f"agency:{agency}"
            found += _per_agency("fast_answer", subject, rs, {**_span(rs), "seconds": rule.seconds,
                                                              "quickest_seconds": round(quickest, 1)}, staff)
    return found


def shared_raters(facts: Iterable[Rated], rules: SupervisionRules,
                  name_of: Callable[[str], str | None]) -> list[Found]:
    """One phone or WeChat account, or one page device, rating the cases of `applicants` or more different
    applicants: a clerk's own number given for citizens, their phone opening citizens' links, someone rating for
    others. `name_of` opens a sealed name; two applicants
    differ when their names (without spaces, case folded) do; a case without a name says nothing either way."""
    rule = rules.shared_rater
    by: dict[str, list[Rated]] = defaultdict(list)
    for r in facts:
        if r.applicant:  # an account, or a page's device (a terminal's or a window's serves everyone)
            for who in ((f"rater:{r.rater}",) if r.rater else ()) + tuple(s for s in r.sources
                                                                           if s.startswith("device:")):
                by[who].append(r)
    found = []
    for rater, rs in sorted(by.items()):
        if len({r.case_no for r in rs}) < rule.applicants:
            continue
        names = {r.evaluation_id: _name_key(name_of(r.applicant)) for r in rs if r.applicant}
        distinct = {n for n in names.values() if n}
        if len(distinct) >= rule.applicants:
            kind, _, rest = rater.partition(":")
            found += _per_agency("shared_rater", rater, rs,
                                 {**_span(rs), "applicants": len(distinct),
                                  **({"channel": rest.split(":", 1)[0]} if kind == "rater" else {"source": kind})})
    return found


def _name_key(name: str | None) -> str | None:
    if not name:
        return None
    return "".join(unicodedata.normalize("NFKC", name).split()).casefold() or None


@dataclass(frozen=True)
class Tally:
    """A clerk's rated cases in a hall, and how many of them were rated at the hall's device or a terminal."""

    hall_code: str
    staff_id: str
    ratings: int
    at_device: int

    @property
    def share(self) -> float:
        return self.at_device / self.ratings if self.ratings else 0.0


def tally(facts: Iterable[Rated]) -> list[Tally]:
    by: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in facts:
        if r.staff_id and r.hall_code:
            t = by[(r.hall_code, r.staff_id)]
            t[0] += 1
            t[1] += r.channel in ("hall", "terminal")
    return [Tally(hall, staff, n, d) for (hall, staff), (n, d) in sorted(by.items())]


def own_window_clerks(tallies: Sequence[Tally], rules: SupervisionRules) -> list[tuple[Tally, float]]:
    """The clerks with `cases` or more rated cases, `share` or more of them rated at their own window's device,
    where the hall's other clerks' cases are rated there `margin` less on average (with that average): a clerk
    tapping the device for the people they serve. A hall of one clerk has nothing to compare with."""
    rule = rules.own_window
    halls: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])  # the sum of the clerks' shares, and how many
    for t in tallies:
        halls[t.hall_code][0] += t.share
        halls[t.hall_code][1] += 1
    out = []
    for t in tallies:
        total, clerks = halls[t.hall_code]
        if t.ratings < rule.cases or clerks < 2:
            continue
        peers = (total - t.share) / (clerks - 1)  # the hall's other clerks, on average
        if t.share >= rule.share and peers <= t.share - rule.margin:
            out.append((t, peers))
    return out


def own_window_found(t: Tally, peers: float, ratings: Sequence[Rated]) -> list[Found]:
    return _per_agency("own_window", f"window:{t.hall_code}/{t.staff_id}", ratings,
                       {**_span(ratings), "device_share": round(t.share, 3), "hall_share": round(peers, 3),
                        "hall_code": t.hall_code}, t.staff_id)


def own_windows(facts: Sequence[Rated], rules: SupervisionRules) -> list[Found]:
    """`own_window_clerks` over the facts given (all of the halls' ratings of the rule's days)."""
    found = []
    for t, peers in own_window_clerks(tally(facts), rules):
        mine = [r for r in facts if r.hall_code == t.hall_code and r.staff_id == t.staff_id]
        found += own_window_found(t, peers, mine)
    return found


def serial_bad(facts: Iterable[Rated], rules: SupervisionRules) -> list[Found]:
    """One rater (an account, or a page's device) giving bad reviews to `agencies` or more agencies within
    `days`: a grudge carried from desk to desk."""
    rule = rules.serial_bad
    by: dict[str, list[Rated]] = defaultdict(list)
    for r in facts:
        if r.bad:
            for who in ((f"rater:{r.rater}",) if r.rater else ()) + tuple(s for s in r.sources
                                                                           if s.startswith("device:")):
                by[who].append(r)
    found = []
    for who, rs in sorted(by.items()):
        agencies = {r.agency_code for r in rs}
        if len(agencies) >= rule.agencies:
            found += _per_agency("serial_bad", who, rs, {**_span(rs), "bad_reviews": len(rs)})
    return found


_NOT_WORDS = re.compile(r"[\W_]+", re.UNICODE)


def text_key(text: str | None, chars: int) -> str | None:
    """The words of a review compared without spacing, punctuation or width; None when too short to mean a
    copy (a bare 慢 or 差 is what many people say)."""
    if not text:
        return None
    words = _NOT_WORDS.sub("", unicodedata.normalize("NFKC", text)).casefold()
    return hashlib.sha256(words.encode()).hexdigest()[:32] if len(words) >= chars else None


def repeated_texts(facts: Iterable[Rated], rules: SupervisionRules) -> list[Found]:
    """The same words of a bad review on `count` or more cases: one text pasted on many."""
    rule = rules.repeated_text
    by: dict[str, list[Rated]] = defaultdict(list)
    for r in facts:
        key = text_key(r.text, rule.chars) if r.bad else None
        if key:
            by[key].append(r)
    found = []
    for key, rs in sorted(by.items()):
        if len({r.case_no for r in rs}) >= rule.count:
            found += _per_agency("repeated_text", f"text:{key}", rs, {**_span(rs), "cases": len(rs)})
    return found


@dataclass(frozen=True)
class Mix:
    """An agency's ratings and bad reviews in the recent days and in the history before them."""

    agency_code: str
    recent: int
    recent_bad: int
    history: int
    history_bad: int


def grade_shifts(mixes: Iterable[Mix], rules: SupervisionRules, week: str) -> list[Found]:
    """An agency whose share of bad reviews in the last `recent_days` is `z` standard errors or more from its own
    `history_days` before (a two-proportion z-test, each side with `min_ratings` or more): praise bought, or
    a campaign of bad reviews, shows as a break in the agency's own mix. One finding per agency and ISO `week`
    ("2026-W49"), so that a shift a supervisor judged is not raised again every pass."""
    rule = rules.grade_shift
    found = []
    for m in mixes:
        if m.recent < rule.min_ratings or m.history < rule.min_ratings:
            continue
        p1, p0 = m.recent_bad / m.recent, m.history_bad / m.history
        pooled = (m.recent_bad + m.history_bad) / (m.recent + m.history)
        se = math.sqrt(pooled * (1 - pooled) * (1 / m.recent + 1 / m.history))
        if se == 0:
            continue
        z = (p1 - p0) / se
        if abs(z) >= rule.z:
            found.append(Found("grade_shift", f"agency:{m.agency_code}/{week}", m.agency_code, (),
                               {"recent_bad_share": round(p1, 4), "history_bad_share": round(p0, 4),
                                "recent_ratings": m.recent, "history_ratings": m.history, "z": round(z, 2),
                                "direction": "more_bad" if z > 0 else "less_bad"}))
    return found


def detect(facts: Sequence[Rated], rules: SupervisionRules, name_of: Callable[[str], str | None]) -> list[Found]:
    """The patterns found by counting ratings, in the facts given. Each only grows with more ratings, so what it
    finds in a part of the ratings is there in all of them (bot/supervision/scan.py reads only the part that can
    hold a pattern with a new rating). A clerk's share at the device is not such a count (`own_window_clerks`
    compares tallies of the whole hall), nor is an agency's mix (`grade_shifts`)."""
    return [*good_bursts(facts, rules), *fast_answers(facts, rules), *shared_raters(facts, rules, name_of),
            *serial_bad(facts, rules), *repeated_texts(facts, rules)]
