"""Reporting profiles: one upstream platform each (endpoint, authentication, field names, code maps).

STUB: to be completed (issue 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReportingProfile:
    name: str
    endpoint: str


def parse_profiles(value: Any) -> tuple[ReportingProfile, ...]:
    """`[reporting.<name>]` tables; a ValueError names the key that is wrong."""
    if not isinstance(value, dict):
        raise ValueError(f"reporting: expected tables [reporting.<name>], got {value!r}")
    return tuple(ReportingProfile(str(k), str(v.get("endpoint", ""))) for k, v in value.items())
