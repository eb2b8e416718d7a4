"""Bulk ingestion: cases per second through POST /api/v1/cases:bulk, and the server's peak memory.

Starts `haochaping serve --no-scheduler` on a database of its own, streams N NDJSON cases to it in
one chunked request (generated on the fly, so the client holds no body either), and prints one
table row per size. Memory "stays flat" when the peak RSS does not grow with N.

    .venv/bin/python bench/bulk_ingest.py 10000 100000 1000000
    HCP_BENCH_DB=postgresql+asyncpg://postgres@127.0.0.1/bench .venv/bin/python bench/bulk_ingest.py 100000
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


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


PER_REQUEST = 200_000  # ~46 MB of NDJSON: under the contract's 100 MiB per request


async def run(n: int, url: str, token: str) -> dict[str, object]:
    """n cases in requests of at most PER_REQUEST lines each, one after the other."""
    timeout = aiohttp.ClientTimeout(total=3600)
    created, statuses = 0, set()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        for offset in range(0, n, PER_REQUEST):
            count = min(PER_REQUEST, n - offset)
            async with session.post(url + "/api/v1/cases:bulk", data=body(count, secrets.token_hex(4)),
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/x-ndjson"}) as resp:
                doc = await resp.json()
            statuses.add(resp.status)
            created += int(doc.get("created") or 0)
        elapsed = time.perf_counter() - started
    return {"status": "/".join(map(str, sorted(statuses))), "created": created,
            "seconds": round(elapsed, 1), "per_second": round(n / elapsed)}


def main(sizes: list[int]) -> None:
    workdir = tempfile.mkdtemp(prefix="hcp-bench-")
    port, token = free_port(), secrets.token_urlsafe(16)
    db = os.environ.get("HCP_BENCH_DB") or f"sqlite+aiosqlite:///{workdir}/bench.db"
    env = {**os.environ, "HAOCHAPING_DATABASE_URL": db, "HAOCHAPING_API_TOKEN": token,
           "HAOCHAPING_LOG_LEVEL": "WARNING"}
    exe = str(Path(sys.executable).with_name("haochaping"))
    server = subprocess.Popen([exe, "serve", "--port", str(port), "--no-scheduler"], cwd=workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        print(f"database: {db.split('://')[0]}   server pid {server.pid}")
        print(f"{'cases':>10} {'status':>6} {'created':>10} {'seconds':>8} {'cases/s':>8} "
              f"{'RSS before':>11} {'peak RSS':>10}")
        for n in sizes:
            before = rss_kib(server.pid, "VmRSS")
            row = asyncio.run(run(n, url, token))
            peak = rss_kib(server.pid, "VmHWM")
            print(f"{n:>10} {row['status']:>6} {row['created']:>10} {row['seconds']:>8} {row['per_second']:>8} "
                  f"{before / 1024:>9.0f}MB {peak / 1024:>8.0f}MB", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10000, 100000])
