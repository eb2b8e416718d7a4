"""The five grades as named values, and the only places where a digit becomes a grade.

The two public code lists run in opposite directions (GB/T 39046 puts 1 = 非常满意, provincial
interfaces put 1 = 非常不满意), so a bare digit never travels inside the software: each edge
converts it with a table of its own.
"""

from __future__ import annotations

from enum import StrEnum


class Grade(StrEnum):
    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"

    @property
    def score(self) -> int:
        return SCORES[self]

    @property
    def is_bad(self) -> bool:
        """A bad review (差评) needs a reason and becomes a work order."""
        return self in (Grade.DISSATISFIED, Grade.VERY_DISSATISFIED)


# Shantou art. 10.
SCORES: dict[Grade, int] = {
    Grade.VERY_SATISFIED: 10,
    Grade.SATISFIED: 8,
    Grade.BASICALLY_SATISFIED: 6,
    Grade.DISSATISFIED: 3,
    Grade.VERY_DISSATISFIED: 0,
}

# The 12345 convention used by every SMS menu and keypad prompt we send: the prompt states it.
PROMPT_DIGITS: dict[str, Grade] = {
    "1": Grade.VERY_SATISFIED,
    "2": Grade.SATISFIED,
    "3": Grade.BASICALLY_SATISFIED,
    "4": Grade.DISSATISFIED,
    "5": Grade.VERY_DISSATISFIED,
}
DIGIT_OF: dict[Grade, str] = {grade: digit for digit, grade in PROMPT_DIGITS.items()}


def parse_grade_name(value: object) -> Grade | None:
    """The API's vocabulary; anything else is None so that the caller can say which field was wrong."""
    try:
        return Grade(value) if isinstance(value, str) else None
    except ValueError:
        return None
