"""A burst: N signed Twilio SMS webhooks at the same instant, against the same burst on the bare baseline.

Issue 18, finding 13: 200 webhooks at once on PostgreSQL + Redis answered 99 times 503 ("redis: Too
many connections"). This measures what a burst of N (1,000 in bench/run.py) costs and whether every
request is answered 200 and stored once, on a fresh database of its own per configuration
(bench/common.py):

- `burst`: N distinct phone numbers, each answering its own live reminder with a good grade, all
  sent at once: the load generator (bench/webhooks.py `--load`, a separate process) opens N
  connections and sends one request on each, every request started before any is answered. Setting
  up as in bench/webhooks.py: N cases through `POST /api/v1/cases:bulk`, one `haochaping tick` sends
  their reminders to the fake Twilio (bench/webhooks.py `--fake-twilio`).
- `burst baseline`: the same N signed bodies, at once, on the minimal aiohttp app of bench/webhooks.py
  (signature check, fixed TwiML).

Figures per row: `n` requests; `per_second` = N / seconds from the first request to the last answer;
`p50_ms`/`p99_ms` per-request latency seen by the client (the p99 is about the slowest: how long the
last of the burst waited); `errors` = non-2xx answers plus failed requests; `peak_rss_mb` the server's
peak RSS. The burst row's note counts the ratings stored (GET /api/v1/stats?by=agency) and reads a
sample of cases back, and gives the ratio of its requests/s to the baseline's.

The server runs on its defaults: the pools (HAOCHAPING_DB_POOL_*, HAOCHAPING_REDIS_*) as shipped.
Like every figure here it moves with the host's load: the server, PostgreSQL, Redis and the load
generator share the cores.

    .venv/bin/python bench/bursts.py                          # both configurations, 1,000 at once
    .venv/bin/python bench/bursts.py --config pg+redis --burst 200
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

try:
    from bench import webhooks as w
    from bench.common import ALL_CONFIGS, CONFIGS, Row, config, executable, free_port, rss_kib, serve, table
except ModuleNotFoundError:  # run as a script: bench/ itself is on sys.path
    import webhooks as w  # type: ignore[no-redef]
    from common import ALL_CONFIGS, CONFIGS, Row, config, executable, free_port, rss_kib, serve, table  # type: ignore[no-redef]

AGENCY = "BENCH-BURST"
BURST_SECONDS = 600.0  # a bound on the burst's load process, not a cap on sending: every request is sent


def _load(url: str, bodies: Path, n: int) -> dict[str, Any]:
    """The load generator (bench/webhooks.py --load) with N connections: each request on its own."""
    args = [sys.executable, str(Path(w.__file__).resolve()), "--load", url, str(bodies), str(n), str(BURST_SECONDS)]
    done = subprocess.run(args, stdout=subprocess.PIPE, check=True, timeout=BURST_SECONDS + 60)
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def measure(config_name: str, n: int = 1_000) -> list[Row]:
    """The burst and burst-baseline rows of one configuration."""
    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    validator = RequestValidator(auth_token)
    with config(config_name) as cfg, tempfile.TemporaryDirectory(prefix="hcp-bursts-") as tmp:
        bodies = Path(tmp) / "burst.jsonl"
        twilio_port = free_port()
        with w.helper_process(["--fake-twilio", str(twilio_port), account_sid, auth_token], twilio_port,
                              "the fake Twilio"):
            twilio = {"TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": auth_token,
                      "TWILIO_SMS_FROM": w.SMS_FROM, "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio_port}",
                      "HAOCHAPING_PUBLIC_URL": w.PUBLIC_URL}
            with serve(cfg, **twilio) as server:
                instant, reminder_after = w.tick_instant(cfg.env(**twilio).get("HAOCHAPING_POLICY"))
                completed = instant - reminder_after - timedelta(hours=1)
                lines = [w.case_line(f"BURST-{i:06d}", AGENCY, w.sms_phone(i), completed) for i in range(n)]
                bulk = w.api(server.url, cfg.api_token, "/api/v1/cases:bulk", ("\n".join(lines) + "\n").encode(),
                             "application/x-ndjson")
                if bulk.get("created") != n or bulk.get("errors"):
                    raise RuntimeError(f"bulk ingestion: {str(bulk)[:500]}")
                done = subprocess.run([executable(), "tick", "--now", instant.isoformat()], env=cfg.env(**twilio),
                                      cwd=cfg.workdir, stdout=subprocess.PIPE, check=True, timeout=w.SETUP_TIMEOUT)
                ticked = json.loads(done.stdout)
                received = json.loads(urllib.request.urlopen(twilio["TWILIO_API_BASE_URL"] + "/_count",
                                                             timeout=30).read())
                if ticked.get("sent") != n or received["Messages"] != n:
                    raise RuntimeError(f"the tick did not remind every number: {ticked}, fake Twilio {received}")
                w.write_lines(bodies, [w.sms_request(validator, account_sid, i) for i in range(n)])
                time.sleep(1)  # let the server settle after the setting up
                summary = _load(server.url, bodies, n)
                peak = rss_kib(server.pid, "VmHWM")
                rated = w.rated_by_agency(server.url, cfg.api_token).get(AGENCY, 0)
                problems = w.read_back(server.url, cfg.api_token, "BURST", n, "sms")
        baseline_port = free_port()
        with w.helper_process(["--baseline-app", str(baseline_port), auth_token, w.PUBLIC_URL], baseline_port,
                              "the baseline app") as baseline:
            base = _load(f"http://127.0.0.1:{baseline_port}", bodies, n)
            base_peak = rss_kib(baseline.pid, "VmHWM")
    note = f"{n} at once; {rated} ratings stored for {summary['requests']} requests"
    if problems:
        note += f"; read back wrong: {'; '.join(problems[:3])}"
    if base["per_second"]:
        note = f"ratio {summary['per_second'] / base['per_second']:.2f} of baseline; {note}"
    return [w.load_row("burst", config_name, summary, peak, note + w.failures(summary)),
            w.load_row("burst baseline", config_name, base, base_peak,
                       f"{n} at once; signature check + fixed TwiML, same bodies" + w.failures(base))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--burst", type=int, default=1_000, help="webhooks sent at once")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in CONFIGS if args.config == "both" else (args.config,):
        rows += measure(name, args.burst)
        print(table(rows), file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
