"""The corpus of real-looking grade replies (tests/corpus/grades.tsv) and how one row is judged on a path:
what the person is told and what is stored. Used by channels/test_corpus_channels.py (SMS, the official
account's chat) and web/test_corpus_simulator.py (the simulator's WeChat chat)."""

from __future__ import annotations

from typing import Any

from helpers import Hcp
from replies import ASK, Row, load

from dialogs.types import Reply

ROWS = load("grades")
BAD = ("dissatisfied", "very_dissatisfied")
SOURCE = "zh_Hans"


def said(hcp: Hcp, key: str, **params: Any) -> str:
    return hcp.rt.render(Reply(key, params), SOURCE)


def check(row: Row, first: str, thanks: str, reasons_asked: bool, asked_again: bool,
          stored: list[tuple[str, list[str]]]) -> str | None:
    """Why the row went wrong on this path, or None."""
    if row.expected == ASK:
        if stored or not asked_again:
            return f"{row.reply!r} (line {row.line}) should be asked again: told {first!r}, stored {stored}"
    elif row.expected in BAD:
        if not reasons_asked or stored != [(row.expected, ["attitude"])]:
            return f"{row.reply!r} (line {row.line}) should be {row.expected}: told {first!r}, stored {stored}"
    elif first != thanks or stored != [(row.expected, [])]:
        return f"{row.reply!r} (line {row.line}) should be {row.expected}: told {first!r}, stored {stored}"
    return None
