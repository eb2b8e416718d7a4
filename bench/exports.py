"""Exports: GET /api/v1/exports/evaluations.{csv,xlsx} over N evaluations, rows per second and the server's memory.

A fresh database (`common.config`) is seeded as bench/stats_query.py seeds it (N cases over one year,
about one evaluation each, with their work orders and phone contacts; see that module). Then
`haochaping serve --no-scheduler` answers, one download at a time, read by a client that counts the
bytes and throws them away (the XLSX is kept on disk to count its rows afterwards, untimed):
- "export csv" and "export xlsx": every evaluation, masked, with the business systems' token;
- "export csv unmasked": the same as an admin with `pii=full` (each phone and name unsealed);
- "export csv 1 agency": the largest agency only (about 7 % of the rows), the plan of a filtered export.
`per_second` = rows / seconds; `p50_ms` = the time to the first byte; `peak_rss_mb` = the server's VmHWM
after that download. The note gives the bytes and the server's peak RSS before any export (after a
warm-up export of an empty period, so that the code paths are loaded): memory is flat when the peak
after exporting N rows is the same at every N.

    .venv/bin/python bench/exports.py                          # PostgreSQL + Redis, 1,000,000 cases
    .venv/bin/python bench/exports.py --rows 200000 --config embedded
    .venv/bin/python bench/exports.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stats_query
from bench.common import ALL_CONFIGS, CONFIGS, Config, Row, config, rss_kib, serve, table

READ = 1 << 20


def download(url: str, token: str, keep: Path | None = None) -> tuple[float, float, int, int]:
    """(seconds, seconds to the first byte, bytes, CRLF line ends) of one GET, read in 1 MiB pieces."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    first, size, lines = 0.0, 0, 0
    tail = b""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(keep, "wb")) if keep else None
        response = stack.enter_context(urllib.request.urlopen(request, timeout=3600))
        while True:
            piece = response.read1(READ)
            if not piece:
                break
            if not size:
                first = time.perf_counter() - started
            size += len(piece)
            lines += (tail + piece[:1]).count(b"\r\n") + piece.count(b"\r\n")
            tail = piece[-1:]
            if out:
                out.write(piece)
    return time.perf_counter() - started, first, size, lines


def xlsx_rows(path: Path) -> int:
    """Rows of every sheet but their headers, counted by streaming the sheets' XML."""
    count = 0
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.startswith("xl/worksheets/"):
                continue
            tail = b""
            with z.open(name) as sheet:
                while piece := sheet.read(READ):
                    count += (tail + piece).count(b"</row>") - tail.count(b"</row>")
                    tail = piece[-6:]
            count -= 1
    return count


async def add_admin(cfg: Config) -> str:
    from bot.infra.config import load_settings
    from bot.infra.runtime import open_runtime
    from bot.work_orders import users

    password = secrets.token_urlsafe(16)
    rt = await open_runtime(load_settings(cfg.env(), cfg.workdir))
    try:
        async with rt.db.write() as session:
            await users.create(session, "bench-admin", "admin", ["*"], password, datetime.now(UTC))
    finally:
        await rt.close()
    return password


def login(url: str, password: str) -> str:
    request = urllib.request.Request(url + "/api/v1/login", method="POST",
                                     data=json.dumps({"username": "bench-admin", "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["token"])


def measure(config_name: str, rows: int) -> list[Row]:
    out: list[Row] = []
    with config(config_name) as cfg:
        seeded = asyncio.run(stats_query.seed(cfg, rows))
        n = seeded.evaluations
        print(f"{config_name}: seeded {seeded.cases:,} cases, {n:,} evaluations in {seeded.seconds:.0f} s",
              flush=True)
        password = asyncio.run(add_admin(cfg))
        with serve(cfg) as server:
            admin = login(server.url, password)
            base = server.url + "/api/v1/exports/evaluations"
            for fmt in ("csv", "xlsx"):  # warm-up: an empty period
                download(f"{base}.{fmt}?from=2099-01-01", cfg.api_token)
            before = rss_kib(server.pid, "VmHWM")
            runs = (("csv", f"{base}.csv", cfg.api_token, n), ("xlsx", f"{base}.xlsx", cfg.api_token, n),
                    ("csv unmasked", f"{base}.csv?pii=full", admin, n),
                    ("csv 1 agency", f"{base}.csv?agency_code=AG00", cfg.api_token, None))
            for label, url, token, expected in runs:
                keep = cfg.workdir / "export.xlsx" if label == "xlsx" else None
                seconds, first, size, lines = download(url, token, keep)
                peak = rss_kib(server.pid, "VmHWM")
                got = xlsx_rows(keep) if keep else lines - 1
                if keep:
                    keep.unlink()
                verdict = "" if expected is None else "rows ok" if got == expected else f"ROWS {got:,} != {expected:,}"
                out.append(Row(f"export {label}", config_name, got, per_second=got / seconds, p50_ms=first * 1000,
                               seconds=round(seconds, 2), peak_rss_mb=peak / 1024,
                               note=f"{size / 1e6:,.1f} MB; server peak RSS before {before / 1024:.0f} MB, "
                                    f"after {peak / 1024:.0f} MB; {verdict}".rstrip("; ")))
                print(f"  {label}: {got:,} rows in {seconds:.1f} s, {size / 1e6:,.1f} MB, "
                      f"peak RSS {before / 1024:.0f} → {peak / 1024:.0f} MB", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="pg+redis")
    parser.add_argument("--rows", type=int, default=1_000_000, help="cases to seed (about one evaluation each)")
    parser.add_argument("--quick", action="store_true", help="5,000 cases: does the benchmark still work?")
    args = parser.parse_args(argv)
    rows = 5_000 if args.quick else args.rows
    names = list(CONFIGS) if args.config == "both" else [args.config]
    results = [r for name in names for r in measure(name, rows)]
    print(table(results))


if __name__ == "__main__":
    main()
