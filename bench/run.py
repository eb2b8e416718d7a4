"""Every benchmark, on both configurations, as one table: the command the README's figures come from.

    .venv/bin/python bench/run.py                      # the full run (about two hours on 2 cores)
    .venv/bin/python bench/run.py --quick              # small sizes: does every benchmark still work?
    .venv/bin/python bench/run.py --config pg+redis --only sms,sweep

What each row measures (see each module's docstring for how):
- parse: microseconds to read a reply's grade, over the 625 replies of tests/corpus/grades.tsv, lone
  digits and a 600-character letter, beside one bare regex scan (bench/parse.py).
- sms, keypad: signed Twilio webhooks from 10,000 numbers answering a live reminder / pressing a key in
  a hotline rating, driven from a separate load-generator process; requests/s, p50/p99 latency, errors.
  baseline: a minimal aiohttp app that only checks the signature and answers fixed TwiML, under the
  same load; the sms and keypad notes give our ratio to it (bench/webhooks.py). `cpu_ms`: the serving
  processes' CPU per answered request. workers: the same on `serve --workers 2` (pg+redis).
- providers: the inbound-reply path through each SMS provider under the same load: N replies from N
  numbers answering live reminders, as Twilio (signed form posts), Aliyun (SmsUp JSON pushes), Tencent
  (reply JSON pushes) and a CMPP gateway (DELIVERs on serve's session) deliver them, each provider
  talking to its test double; replies/s, p50/p99 latency, errors, ratings stored and the answers that
  reached the double (sent through the outbox by the three that cannot answer inline), beside the
  baseline app under the Twilio bodies (bench/providers.py).
- bursts: 1,000 signed SMS webhooks at once (one connection each), every one answering a live reminder;
  requests/s over the burst, p50/p99 latency (the p99 is how long the tail waited), errors, ratings stored;
  beside the baseline app under the same burst (bench/bursts.py).
- sweep: cases per second from the sweep's start until every due reminder is in the outbox, and the
  sweeping process's peak memory, at 100,000 and 1,000,000 due cases (bench/sweep.py).
- delivery: outbox messages sent per second through the real twilio client to a local fake of its REST API,
  at 20,000 due reminders, and the delivering process's CPU per message (bench/delivery.py).
- bulk ingest: POST /api/v1/cases:bulk, cases per second and the server's peak memory (bench/bulk_ingest.py).
- stats: GET /api/v1/stats?by=agency over 1,000,000 and 10,000,000 evaluations; `seconds` is the first
  (cold) answer, p50_ms the median of four more (bench/stats_query.py).
- exports: GET /api/v1/exports/evaluations.csv and .xlsx of 1,000,000 cases' evaluations, rows per second,
  time to the first byte (p50_ms) and the server's peak memory before and after (bench/exports.py).

Run it alone on the machine: the load generator, the server and the database share its cores.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bulk_ingest, bursts, delivery, exports, parse, providers, stats_query, sweep, webhooks
from bench.common import ALL_CONFIGS, CONFIGS, Row, table

FULL: dict[str, Callable[[str], list[Row]]] = {
    "parse": lambda c: parse.measure() if c == CONFIGS[0] else [],  # no database: once
    "sms": lambda c: webhooks.measure(c, numbers=10_000, duration=900),  # sms, keypad, baseline rows
    "workers": lambda c: webhooks.measure(c, numbers=10_000, duration=900, workers=2) if c == "pg+redis" else [],
    "providers": lambda c: providers.measure(c, numbers=10_000, duration=900),  # reply <provider>, reply baseline
    "bursts": lambda c: bursts.measure(c, 1_000),  # burst, burst baseline rows
    "sweep": lambda c: sweep.measure(c, [100_000, 1_000_000]),
    "delivery": lambda c: delivery.measure(c, [20_000]),
    "bulk": lambda c: bulk_ingest.measure(c, [1_000_000]),
    "stats": lambda c: stats_query.measure(c, [1_000_000, 10_000_000]),
    "exports": lambda c: exports.measure(c, 1_000_000),
}
QUICK: dict[str, Callable[[str], list[Row]]] = {
    "parse": lambda c: parse.measure() if c == CONFIGS[0] else [],
    "sms": lambda c: webhooks.measure(c, numbers=500),
    "workers": lambda c: webhooks.measure(c, numbers=500, workers=2) if c == "pg+redis" else [],
    "providers": lambda c: providers.measure(c, numbers=200),
    "bursts": lambda c: bursts.measure(c, 200),
    "sweep": lambda c: sweep.measure(c, [10_000]),
    "delivery": lambda c: delivery.measure(c, [1_000]),
    "bulk": lambda c: bulk_ingest.measure(c, [10_000]),
    "stats": lambda c: stats_query.measure(c, [20_000]),
    "exports": lambda c: exports.measure(c, 5_000),
}


def machine() -> str:
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{platform.node()}: {cpus} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--only", default=",".join(FULL), help=f"comma-separated, of {', '.join(FULL)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the benchmarks run")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(plan))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; expected some of {', '.join(plan)}")
    rows: list[Row] = []
    for name in CONFIGS if args.config == "both" else (args.config,):
        for bench in wanted:
            started = time.perf_counter()
            rows.extend(plan[bench](name))
            print(f"# {bench} on {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            print(table(rows), file=sys.stderr, flush=True)
    print(f"# {machine()}")
    print(table(rows))


if __name__ == "__main__":
    main()
