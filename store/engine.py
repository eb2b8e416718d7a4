"""The async engine, tuned per database so that the same repository code runs on each.

SQLite: WAL, a busy timeout, and `BEGIN IMMEDIATE` for writing transactions. Without it, two
processes (`serve` and `tick`) that both read then write fail at once with SQLITE_BUSY instead of
waiting their turn. Reads get a second engine with ordinary deferred transactions so that they do
not queue behind writers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def _sqlite_engine(url: str, begin: str) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 60})

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


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()  # "sqlite", "postgresql", "mysql"
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, "BEGIN IMMEDIATE")
            self.read_engine = _sqlite_engine(url, "BEGIN")
        else:
            opts: dict[str, Any] = {"pool_size": 10, "max_overflow": 20, "pool_recycle": 1800}
            if self.dialect == "postgresql":
                # asyncpg prepares every statement; a generic plan made while a table was small (a
                # sequential scan) would stick to it as the table grows. Plan with the real values.
                opts["connect_args"] = {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
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
