"""Inbound webhooks: Twilio SMS answers and 12345 key presses per second, against a bare baseline.

One run per configuration ("embedded": SQLite and in-process state; "pg+redis") measures, on a
fresh database of its own (bench/common.py):

- `sms`: `POST /webhooks/twilio/sms` from N distinct phone numbers, each answering its own live
  reminder with a good grade ("1", "2" or "3" in turn), so each request is one stored rating and ends
  its conversation. Setting up: N cases through `POST /api/v1/cases:bulk` (completed 25 hours
  before the tick instant), then `haochaping tick --now <instant>` queues and sends the N reminders
  to a fake Twilio REST API (this file, `--fake-twilio`), which opens the N conversations.
- `keypad`: `POST /webhooks/twilio/voice/keys` with `Digits` 1/2/3 for N hotline calls. Before the
  timed part every call is handed over (`POST /webhooks/twilio/voice?ticket=<case_no>`, N more
  cases posted beside the SMS ones) and its `<Gather action>` URL is read from the answer; the keys go
  to that URL, as Twilio would. Each request stores one rating (channel `phone`).
- `json-keypad`: `POST /api/v1/hotline/calls/{call_id}/keys` `{"digits": 1/2/3, "step": 1}` for N calls of the
  vendor-neutral JSON keypad dialog (what a FreeSWITCH or Asterisk script posts), each started before the timed
  part with `POST /api/v1/hotline/calls` (N more cases); the API token instead of a signature. Each request stores
  one rating (channel `phone`) and the call's step, in one transaction.
- `baseline`: a minimal aiohttp app (this file, `--baseline-app`) that only checks the
  X-Twilio-Signature with twilio's RequestValidator and answers a fixed
  `<Response><Message>ok</Message></Response>`, loaded with the very same signed SMS bodies. The
  sms and keypad rows' note gives their requests/s as a ratio of this one: the share of a bare
  signed-webhook server's throughput that the whole service (dedupe, lock, dialog, store) keeps.

The tick's instant is the latest one before the wall clock outside the policy's quiet hours (the
webhooks are handled at the real time, and the conversations it opens must still be open then).
Every request is signed as Twilio signs it: `RequestValidator(auth_token).compute_signature(
PUBLIC_URL + path_and_query, params)`, with a unique MessageSid/CallSid. The server and the baseline
both believe they are reached at PUBLIC_URL (a public address behind a proxy, as in production), so
the same bodies are valid for both. The load comes from a separate process (this file, `--load`):
an aiohttp client with a fixed number of keep-alive connections (64), bodies signed before the
clock starts, each body sent once, in order, until all are sent or `duration` seconds have passed.

Figures per row: `n` requests sent; `per_second` = answered requests / elapsed seconds of the load;
`p50_ms`/`p99_ms` per-request latency seen by the client; `errors` = non-2xx answers plus failed
requests (0 in a healthy run); `seconds` the load's elapsed time; `peak_rss_mb` the server's peak
RSS (VmHWM) at the end of the row's load, setting up included; `cpu_ms` the CPU (user + system, from
/proc/<pid>/stat, the serving process and its workers) spent during the load per answered request.
After the loads the stored ratings are counted through `GET /api/v1/stats?by=agency` and a sample of
cases is read back through `GET /api/v1/cases/{case_no}`; the note says how many ratings were stored
for how many requests.

The machine's cores are shared by the server, the load generator and anything else running: every
figure, the ratio included (the baseline's run is short), moves with the host's load; quote figures
from a quiet machine. `bench/run.py` calls `measure(config, numbers=10_000)` with the 20-second cap,
so a loaded machine sends only part of the 10,000 (the note says how many); `--duration 600` sends all.

    .venv/bin/python bench/webhooks.py                      # both configurations, 10,000 numbers
    .venv/bin/python bench/webhooks.py --config embedded --numbers 500
    .venv/bin/python bench/webhooks.py --config pg+redis --numbers 10000 --duration 120
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script (the load generator too)
from bench.common import (
    ALL_CONFIGS,
    CONFIGS,
    Config,
    Row,
    config,
    cpu_seconds,
    executable,
    free_port,
    percentile,
    rss_kib,
    serve,
    table,
)

# Where the server and the baseline believe Twilio reaches them: signatures are computed on it.
PUBLIC_URL = "https://haochaping.bench.invalid"
SMS_PATH = "/webhooks/twilio/sms"
VOICE_PATH = "/webhooks/twilio/voice"
CALLS_PATH = "/api/v1/hotline/calls"
SMS_FROM = "+15005550006"
HOTLINE_NUMBER = "+8657112345"
CONCURRENCY = 64
SETUP_TIMEOUT = 3600.0  # seconds: setting up (bulk, tick, hand-overs) is not timed, only bounded
GRADES = {"1": "very_satisfied", "2": "satisfied", "3": "basically_satisfied"}
BASELINE_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>ok</Message></Response>'
SMS_AGENCY, KEYPAD_AGENCY, JSON_AGENCY = "BENCH-SMS", "BENCH-KP", "BENCH-JK"
SAMPLE = 25  # cases read back one by one after each load


# --------------------------------------------------------------------------------------------- helpers


def sms_phone(i: int) -> str:
    return f"139{i:08d}"


def keypad_phone(i: int) -> str:
    return f"137{i:08d}"


def json_keypad_phone(i: int) -> str:
    return f"136{i:08d}"


def digit(i: int) -> str:
    return str(i % 3 + 1)


def twilio_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen within {timeout:.0f} s") from None
            time.sleep(0.05)


@contextmanager
def helper_process(args: Sequence[str], port: int, what: str) -> Iterator[subprocess.Popen[bytes]]:
    """This file run in one of its helper modes, listening on `port`, until the block ends."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args])
    try:
        wait_listening(port, process, what)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api(url: str, token: str, path: str, body: bytes | None = None,
        content_type: str = "application/json") -> Any:
    request = urllib.request.Request(url + path, data=body, method="POST" if body is not None else "GET",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=SETUP_TIMEOUT) as response:
        return json.loads(response.read())


