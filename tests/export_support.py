"""Reading the exports back (CSV and XLSX of evaluations and work orders): fetching one, its rows, its cells
as the CSV writes them, its raw XML, and the CSV and XLSX of one request checked to hold the same cells. Used by
bot/figures/test_exports.py, bot/rating/test_handling_types.py and bot/infra/test_privacy_audit.py."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

import openpyxl
from helpers import TOKEN, Hcp


async def fetch(hcp: Hcp, path: str, token: str | None = TOKEN) -> tuple[int, Any, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await hcp.client.get(path, headers=headers)
    return resp.status, resp.headers, await resp.read()


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:20]
    csv.field_size_limit(max(csv.field_size_limit(), len(body)))  # the reader's own 128 KiB cap, not the export's
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def excel_text(value: Any) -> str:
    """A cell as the CSV writes it: nothing for an empty cell, true/false, digits; Excel's own escape of
    an underscore (_x005F_) undone, as Excel itself reads it (openpyxl does not)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def read_xlsx(body: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(body))
    rows: list[list[Any]] = []
    for sheet in book.worksheets:
        rows.extend(list(r) for r in sheet.iter_rows(values_only=True))
    return rows


def xml_of(body: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        return b"".join(z.read(name) for name in z.namelist())


async def both(hcp: Hcp, path: str, query: str, token: str | None = TOKEN) -> list[list[str]]:
    """The CSV and the XLSX of the same request, checked to hold the same cells; the CSV's rows."""
    status, headers, body = await fetch(hcp, f"{path}.csv?{query}", token)
    assert status == 200, (status, body[:300])
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = read_csv(body)
    status, headers, xlsx = await fetch(hcp, f"{path}.xlsx?{query}", token)
    assert status == 200, (status, xlsx[:300])
    assert headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    unguarded = [[c[1:] if c.startswith("'=") else c for c in r] for r in rows]
    assert [[excel_text(v) for v in r] for r in read_xlsx(xlsx)] == unguarded
    return rows
