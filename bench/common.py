"""What every benchmark shares: the two configurations, a database of their own, a `serve` process, figures.

A benchmark measures one of two configurations (`Config`):
- "embedded": the defaults, a SQLite file and in-process state;
- "pg+redis": a PostgreSQL database created for the run (dropped afterwards) and Redis under a key
  prefix of the run's own (deleted afterwards);
- "mariadb+redis" (asked for by name, not in "both"): the same with a MariaDB (MySQL family) database.

Servers are reached at $HCP_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test, used only to
create and drop databases), $HCP_BENCH_MARIADB (default root@127.0.0.1:3306) and $HCP_BENCH_REDIS (default
redis://127.0.0.1:6379/0).

Every benchmark returns `Row`s; `bench/run.py` prints them as one table.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_ADMIN = os.environ.get("HCP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HCP_BENCH_REDIS", "redis://127.0.0.1:6379/0")
MARIADB = os.environ.get("HCP_BENCH_MARIADB", "root@127.0.0.1:3306")
CONFIGS = ("embedded", "pg+redis")  # what "both" runs
ALL_CONFIGS = (*CONFIGS, "mariadb+redis")


@dataclass
class Row:
    """One line of the table; a figure left None is printed as "-"."""

    benchmark: str
    config: str
    n: int
    per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    seconds: float | None = None
    peak_rss_mb: float | None = None
    cpu_ms: float | None = None  # the serving processes' CPU (user + system) per answered request
    note: str = ""


@dataclass
class Config:
    """A configuration's settings as environment variables, and where its files live."""

    name: str
    workdir: Path
    database_url: str
    redis_url: str | None
    redis_prefix: str
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "HAOCHAPING_DATABASE_URL": self.database_url, "HAOCHAPING_API_TOKEN": self.api_token,
               "HAOCHAPING_SECRET_KEY": self.secret_key, "HAOCHAPING_REDIS_PREFIX": self.redis_prefix,
               "HAOCHAPING_LOG_LEVEL": "WARNING", "HAOCHAPING_SIMULATOR": "off", **extra}
        env.pop("HAOCHAPING_REDIS_URL", None)
        if self.redis_url:
            env["HAOCHAPING_REDIS_URL"] = self.redis_url
        return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (peak) of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    """The process and every process under it (the workers of `serve --workers N`)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in task.read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a live process and its children (from /proc/<pid>/stat,
    fields 14 and 15, in clock ticks): read before and after a load, the difference is the load's CPU."""
    ticks = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            # the command name (field 2) may hold spaces: count fields after its closing parenthesis
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def executable(name: str = "haochaping") -> str:
    return str(Path(sys.executable).with_name(name))


def _psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                   stdout=subprocess.DEVNULL)


