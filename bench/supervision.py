"""Supervision: how long the scheduler's supervision scan takes over a store of N cases (issue 25).

For each size N, a fresh database (`common.config`) is seeded as `bench/stats_query.py` seeds it (N cases
completed over one year, ~1.05 ratings each, 50 agencies, ~2,000 clerks in 20 halls), the scan's mark is put
after every seeded rating (as a running service's is), and then, at the seeded year's end, B new cases are
rated within the last ten minutes (B per pass: `--new`), as a busy province's minute brings them: 40 % at a
hall's device, the rest by SMS; among them a planted tablet burst (12 ratings 非常满意 from one page device in
four minutes) and a planted serial reviewer (bad reviews of three agencies from one phone). Then, in process:
- "read new" (the baseline): reading the B new ratings alone, the least a scan can do;
- "scan": one whole pass (`bot.supervision.scan.scan`), which must find both plants ("plants found");
- "scan idle": the next pass, with nothing new;
- "scan 100 new": a pass after 100 more ratings (no plant), as a busy province's few seconds bring them.
`seconds` is each one's wall time, `peak_rss_mb` the process's VmHWM during the scan (reset before it). The
daily figures are not rebuilt after seeding (the grade mix reads them: a sum over a few rows, whatever N).

    .venv/bin/python bench/supervision.py --config pg+redis --sizes 1000000,10000000
    .venv/bin/python bench/supervision.py --config both --sizes 100000 --new 2000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ALL_CONFIGS, CONFIGS, BulkWriter, Config, Row, config, rss_kib, table
from bench.stats_query import FIRST_DAY, seed


async def plant(cfg: Config, rt: Any, new: int, now: datetime, plants: bool = True, prefix: str = "NEW") -> None:
    """B new rated cases in the ten minutes before `now`, with the two plants among them (`plants`)."""
    from store.models import Case, Evaluation

    rng = random.Random(7)
    async with BulkWriter(cfg) as writer:
        case_id, eval_id = await writer.next_id(Case), await writer.next_id(Evaluation)
        contacts = int(await writer.scalar("SELECT max(id) FROM contacts"))
        cases, evaluations = [], []
        device = rt.sealer.lookup_hash("device", "bench-tablet-device-01")
        for i in range(new):
            a = int(50 * rng.random() ** 1.5)
            staff = rng.randrange(40)
            hall = rng.randrange(4)
            at = now - timedelta(seconds=rng.randrange(600))
            grade, channel, contact, dev = "very_satisfied", "hall" if rng.random() < 0.4 else "sms", None, None
            if plants and i < 12:  # the tablet: one page device, 20 s apart
                grade, channel, at, dev = "very_satisfied", "web", now - timedelta(seconds=20 * (12 - i)), device
            elif plants and i < 15:  # the serial reviewer: one phone, three agencies
                grade, channel, a, contact = "very_dissatisfied", "sms", 10 + i, 1
            cases.append({"id": case_id, "case_no": f"{prefix}{i:08d}", "item_code": f"I{a * 10:03d}",
                          "item_name": "新办件",
                          "agency_code": f"AG{a:02d}", "agency_name": f"机构{a:02d}", "completed_at": at,
                          "staff_id": f"S{a:02d}{staff:02d}", "staff_name": "窗口", "hall_code": f"H{a % 5}{hall}",
                          "hall_name": "大厅", "district_code": f"D{a % 5}", "district_name": "区",
                          "kind": "instant", "source": "api", "locale": "zh_Hans",
                          "phone_contact_id": contact or 1 + rng.randrange(contacts), "created_at": at,
                          "remind_at": None, "default_at": None, "rated_at": at})
            evaluations.append({"id": eval_id, "case_id": case_id, "grade": grade,
                                "score": 0 if grade == "very_dissatisfied" else 10,
                                "reasons": ["attitude"] if grade == "very_dissatisfied" else [], "text": None,
                                "channel": channel, "is_default": False, "is_followup": False, "status": "valid",
                                "version": 1, "created_at": at, "device_hash": dev})
            case_id, eval_id = case_id + 1, eval_id + 1
        await writer.insert(Case, cases)
        await writer.insert(Evaluation, evaluations)


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux: 5 to clear_refs), so the peak is the scan's, not the seeding's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


async def run(cfg: Config, n: int, new: int, profile: bool = False) -> list[Row]:
    from bot.infra.config import load_settings
    from bot.infra.runtime import open_runtime
    from bot.supervision import scan
    from store import settings, signals

    seeded = await seed(cfg, n)
    rt = await open_runtime(load_settings(cfg.env(), cfg.workdir))
    rows = []
    try:
        now = datetime.combine(FIRST_DAY + timedelta(days=365), datetime.min.time(), rt.policy.tz) + timedelta(hours=18)
        async with rt.db.read() as session:
            last = await signals.last_id(session)
        async with rt.db.write() as session:
            await settings.put(session, scan.MARK, str(last))
        await plant(cfg, rt, new, now)
        started = time.perf_counter()
        async with rt.db.read() as session:
            read = await signals.ratings_after(session, last, scan.BATCH)
        rows.append(Row("read new", cfg.name, n, seconds=time.perf_counter() - started,
                        note=f"{len(read)} new ratings; seeded in {seeded.seconds:.0f} s"))
        reset_peak()
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        raised = await scan.scan(rt, now)
        spent = time.perf_counter() - started
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        async with rt.db.read() as session:
            found = await signals.listing(session, signals.Filters(), 1000)
        kinds = {s.kind for s in found}
        plants = "plants found" if {"good_burst", "serial_bad"} <= kinds else f"PLANTS MISSED: {sorted(kinds)}"
        rows.append(Row("scan", cfg.name, n, per_second=new / spent, seconds=spent,
                        peak_rss_mb=rss_kib(os.getpid(), "VmHWM") / 1024,
                        note=f"{raised} signals ({', '.join(sorted(kinds))}); {plants}"))
        started = time.perf_counter()
        await scan.scan(rt, now + timedelta(minutes=1))
        rows.append(Row("scan idle", cfg.name, n, seconds=time.perf_counter() - started))
        # A pass as a province's day brings them: 100 new ratings (the hall comparison done this hour already).
        await plant(cfg, rt, 100, now + timedelta(minutes=2), plants=False, prefix="MORE")
        started = time.perf_counter()
        await scan.scan(rt, now + timedelta(minutes=2))
        spent = time.perf_counter() - started
        rows.append(Row("scan 100 new", cfg.name, n, per_second=100 / spent, seconds=spent))
    finally:
        await rt.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="pg+redis")
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated numbers of cases")
    parser.add_argument("--new", type=int, default=5000, help="new ratings in the pass measured")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the scan")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in list(CONFIGS) if args.config == "both" else [args.config]:
        for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
            with config(name) as cfg:
                rows += asyncio.run(run(cfg, n, args.new, args.profile))
            print(table(rows), flush=True)
            print(flush=True)


if __name__ == "__main__":
    main()
