"""The statistics' part of the policy: the composite score's weights, the rankings' threshold, and the
halls (政务服务大厅) whose coverage is measured (Shantou art. 33–34). Data, not code: jurisdictions
weigh the four figures differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from bot.policy.spans import DaySpan

METRICS = ("score", "rectification", "coverage", "participation")
Every = Literal["month", "quarter", "year"]
EVERY: tuple[Every, ...] = ("month", "quarter", "year")
MONTHS: dict[Every, int] = {"month": 1, "quarter": 3, "year": 12}


@dataclass(frozen=True)
class Hall:
    code: str
    name: str
    district: str | None = None
    district_name: str | None = None
    rating: bool = True  # rating devices (or a QR code) in service: the hall counts as covered


@dataclass(frozen=True)
class PublishSchedule:
    """Periodic publication (Shantou art. 34, 38: the figures are published and reported regularly).

    A period is published `after` its last day, not at once: the period's last cases still get their
    reminders, ratings and defaults in the days that follow, and a snapshot frozen at midnight would
    show them as unrated for ever.
    """

    every: Every
    after: DaySpan = DaySpan(5, "working")

    def period_before(self, day: date) -> tuple[date, date, str]:
        """The last whole period that ends before `day`: its first day, its last day and its label
        (`2026-11`, `2026-Q4`, `2026`)."""
        step = MONTHS[self.every]
        index = day.year * 12 + day.month - 1  # months since year 0
        first_month = index - index % step - step  # the period before the one `day` is in
        first = date(first_month // 12, first_month % 12 + 1, 1)
        after = first_month + step
        last = date(after // 12, after % 12 + 1, 1) - timedelta(days=1)
        if self.every == "month":
            label = f"{first.year}-{first.month:02d}"
        elif self.every == "quarter":
            label = f"{first.year}-Q{(first.month - 1) // 3 + 1}"
        else:
            label = str(first.year)
        return first, last, label


@dataclass(frozen=True)
class StatisticsRules:
    # Weights of the composite score, each figure taken on 0–100 (the mean score × 10, rates × 100).
    weights: dict[str, float] = field(default_factory=lambda: {
        "score": 40.0, "rectification": 30.0, "coverage": 10.0, "participation": 20.0})
    rank_min_cases: int = 1  # a group with fewer cases in the period is listed but not ranked
    halls: dict[str, Hall] = field(default_factory=dict)
    publish: PublishSchedule | None = None  # None: periods are published by hand only (API, CLI)


def parse_statistics(value: Any, halls: Any) -> StatisticsRules:
    """`[statistics]` and `[halls.<code>]`; a ValueError names the key that is wrong."""
    kw: dict[str, Any] = {}
    if value is not None:
        if not isinstance(value, dict) or set(value) - {"weights", "rank_min_cases", "publish"}:
            raise ValueError(f"statistics: expected a table with keys weights, rank_min_cases, publish, got {value!r}")
        if "weights" in value:
            w = value["weights"]
            if not isinstance(w, dict) or set(w) - set(METRICS) or not w:
                raise ValueError(f"statistics.weights: expected a table with keys among {list(METRICS)}, got {w!r}")
            for k, v in w.items():
                if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                    raise ValueError(f"statistics.weights.{k}: expected a number >= 0, got {v!r}")
            if not sum(w.values()) > 0:
                raise ValueError("statistics.weights: at least one weight must be above 0")
            kw["weights"] = {k: float(w.get(k, 0)) for k in METRICS}
        if "rank_min_cases" in value:
            m = value["rank_min_cases"]
            if not isinstance(m, int) or isinstance(m, bool) or m < 0:
                raise ValueError(f"statistics.rank_min_cases: expected a whole number >= 0, got {m!r}")
            kw["rank_min_cases"] = m
        if "publish" in value:
            kw["publish"] = _schedule(value["publish"])
    if halls is not None:
        if not isinstance(halls, dict):
            raise ValueError(f"halls: expected tables [halls.<code>], got {halls!r}")
        parsed = {}
        for code, h in halls.items():
            keys = {"name", "district", "district_name", "rating"}
            if not isinstance(h, dict) or set(h) - keys or not isinstance(h.get("name"), str):
                raise ValueError(f"halls.{code}: expected {{ name = \"…\", district = \"…\", rating = true }}, "
                                 f"got {h!r}")
            for k in ("district", "district_name"):
                if k in h and not isinstance(h[k], str):
                    raise ValueError(f"halls.{code}.{k}: expected a string, got {h[k]!r}")
            if not isinstance(h.get("rating", True), bool):
                raise ValueError(f"halls.{code}.rating: expected true or false, got {h['rating']!r}")
            parsed[str(code)] = Hall(str(code), h["name"], h.get("district"), h.get("district_name"),
                                     h.get("rating", True))
        kw["halls"] = parsed
    return StatisticsRules(**kw)


def _schedule(value: Any) -> PublishSchedule:
    if not isinstance(value, dict) or set(value) - {"every", "after"} or "every" not in value:
        raise ValueError(f"statistics.publish: expected {{ every = \"month\"|\"quarter\"|\"year\", "
                         f"after = {{ days = N, unit = \"working\" }} }}, got {value!r}")
    if value["every"] not in EVERY:
        raise ValueError(f"statistics.publish.every: expected one of {list(EVERY)}, got {value['every']!r}")
    if "after" not in value:
        return PublishSchedule(value["every"])
    after = DaySpan.parse("statistics.publish.after", value["after"])
    if after.days > 366:
        raise ValueError(f"statistics.publish.after.days: at most 366, got {after.days}")
    return PublishSchedule(value["every"], after)
