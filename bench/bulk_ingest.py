"""Bulk ingestion: cases per second through POST /api/v1/cases:bulk, and the server's peak memory.

Starts `haochaping serve --no-scheduler` on a database of its own, streams N NDJSON cases to it in
chunked requests of at most 200,000 lines (generated on the fly, so the client holds no body either).
Memory "stays flat" when the server's peak RSS does not grow with N.

    .venv/bin/python bench/bulk_ingest.py --config both --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ALL_CONFIGS, CONFIGS, Row, config, rss_kib, serve, table

PER_REQUEST = 200_000  # ~46 MB of NDJSON: under the contract's 100 MiB per request


async def body(n: int, prefix: str) -> AsyncIterator[bytes]:
    batch = []
    for i in range(n):
        batch.append(json.dumps({
            "case_no": f"{prefix}-{i:08d}", "item_code": f"ITEM{i % 500}", "item_name": "居民身份证换领",
            "agency_code": f"AG{i % 50}", "agency_name": "某某局", "completed_at": "2026-11-20T10:00:00+08:00",
            "applicant": {"phone": f"13{i % 10}{i:08d}"[:11], "locale": "zh-CN"},
        }, ensure_ascii=False))
        if len(batch) == 2000:
            yield ("\n".join(batch) + "\n").encode()
            batch = []
    if batch:
        yield ("\n".join(batch) + "\n").encode()


async def _post_all(n: int, url: str, token: str) -> tuple[int, set[int], float]:
    """n cases in requests of at most PER_REQUEST lines each, one after the other."""
    created, statuses = 0, set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as session:
        started = time.perf_counter()
        for offset in range(0, n, PER_REQUEST):
            count = min(PER_REQUEST, n - offset)
            async with session.post(url + "/api/v1/cases:bulk", data=body(count, secrets.token_hex(4)),
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/x-ndjson"}) as resp:
                doc = await resp.json()
            statuses.add(resp.status)
            created += int(doc.get("created") or 0)
        return created, statuses, time.perf_counter() - started


def measure(config_name: str, sizes: list[int] | None = None) -> list[Row]:
    rows = []
    for n in sizes or [100_000]:
        with config(config_name) as cfg, serve(cfg) as server:
            before = rss_kib(server.pid)
            created, statuses, elapsed = asyncio.run(_post_all(n, server.url, cfg.api_token))
            errors = n - created if statuses <= {200, 201} else n
            rows.append(Row("bulk ingest", config_name, n, per_second=n / elapsed, errors=errors, seconds=elapsed,
                            peak_rss_mb=rss_kib(server.pid, "VmHWM") / 1024,
                            note=f"HTTP {'/'.join(map(str, sorted(statuses)))}; RSS before {before / 1024:.0f} MB"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--sizes", default="100000", help="comma-separated case counts")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [r for name in (CONFIGS if args.config == "both" else (args.config,)) for r in measure(name, sizes)]
    print(table(rows))


if __name__ == "__main__":
    main()
