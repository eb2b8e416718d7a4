"""One export from the store to bytes, shared by the HTTP endpoints and `haochaping export`.

`chunks()` yields the file piece by piece: the header, then the rows of each batch as they are read,
then the trailer (the XLSX's workbook and zip directory). The caller writes each piece out before the
next batch is read, so memory holds one batch whatever the size of the export.

An unmasked export follows the console's reveal rule (issue 18): an admin's (and the CLI's) is whole; an
agent's is whole only where the console would reveal the number, the callback step, and each work order
so revealed gets a `reveal` event in its history (actor, `via: export`) before its row leaves, as a reveal
at the console does. Every unmasked export ends with one audit row (`export.unmasked`: who, the period
and scope, the rows, the whole rows), written before the response is ended (`audit_unmasked`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from bot.figures.exports.columns import ALL, CALLBACK_STEP, CELLS, COLUMNS, Formatting
from bot.figures.exports.csv_stream import CsvStream
from bot.figures.exports.xlsx_stream import XlsxStream
from bot.infra import audit
from bot.infra.i18n import SOURCE
from bot.infra.runtime import Runtime
from dialogs.grades import Grade
from store import exports as store
from store.engine import Database
from store.models import WorkOrderEvent

FORMATS = ("csv", "xlsx")
# Who may have personal data whole: admins, and 12345 agents, who call raters back (where the console
# would reveal the number to them: SCOPES).
SCOPES = {"admin": ALL, "agent": CALLBACK_STEP}
FULL_ROLES = tuple(SCOPES)
AUDITED_WORK_ORDERS = 1000  # the ids of revealed work orders an audit row lists (the rest are counted)

log = logging.getLogger("haochaping.exports")


@dataclass
class Progress:
    rows: int = 0
    whole: int = 0  # rows given with personal data whole
    work_orders: list[int] = field(default_factory=list)  # revealed at the callback step


# Who never sees who rated, not even masked: the agencies (DOMAIN "Privacy and integrity").
ANONYMOUS_ROLES = ("l2",)


def formatting(rt: Runtime, full: bool, identity: bool = True, scope: str = ALL) -> Formatting:
    labels = {g.value: rt.catalogs.text(SOURCE, f"grade.{g.value}") for g in Grade}
    return Formatting(rt.policy.tz, labels, rt.sealer.open if full else None, identity, scope)


def writer(kind: str, fmt: str, created: datetime | None = None) -> CsvStream | XlsxStream:
    header = COLUMNS[kind]
    return CsvStream(header) if fmt == "csv" else XlsxStream(kind, header, created=created)


async def chunks(db: Database, kind: str, out: CsvStream | XlsxStream, filters: store.Filters, f: Formatting,
                 progress: Progress, *, batch: int = store.BATCH, revealed_by: str | None = None,
                 now: datetime | None = None) -> AsyncIterator[bytes]:
    """The file's pieces. With `revealed_by`, each work order an agent's export reveals is recorded in its
    history (at `now`) before the batch that holds it is handed out."""
    cells = CELLS[kind]
    yield out.start()
    async for rows in store.batches(db, kind, filters, batch):
        if f.full:
            whole = [r for r in rows if f.whole(r)]
            progress.whole += len(whole)
            if f.scope == CALLBACK_STEP and whole:
                progress.work_orders.extend(r.callback_wo_id for r in whole)
                if revealed_by is not None:
                    assert now is not None
                    await record_reveals(db, revealed_by, [(r.callback_wo_id, r.phone_masked) for r in whole], now)
        yield out.rows([cells(r, f) for r in rows])
        progress.rows += len(rows)
    yield out.finish()


async def record_reveals(db: Database, actor: str, revealed: list[tuple[int, str | None]], now: datetime) -> None:
    """A `reveal` event in each work order's history, as the console writes one (`via: export`)."""
    async with db.write() as session:
        for wo_id, masked in revealed:
            session.add(WorkOrderEvent(work_order_id=wo_id, action="reveal", actor=actor, from_status="reviewed",
                                       to_status="reviewed", data={"masked": masked, "via": "export"}, at=now))


async def audit_unmasked(db: Database, tz: tzinfo, actor: str, role: str, kind: str, fmt: str,
                         filters: store.Filters, scope: str, progress: Progress, complete: bool, now: datetime,
                         address: str | None = None) -> None:
    """The audit row of an unmasked export: who, the period and scope asked for, how many rows left and how
    many of them whole (with the work orders revealed), whether the file was complete. Never the data."""
    def instant(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value is not None else None

    details: dict[str, Any] = {
        "role": role, "kind": kind, "format": fmt, "from": instant(filters.start), "to": instant(filters.end),
        "agencies": list(filters.agencies) if filters.agencies is not None else "*",
        "districts": list(filters.districts) if filters.districts is not None else "*",
        "scope": scope, "rows": progress.rows, "whole_rows": progress.whole,
        "work_orders": progress.work_orders[:AUDITED_WORK_ORDERS], "complete": complete}
    if len(progress.work_orders) > AUDITED_WORK_ORDERS:
        details["more_work_orders"] = len(progress.work_orders) - AUDITED_WORK_ORDERS
    async with db.write() as session:
        await audit.record(session, now, actor, audit.EXPORT, target=("export", f"{kind}.{fmt}"), details=details,
                           address=address)


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
