"""`[supervision]` in the policy (issue 25): the thresholds of each signal and the share of raters called back.

Every threshold is a rule a person can read in docs/supervision.md, with why its default is what it is. A
signal only flags; these numbers decide what a supervisor is shown, never what a rating counts for.

```toml
[supervision.good_burst]      # many good ratings from one device, address, terminal or window in a short time
count = 8
minutes = 10
[supervision.fast_answer]     # ratings given sooner after the reminder than a person reads and answers it
seconds = 10
count = 3
days = 30
[supervision.shared_rater]    # one phone or WeChat account rating the cases of several applicants
applicants = 3
days = 30
[supervision.own_window]      # a clerk whose cases are rated (almost) only at their own window's device
cases = 20
share = 0.95
margin = 0.3                  # above the hall's other clerks' share by this much
days = 30
[supervision.serial_bad]      # one rater's bad reviews of several agencies
agencies = 3
days = 30
[supervision.repeated_text]   # the same bad review's words on several cases
count = 3
chars = 15                    # shorter words are what many people say (工作人员态度不好)
days = 30
[supervision.grade_shift]     # an agency's share of bad reviews far from its own history
recent_days = 7
history_days = 90
min_ratings = 30
z = 4.0
[supervision.callbacks]       # random supervisory callbacks: a share of each agency's rated cases per period
share = 0.02
minimum = 5
period = "month"              # or "week"
```
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

KINDS = ("good_burst", "fast_answer", "shared_rater", "own_window", "serial_bad", "repeated_text", "grade_shift",
         "denied_rating")
PERIODS = ("month", "week")


class SupervisionError(ValueError):
    pass


@dataclass(frozen=True)
class GoodBurst:
    count: int = 8
    minutes: int = 10


@dataclass(frozen=True)
class FastAnswer:
    seconds: int = 10
    count: int = 3
    days: int = 30


@dataclass(frozen=True)
class SharedRater:
    applicants: int = 3
    days: int = 30


@dataclass(frozen=True)
class OwnWindow:
    cases: int = 20
    share: float = 0.95
    margin: float = 0.3  # the other clerks of the hall rate through the device this much less, on average
    days: int = 30


@dataclass(frozen=True)
class SerialBad:
    agencies: int = 3
    days: int = 30


@dataclass(frozen=True)
class RepeatedText:
    count: int = 3
    chars: int = 15
    days: int = 30


@dataclass(frozen=True)
class GradeShift:
    recent_days: int = 7
    history_days: int = 90
    min_ratings: int = 30
    z: float = 4.0


@dataclass(frozen=True)
class Callbacks:
    share: float = 0.02
    minimum: int = 5
    period: str = "month"


@dataclass(frozen=True)
class SupervisionRules:
    good_burst: GoodBurst = field(default_factory=GoodBurst)
    fast_answer: FastAnswer = field(default_factory=FastAnswer)
    shared_rater: SharedRater = field(default_factory=SharedRater)
    own_window: OwnWindow = field(default_factory=OwnWindow)
    serial_bad: SerialBad = field(default_factory=SerialBad)
    repeated_text: RepeatedText = field(default_factory=RepeatedText)
    grade_shift: GradeShift = field(default_factory=GradeShift)
    callbacks: Callbacks = field(default_factory=Callbacks)

    @property
    def lookback_days(self) -> int:
        """How far back the longest rule looks (the scan reads no older rating)."""
        return max(self.fast_answer.days, self.shared_rater.days, self.own_window.days, self.serial_bad.days,
                   self.repeated_text.days)


def _number(key: str, value: Any, kind: type) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise SupervisionError(f"{key}: expected a {'whole ' if kind is int else ''}number, got {value!r}")
    if value <= 0:
        raise SupervisionError(f"{key}: expected a number above 0, got {value!r}")
    return value


def _table(name: str, value: Any, base: Any) -> Any:
    if not isinstance(value, dict):
        raise SupervisionError(f"supervision.{name}: expected a table, got {value!r}")
    known = {f.name: f for f in fields(base)}
    unknown = set(value) - set(known)
    if unknown:
        raise SupervisionError(f"supervision.{name}: unknown key(s) {', '.join(sorted(unknown))}; "
                               f"expected {', '.join(known)}")
    kw: dict[str, Any] = {}
    for key, raw in value.items():
        if key == "period":
            if raw not in PERIODS:
                raise SupervisionError(f"supervision.{name}.period: expected one of {list(PERIODS)}, got {raw!r}")
            kw[key] = raw
            continue
        default = getattr(base, key)
        kw[key] = _number(f"supervision.{name}.{key}", raw, int if isinstance(default, int) else float)
        if key in ("share", "margin") and kw[key] > 1:
            raise SupervisionError(f"supervision.{name}.{key}: expected a fraction from 0 to 1, got {raw!r}")
    return replace(base, **kw)


def parse_supervision(doc: Any) -> SupervisionRules:
    if not isinstance(doc, dict):
        raise SupervisionError(f"supervision: expected a table, got {doc!r}")
    base = SupervisionRules()
    known = [f.name for f in fields(base)]
    unknown = set(doc) - set(known)
    if unknown:
        raise SupervisionError(f"supervision: unknown table(s) {', '.join(sorted(unknown))}; "
                               f"expected {', '.join(known)}")
    return replace(base, **{name: _table(name, value, getattr(base, name)) for name, value in doc.items()})