def tick_instant(policy_path: str | None) -> tuple[datetime, timedelta]:
    """The latest instant a minute or more before the wall clock that is outside the quiet hours, and
    the reminder delay, both from the policy the service will read.

    Webhooks are handled at the real time, so the conversations a tick at this instant opens must
    still be open when the load runs: they live `conversation_hours` from the tick."""
    from bot.policy.rules import load_policy

    policy = load_policy(policy_path)
    instant = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    for _ in range(24 * 60):
        if not policy.in_quiet_hours(instant.astimezone(policy.tz).time()):
            break
        instant -= timedelta(minutes=1)
    else:
        raise RuntimeError("the policy's quiet hours cover the whole day: no instant to remind at")
    if instant + timedelta(hours=policy.conversation_hours) < datetime.now(UTC) + timedelta(hours=1):
        raise RuntimeError(f"conversations opened at {instant.isoformat()} expire before the load is done")
    return instant, policy.reminder_after


def case_line(case_no: str, agency: str, phone: str, completed_at: datetime) -> str:
    return json.dumps({
        "case_no": case_no, "item_code": "BENCH1", "item_name": "居民身份证换领", "agency_code": agency,
        "agency_name": "某某局", "completed_at": completed_at.isoformat(),
        "applicant": {"phone": phone, "locale": "zh-CN"},
    }, ensure_ascii=False)


@dataclass(frozen=True)
class Signed:
    path: str  # with its query
    body: str  # form-encoded
    signature: str

    def json(self) -> str:
        return json.dumps({"path": self.path, "body": self.body, "signature": self.signature})


@dataclass(frozen=True)
class Plain:
    """A request of the JSON API: its path, body and headers (no signature)."""

    path: str
    body: str
    headers: dict[str, str]

    def json(self) -> str:
        return json.dumps({"path": self.path, "body": self.body, "headers": self.headers})


def sign(validator: RequestValidator, path: str, params: dict[str, str]) -> Signed:
    return Signed(path, urlencode(params), str(validator.compute_signature(PUBLIC_URL + path, params)))


def sms_request(validator: RequestValidator, account_sid: str, i: int) -> Signed:
    sid = twilio_sid("SM")
    params = {
        "ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "", "FromZip": "",
        "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "", "Body": digit(i),
        "FromCountry": "CN", "To": SMS_FROM, "ToZip": "", "NumSegments": "1", "MessageSid": sid,
        "AccountSid": account_sid, "From": "+86" + sms_phone(i), "ApiVersion": "2010-04-01",
    }
    return sign(validator, SMS_PATH, params)