def _mariadb(sql: str) -> None:
    user, _, address = MARIADB.rpartition("@")
    host, _, port = address.partition(":")
    subprocess.run(["mariadb", "-h", host, "-P", port or "3306", "-u", user or "root", "-e", sql], check=True,
                   stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def config(name: str) -> Iterator[Config]:
    """A fresh, migrated database (and Redis prefix) for one benchmark; removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="hcp-bench-"))
    prefix = f"hcp-bench-{secrets.token_hex(4)}:"
    db_name = f"hcp_bench_{secrets.token_hex(4)}"
    if name == "embedded":
        cfg = Config(name, workdir, f"sqlite+aiosqlite:///{workdir}/bench.db", None, prefix)
    elif name == "pg+redis":
        _psql(f'CREATE DATABASE "{db_name}"')
        base = PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0]
        cfg = Config(name, workdir, f"postgresql+asyncpg://{base}/{db_name}", REDIS_URL, prefix)
    elif name == "mariadb+redis":
        _mariadb(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4")
        cfg = Config(name, workdir, f"mysql+asyncmy://{MARIADB}/{db_name}?charset=utf8mb4", REDIS_URL, prefix)
    else:
        raise ValueError(f"unknown configuration {name!r}; expected one of {ALL_CONFIGS}")
    try:
        subprocess.run([executable(), "db", "upgrade"], env=cfg.env(), cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL)
        yield cfg
    finally:
        if name == "pg+redis":
            _psql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            _forget_redis(prefix)
        elif name == "mariadb+redis":
            _mariadb(f"DROP DATABASE IF EXISTS `{db_name}`")
            _forget_redis(prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def _forget_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        batch = []
        for key in client.scan_iter(match=prefix + "*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


def _ours(port: int) -> bool:
    """Whether what answers on the port is a `haochaping serve`: its /healthz names the database (200, or 503 when
    something it uses is down). A port free when picked may be taken by another process (another test's server)
    before `serve` binds it; a bare connect would take that one for ours."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read() if exc.code == 503 else b""
    except (OSError, ValueError):
        return False
    try:
        return "database" in json.loads(body)
    except ValueError:
        return False


@contextlib.contextmanager
def serve(cfg: Config, *, scheduler: bool = False, workers: int = 1, **extra_env: str) -> Iterator[Server]:
    """`haochaping serve` on a free port of 127.0.0.1, until the block ends (then SIGTERM). A port taken before
    `serve` could bind it (it exits 2: address already in use) is given up for another, three times at most."""
    for attempt in range(3):
        port = free_port()
        args = [executable(), "serve", "--port", str(port)] + ([] if scheduler else ["--no-scheduler"]) + (
            ["--workers", str(workers)] if workers != 1 else [])
        process = subprocess.Popen(args, cwd=cfg.workdir, env=cfg.env(**extra_env))
        deadline = time.monotonic() + 30
        while process.poll() is None and not _ours(port):
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("haochaping serve did not answer /healthz within 30 s")
            time.sleep(0.1)
        if process.poll() is None:
            break
        if process.returncode != 2 or attempt == 2:
            raise RuntimeError(f"haochaping serve exited with {process.returncode}")
    try:
        yield Server(process, f"http://127.0.0.1:{port}", port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) of values already sorted, nearest-rank."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


# Seeding: rows written straight into a configuration's tables, bypassing the service -----------------------

_MISSING = object()


class BulkWriter:
    """Rows into a configuration's tables as the service's own column types store them: COPY on PostgreSQL
    (asyncpg), executemany in one transaction per call on SQLite.

    A row is a dict of model attributes (aware datetimes, lists, bools), encoded through each column's
    SQLAlchemy bind processor for the database's dialect (so an instant is stored as naive UTC, JSON as
    compact text, exactly as the ORM would write it); a column left out takes the model field's default,
    and one without a default is an error. Ids may be given explicitly (`next_id`); `finish` moves the
    PostgreSQL sequences past them and runs VACUUM ANALYZE (ANALYZE on SQLite).

    `triggers=False` writes without the tables' triggers (on SQLite they are dropped and created again,
    from their stored SQL, when the writer closes; on PostgreSQL the session runs with
    session_replication_role = replica, which skips foreign-key checks too): for a seeder that then
    writes what the triggers would have, once instead of once per row.
    """

    def __init__(self, cfg: Config, *, triggers: bool = True) -> None:
        from sqlalchemy.engine import make_url

        self.cfg = cfg
        self.triggers = triggers
        self._dropped: list[str] = []
        url = make_url(cfg.database_url)
        self.dialect_name = url.get_backend_name()
        self._dialect = url.get_dialect()()
        self._sqlite: Any = None
        self._pg: Any = None
        self._my: Any = None
        self._tables: set[str] = set()

    async def __aenter__(self) -> BulkWriter:
        if self.dialect_name == "sqlite":
            import sqlite3

            self._sqlite = sqlite3.connect(self.cfg.database_url.split(":///", 1)[1], isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144", "foreign_keys=ON"):
                self._sqlite.execute(f"PRAGMA {pragma}")
            if not self.triggers:
                found = self._sqlite.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
                for name, _sql in found:
                    self._sqlite.execute(f'DROP TRIGGER "{name}"')
                self._dropped = [sql for _name, sql in found]
        elif self.dialect_name == "mysql":
            import asyncmy
            from sqlalchemy.engine import make_url

            url = make_url(self.cfg.database_url)
            # Triggers cannot be switched off for a session there: the seeding marks its days, as intake would.
            self._my = await asyncmy.connect(host=url.host, port=url.port or 3306, user=url.username or "root",
                                             password=url.password or "", db=url.database, charset="utf8mb4",
                                             autocommit=True)
        else:
            import asyncpg

            self._pg = await asyncpg.connect(self.cfg.database_url.replace("+asyncpg", "", 1))
            if not self.triggers:
                await self._pg.execute("SET session_replication_role = replica")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sqlite is not None:
            for sql in self._dropped:
                self._sqlite.execute(sql)
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()
        if self._my is not None:
            await self._my.ensure_closed()

    async def next_id(self, model: Any) -> int:
        sql = f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model.__tablename__}"
        return int(await self.scalar(sql))

    async def insert(self, model: Any, rows: Iterable[dict[str, Any]]) -> int:
        """Writes the rows (one COPY, or one transaction); the number written."""
        from pydantic_core import PydanticUndefined

        table = model.__table__
        plan = []
        for column in table.columns:
            field_info = model.model_fields.get(column.name)
            default = field_info.get_default(call_default_factory=True) if field_info is not None else None
            plan.append((column.name, column.type.dialect_impl(self._dialect).bind_processor(self._dialect),
                         _MISSING if default is PydanticUndefined else default))

        def encode(row: dict[str, Any]) -> tuple[Any, ...]:
            out = []
            for name, process, default in plan:
                value = row.get(name, default)
                if value is _MISSING:
                    raise KeyError(f"{table.name}.{name} has no value and no default")
                out.append(process(value) if process is not None and value is not None else value)
            return tuple(out)

        records = [encode(r) for r in rows]
        names = [name for name, _p, _d in plan]
        if self._sqlite is not None:
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            self._sqlite.execute("BEGIN")
            try:
                self._sqlite.executemany(sql, records)
                self._sqlite.execute("COMMIT")
            except BaseException:
                self._sqlite.execute("ROLLBACK")
                raise
        elif self._my is not None:  # multi-row INSERTs (asyncmy rewrites executemany), one transaction
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
            async with self._my.cursor() as cursor:
                await cursor.execute("BEGIN")
                for start in range(0, len(records), 5000):
                    await cursor.executemany(sql, records[start:start + 5000])
                await cursor.execute("COMMIT")
        else:
            await self._pg.copy_records_to_table(table.name, records=records, columns=names)
        self._tables.add(table.name)
        return len(records)

    async def finish(self) -> None:
        """Sequences past the explicit ids and VACUUM ANALYZE (PostgreSQL); ANALYZE and a WAL checkpoint (SQLite)."""
        if self._sqlite is not None:
            self._sqlite.execute("ANALYZE")
            self._sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        if self._my is not None:  # AUTO_INCREMENT moves past explicit ids by itself
            for name in sorted(self._tables):
                await self.execute(f"ANALYZE TABLE {name}")
            return
        for name in sorted(self._tables):
            if await self._pg.fetchval(f"SELECT pg_get_serial_sequence('{name}', 'id')"):
                await self._pg.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                       f"(SELECT COALESCE(MAX(id), 1) FROM {name}))")
        await self._pg.execute("VACUUM (ANALYZE)")

    async def execute(self, sql: str) -> None:
        if self._sqlite is not None:
            self._sqlite.execute(sql)
        elif self._my is not None:
            async with self._my.cursor() as cursor:
                await cursor.execute(sql)
                await cursor.fetchall()
        else:
            await self._pg.execute(sql)

    async def scalar(self, sql: str) -> Any:
        if self._sqlite is not None:
            return self._sqlite.execute(sql).fetchone()[0]
        if self._my is not None:
            async with self._my.cursor() as cursor:
                await cursor.execute(sql)
                return (await cursor.fetchone())[0]
        return await self._pg.fetchval(sql)


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table ("-" for a figure not measured)."""
    heads = ["benchmark", "config", "n", "per_second", "p50_ms", "p99_ms", "errors", "seconds", "peak_rss_mb",
             "cpu_ms", "note"]

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = [heads] + [[cell(getattr(r, h)) for h in heads] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
    out = []
    for line in lines:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line[:-1], widths, strict=False))]
        out.append("  ".join([*cells, line[-1]]))
    return "\n".join(out)
