"""The reminder sweep: how fast `reminders.sweep` puts N due reminders in the outbox, and its peak memory.

For each size N, a fresh database (`common.config`) is seeded with N cases whose 24-hour reminder is
due, each with a phone contact of its own. The rows are exactly those intake stores (they are made by
`bot.rating.intake`'s own functions, `_contact_fields` and `case_row`, with the run's secret key: sealed phone,
keyed look-up hash, mask, remind_at/default_at from the policy), written with COPY (PostgreSQL) or
executemany in large transactions (SQLite); the seeding is timed but not part of the figure.

Then a separate process (`python bench/sweep.py --run-sweep NOW`, the configuration's environment)
opens the runtime as `tick` does and times one `await reminders.sweep(rt, NOW)` — the phase of `tick`
that queues every due reminder; nothing is sent — at 2026-11-21T10:00+08:00 (every case completed
between 08:00 and 09:00 the day before, outside the quiet hours). It checks that the outbox holds N
reminders and reports its own peak RSS, so the figure is the sweep's memory alone.

    .venv/bin/python bench/sweep.py                                   # both configurations, 100k and 1M
    .venv/bin/python bench/sweep.py --config embedded --sizes 20000
    .venv/bin/python bench/sweep.py --config pg+redis --sizes 100000 --profile   # + cProfile's top 15

Figures: `per_second` = reminders queued per second of the sweep; `seconds` = the sweep's wall time;
`peak_rss_mb` = VmHWM of the sweep process (runtime opened, sweep done); the note gives the RSS
before the sweep and the seeding time. Memory is flat when peak_rss_mb does not grow with N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ALL_CONFIGS, CONFIGS, BulkWriter, Config, Row, config, rss_kib, table

NOW = "2026-11-21T10:00:00+08:00"
FIRST_COMPLETED = "2026-11-20T08:00:00+08:00"  # cases complete over the following hour
CHUNK = 50_000


async def seed(cfg: Config, n: int) -> float:
    """N due cases, each with its own phone contact, as intake would store them; the seconds it took."""
    from bot.infra.config import load_settings
    from bot.infra.runtime import open_runtime
    from bot.rating.intake import CaseIn, _contact_fields, case_row
    from store.models import Case, Contact

    started = time.perf_counter()
    rt = await open_runtime(load_settings(cfg.env(), cfg.workdir))
    try:
        first = datetime.fromisoformat(FIRST_COMPLETED)
        stored_at = datetime.fromisoformat("2026-11-20T09:30:00+08:00")
        async with BulkWriter(cfg) as writer:
            contact_id, case_id = await writer.next_id(Contact), await writer.next_id(Case)
            for offset in range(0, n, CHUNK):
                contacts: list[dict[str, Any]] = []
                cases: list[dict[str, Any]] = []
                for i in range(offset, min(n, offset + CHUNK)):
                    c = CaseIn.model_validate({  # as the API's JSON would give it
                        "case_no": f"SW-{i:09d}", "item_code": f"ITEM{i % 500}", "item_name": "居民身份证换领",
                        "agency_code": f"AG{i % 50}", "agency_name": "某某局",
                        "completed_at": (first + timedelta(seconds=i % 3600)).isoformat(),
                        "applicant": {"phone": f"13{i:09d}", "locale": "zh-CN"}})
                    ids = {}
                    for column, channel, digest, sealed, masked in _contact_fields(rt, c.applicant):
                        contacts.append({"id": contact_id, "channel": channel, "address_hash": digest[0],
                                         "address_sealed": sealed, "masked": masked, "created_at": stored_at})
                        ids[column] = contact_id
                        contact_id += 1
                    cases.append({**case_row(rt, c, stored_at, ids), "id": case_id})
                    case_id += 1
                await writer.insert(Contact, contacts)
                await writer.insert(Case, cases)
            await writer.finish()
            due = await writer.scalar("SELECT COUNT(*) FROM cases WHERE remind_at IS NOT NULL")
        if due != n:
            raise RuntimeError(f"seeded {due} due cases, expected {n}")
    finally:
        await rt.close()
    return time.perf_counter() - started


async def run_sweep(now_iso: str, profile_path: str | None) -> dict[str, Any]:
    """Inside the sweep process: one timed `reminders.sweep` on the configured database."""
    import gc

    from sqlalchemy import func
    from sqlmodel import select

    from bot.delivery import reminders
    from bot.infra.config import load_settings
    from bot.infra.runtime import open_runtime
    from store.models import OutboxMessage

    now = datetime.fromisoformat(now_iso)
    rt = await open_runtime(load_settings())
    try:
        gc.collect()
        before = rss_kib(os.getpid())
        profiler = None
        if profile_path:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        queued = await reminders.sweep(rt, now)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)
        async with rt.db.read() as session:
            count = (await session.exec(select(func.count()).select_from(OutboxMessage)  # type: ignore[call-overload]
                                        .where(OutboxMessage.kind == "reminder"))).one()
    finally:
        await rt.close()
    return {"queued": queued, "count": int(count), "seconds": seconds, "rss_before_kib": before,
            "peak_rss_kib": rss_kib(os.getpid(), "VmHWM")}


def sweep_in_child(cfg: Config, profile_path: str | None = None) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__).resolve()), "--run-sweep", NOW]
    if profile_path:
        args += ["--profile-to", profile_path]
    done = subprocess.run(args, env=cfg.env(), cwd=cfg.workdir, check=True, stdout=subprocess.PIPE)
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def measure(config_name: str, sizes: list[int] = [100_000, 1_000_000],  # noqa: B006 (the brief's signature)
            profile: bool = False) -> list[Row]:
    rows = []
    for n in sizes:
        with config(config_name) as cfg:
            seeded = asyncio.run(seed(cfg, n))
            profile_path = str(cfg.workdir / "sweep.prof") if profile else None
            result = sweep_in_child(cfg, profile_path)
            note = (f"RSS before {result['rss_before_kib'] / 1024:.0f} MB; seeded in {seeded:.0f} s"
                    + ("; under cProfile" if profile else ""))
            if result["count"] != n or result["queued"] != n:
                note += f"; OUTBOX HOLDS {result['count']} (sweep said {result['queued']}), EXPECTED {n}"
            rows.append(Row("sweep", config_name, n, per_second=result["count"] / result["seconds"],
                            seconds=round(result["seconds"], 2), peak_rss_mb=result["peak_rss_kib"] / 1024,
                            errors=abs(n - result["count"]), note=note))
            if profile_path:
                print_profile(profile_path, f"{config_name}, n={n}")
    return rows


def print_profile(path: str, title: str, top: int = 15) -> None:
    import io
    import pstats

    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(path, stream=out).sort_stats(order).print_stats(top)
        text = out.getvalue()
        print(f"--- cProfile of the sweep ({title}), top {top} by {order} ---")
        print(text[text.index("   ncalls"):] if "   ncalls" in text else text, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated numbers of due reminders")
    parser.add_argument("--profile", action="store_true", help="run the sweep under cProfile and print its top")
    parser.add_argument("--run-sweep", metavar="NOW", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_sweep:
        print(json.dumps(asyncio.run(run_sweep(args.run_sweep, args.profile_to))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    names = list(CONFIGS) if args.config == "both" else [args.config]
    rows = []
    for name in names:
        rows += measure(name, sizes, profile=args.profile)
        print(table(rows), flush=True)
        print(flush=True)


if __name__ == "__main__":
    main()