def call_params(account_sid: str, call_sid: str, i: int) -> dict[str, str]:
    return {
        "AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "in-progress",
        "Called": HOTLINE_NUMBER, "Caller": "+86" + keypad_phone(i), "Direction": "inbound",
        "From": "+86" + keypad_phone(i), "FromCountry": "CN", "To": HOTLINE_NUMBER, "ToCountry": "CN",
    }


GATHER_ACTION = re.compile(r'<Gather\b[^>]*\baction="([^"]+)"')


def write_lines(path: Path, requests: Sequence[Signed | Plain]) -> None:
    path.write_text("".join(r.json() + "\n" for r in requests))


def load(url: str, bodies: Path, duration: float, out: Path | None = None) -> dict[str, Any]:
    """Run the load generator as its own process; its JSON summary."""
    args = [sys.executable, str(Path(__file__).resolve()), "--load", url, str(bodies), str(CONCURRENCY),
            str(duration)] + ([str(out)] if out else [])
    done = subprocess.run(args, stdout=subprocess.PIPE, check=True, timeout=duration + SETUP_TIMEOUT)
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def read_back(url: str, token: str, prefix: str, sent: int, channel: str) -> list[str]:
    """Problems found in a sample of the cases whose request was sent: each must hold one rating,
    of the grade sent, by the channel."""
    problems = []
    for i in sorted({round(k * (sent - 1) / max(SAMPLE - 1, 1)) for k in range(SAMPLE)} if sent else ()):
        case = api(url, token, f"/api/v1/cases/{prefix}-{i:06d}")
        grades = [(e["grade"], e["channel"]) for e in case.get("evaluations", [])]
        if grades != [(GRADES[digit(i)], channel)]:
            problems.append(f"{prefix}-{i:06d}: {grades}")
    return problems


def rated_by_agency(url: str, token: str) -> dict[str, int]:
    stats = api(url, token, "/api/v1/stats?by=agency")
    return {g["key"]: int(g["rated"]) for g in stats["groups"]}


def load_row(name: str, config_name: str, summary: dict[str, Any], peak_kib: int, note: str) -> Row:
    answered = int(summary["requests"]) - int(summary["errors"])
    cpu = summary.get("server_cpu_seconds")
    return Row(name, config_name, int(summary["requests"]), per_second=float(summary["per_second"]),
               p50_ms=summary["p50_ms"], p99_ms=summary["p99_ms"], errors=int(summary["errors"]),
               seconds=float(summary["seconds"]), peak_rss_mb=round(peak_kib / 1024, 1) if peak_kib else None,
               cpu_ms=round(1000 * cpu / answered, 3) if cpu is not None and answered else None, note=note)


def load_measured(url: str, bodies: Path, duration: float, pid: int) -> dict[str, Any]:
    """`load`, with the CPU the serving process (and its workers) spent meanwhile."""
    before = cpu_seconds(pid)
    summary = load(url, bodies, duration)
    summary["server_cpu_seconds"] = cpu_seconds(pid) - before
    return summary


def failures(summary: dict[str, Any]) -> str:
    if not summary["errors"]:
        return ""
    return f"; statuses {summary['statuses']}, first error: {summary.get('first_error')}"


# --------------------------------------------------------------------------------------------- measure


