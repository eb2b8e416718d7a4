"""The published figures (Shantou art. 33–34): per group, the composite score and hall coverage on top
of the stored sums, the total, and the rankings of agencies, halls and districts (and of clerks, Shantou art. 40).

Everything here is derived from `store.stats.figures` (the stored records) and the policy (weights, the
hall list); nothing takes a figure from outside, so there is no way to edit one (Haikou 九). The API,
the console, the CLI and the frozen snapshots all go through these functions, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.policy.statistics import METRICS, StatisticsRules
from store import stats

PUBLISHED_RANKINGS = ("agency", "hall", "district")  # the three rankings of Shantou art. 34, frozen in snapshots
# And the clerks (窗口人员 by staff_id): Shantou art. 40 and Fujian art. 16 act on "连续排名靠后的工作人员", the
# staff ranked low period after period. An internal list (Shandong art. 19 publishes staff rankings only on the
# intranet), so it is asked for and never frozen into a published snapshot.
RANKED = (*PUBLISHED_RANKINGS, "staff")
RANK_METRICS = ("composite_score", "mean_score", "participation_rate", "rectification_rate", "hall_coverage")
RankOf = Literal["agency", "hall", "district", "staff"]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def hall_coverage(rules: StatisticsRules, by: str | None, key: str | None) -> float | None:
    """Halls with rating enabled / all halls, from the policy's hall list: for a district its halls, for
    a hall itself (1 or 0), for the total every hall; None where halls are not known."""
    halls = list(rules.halls.values())
    if by == "hall":
        hall = rules.halls.get(key or "")
        return None if hall is None else (1.0 if hall.rating else 0.0)
    if by == "district":
        halls = [h for h in halls if h.district is not None and h.district == key]
    elif by is not None:
        return None
    return _rate(sum(h.rating for h in halls), len(halls))


def composite(rules: StatisticsRules, doc: dict[str, Any]) -> float | None:
    """The weighted mean of the four figures on a 0–100 scale (the mean score × 10, rates × 100).

    A figure with nothing to measure (no bad review to rectify, no known hall) is left out and the other
    weights carry the score, so a group is neither rewarded nor punished for what did not happen.
    """
    values = {"score": doc["mean_score"] * 10 if doc["mean_score"] is not None else None,
              "rectification": _scaled(doc["rectification_rate"]),
              "coverage": _scaled(doc["hall_coverage"]),
              "participation": _scaled(doc["participation_rate"])}
    weighed = [(rules.weights.get(m, 0.0), values[m]) for m in METRICS if values[m] is not None]
    total = sum(w for w, _v in weighed)
    if not total:
        return None
    return round(sum(w * v for w, v in weighed if v is not None) / total, 2)


def _scaled(rate: float | None) -> float | None:
    return rate * 100 if rate is not None else None


def group_json(g: stats.GroupFigures, rules: StatisticsRules | None = None, by: str | None = None) -> dict[str, Any]:
    """A group as the API gives it (CONTRACT's fields first, then ours)."""
    doc: dict[str, Any] = {
        "key": g.key, "name": g.name, "cases": g.cases, "rated": g.rated,
        # ÷ the cases that should be rated: a case whose rating was not adopted on appeal is out of the base
        "participation_rate": _rate(g.rated, g.to_rate),
        "mean_score": g.mean_score, "bad_reviews": g.bad_reviews,
        "rectification_rate": _rate(g.rectified, g.work_orders),
        "to_rate": g.to_rate, "work_orders": g.work_orders, "rectified": g.rectified, "overdue": g.overdue,
    }
    if rules is not None:
        doc["hall_coverage"] = hall_coverage(rules, by, g.key)
        doc["composite_score"] = composite(rules, doc)
    return doc


def total_of(groups: Sequence[stats.GroupFigures]) -> stats.GroupFigures:
    """Every case is in exactly one group, whatever the grouping, so the total is the groups' sum; the
    mean is over every scored case (the exact sums, not a mean of the groups' rounded means)."""
    score_sum, scored = sum(g.score_sum for g in groups), sum(g.scored for g in groups)
    return stats.GroupFigures(
        key=None, name=None, cases=sum(g.cases for g in groups), rated=sum(g.rated for g in groups),
        mean_score=round(score_sum / scored, 4) if scored else None, bad_reviews=sum(g.bad_reviews for g in groups),
        work_orders=sum(g.work_orders for g in groups), rectified=sum(g.rectified for g in groups),
        overdue=sum(g.overdue for g in groups), score_sum=score_sum, scored=scored,
        to_rate=sum(g.to_rate for g in groups))


async def report(session: AsyncSession, rules: StatisticsRules, by: stats.GroupBy, start: datetime | None,
                 end: datetime | None, agencies: Sequence[str] | None, dialect: str) -> dict[str, Any]:
    """GET /api/v1/stats: the groups and their total."""
    groups = await stats.figures(session, by, start, end, agencies, dialect=dialect)
    total = group_json(total_of(groups), rules, None)
    if agencies is not None:
        total["hall_coverage"] = None  # the hall list is the jurisdiction's whole, not a few agencies'
        total["composite_score"] = composite(rules, total)
    return {"by": by, "groups": [group_json(g, rules, by) for g in groups], "total": total}


@dataclass(frozen=True)
class Ranked:
    rank: int | None  # None: not ranked (too few cases, or nothing to measure)
    tied: bool
    value: float | None
    group: dict[str, Any]
    why_unranked: str | None = None


def rank(groups: Sequence[dict[str, Any]], metric: str, min_cases: int) -> list[Ranked]:
    """Standard competition ranking ("1224"), highest first: groups whose values are equal at the
    published precision share a rank and are marked `tied`; the next rank skips the places they took.
    Within a tie, and among the unranked, the order is by key, so a ranking is reproducible."""
    places: list[Ranked] = []
    unranked: list[Ranked] = []
    for g in groups:
        value = g.get(metric)
        if g["cases"] < max(min_cases, 1):
            unranked.append(Ranked(None, False, value, g, f"fewer than {max(min_cases, 1)} cases"))
        elif value is None:
            unranked.append(Ranked(None, False, None, g, f"no {metric}"))
        else:
            places.append(Ranked(0, False, value, g))
    places.sort(key=lambda r: (-(r.value or 0.0), str(r.group["key"] or "")))
    out: list[Ranked] = []
    for i, r in enumerate(places):
        if out and out[-1].value == r.value:
            rank_ = out[-1].rank
            out[-1] = Ranked(out[-1].rank, True, out[-1].value, out[-1].group)
        else:
            rank_ = i + 1
        out.append(Ranked(rank_, bool(out) and out[-1].rank == rank_, r.value, r.group))
    unranked.sort(key=lambda r: str(r.group["key"] or ""))
    return out + unranked


def ranked_json(r: Ranked) -> dict[str, Any]:
    return {"rank": r.rank, "tied": r.tied, "value": r.value, **r.group,
            **({"unranked": r.why_unranked} if r.why_unranked else {})}


async def rankings(session: AsyncSession, rules: StatisticsRules, of: RankOf, metric: str,
                   start: datetime | None, end: datetime | None, agencies: Sequence[str] | None,
                   dialect: str) -> dict[str, Any]:
    groups = await stats.figures(session, of, start, end, agencies, dialect=dialect)
    # A case without a hall is no hall; one without a clerk (online, self-service) ranks no clerk.
    docs = [group_json(g, rules, of) for g in groups if g.key is not None]
    return {"of": of, "metric": metric, "min_cases": rules.rank_min_cases,
            "rankings": [ranked_json(r) for r in rank(docs, metric, rules.rank_min_cases)]}
