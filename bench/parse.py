"""Reading replies: microseconds per reply for dialogs.parse.parse_grade, beside a bare baseline.

Rows (one process, no server; the same on both configurations, so run once):
- `parse corpus`: every reply of tests/corpus/grades.tsv (625 real-looking replies: digits, words,
  negations, hedges, questions, traditional characters, English), read by the grammar.
- `parse digits`: "1" … "5", the commonest SMS answer (a fast path skips the grammar).
- `parse letters`: a 600-character complaint that starts with 非常不满意 (WeChat allows long texts).
- `baseline`: the same corpus through one regex scan for the five grade words and lone digits, the
  whole of what the parser did before the grammar (it misread 不怎么满意 and 不是非常满意): what the
  grammar's care costs on top of finding the words at all.

Each reply is read 20 times in a row; p50/p99 are over the per-reply means (the table's p50_ms and p99_ms
columns: 0.0153 ms is 15.3 µs). The goals: p99 under 100 µs for the corpus and the digits, under 1 ms for
the letter (a rating's whole path costs milliseconds of CPU; bench/webhooks.py measures that).

    .venv/bin/python bench/parse.py
"""

from __future__ import annotations

import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # after the project: tests/bot, tests/store … must not shadow its packages

from replies import load  # noqa: E402

from bench.common import Row, percentile, table  # noqa: E402
from dialogs.parse import parse_grade  # noqa: E402

REPEAT = 20
GOALS_P99_US = {"parse corpus": 100.0, "parse digits": 100.0, "parse letters": 1000.0}
_WORDS = re.compile("非常不满意|非常满意|基本满意|不满意|满意|[1-5]")


def _baseline(text: str) -> str | None:
    found = set(_WORDS.findall(unicodedata.normalize("NFKC", text)))
    return found.pop() if len(found) == 1 else None


def _time(fn: Callable[[str], object], replies: list[str]) -> list[float]:
    per_reply = []
    for reply in replies:
        started = time.perf_counter()
        for _ in range(REPEAT):
            fn(reply)
        per_reply.append((time.perf_counter() - started) / REPEAT * 1e6)
    return sorted(per_reply)


def _row(name: str, fn: Callable[[str], object], replies: list[str], note: str = "") -> Row:
    micros = _time(fn, replies)
    p99 = percentile(micros, 99)
    goal = GOALS_P99_US.get(name)
    verdict = "" if goal is None else f" · goal p99 < {goal:g} µs: " + ("met" if p99 and p99 < goal else "NOT met")
    return Row(name, "pure", len(replies), per_second=1e6 / statistics.fmean(micros),
               p50_ms=percentile(micros, 50) / 1000, p99_ms=(p99 or 0) / 1000, errors=0,
               seconds=sum(micros) * REPEAT / 1e6, note=note + verdict)


def measure(config: str = "pure") -> list[Row]:
    corpus = [r.reply for r in load("grades")]
    letter = "非常不满意，" + "窗口说材料不全让我回去补，第二次去又换了一个说法，" * 24
    return [
        _row("parse corpus", parse_grade, corpus),
        _row("parse digits", parse_grade, ["1", "2", "3", "4", "5"] * 20),
        _row("parse letters", parse_grade, [letter[:600]] * 20),
        _row("baseline", _baseline, corpus, "one regex scan for grade words and digits"),
    ]


if __name__ == "__main__":
    print(table(measure()))