def measure(config_name: str, numbers: int = 10_000, duration: float = 20.0, workers: int = 1) -> list[Row]:
    """The sms, keypad and baseline rows of one configuration, on a database of its own; `serve --workers`
    (more than one needs Redis: pg+redis only)."""
    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    validator = RequestValidator(auth_token)
    with config(config_name) as cfg, tempfile.TemporaryDirectory(prefix="hcp-webhooks-") as tmp:
        files = Path(tmp)
        twilio_port = free_port()
        with helper_process(["--fake-twilio", str(twilio_port), account_sid, auth_token], twilio_port,
                            "the fake Twilio"):
            twilio = {"TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": auth_token,
                      "TWILIO_SMS_FROM": SMS_FROM, "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio_port}",
                      "HAOCHAPING_PUBLIC_URL": PUBLIC_URL}
            with serve(cfg, workers=workers, **twilio) as server:
                rows = _measure_served(cfg, server.url, server.pid, twilio, validator, account_sid, files,
                                       numbers, duration)
        if workers > 1:
            for row in rows:
                row.benchmark += f" ×{workers}"
        baseline_port = free_port()
        with helper_process(["--baseline-app", str(baseline_port), auth_token, PUBLIC_URL], baseline_port,
                            "the baseline app") as baseline:
            summary = load_measured(f"http://127.0.0.1:{baseline_port}", files / "sms.jsonl", duration, baseline.pid)
            peak = rss_kib(baseline.pid, "VmHWM")
        rows.append(load_row("baseline", config_name, summary, peak,
                             "signature check + fixed TwiML, same SMS bodies" + failures(summary)))
        for row in rows[:3]:
            if row.per_second and summary["per_second"]:
                row.note = f"ratio {row.per_second / summary['per_second']:.2f} of baseline; {row.note}"
        return rows


