"""One export from the store to bytes, shared by the HTTP endpoints and `haochaping export`.

`chunks()` yields the file piece by piece: the header, then the rows of each batch as they are read,
then the trailer (the XLSX's workbook and zip directory). The caller writes each piece out before the
next batch is read, so memory holds one batch whatever the size of the export.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.exports.columns import CELLS, COLUMNS, Formatting
from bot.exports.csv_stream import CsvStream
from bot.exports.xlsx_stream import XlsxStream
from bot.i18n import SOURCE
from bot.runtime import Runtime
from dialogs.grades import Grade
from store import exports as store
from store.engine import Database

FORMATS = ("csv", "xlsx")
# Who may have personal data whole: admins, and 12345 agents, who call raters back.
FULL_ROLES = ("admin", "agent")

log = logging.getLogger("haochaping.exports")


@dataclass
class Progress:
    rows: int = 0


# Who never sees who rated, not even masked: the agencies (DOMAIN "Privacy and integrity").
ANONYMOUS_ROLES = ("l2",)


def formatting(rt: Runtime, full: bool, identity: bool = True) -> Formatting:
    labels = {g.value: rt.catalogs.text(SOURCE, f"grade.{g.value}") for g in Grade}
    return Formatting(rt.policy.tz, labels, rt.sealer.open if full else None, identity)


def writer(kind: str, fmt: str, created: datetime | None = None) -> CsvStream | XlsxStream:
    header = COLUMNS[kind]
    return CsvStream(header) if fmt == "csv" else XlsxStream(kind, header, created=created)


async def chunks(db: Database, kind: str, out: CsvStream | XlsxStream, filters: store.Filters, f: Formatting,
                 progress: Progress, *, batch: int = store.BATCH) -> AsyncIterator[bytes]:
    cells = CELLS[kind]
    yield out.start()
    async for rows in store.batches(db, kind, filters, batch):
        yield out.rows([cells(r, f) for r in rows])
        progress.rows += len(rows)
    yield out.finish()


def filename(kind: str, fmt: str, first: str | None, last: str | None) -> str:
    """evaluations_2026-11-01_2026-11-30.xlsx; `from`/`to` alone say so; neither: "all"."""
    if first and last:
        span = f"{first}_{last}"
    elif first or last:
        span = f"from_{first}" if first else f"to_{last}"
    else:
        span = "all"
    return f"{kind.replace('-', '_')}_{span}.{fmt}"


def log_unmasked(who: str, role: str, kind: str, fmt: str, filters: store.Filters, rows: int,
                 complete: bool = True) -> None:
    """An export with whole numbers and names leaves a trace: who, what they asked, how many rows. Never
    the data: the filters hold codes and instants only."""
    log.info("unmasked export by %s (%s): %s.%s from=%s to=%s agencies=%s districts=%s rows=%d%s", who, role, kind,
             fmt, filters.start.isoformat() if filters.start else "-", filters.end.isoformat() if filters.end else "-",
             ",".join(filters.agencies) if filters.agencies is not None else "*",
             ",".join(filters.districts) if filters.districts is not None else "*", rows,
             "" if complete else " (interrupted)")


def codes(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
