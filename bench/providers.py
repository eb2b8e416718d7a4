"""The inbound-reply path through each SMS provider (Twilio, Aliyun, Tencent, a CMPP gateway), same load, beside
a bare baseline (issue 20).

One run per configuration ("embedded": SQLite and in-process state; "pg+redis") measures, for each provider in
turn, on a fresh database of its own (bench/common.py, so no provider inherits another's rows):

1. The provider's test double is started as a subprocess (this file, `--double <provider>`): the very doubles
   the tests use (tests/fakes/aliyun_sms.py, tencent_sms.py, cmpp_gateway.py; for Twilio bench/webhooks.py's
   fake REST API), each with a small control server of its own beside it (what reached it, and for CMPP the
   load). A subprocess because `serve` and `tick` talk to it while this process only waits on them, and so
   that its work (checking Aliyun's and Tencent's request signatures, reassembling CMPP texts) is not done
   on the bench's own loop.
2. `haochaping serve --no-scheduler` with HAOCHAPING_SMS_PROVIDER=<provider> pointed at the double (ALIYUN_SMS_
   ENDPOINT, TENCENT_SMS_ENDPOINT, CMPP_HOST/PORT, TWILIO_API_BASE_URL), and a policy giving every message key
   the contract lists its Aliyun and Tencent template (written for the run; the same policy for all four, so
   every provider runs the same dialog). For CMPP the bench waits until `serve`'s session is logged in.
3. N cases through `POST /api/v1/cases:bulk`, completed long enough before the tick instant that their
   reminders are due (bench/webhooks.py `tick_instant`), then `haochaping tick --now <instant>`: the N
   reminders are sent to the double (CMPP: on the tick's own short session) and open N conversations. Setting
   up is not timed; the tick's seconds are in the note.
4. The timed part: N replies, "1", "2", "3" in turn from N distinct numbers (139…), delivered exactly as the
   provider delivers them:
   - twilio: `POST /webhooks/twilio/sms`, signed form posts (X-Twilio-Signature), as bench/webhooks.py's sms row;
     the answer is inline TwiML;
   - aliyun: `POST /webhooks/aliyun/sms/{token}/up`, an SmsUp JSON array of one item (phone_number, content,
     send_time, dest_code, sequence_id); the acknowledgement must be {"code": 0};
   - tencent: `POST /webhooks/tencent/sms/{token}/reply`, one reply object (extend, mobile, nationcode, sign,
     text, time); the acknowledgement must be {"result": 0};
   - cmpp: CMPP_DELIVER PDUs (Registered_Delivery 0, UCS2) pushed by the gateway double over `serve`'s open
     session, each answered by the service with CMPP_DELIVER_RESP (Result 0).
   The HTTP replies come from a separate load process (this file, `--load`, which runs bench/webhooks.py's
   generator: 64 keep-alive connections, bodies built before the clock starts, each sent once, in order, for
   at most `duration` seconds); the DELIVERs from the gateway double's process, with 64 DELIVERs awaiting
   their DELIVER_RESP at any time (the same concurrency on one TCP session, as a gateway with a window of 64).
   Aliyun, Tencent and CMPP cannot answer inside the push: each reply's answer (rating.thanks) is queued in
   the outbox and sent through the provider's API to the double right after; that is part of the path, and
   after the load the bench waits until the answers stop arriving (no new one for 15 s, 10 min at most).

Figures per row (`reply <provider>`): `n` replies sent; `per_second` = replies answered / elapsed seconds of
the load; `p50_ms`/`p99_ms` per-reply latency (HTTP: request to response, as the provider's client sees it;
CMPP: DELIVER written to DELIVER_RESP read, seen by the gateway); `errors` = non-2xx answers, failed requests
and acknowledgements other than the provider's "received" (Aliyun, Tencent: they would push again), or for
CMPP DELIVER_RESPs with a Result other than 0 and DELIVERs unanswered after 120 s; `seconds` the load's
elapsed time; `peak_rss_mb` the server's peak RSS (VmHWM) at the end of the row, setting up included. The
note gives the ratio of per_second to the baseline's, the ratings stored (GET /api/v1/stats?by=agency, and
a sample of 25 cases read back through GET /api/v1/cases/{case_no}: one rating each, the grade sent, channel
sms), the answers (Twilio: inline TwiML answers carrying a <Message>; the others: answers that reached the
double, by template key or first words, how long after the load's end the last one came, numbers that got
more than one, and the outbox's reply rows by status), and the tick that set it up.

`reply baseline`: bench/webhooks.py's minimal aiohttp app (signature check, fixed TwiML), loaded with the
Twilio row's very bodies by the same load process: what a bare signed-webhook server does on this machine.

The machine's cores are shared by the server, its database, the double and the load: every figure moves
with the host's load; quote figures from a quiet machine. `bench/run.py` calls `measure(config, numbers=
10_000, duration=900)`, the sms row's load (about 25 minutes a configuration on 2 cores); `--quick` 200.

    .venv/bin/python bench/providers.py                       # both configurations, 2,000 numbers
    .venv/bin/python bench/providers.py --config embedded --numbers 500
    .venv/bin/python bench/providers.py --config pg+redis --numbers 10000 --duration 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from twilio.request_validator import RequestValidator

try:
    from bench import webhooks as w
    from bench.common import ALL_CONFIGS, CONFIGS, Config, Row, config, executable, free_port, rss_kib, serve, table
except ModuleNotFoundError:  # run as a script: bench/ itself is on sys.path
    import webhooks as w  # type: ignore[no-redef]
    from common import ALL_CONFIGS, CONFIGS, Config, Row, config, executable, free_port, rss_kib, serve, table  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("twilio", "aliyun", "tencent", "cmpp")
CONCURRENCY = w.CONCURRENCY  # 64, as bench/webhooks.py: connections (HTTP) or DELIVERs in flight (CMPP)
AGENCY = "BENCH-REPLY"
PREFIX = "RPL"  # case numbers RPL-000000 …, read back by bench/webhooks.py read_back
SETTLE_QUIET = 15.0  # seconds without a new answer at the double before the wait for answers ends
SETTLE_MAX = 600.0
DELIVER_WAIT = 120.0  # seconds a DELIVER waits for its DELIVER_RESP (the HTTP load's request timeout)
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Credentials the service and the doubles share (doubles of the providers' accounts; nothing real).
ALIYUN_AK, ALIYUN_SECRET, ALIYUN_SIGN = "LTAI5tBenchmark000001", "bench-aliyun-secret-0123456789", "政务服务"
TENCENT_ID, TENCENT_KEY, TENCENT_APP, TENCENT_SIGN = "AKID" + "b" * 32, "k" * 32, "1400009999", "政务服务"
CALLBACK_TOKEN = "bench-push-token-0123456789"  # ALIYUN_/TENCENT_SMS_CALLBACK_TOKEN: the pushes' path segment
CMPP_SP, CMPP_SECRET, CMPP_SRC, CMPP_SERVICE = "901234", "bench-shared-secret", "1065712345", "HCP"
ALIYUN_UP = f"/webhooks/aliyun/sms/{CALLBACK_TOKEN}/up"
TENCENT_REPLY = f"/webhooks/tencent/sms/{CALLBACK_TOKEN}/reply"
# Values the policy's templates leave out: a URL (the link: neither provider approves one in a value) and text
# that can outgrow Aliyun's 35 characters a value (an agency's name, the reason list, the case list).
UNTEMPLATED = frozenset({"link", "agency", "reasons", "cases"})


# ------------------------------------------------------------------------------------------------ templates


def templates() -> list[tuple[str, str, str, list[str], str]]:
    """(key, Aliyun TemplateCode, Tencent TemplateId, values, Aliyun's approved text) for every key the contract
    lists, read from the service's own list (bot/policy/sms_templates.py) so that the policy stays complete."""
    from bot.policy import sms_templates

    found = []
    for n, key in enumerate(sms_templates.CONTRACT_KEYS, 1):
        params = [v for v in sms_templates.VALUES[key] if v not in UNTEMPLATED]
        if key == "rating.reminder":
            text = (f"您${{completed_at}}办结的“${{item}}”，请对本次服务评价：回复1非常满意，2满意，3基本满意，"
                    f"4不满意，5非常不满意，或打开 {w.PUBLIC_URL}/r/${{token}} 评价。")
        else:
            text = f"【{key}】" + "，".join(f"${{{p}}}" for p in params)
        found.append((key, f"SMS_4801{n:05d}", f"18{n:05d}", params, text))
    return found


def policy_toml() -> str:
    lines = []
    for key, aliyun, tencent, params, _text in templates():
        lines += [f'[sms.templates."{key}"]', f'aliyun = "{aliyun}"', f'tencent = "{tencent}"',
                  f"params = {json.dumps(params)}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- doubles


@dataclass
class Double:
    """A provider's double running as a subprocess: where the service reaches it, where the bench asks it."""

    provider: str
    process: subprocess.Popen[bytes]
    endpoint: str  # http://127.0.0.1:PORT (HTTP providers) or 127.0.0.1:PORT (CMPP)
    control: str

    def ask(self, path: str, body: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.control + path, data=data, method="POST" if data else "GET",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def count(self, since: int = 0) -> dict[str, Any]:
        """What reached the double from its `since`-th message on (module docstring)."""
        answer: dict[str, Any] = self.ask(f"/count?since={since}")
        return answer


@contextlib.contextmanager
def double(provider: str, twilio: tuple[str, str]) -> Iterator[Double]:
    """The provider's double (this file, `--double`), until the block ends; it prints where it listens."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--double", provider, *twilio],
                               stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60.0)
        line = process.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the {provider} double did not start (exit code {process.poll()})")
        where = json.loads(line)
        yield Double(provider, process, where["endpoint"], where["control"])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def provider_env(provider: str, dbl: Double, twilio: tuple[str, str], policy: Path) -> dict[str, str]:
    """The service's environment for one provider, pointed at its double."""
    env = {"HAOCHAPING_SMS_PROVIDER": provider, "HAOCHAPING_PUBLIC_URL": w.PUBLIC_URL, "HAOCHAPING_POLICY": str(policy)}
    if provider == "twilio":
        env |= {"TWILIO_ACCOUNT_SID": twilio[0], "TWILIO_AUTH_TOKEN": twilio[1], "TWILIO_SMS_FROM": w.SMS_FROM,
                "TWILIO_API_BASE_URL": dbl.endpoint}
    elif provider == "aliyun":
        env |= {"ALIYUN_ACCESS_KEY_ID": ALIYUN_AK, "ALIYUN_ACCESS_KEY_SECRET": ALIYUN_SECRET,
                "ALIYUN_SMS_SIGN_NAME": ALIYUN_SIGN, "ALIYUN_SMS_ENDPOINT": dbl.endpoint,
                "ALIYUN_SMS_CALLBACK_TOKEN": CALLBACK_TOKEN}
    elif provider == "tencent":
        env |= {"TENCENTCLOUD_SECRET_ID": TENCENT_ID, "TENCENTCLOUD_SECRET_KEY": TENCENT_KEY,
                "TENCENT_SMS_SDK_APP_ID": TENCENT_APP, "TENCENT_SMS_SIGN_NAME": TENCENT_SIGN,
                "TENCENT_SMS_REGION": "ap-guangzhou", "TENCENT_SMS_ENDPOINT": dbl.endpoint,
                "TENCENT_SMS_CALLBACK_TOKEN": CALLBACK_TOKEN}
    elif provider == "cmpp":
        host, port = dbl.endpoint.rsplit(":", 1)
        env |= {"CMPP_HOST": host, "CMPP_PORT": port, "CMPP_SP_ID": CMPP_SP, "CMPP_SECRET": CMPP_SECRET,
                "CMPP_SRC_ID": CMPP_SRC, "CMPP_SERVICE_ID": CMPP_SERVICE, "CMPP_MAX_CONNECTIONS": "2"}
    else:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
    return env


def wait_sessions(dbl: Double, count: int, timeout: float = 30.0) -> None:
    """Until exactly `count` sessions are logged in to the gateway double (serve's; a tick's closed)."""
    deadline = time.monotonic() + timeout
    while True:
        found = dbl.ask("/sessions")["open"]
        if found == count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway double has {found} session(s) logged in, not {count}, after {timeout:g} s")
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------------- the replies


def reply_requests(provider: str, numbers: int, twilio: tuple[str, str]) -> list[dict[str, Any]]:
    """The N replies as the provider sends them: HTTP {"path", "body", "headers"}; CMPP {"phone", "text"}."""
    if provider == "twilio":
        validator = RequestValidator(twilio[1])
        out = []
        for i in range(numbers):
            signed = w.sms_request(validator, twilio[0], i)
            out.append({"path": signed.path, "body": signed.body,
                        "headers": {"Content-Type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": signed.signature}})
        return out
    now = datetime.now(UTC)
    if provider == "aliyun":
        base = secrets.randbelow(10 ** 9) * 10 ** 6
        send_time = now.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        return [{"path": ALIYUN_UP, "headers": {"Content-Type": "application/json;charset=UTF-8"},
                 "body": json.dumps([{"phone_number": w.sms_phone(i), "content": w.digit(i), "send_time": send_time,
                                      "dest_code": "1234", "sequence_id": base + i}], ensure_ascii=False)}
                for i in range(numbers)]
    if provider == "tencent":
        stamp = int(now.timestamp())
        return [{"path": TENCENT_REPLY, "headers": {"Content-Type": "application/json"},
                 "body": json.dumps({"extend": "", "mobile": w.sms_phone(i), "nationcode": "86",
                                     "sign": TENCENT_SIGN, "text": w.digit(i), "time": stamp}, ensure_ascii=False)}
                for i in range(numbers)]
    if provider == "cmpp":
        return [{"phone": w.sms_phone(i), "text": w.digit(i)} for i in range(numbers)]
    raise ValueError(provider)


def http_load(url: str, bodies: Path, duration: float, provider: str) -> dict[str, Any]:
    """The load process (this file, `--load`); its JSON summary."""
    args = [sys.executable, str(Path(__file__).resolve()), "--load", url, str(bodies), str(CONCURRENCY),
            str(duration), provider]
    done = subprocess.run(args, stdout=subprocess.PIPE, check=True, timeout=duration + w.SETUP_TIMEOUT)
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def acknowledged(provider: str, answer: str | None) -> bool:
    """Whether an answer is the provider's "received": anything else makes Aliyun and Tencent push again."""
    if answer is None:
        return False
    if provider in ("twilio", "baseline"):
        return "<Response" in answer
    try:
        doc = json.loads(answer)
    except ValueError:
        return False
    if provider == "aliyun":
        return isinstance(doc, dict) and doc.get("code") == 0
    return isinstance(doc, dict) and doc.get("result") == 0


def run_load(url: str, bodies: Path, concurrency: int, duration: float, provider: str) -> dict[str, Any]:
    """bench/webhooks.py's generator over these bodies; the acknowledgements checked after the clock stops."""
    prepared = []
    for line in bodies.read_text().splitlines():
        doc = json.loads(line)
        prepared.append((url + doc["path"], doc["body"].encode(), dict(doc["headers"])))
    answers: list[str | None] = [None] * len(prepared)
    summary = asyncio.run(w.generate(prepared, concurrency, duration, answers))
    summary["ended_at"] = time.time()
    acked = sum(acknowledged(provider, a) for a in answers)
    answered_2xx = summary["requests"] - summary["errors"]
    summary["wrong_acks"] = max(answered_2xx - acked, 0)
    summary["inline_answers"] = sum(1 for a in answers if a and "<Message" in a)
    if summary["wrong_acks"]:
        wrong = next(a for a in answers if a is not None and not acknowledged(provider, a))
        summary["first_wrong_ack"] = (wrong or "")[:300]
    return summary


# --------------------------------------------------------------------------------------------------- measure


@dataclass
class Outcome:
    """One provider's row and what it was checked against (tests read these, the table shows the note)."""

    row: Row
    sent: int
    stored: int
    answers: int | None  # answers that reached the double (None for Twilio: inline)
    inline_answers: int | None
    repeated: int  # numbers that got more than one answer
    problems: list[str] = field(default_factory=list)


def measure(config_name: str, numbers: int = 2_000, duration: float = 120.0,
            providers: Sequence[str] = PROVIDERS) -> list[Row]:
    """The `reply <provider>` rows of one configuration, then `reply baseline`."""
    outcomes, baseline = measure_outcomes(config_name, numbers, duration, providers)
    return [o.row for o in outcomes] + [baseline]


def measure_outcomes(config_name: str, numbers: int, duration: float,
                     providers: Sequence[str] = PROVIDERS) -> tuple[list[Outcome], Row]:
    twilio = ("AC" + secrets.token_hex(16), secrets.token_hex(16))
    with tempfile.TemporaryDirectory(prefix="hcp-providers-") as tmp:
        files = Path(tmp)
        policy = files / "policy.toml"
        policy.write_text(policy_toml(), encoding="utf-8")
        outcomes = [measure_provider(p, config_name, numbers, duration, files, policy, twilio) for p in providers]
        twilio_bodies = files / "twilio.jsonl"  # the twilio row's, or (without it) the same load signed anew
        if not twilio_bodies.exists():
            write_requests(twilio_bodies, reply_requests("twilio", numbers, twilio))

        port = free_port()
        with w.helper_process(["--baseline-app", str(port), twilio[1], w.PUBLIC_URL], port,
                              "the baseline app") as app:
            summary = http_load(f"http://127.0.0.1:{port}", twilio_bodies, duration, "baseline")
            peak = rss_kib(app.pid, "VmHWM")
    baseline = w.load_row("reply baseline", config_name, summary, peak,
                          f"signature check + fixed TwiML, the twilio row's bodies{w.failures(summary)}")
    baseline.errors = int(summary["errors"]) + int(summary["wrong_acks"])
    for outcome in outcomes:
        row = outcome.row
        if row.per_second and summary["per_second"]:
            row.note = f"ratio {row.per_second / summary['per_second']:.2f} of baseline; {row.note}"
    return outcomes, baseline


def write_requests(path: Path, requests: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests), encoding="utf-8")


def measure_provider(provider: str, config_name: str, numbers: int, duration: float, files: Path, policy: Path,
                     twilio: tuple[str, str]) -> Outcome:
    with config(config_name) as cfg, double(provider, twilio) as dbl:
        env = provider_env(provider, dbl, twilio, policy)
        with serve(cfg, **env) as server:
            return _measure_served(provider, cfg, server.url, server.pid, dbl, env, files, numbers, duration,
                                   twilio, policy)


def _measure_served(provider: str, cfg: Config, url: str, pid: int, dbl: Double, env: dict[str, str], files: Path,
                    numbers: int, duration: float, twilio: tuple[str, str], policy: Path) -> Outcome:
    if provider == "cmpp":
        wait_sessions(dbl, 1)  # serve's session logged in: the replies come on it
    instant, reminder_after = w.tick_instant(str(policy))
    completed = instant - reminder_after - timedelta(hours=1)  # its reminder is due at the tick
    lines = [w.case_line(f"{PREFIX}-{i:06d}", AGENCY, w.sms_phone(i), completed) for i in range(numbers)]
    bulk = w.api(url, cfg.api_token, "/api/v1/cases:bulk", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
    if bulk.get("created") != numbers or bulk.get("errors"):
        raise RuntimeError(f"{provider}: bulk ingestion: {str(bulk)[:500]}")

    started = time.perf_counter()
    done = subprocess.run([executable(), "tick", "--now", instant.isoformat()], env=cfg.env(**env), cwd=cfg.workdir,
                          stdout=subprocess.PIPE, check=True, timeout=w.SETUP_TIMEOUT)
    tick_seconds = time.perf_counter() - started
    ticked = json.loads(done.stdout)
    if provider == "cmpp":
        wait_sessions(dbl, 1)  # the tick's short session ended (TERMINATE): the DELIVERs go to serve's
    reminded = dbl.count()["total"]
    if ticked.get("reminders") != numbers or ticked.get("sent") != numbers or reminded != numbers:
        raise RuntimeError(f"{provider}: the tick at {instant.isoformat()} did not remind every number: {ticked}; "
                           f"the double received {reminded}")

    requests = reply_requests(provider, numbers, twilio)
    if provider == "cmpp":
        summary = dbl.ask("/deliver", {"replies": requests, "concurrency": CONCURRENCY, "duration": duration},
                          timeout=duration + 2 * DELIVER_WAIT)
        summary["wrong_acks"], summary["inline_answers"] = 0, 0
    else:
        write_requests(files / f"{provider}.jsonl", requests)
        summary = http_load(url, files / f"{provider}.jsonl", duration, provider)
    sent = int(summary["requests"])
    accepted = sent - int(summary["errors"]) - int(summary["wrong_acks"])

    answers: dict[str, Any] | None = None
    lag: float | None = None
    if provider != "twilio":  # Twilio answers inline: nothing goes to the double after a reply
        answers, lag = settle(dbl, reminded, accepted, float(summary["ended_at"]))
    peak = rss_kib(pid, "VmHWM")

    stored = w.rated_by_agency(url, cfg.api_token).get(AGENCY, 0)
    problems = w.read_back(url, cfg.api_token, PREFIX, sent, "sms")
    outbox = reply_outbox(cfg) if provider != "twilio" else {}

    note = f"{stored} ratings stored for {sent} replies"
    if sent < numbers:
        note += f" ({numbers - sent} not sent within {duration:g} s)"
    if problems:
        note += f"; read back wrong: {'; '.join(problems[:3])}"
    repeated = 0
    if answers is None:
        note += f"; {summary['inline_answers']} answered inline (TwiML <Message>)"
    else:
        repeated = int(answers["repeated"])
        kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(answers["labels"].items(), key=lambda kv: -kv[1]))
        note += f"; {answers['total']} answers reached the double ({kinds or 'none'})"
        if lag is not None:
            note += f", the last seen {lag:.1f} s after the load ended"
        if repeated:
            note += f", {repeated} numbers got more than one"
        note += "; reply outbox " + (", ".join(f"{s} {n}" for s, n in sorted(outbox.items())) or "empty")
    note += f"; setup: tick sent {ticked['sent']} reminders in {tick_seconds:.0f} s"
    if summary["errors"]:
        note += w.failures(summary)
    if summary["wrong_acks"]:
        note += f"; {summary['wrong_acks']} answered 2xx without the acknowledgement: {summary['first_wrong_ack']}"
    row = w.load_row(f"reply {provider}", cfg.name, summary, peak, note)
    row.errors = int(summary["errors"]) + int(summary["wrong_acks"])
    return Outcome(row, sent, int(stored), None if answers is None else int(answers["total"]),
                   int(summary["inline_answers"]) if answers is None else None, repeated, problems)


def settle(dbl: Double, since: int, expected: int, load_ended: float) -> tuple[dict[str, Any], float | None]:
    """Wait for the answers queued by the replies to reach the double: until `expected` came, or none came for
    SETTLE_QUIET seconds, or SETTLE_MAX. What came, and how long after the load's end the last one was seen."""
    deadline = time.monotonic() + SETTLE_MAX
    seen, last_change, last_seen_at = -1, time.monotonic(), None
    while True:
        found = dbl.count(since)
        if found["total"] != seen:
            seen, last_change = found["total"], time.monotonic()
            last_seen_at = time.time()
        if seen >= expected or time.monotonic() - last_change > SETTLE_QUIET or time.monotonic() > deadline:
            lag = max(last_seen_at - load_ended, 0.0) if last_seen_at is not None and seen > 0 else None
            return found, lag
        time.sleep(0.05)


def reply_outbox(cfg: Config) -> dict[str, int]:
    """The outbox's reply rows by status, read from the configuration's database (why answers are missing)."""
    sql = "SELECT status, COUNT(*) FROM outbox WHERE kind = 'reply' GROUP BY status"
    if cfg.database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(cfg.database_url.split(":///", 1)[1])) as db:
            return {str(s): int(n) for s, n in db.execute(sql).fetchall()}
    url = cfg.database_url.replace("+asyncpg", "", 1)
    out = subprocess.run(["psql", url, "-At", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True)
    return {s: int(n) for s, n in (line.split("\t") for line in out.stdout.splitlines() if line)}


# ------------------------------------------------------------------------------------------- helper processes


@dataclass
class Running:
    """A double as the control server sees it."""

    endpoint: str
    close: Callable[[], Awaitable[None]]
    # Every message the double took, as (national number, what it was: a template key, or the first words of
    # a free text), in arrival order.
    messages: Callable[[], list[tuple[str, str]]]
    sessions: Callable[[], int] = lambda: 0  # logged-in CMPP sessions
    deliver: Callable[[list[dict[str, str]], int, float], Awaitable[dict[str, Any]]] | None = None


async def start_double(provider: str, twilio_sid: str, twilio_token: str) -> Running:
    """The provider's double on a free port of 127.0.0.1. The fakes are the tests' own (tests/fakes), so the bench
    meets the same protocol checks (signatures, templates, PDU layouts) the tests do."""
    # The project first: tests/bot, tests/store … are folders of tests and must not stand for its packages.
    sys.path[:0] = [str(ROOT)] if str(ROOT) not in sys.path else []
    sys.path.append(str(ROOT / "tests"))
    key_of = {code: key for key, aliyun, tencent, _p, _x in templates() for code in (aliyun, tencent)}

    if provider == "aliyun":
        from fakes.aliyun_sms import FakeAliyunSms

        texts = {aliyun: text for _k, aliyun, _t, _p, text in templates()}
        aliyun = await FakeAliyunSms(ALIYUN_AK, ALIYUN_SECRET, sign_names=[ALIYUN_SIGN], templates=texts).start()

        def sent_by_aliyun() -> list[tuple[str, str]]:
            return [(s["phone"], key_of.get(s["template_code"], s["template_code"])) for s in aliyun.sends]

        return Running(aliyun.endpoint, aliyun.close, sent_by_aliyun)

    if provider == "tencent":
        from fakes.tencent_sms import FakeTencentSms

        counts = {tencent: len(params) for _k, _a, tencent, params, _x in templates()}
        tencent = await FakeTencentSms(TENCENT_ID, TENCENT_KEY, TENCENT_APP, TENCENT_SIGN, templates=counts).start()

        def sent_by_tencent() -> list[tuple[str, str]]:
            return [(s["phone"].removeprefix("+86"), key_of.get(s["template_id"], s["template_id"]))
                    for s in tencent.sends]

        return Running(tencent.endpoint, tencent.close, sent_by_tencent)

    if provider == "cmpp":
        from fakes.cmpp_gateway import FakeGateway

        gateway = await FakeGateway(CMPP_SP, CMPP_SECRET, src_id=CMPP_SRC, service_id=CMPP_SERVICE,
                                    max_connections=2).start()

        def taken_by_gateway() -> list[tuple[str, str]]:
            return [(m.to, first_words(m.text)) for m in gateway.messages]

        def logged_in() -> int:
            return len(gateway.open_sessions)

        async def deliver(replies: list[dict[str, str]], concurrency: int, duration: float) -> dict[str, Any]:
            return await deliver_load(gateway, replies, concurrency, duration)

        return Running(f"{gateway.host}:{gateway.port}", gateway.close, taken_by_gateway, logged_in, deliver)

    if provider == "twilio":
        app = w.fake_twilio_app(twilio_sid, twilio_token)
        taken: list[tuple[str, str]] = []

        @web.middleware
        async def record(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            response = await handler(request)
            if request.path.endswith("/Messages.json") and response.status == 201:
                form = await request.post()  # read by the handler already: aiohttp keeps it
                taken.append((str(form.get("To", "")).removeprefix("+86"), first_words(str(form.get("Body", "")))))
            return response

        app.middlewares.append(record)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return Running(f"http://127.0.0.1:{runner.addresses[0][1]}", runner.cleanup, lambda: taken)

    raise SystemExit(f"unknown provider {provider!r}; expected one of {PROVIDERS}")


async def run_double(provider: str, twilio_sid: str, twilio_token: str) -> None:
    """The double and its control server, until SIGTERM; the first line on stdout says where they listen."""
    running = await start_double(provider, twilio_sid, twilio_token)

    async def count(request: web.Request) -> web.Response:
        found = running.messages()[int(request.query.get("since", "0")):]
        pairs = Counter(found)
        return web.json_response({"total": len(found), "labels": dict(Counter(label for _p, label in found)),
                                  "numbers": len({phone for phone, _l in found}),
                                  "repeated": len({phone for (phone, _l), n in pairs.items() if n > 1})})

    async def sessions(_request: web.Request) -> web.Response:
        return web.json_response({"open": running.sessions()})

    async def load(request: web.Request) -> web.Response:
        if running.deliver is None:
            raise web.HTTPNotFound(text="only the gateway double delivers")
        doc = await request.json()
        return web.json_response(await running.deliver(doc["replies"], int(doc["concurrency"]),
                                                       float(doc["duration"])))

    control = web.Application(client_max_size=256 * 1024 * 1024)
    control.router.add_get("/count", count)
    control.router.add_get("/sessions", sessions)
    control.router.add_post("/deliver", load)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(json.dumps({"endpoint": running.endpoint, "control": f"http://127.0.0.1:{runner.addresses[0][1]}"}),
          flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await running.close()


def first_words(text: str) -> str:
    """A free text's label at the double: its first characters (the rendered texts carry no key)."""
    return text[:8] + ("…" if len(text) > 8 else "")


async def deliver_load(gateway: Any, replies: list[dict[str, str]], concurrency: int,
                       duration: float) -> dict[str, Any]:
    """The replies as DELIVERs on the one open session, `concurrency` awaiting their DELIVER_RESP at a time, each
    once, in order, for at most `duration` seconds; figures as bench/webhooks.py's generator gives them."""
    if len(gateway.open_sessions) != 1:
        raise web.HTTPConflict(text=f"{len(gateway.open_sessions)} sessions are logged in, expected serve's alone")
    [session] = gateway.open_sessions
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    first_error: list[str] = []
    next_index = 0
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(replies) and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            reply = replies[index]
            sent = time.perf_counter()
            try:
                _ids, results = await gateway.deliver(reply["phone"], reply["text"], session=session,
                                                      wait=DELIVER_WAIT)
                status = "0" if results == [0] else f"Result {results}"
            except TimeoutError:
                status = "no DELIVER_RESP"
            except (ConnectionError, AssertionError) as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
            if status != "0" and not first_error:
                first_error.append(f"#{index} {status}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = sorted(v * 1000 for v in latencies)
    p50, p99 = w.percentile(ms, 50), w.percentile(ms, 99)
    errors = sum(n for status, n in statuses.items() if status != "0")
    return {"requests": len(latencies), "seconds": round(elapsed, 2),
            "per_second": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(p50, 1) if p50 is not None else None, "p99_ms": round(p99, 1) if p99 is not None else None,
            "errors": errors, "statuses": dict(statuses), "first_error": first_error[0] if first_error else None,
            "ended_at": time.time()}


# ------------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--numbers", type=int, default=2_000, help="distinct phone numbers, one reply each")
    parser.add_argument("--duration", type=float, default=120.0, help="at most this many seconds of load per row")
    parser.add_argument("--providers", default=",".join(PROVIDERS), help=f"comma-separated, of {', '.join(PROVIDERS)}")
    parser.add_argument("--load", nargs=5, metavar="ARG", help=argparse.SUPPRESS)  # URL BODIES CONC DURATION KIND
    parser.add_argument("--double", nargs=3, metavar="ARG", help=argparse.SUPPRESS)  # PROVIDER TWILIO_SID TOKEN
    args = parser.parse_args(argv)
    if args.load:
        url, bodies, concurrency, duration, provider = args.load
        print(json.dumps(run_load(url, Path(bodies), int(concurrency), float(duration), provider)), flush=True)
        return
    if args.double:
        asyncio.run(run_double(*args.double))
        return
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    unknown = sorted(set(providers) - set(PROVIDERS))
    if unknown:
        parser.error(f"unknown provider(s) {', '.join(unknown)}; expected some of {', '.join(PROVIDERS)}")
    rows: list[Row] = []
    names = CONFIGS if args.config == "both" else (args.config,)
    for name in names:
        rows += measure(name, args.numbers, args.duration, providers)
        if name != names[-1]:  # each configuration as it ends, the whole table at the end
            print(table(rows) + "\n", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