def _measure_served(cfg: Config, url: str, pid: int, twilio: dict[str, str], validator: RequestValidator,
                    account_sid: str, files: Path, numbers: int, duration: float) -> list[Row]:
    instant, reminder_after = tick_instant(cfg.env(**twilio).get("HAOCHAPING_POLICY"))
    completed = instant - reminder_after - timedelta(hours=1)  # its reminder is due at the tick
    recent = instant - timedelta(hours=1)  # the hotline's cases: no reminder due at the tick

    # Cases: N for SMS, N for the hotline.
    lines = [case_line(f"SMS-{i:06d}", SMS_AGENCY, sms_phone(i), completed) for i in range(numbers)]
    lines += [case_line(f"KP-{i:06d}", KEYPAD_AGENCY, keypad_phone(i), recent) for i in range(numbers)]
    lines += [case_line(f"JK-{i:06d}", JSON_AGENCY, json_keypad_phone(i), recent) for i in range(numbers)]
    bulk = api(url, cfg.api_token, "/api/v1/cases:bulk", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
    if bulk.get("created") != 3 * numbers or bulk.get("errors"):
        raise RuntimeError(f"bulk ingestion: {str(bulk)[:500]}")

    # Reminders: queued and sent (to the fake Twilio) by one tick; each opens its number's conversation.
    started = time.perf_counter()
    done = subprocess.run([executable(), "tick", "--now", instant.isoformat()], env=cfg.env(**twilio),
                          cwd=cfg.workdir, stdout=subprocess.PIPE, check=True, timeout=SETUP_TIMEOUT)
    tick_seconds = time.perf_counter() - started
    ticked = json.loads(done.stdout)
    received = json.loads(urllib.request.urlopen(twilio["TWILIO_API_BASE_URL"] + "/_count", timeout=30).read())
    if ticked.get("reminders") != numbers or ticked.get("sent") != numbers or received["Messages"] != numbers:
        raise RuntimeError(f"the tick at {instant.isoformat()} did not remind every number: {ticked}, "
                           f"the fake Twilio received {received}")

    # SMS: one signed answer per number.
    sms = [sms_request(validator, account_sid, i) for i in range(numbers)]
    write_lines(files / "sms.jsonl", sms)
    sms_summary = load_measured(url, files / "sms.jsonl", duration, pid)
    sms_peak = rss_kib(pid, "VmHWM")

    # Hotline: hand every call over (not timed), then the timed key presses at each call's Gather action.
    calls = [twilio_sid("CA") for _ in range(numbers)]
    handovers = [sign(validator, f"{VOICE_PATH}?{urlencode({'ticket': f'KP-{i:06d}'})}",
                      call_params(account_sid, calls[i], i)) for i in range(numbers)]
    write_lines(files / "handover.jsonl", handovers)
    handover_summary = load(url, files / "handover.jsonl", SETUP_TIMEOUT, files / "handover.out")
    if handover_summary["errors"]:
        raise RuntimeError(f"hand-overs failed{failures(handover_summary)}")
    answers = json.loads((files / "handover.out").read_text())
    keys = []
    for i, answer in enumerate(answers):
        found = GATHER_ACTION.search(answer or "")
        if found is None:
            raise RuntimeError(f"hand-over of KP-{i:06d} answered no <Gather action>: {str(answer)[:300]}")
        params = {**call_params(account_sid, calls[i], i), "Digits": digit(i)}
        keys.append(sign(validator, html.unescape(found.group(1)), params))
    write_lines(files / "keys.jsonl", keys)
    keys_summary = load_measured(url, files / "keys.jsonl", duration, pid)
    keys_peak = rss_kib(pid, "VmHWM")

    # The JSON keypad dialog: every call started (not timed), then the timed keys of its first step.
    bearer = {"Content-Type": "application/json", "Authorization": f"Bearer {cfg.api_token}"}
    starts = [Plain(CALLS_PATH, json.dumps({"call_id": f"jk-{i:06d}", "caller": json_keypad_phone(i),
                                            "ticket": f"JK-{i:06d}"}), bearer) for i in range(numbers)]
    write_lines(files / "json-start.jsonl", starts)
    start_summary = load(url, files / "json-start.jsonl", SETUP_TIMEOUT)
    if start_summary["errors"]:
        raise RuntimeError(f"JSON dialog starts failed{failures(start_summary)}")
    presses = [Plain(f"{CALLS_PATH}/jk-{i:06d}/keys", json.dumps({"digits": digit(i), "step": 1}), bearer)
               for i in range(numbers)]
    write_lines(files / "json-keys.jsonl", presses)
    json_summary = load_measured(url, files / "json-keys.jsonl", duration, pid)
    json_peak = rss_kib(pid, "VmHWM")

    # What was stored.
    rated = rated_by_agency(url, cfg.api_token)
    sms_problems = read_back(url, cfg.api_token, "SMS", sms_summary["requests"], "sms")
    keys_problems = read_back(url, cfg.api_token, "KP", keys_summary["requests"], "phone")
    json_problems = read_back(url, cfg.api_token, "JK", json_summary["requests"], "phone")

    def stored(summary: dict[str, Any], agency: str, problems: list[str]) -> str:
        text = f"{rated.get(agency, 0)} ratings stored for {summary['requests']} requests"
        if summary["requests"] < numbers:
            text += f" ({numbers - summary['requests']} not sent within {duration:g} s)"
        if problems:
            text += f"; read back wrong: {'; '.join(problems[:3])}"
        return text

    sms_note = (f"{stored(sms_summary, SMS_AGENCY, sms_problems)}; setup: tick sent {ticked['sent']} reminders "
                f"in {tick_seconds:.0f} s{failures(sms_summary)}")
    keys_note = (f"{stored(keys_summary, KEYPAD_AGENCY, keys_problems)}; setup: {handover_summary['requests']} "
                 f"hand-overs at {handover_summary['per_second']:.0f}/s, p99 {handover_summary['p99_ms']} ms"
                 f"{failures(keys_summary)}")
    json_note = (f"{stored(json_summary, JSON_AGENCY, json_problems)}; setup: {start_summary['requests']} starts at "
                 f"{start_summary['per_second']:.0f}/s, p99 {start_summary['p99_ms']} ms{failures(json_summary)}")
    return [load_row("sms", cfg.name, sms_summary, sms_peak, sms_note),
            load_row("keypad", cfg.name, keys_summary, keys_peak, keys_note),
            load_row("json-keypad", cfg.name, json_summary, json_peak, json_note)]


# ------------------------------------------------------------------------------------ helper processes


Prepared = list[tuple[str, bytes, dict[str, str]]]


def prepare(url: str, bodies: Path) -> Prepared:
    """Every request ready to go: target, body bytes, headers (read before the clock starts)."""
    prepared = []
    for line in bodies.read_text().splitlines():
        doc = json.loads(line)
        headers = doc.get("headers") or {"Content-Type": "application/x-www-form-urlencoded",
                                         "X-Twilio-Signature": doc["signature"]}
        prepared.append((url + doc["path"], doc["body"].encode(), headers))
    return prepared


async def generate(prepared: Prepared, concurrency: int, duration: float,
                   answers: list[str | None] | None = None) -> dict[str, Any]:
    """Send each request once, in order, over `concurrency` keep-alive connections, for at most `duration`
    seconds; with `answers` (as long as `prepared`), keep each answer's body there."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    first_error: list[str] = []
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(prepared) and time.perf_counter() < deadline:
                index = next_index
                next_index += 1
                target, body, headers = prepared[index]
                sent = time.perf_counter()
                try:
                    async with session.post(target, data=body, headers=headers) as response:
                        text = await response.text()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    text, status = f"{type(exc).__name__}: {exc}", "exception"
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
                if answers is not None:
                    answers[index] = text
                if not status.startswith("2") and not first_error:
                    first_error.append(f"#{index} {status} {text[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [v * 1000 for v in latencies]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    errors = sum(n for status, n in statuses.items() if not status.startswith("2"))
    return {"requests": len(latencies), "seconds": round(elapsed, 2),
            "per_second": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(p50, 1) if p50 is not None else None,
            "p99_ms": round(p99, 1) if p99 is not None else None,
            "errors": errors, "statuses": statuses, "first_error": first_error[0] if first_error else None}


def baseline_app(auth_token: str, public_url: str) -> web.Application:
    """What any signed Twilio webhook must do at least: read the form, check the signature, answer."""
    validator = RequestValidator(auth_token)

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        if not validator.validate(public_url + request.path_qs, params, request.headers.get("X-Twilio-Signature", "")):
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        return web.Response(text=BASELINE_TWIML, content_type="text/xml", charset="utf-8")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app


def fake_twilio_app(account_sid: str, auth_token: str) -> web.Application:
    """Just enough of Twilio's REST API for the real twilio client to send reminders: 201 and a sid."""
    expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    counts = {"Messages": 0, "Calls": 0}

    async def create(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected or request.match_info["account"] != account_sid:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        form = await request.post()
        kind = request.match_info["kind"]
        counts[kind] += 1
        sid = twilio_sid("SM" if kind == "Messages" else "CA")
        return web.json_response({"sid": sid, "account_sid": account_sid, "status": "queued",
                                  "to": form.get("To"), "from": form.get("From"), "body": form.get("Body")},
                                 status=201)

    async def count(_request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account}/{kind:Messages|Calls}.json", create)
    app.router.add_get("/_count", count)
    return app


# ------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--config", choices=[*ALL_CONFIGS, "both"], default="both")
    parser.add_argument("--numbers", type=int, default=10_000, help="distinct phone numbers (and hotline calls)")
    parser.add_argument("--duration", type=float, default=20.0, help="at most this many seconds of load per row")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="`serve --workers` of each run (pg+redis only above 1), e.g. 1 2 for the scaling")
    parser.add_argument("--load", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # URL BODIES CONC DURATION [OUT]
    parser.add_argument("--baseline-app", nargs=3, metavar=("PORT", "TOKEN", "PUBLIC_URL"), help=argparse.SUPPRESS)
    parser.add_argument("--fake-twilio", nargs=3, metavar=("PORT", "ACCOUNT_SID", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        url, bodies, concurrency, duration, *out = args.load
        prepared = prepare(url, Path(bodies))
        answers: list[str | None] | None = [None] * len(prepared) if out else None
        summary = asyncio.run(generate(prepared, int(concurrency), float(duration), answers))
        if out:
            Path(out[0]).write_text(json.dumps(answers, ensure_ascii=False))
        print(json.dumps(summary), flush=True)
        return
    if args.baseline_app or args.fake_twilio:
        port, *rest = args.baseline_app or args.fake_twilio
        app = baseline_app(*rest) if args.baseline_app else fake_twilio_app(*rest)
        with suppress(KeyboardInterrupt):
            web.run_app(app, host="127.0.0.1", port=int(port), print=None, access_log=None,
                        handle_signals=True, backlog=1024)  # as `serve`'s (bot/cli/main.py): bursts are not dropped
        return
    rows: list[Row] = []
    names = CONFIGS if args.config == "both" else (args.config,)
    for name in names:
        for workers in args.workers if name == "pg+redis" else [1]:
            rows += measure(name, args.numbers, args.duration, workers)
            print(table(rows[-3:]) + "\n", file=sys.stderr, flush=True)  # each run as it ends, all at the end
    print(table(rows))


if __name__ == "__main__":
    main()
