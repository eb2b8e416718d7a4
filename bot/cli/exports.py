"""`haochaping export evaluations|work-orders`: the same files as GET /api/v1/exports/…, from the command line.

The same queries and writers as the endpoints, so a file made by a cron job and one downloaded from the
console are alike. Personal data is masked, the words people typed included, unless `--unmasked`:
whoever runs this holds the database and its key already, so the flag is not refused and the file is
whole as an admin's export is, but it is an audit row (`export.unmasked`, actor `cli:<login name>`),
written before the file is complete, and a log line, as the endpoint's. A file
given with `--output` is written beside itself and renamed when complete, so a failed export never
leaves a file that looks whole.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from bot.figures.exports import stream
from bot.figures.exports.columns import KINDS
from bot.infra import audit
from bot.infra.config import Settings
from bot.infra.runtime import open_runtime
from bot.policy.rules import load_policy
from bot.web.stats import _bound
from store import exports as store


class Usage(ValueError):
    pass


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="evaluations or work orders of a period as CSV or XLSX (masked by default)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--from", dest="start", help="a date (the local day) or an ISO-8601 instant with an offset")
    p.add_argument("--to", dest="end", help="a date (that whole local day included) or an instant")
    p.add_argument("--agency", action="append", help="only this agency (repeat for several)")
    p.add_argument("--district", action="append", help="only this district (repeat for several)")
    p.add_argument("--format", choices=stream.FORMATS,
                   help="csv or xlsx (default: from the --output file's extension, else csv)")
    p.add_argument("--output", "-o", help="the file to write (default: standard output)")
    p.add_argument("--unmasked", action="store_true", help="whole phone numbers, openids and names (logged)")


def _filters(settings: Settings, args: argparse.Namespace) -> store.Filters:
    tz = load_policy(settings.policy_path).tz
    bounds: list[datetime | None] = []
    for name, raw in (("--from", args.start), ("--to", args.end)):
        try:
            bounds.append(_bound(raw, tz, end=name == "--to") if raw else None)
        except ValueError:
            raise Usage(f"{name} {raw!r}: expected a date (2026-11-01) or an ISO-8601 instant with an offset") from None
    if bounds[0] is not None and bounds[1] is not None and bounds[1] < bounds[0]:
        raise Usage("--to comes before --from")
    agencies = stream.codes(args.agency or []) or None
    districts = stream.codes(args.district or []) or None
    return store.Filters(bounds[0], bounds[1], agencies, districts, bool(args.unmasked))


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.output).suffix.lower().lstrip(".") if args.output else ""
    return suffix if suffix in stream.FORMATS else "csv"


async def _export(settings: Settings, args: argparse.Namespace, filters: store.Filters, fmt: str,
                  sink: BinaryIO) -> int:
    rt = await open_runtime(settings)
    progress = stream.Progress()
    complete = audited = False
    operator = audit.cli_actor()

    async def record(ended: bool) -> None:
        await stream.audit_unmasked(rt.db, rt.policy.tz, operator, "cli", args.kind, fmt, filters, stream.ALL,
                                    progress, ended, datetime.now(UTC))

    try:
        out = stream.writer(args.kind, fmt, created=datetime.now(UTC).astimezone(rt.policy.tz))
        async for chunk in stream.chunks(rt.db, args.kind, out, filters, stream.formatting(rt, filters.full),
                                         progress):
            sink.write(chunk)
        if filters.full:  # on record before the file is complete (renamed into place, or stdout flushed)
            await record(True)
            audited = True
        sink.flush()
        complete = True
    finally:
        try:
            if filters.full and not audited:
                await record(False)
        finally:
            if filters.full:
                stream.log_unmasked(operator, "cli", args.kind, fmt, filters, progress.rows, complete)
            await rt.close()
    return progress.rows


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        filters = _filters(settings, args)
    except Usage as exc:
        print(json.dumps({"error": str(exc)}, ensure_ascii=False), file=sys.stderr)
        return 2
    fmt = _format(args)
    if not args.output:
        rows = asyncio.run(_export(settings, args, filters, fmt, sys.stdout.buffer))
    else:
        target = Path(args.output)
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as sink:
                rows = asyncio.run(_export(settings, args, filters, fmt, sink))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    print(json.dumps({"rows": rows, "format": fmt, "output": args.output or "-"}), file=sys.stderr)
    return 0
