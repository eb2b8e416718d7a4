"""`serve --workers N`: N processes answering on one port, each with its own event loop and pools.

Why processes: one Python process is CPU-bound at a few hundred ratings a second (docs/performance.md), so
a second core takes a second process. Each worker binds the address itself with SO_REUSEPORT, and the
kernel spreads new connections over the workers by their addresses; one shared listening socket would let
the first loop to wake take a whole burst (asyncio accepts up to its backlog in one go) while the others
idle.

Before the workers start, the parent does what must happen once: it prepares the database (migrations, the
generated secret key: no race between workers) and binds the address for a moment without SO_REUSEPORT, so
that a port held by another program, or by another haochaping, is refused with the usual one-line error
instead of being silently shared with it.

Only worker 0 runs the scheduler and holds a provider's long-lived connection (CMPP); the others answer
HTTP. A worker that dies is started again after a second; one that dies within its first seconds stops the
service (a port or configuration problem would only die again). SIGTERM or SIGINT to the parent stops every
worker the way `serve` stops: the requests under way are answered first.

Each worker keeps its own in-process things. So more than one needs Redis for the shared state (console
sessions, idempotency keys, WeChat's replay guard: CONTRACT, HAOCHAPING_REDIS_URL "required when more than
one worker process runs"), and GET /metrics gives the figures of the worker that took the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.infra.config import ConfigError, Settings

log = logging.getLogger("haochaping")

RESTART_DELAY = 1.0  # seconds before a dead worker is started again
EARLY_DEATH = 5.0  # a worker dead within this many seconds of its start stops the service

Worker = Callable[[int], Coroutine[Any, Any, None]]  # the worker's coroutine, given its index


def count(value: str) -> int:
    """`--workers`: a positive number, or `auto` for the number of cores."""
    if value == "auto":
        return os.cpu_count() or 1
    try:
        workers = int(value)
    except ValueError:
        raise ValueError(f"--workers {value!r}: expected a number of processes or 'auto'") from None
    if not 1 <= workers <= 64:
        raise ValueError(f"--workers {value!r}: expected 1 to 64 processes, or 'auto'")
    return workers


def check(settings: Settings, workers: int) -> None:
    """Refuse a configuration that several workers would break (before anything starts)."""
    if workers > 1 and not settings.redis_url:
        raise ConfigError(f"--workers {workers} needs HAOCHAPING_REDIS_URL: the workers share their state "
                          "(console sessions, idempotency keys, WeChat's replay guard) through Redis; "
                          "in-process state is one process's")


def probe(host: str, port: int, problem: Callable[[OSError, str, int], Exception]) -> None:
    """Bind the address once without SO_REUSEPORT: a holder of the port (even one that set SO_REUSEPORT
    itself) makes this fail, as `serve` with one worker would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's own server does
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise problem(exc, host, port) from None


def supervise(workers: int, run: Worker) -> int:
    """Run `run(i)` in a process of its own for i in 0..workers-1 until SIGTERM or SIGINT; the exit code."""
    stopping = False
    children: dict[int, tuple[int, float]] = {}  # pid: (index, when it started, on the monotonic clock)

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: its own loop, its own signal handling (serve's), never back in here
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                asyncio.run(run(index))
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        for index in range(workers):
            start(index)
        log.info("haochaping: %d workers (pids %s)", workers, " ".join(map(str, children)))
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index, started = children.pop(pid)
            exit_code = os.waitstatus_to_exitcode(status)
            if stopping:
                continue
            if time.monotonic() - started < EARLY_DEATH:
                log.error("worker %d (pid %d) exited with %d at its start: stopping the service", index, pid,
                          exit_code)
                code = exit_code if exit_code > 0 else 1
                stop(signal.SIGTERM, None)
                continue
            log.error("worker %d (pid %d) exited with %d: starting it again", index, pid, exit_code)
            time.sleep(RESTART_DELAY)
            if not stopping:
                start(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code

