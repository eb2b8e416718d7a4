"""The corpus of real-looking citizen replies (tests/corpus/*.tsv): one table read by every test that
reads replies, whether through the parser alone or through SMS, WeChat and the simulator.

A row is `reply<TAB>expected<TAB>why`. `expected` is a grade, `ask` (nothing is stored; the person is
asked again), or for reasons the numbers in order. In `reply`, \\n, \\t and \\\\ are the only escapes.
Lines starting with `#` are comments; `# == name ==` starts a group.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "corpus"
ASK = "ask"


@dataclass(frozen=True)
class Row:
    reply: str
    expected: str
    why: str
    group: str
    line: int


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def load(name: str) -> list[Row]:
    rows: list[Row] = []
    group = ""
    for number, line in enumerate((HERE / f"{name}.tsv").read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("# =="):
            group = line.strip("# =").strip()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        reply, expected, why = [*line.split("\t"), "", ""][:3]
        rows.append(Row(_unescape(reply), expected.strip(), why.strip(), group, number))
    return rows


def params(rows: list[Row]) -> list[object]:
    """pytest parameters named by file line and group, so that a failure points at its row."""
    return [pytest.param(r, id=f"{r.line}-{r.group[:24]}-{r.reply[:16]}") for r in rows]
