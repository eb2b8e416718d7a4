"""A count of days in the policy ("5 working days", "7 natural days"): its own module because both the
policy and its statistics part (the publication delay) read it, and the policy imports the latter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DayUnit = Literal["working", "natural"]


@dataclass(frozen=True)
class DaySpan:
    days: int
    unit: DayUnit

    @classmethod
    def parse(cls, key: str, value: Any) -> DaySpan:
        """A ValueError names the key that is wrong (the policy turns it into a PolicyError)."""
        if not isinstance(value, dict) or set(value) - {"days", "unit"}:
            raise ValueError(f"{key}: expected {{ days = N, unit = \"working\"|\"natural\" }}, got {value!r}")
        days, unit = value.get("days"), value.get("unit", "working")
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise ValueError(f"{key}.days: expected a whole number >= 0, got {days!r}")
        if unit not in ("working", "natural"):
            raise ValueError(f"{key}.unit: expected \"working\" or \"natural\", got {unit!r}")
        return cls(days, unit)
