"""Delivery: outbox messages sent per second to a local provider double (issue 23's goal: 2,000/s).

For each size N a fresh database (`common.config`) is seeded with N due reminders exactly as bench/sweep.py seeds
them, and a separate process opens the runtime as `tick` does, with Twilio as the provider pointed at a fake of
its REST API on 127.0.0.1 (bench/webhooks.py `--fake-twilio`: 201 and a sid, nothing else). Not timed: the sweep
that queues the N reminders. Timed: `sender.deliver_due` until the outbox holds nothing due, the real twilio client
making every request, with `HAOCHAPING_SMS_RATE` as given (0: no limit). The fake's own count must equal N.

    .venv/bin/python bench/delivery.py --config pg+redis --sizes 20000
    .venv/bin/python bench/delivery.py --config embedded --sizes 5000 --rate 500   # the token bucket honoured

Figures: `per_second` = messages sent per second of delivery; `seconds`; `cpu_ms` = the delivering process's CPU
per message; the note gives the fake's count and, with a rate, the rate asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ALL_CONFIGS, CONFIGS, Config, Row, config, free_port, table
from bench.sweep import NOW, seed
from bench.webhooks import SMS_FROM, helper_process


async def run_delivery(now_iso: str) -> dict[str, Any]:
    """Inside the delivering process: the sweep (not timed), then every due message delivered (timed)."""
    from bot.delivery import reminders, sender
    from bot.infra.config import load_settings
    from bot.infra.runtime import open_runtime

    now = datetime.fromisoformat(now_iso)
    rt = await open_runtime(load_settings())
    try:
        queued = await reminders.sweep(rt, now)
        cpu0, started = time.process_time(), time.perf_counter()
        sent = 0
        while True:
            done = await sender.deliver_due(rt, now)
            sent += done.sent
            if not done.sent:
                break
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    finally:
        await rt.close()
    return {"queued": queued, "sent": sent, "seconds": seconds, "cpu": cpu}


def measure(config_name: str, sizes: list[int], rate: float = 0.0) -> list[Row]:
    rows = []
    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    for n in sizes:
        with config(config_name) as cfg:
            asyncio.run(seed(cfg, n))
            port = free_port()
            with helper_process(["--fake-twilio", str(port), account_sid, auth_token], port, "the fake Twilio"):
                env = cfg.env(TWILIO_ACCOUNT_SID=account_sid, TWILIO_AUTH_TOKEN=auth_token, TWILIO_SMS_FROM=SMS_FROM,
                              TWILIO_API_BASE_URL=f"http://127.0.0.1:{port}", HAOCHAPING_SMS_RATE=str(rate))
                result = in_child(cfg, env)
                got = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_count", timeout=30).read())
            note = f"the fake received {got['Messages']}" + (f"; HAOCHAPING_SMS_RATE={rate:g}/s" if rate else "")
            if result["sent"] != n or got["Messages"] != n:
                note += f"; SENT {result['sent']} OF {n} (queued {result['queued']})"
            rows.append(Row("delivery", config_name, n, per_second=result["sent"] / result["seconds"],
                            seconds=round(result["seconds"], 2), cpu_ms=1000 * result["cpu"] / max(result["sent"], 1),
                            errors=abs(n - got["Messages"]), note=note))
    return rows


def in_child(cfg: Config, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run-delivery", NOW], env=env,
                          cwd=cfg.workdir, check=True, stdout=subprocess.PIPE)
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--sizes", default="20000", help="comma-separated numbers of reminders")
    parser.add_argument("--rate", type=float, default=0.0, help="HAOCHAPING_SMS_RATE for the delivering process")
    parser.add_argument("--run-delivery", metavar="NOW", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_delivery:
        print(json.dumps(asyncio.run(run_delivery(args.run_delivery))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = []
    for name in (list(CONFIGS) if args.config == "both" else [args.config]):
        rows += measure(name, sizes, args.rate)
        print(table(rows), flush=True)
        print(flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
