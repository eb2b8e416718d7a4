"""The async engine, tuned per database so that the same repository code runs on each.

SQLite: WAL, a busy timeout, and `BEGIN IMMEDIATE` for writing transactions. Without it, two
processes (`serve` and `tick`) that both read then write fail at once with SQLITE_BUSY instead of
waiting their turn. Reads get a second engine with ordinary deferred transactions so that they do
not queue behind writers.

Pools (HAOCHAPING_DB_POOL_SIZE, _MAX_OVERFLOW, _POOL_TIMEOUT): a burst of requests waits for a
connection, at most `pool_timeout` seconds (then sqlalchemy.exc.TimeoutError: 503 with Retry-After),
instead of opening ever more connections until the server refuses them ("too many clients").
PostgreSQL: pool_size + max_overflow connections per process and engine (15 by default: five `serve`
processes and a `tick` stay under the default max_connections of 100). SQLite: the writing engine
has one connection, since SQLite has one writer at a time anyway: writers queue for it in order
inside the process, rather than each holding a connection that polls the file lock (busy_timeout)
in its own thread; the reading engine has the configured pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def _sqlite_engine(url: str, begin: str, pool: dict[str, Any]) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 60}, **pool)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def refused(exc: BaseException) -> bool:
    """Whether an error is the database refusing a connection, not a statement's own error: the pool
    stayed busy past its timeout, the server could not be reached, or it refused the connection
    ("too many clients"; SQLAlchemy wraps a failed connect with no statement)."""
    return (isinstance(exc, PoolTimeout | OSError)
            or (isinstance(exc, DBAPIError) and exc.statement is None))


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 5, pool_timeout: float = 10.0) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()  # "sqlite", "postgresql", "mysql"
        pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, "BEGIN IMMEDIATE", {**pool, "pool_size": 1, "max_overflow": 0})
            self.read_engine = _sqlite_engine(url, "BEGIN", pool)
        else:
            opts: dict[str, Any] = {**pool, "pool_recycle": 1800}
            if self.dialect == "postgresql":
                # asyncpg prepares every statement; a generic plan made while a table was small (a
                # sequential scan) would stick to it as the table grows. Plan with the real values.
                # A new connection is waited for no longer than a pooled one (asyncpg's own is 60 s).
                opts["connect_args"] = {"server_settings": {"plan_cache_mode": "force_custom_plan"},
                                        "timeout": pool_timeout}
            if self.dialect == "mysql":
                opts["isolation_level"] = "READ COMMITTED"
            self.engine = create_async_engine(url, **opts)
            self.read_engine = self.engine
        self._write = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def locks_rows(self) -> bool:
        """Whether SELECT … FOR UPDATE means anything (SQLite serialises writers instead)."""
        return self.dialect != "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any exception."""
        async with self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session:
            yield session

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
