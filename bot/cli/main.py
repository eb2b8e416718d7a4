"""The `haochaping` command: serve, tick, db upgrade (CONTRACT "Install and run"), and users."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.cli import calendar as cli_calendar
from bot.cli import exports as cli_exports
from bot.cli import keys as cli_keys
from bot.cli import reports as cli_reports
from bot.cli import secret as cli_secret
from bot.cli import stats as cli_stats
from bot.cli import workers
from bot.duties import scheduler
from bot.infra import audit
from bot.infra.config import ConfigError, Settings, listen_url, load_settings, serving_settings
from bot.infra.limits import RANGE_TEXT, instant_problem
from bot.infra.logs import setup_logging
from bot.infra.runtime import open_runtime
from bot.policy.rules import PolicyError, load_policy
from bot.web.app import build_app, runner_options
from bot.work_orders import users
from store import migrate
from store import users as user_store
from store.engine import Database

log = logging.getLogger("haochaping")


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


LISTEN_BACKLOG = 1024  # connections waiting to be accepted (the kernel caps it at net.core.somaxconn)


class ListenError(Exception):
    """`serve` could not listen on its address (taken, not this machine's, not allowed): one line, exit code 2."""


def _listen_problem(exc: OSError, host: str, port: int) -> ListenError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    hint = " (another haochaping or another program uses it: stop that one, or choose another --port)" if (
        exc.errno == errno.EADDRINUSE) else ""
    return ListenError(f"cannot listen on {where}: {why}{hint}")


async def serve(settings: Settings, host: str, port: int, run_scheduler: bool, worker: int | None = None) -> None:
    """One process of the service; `worker` is its index when it is one of several (bot/cli/workers.py)."""
    configured = settings
    settings = serving_settings(settings, host, port)
    rt = await open_runtime(settings)
    runner = web.AppRunner(build_app(rt), access_log=logging.getLogger("aiohttp.access"), **runner_options(rt))
    await runner.setup()
    # A burst's connections wait in the kernel's accept queue while the loop is busy: aiohttp's 128 would
    # drop the rest of a burst's SYNs, each then retried by its client a second or more later.
    try:
        await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG, reuse_port=worker is not None).start()
    except OSError as exc:
        await runner.cleanup()
        await rt.close()
        raise _listen_problem(exc, host, port) from None
    public = settings.public_url + (" (HAOCHAPING_PUBLIC_URL is unset: taken from --host/--port)"
                                    if settings is not configured else "")
    log.info("haochaping%s on http://%s:%d — public URL %s, database %s, state %s, SMS provider %s, scheduler %s",
             f" worker {worker}" if worker is not None else "", host, port, public,
             _safe_url(settings.database_url), "redis" if settings.redis_url else "in-process",
             rt.sms.name, "on" if run_scheduler else "off")
    if settings.simulator_enabled:
        log.info("try it: the simulator is at %s/simulator/ (the console at /console/)", listen_url(host, port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if not worker:  # a gateway's connection (CMPP) opens now and is kept while serve runs, by one worker
        await rt.sms_channel.start()
    task = asyncio.create_task(scheduler.loop(rt)) if run_scheduler else None
    try:
        await stop.wait()
    finally:
        if task:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
        await rt.close()


async def prepare(settings: Settings) -> None:
    """What several workers must not race on, done once before they start: the schema, the secret key."""
    rt = await open_runtime(settings)
    await rt.close()


def serve_workers(settings: Settings, host: str, port: int, run_scheduler: bool, count: int) -> int:
    """`serve --workers N` (N > 1): the exit code."""
    workers.check(settings, count)
    asyncio.run(prepare(settings))
    workers.probe(host, port, _listen_problem)
    return workers.supervise(count, lambda i: serve(settings, host, port, run_scheduler and i == 0, worker=i))


async def tick(settings: Settings, now: datetime) -> dict[str, int]:
    rt = await open_runtime(settings)
    try:
        return await scheduler.tick(rt, now)
    finally:
        await rt.close()


async def db_upgrade(settings: Settings) -> str | None:
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        return await migrate.current(db)
    finally:
        await db.close()


async def users_command(settings: Settings, args: argparse.Namespace, password: str | None) -> dict[str, object]:
    """Add, list, disable a user, set a password, a role or a jurisdiction; only the CLI changes users (no HTTP
    route does), and each change is an audit row (bot/infra/audit.py) with the operator as its actor."""
    db = Database(settings.database_url)
    now = datetime.now(UTC)
    try:
        await migrate.upgrade(db)
        async with db.write() as session:
            actor = audit.cli_actor()  # each change below is audited in its own transaction
            if args.users_command == "add":
                assert password is not None
                user = await users.create(session, args.username, args.role, args.agency, password, now,
                                          display_name=args.name, actor=actor)
                return {"created": user.username, "role": user.role, "agencies": user.agencies}
            if args.users_command == "list":
                rows = await user_store.every(session)
                return {"users": [{"username": u.username, "role": u.role, "agencies": u.agencies,
                                   "disabled": u.disabled_at is not None} for u in rows]}
            user = await user_store.by_name(session, args.username)
            if user is None:
                raise users.UserError(f"no user {args.username!r}")
            if args.users_command == "disable":
                await users.disable(session, user, now, actor=actor)
            elif args.users_command == "set":
                agencies = list(dict.fromkeys(args.agency)) if args.agency else None
                if args.role is None and agencies is None and args.name is None:
                    raise users.UserError("set: give --role, --agency or --name")
                changes = await users.update(session, user, now, actor=actor, role=args.role, agencies=agencies,
                                             display_name=args.name)
                return {"updated": user.username, "changes": changes}
            else:
                assert password is not None
                await users.set_password(session, user, password, now, actor=actor)
            return {"updated": user.username}
    finally:
        await db.close()


def read_password() -> str:
    """HAOCHAPING_USER_PASSWORD, else a line on a piped stdin, else asked twice on the terminal."""
    given = os.environ.get("HAOCHAPING_USER_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise users.UserError("the two passwords differ")
    return first


def parse_now(value: str | None, settings: Settings) -> datetime:
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:  # a bare local time means the policy's zone
        parsed = parsed.replace(tzinfo=load_policy(settings.policy_path).tz)
    problem = instant_problem(parsed)
    if problem:
        raise ValueError(problem)
    return parsed


SUBCOMMANDS = {"stats": cli_stats, "export": cli_exports, "reports": cli_reports, "secret": cli_secret,
               "keys": cli_keys, "calendar": cli_calendar}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="haochaping", description="Government-service ratings by SMS, WeChat and the 12345 hotline.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP service, the scheduler and the outbox sender")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--no-scheduler", action="store_true", help="leave timed work to `haochaping tick`")
    s.add_argument("--workers", default="1", metavar="N",
                   help="processes answering on the port (SO_REUSEPORT; 'auto': one per core; more than one "
                        "needs HAOCHAPING_REDIS_URL); the scheduler runs in the first")
    t = sub.add_parser("tick", help="do every timed duty due at --now once, print the counts as JSON")
    t.add_argument("--now", help="ISO-8601 instant (default: the real time)")
    d = sub.add_parser("db", help="database schema")
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="bring the database to the current schema")
    u = sub.add_parser("users", help="people who work on work orders (L1, L2, 12345 agents, admins)")
    usub = u.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="create a user; the password comes from HAOCHAPING_USER_PASSWORD, "
                                      "stdin, or the terminal")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=users.ROLE_NAMES)
    add.add_argument("--agency", action="append", required=True,
                     help="an agency code of their jurisdiction (repeat for several; * = every agency)")
    add.add_argument("--name", help="display name")
    usub.add_parser("list", help="list users")
    dis = usub.add_parser("disable", help="disable a user (their tokens stop working)")
    dis.add_argument("username")
    pw = usub.add_parser("password", help="set a new password (their tokens stop working)")
    pw.add_argument("username")
    st = usub.add_parser("set", help="a new role, jurisdiction or display name (holds from their next request)")
    st.add_argument("username")
    st.add_argument("--role", choices=users.ROLE_NAMES)
    st.add_argument("--agency", action="append",
                    help="the agency codes of their jurisdiction, replacing the old ones (repeat; * = every agency)")
    st.add_argument("--name", help="display name")
    cli_stats.add_parser(sub)
    cli_exports.add_parser(sub)
    cli_reports.add_parser(sub)
    cli_secret.add_parser(sub)
    cli_keys.add_parser(sub)
    cli_calendar.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.log_level)
        if args.command in ("serve", "tick"):
            cli_secret.refuse_in_production(settings)
        if args.command == "serve":
            run_scheduler = settings.scheduler and not args.no_scheduler
            try:
                count = workers.count(args.workers)
            except ValueError as exc:
                print(f"haochaping serve: {exc}", file=sys.stderr)
                return 2
            try:
                if count > 1:
                    return serve_workers(settings, args.host, args.port, run_scheduler, count)
                asyncio.run(serve(settings, args.host, args.port, run_scheduler))
            except ListenError as exc:
                print(f"haochaping serve: {exc}", file=sys.stderr)
                return 2
        elif args.command == "tick":
            try:
                now = parse_now(args.now, settings)
            except ValueError:
                print(f"haochaping tick: --now {args.now!r} is not an ISO-8601 instant from {RANGE_TEXT}",
                      file=sys.stderr)
                return 2
            print(json.dumps(asyncio.run(tick(settings, now))))
        elif args.command == "users":
            try:
                password = read_password() if args.users_command in ("add", "password") else None
                print(json.dumps(asyncio.run(users_command(settings, args, password)), ensure_ascii=False))
            except users.UserError as exc:
                print(f"haochaping users: {exc}", file=sys.stderr)
                return 2
        elif args.command in SUBCOMMANDS:
            return SUBCOMMANDS[args.command].run(settings, args)
        elif args.command == "db":
            revision = asyncio.run(db_upgrade(settings))
            print(json.dumps({"revision": revision}))
    except (ConfigError, PolicyError) as exc:
        print(f"haochaping: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
