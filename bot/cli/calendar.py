"""`haochaping calendar`: which years of the official calendar are known, and importing one.

`calendar show` prints, as JSON, the years the packaged calendar (chinesecalendar) covers, the years imported
into the database, the years the policy's overrides touch, and whether this year and the next are known.
`calendar import FILE [--replace]` reads a year's arrangement (bot/duties/official_calendar.py says the file's form),
keeps it in the database, where every `serve` and `tick` reads it, and recomputes the deadlines ahead that count
days of that year. Importing the same file again changes nothing; other days for an imported year need
--replace. The import is an audit row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.duties import official_calendar
from bot.infra import audit
from bot.infra.config import Settings
from bot.infra.runtime import open_runtime
from store import calendar_years


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("calendar", help="the official calendar of working days: known years; importing a year")
    csub = c.add_subparsers(dest="calendar_command", required=True)
    csub.add_parser("show", help="which years are known and where from; whether next year is")
    imp = csub.add_parser("import", help="store a year's holidays and make-up working days from a TOML or JSON "
                                         "file, then recompute the deadlines that count its days")
    imp.add_argument("file", type=Path)
    imp.add_argument("--replace", action="store_true", help="change a year imported before")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        arrangement = official_calendar.read(args.file) if args.calendar_command == "import" else None
        result = asyncio.run(_run(settings, arrangement, bool(getattr(args, "replace", False))))
    except official_calendar.CalendarFileError as exc:
        print(f"haochaping calendar: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


async def _run(settings: Settings, arrangement: official_calendar.Arrangement | None, replace: bool
               ) -> dict[str, Any]:
    rt = await open_runtime(settings)
    now = datetime.now(UTC)
    try:
        if arrangement is None:
            async with rt.db.read() as session:
                rows = await calendar_years.all_years(session)
            return official_calendar.years(rt, rows, now)
        actor = audit.cli_actor()
        result = await official_calendar.import_year(rt, arrangement, actor, now, replace=replace)
        if result["changed"]:
            async with rt.db.write() as session:
                await audit.record(session, now, actor, audit.CALENDAR, target=("calendar", arrangement.year),
                                   details={"holidays": result["holidays"], "workdays": result["workdays"],
                                            "source": arrangement.source, "recomputed": result["recomputed"]})
        return result
    finally:
        await rt.close()
