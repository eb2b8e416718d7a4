"""CSV written batch by batch: UTF-8 with a BOM, RFC 4180 quoting, and a guard against formula injection.

The BOM is there because Excel, without it, reads a CSV in the machine's ANSI code page and turns
every Chinese character into mojibake; LibreOffice and the csv module skip it. Rows end with CRLF
as RFC 4180 says. A text cell that a spreadsheet would take for a formula (it starts with = + - @,
a tab or a carriage return) gets a leading apostrophe: citizens and agencies type these texts, and
a cell `=HYPERLINK(...)` must not run when a clerk opens the file (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from bot.figures.exports.columns import Cell

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_STARTS = frozenset(FORMULA_STARTS)
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """What UTF-8 can carry: lone surrogates (possible in a Python str, never in a valid text) removed."""
    return _SURROGATES.sub("", text)


def guard(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Cell) -> str:
    """Called for every cell of millions of rows: the common case (a plain text) is two tests. A lone
    surrogate is dropped when the batch is encoded; only a leading one must go first, lest it hide a `=`."""
    if value.__class__ is str:
        assert isinstance(value, str)
        if not value:
            return value
        if value[0] in _STARTS:
            return "'" + value
        return guard(clean(value)) if "\ud800" <= value[0] <= "\udfff" else value
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


class CsvStream:
    """`start()` gives the BOM and the header line, `rows()` the bytes of each batch, `finish()` the end
    (nothing: a CSV has no trailer, but the handler treats both writers alike)."""

    content_type = "text/csv"
    extension = "csv"

    def __init__(self, header: Sequence[str]) -> None:
        self._header = list(header)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def _take(self) -> bytes:
        data = self._buffer.getvalue().encode("utf-8", errors="ignore")  # lone surrogates: dropped
        self._buffer.seek(0)
        self._buffer.truncate()
        return data

    def start(self) -> bytes:
        self._buffer.write(BOM)
        self._writer.writerow(self._header)
        return self._take()

    def rows(self, rows: Iterable[Sequence[Cell]]) -> bytes:
        self._writer.writerows([cell(v) for v in row] for row in rows)
        return self._take()

    def finish(self) -> bytes:
        return b""
