"""The servers the tests use and the backends they run on: imported by conftest.py and by test modules (a
module imports from here, never from a conftest: each folder of tests/ may have one, all named `conftest`)."""

from __future__ import annotations

import os
import socket

import pytest
from sqlmodel import SQLModel

import store.models  # noqa: F401  (the tables, for truncation)

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
PG_ADMIN = os.environ.get("HCP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HCP_TEST_REDIS", "redis://127.0.0.1:6379/0")
MARIADB = os.environ.get("HCP_TEST_MARIADB", "mysql+asyncmy://root@127.0.0.1:3306")

# (database, state) pairs. Most tests run on the first two; the end-to-end loop on all four.
BACKENDS = [pytest.param(("sqlite", "memory"), id="sqlite-memory"),
            pytest.param(("postgres", "redis"), id="postgres-redis")]
# MariaDB (the MySQL family, issue 26): a database of each test's own, migrated; the tests that walk the whole loop.
MARIADB_BACKEND = pytest.param(("mariadb", "memory"), id="mariadb-memory")
ALL_BACKENDS = [*BACKENDS, pytest.param(("sqlite", "redis"), id="sqlite-redis"),
                pytest.param(("postgres", "memory"), id="postgres-memory"), MARIADB_BACKEND]
# The modules whose subject differs most between databases run on MariaDB too (the daily figures, the sweep, the
# supervision scan); the whole suite on it takes ~5 minutes more than CI's budget allows (docs/operations.md).
WITH_MARIADB = [*BACKENDS, MARIADB_BACKEND]


def free_port() -> int:
    """A port of 127.0.0.1 free now, for a server a test starts (`haochaping serve`, a fake)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable(what: str, why: object) -> None:
    if CI:
        pytest.fail(f"{what} is required under CI=true but is not reachable: {why}", pytrace=False)
    pytest.skip(f"{what} not reachable ({why}); under CI=true this fails")


async def mariadb_admin(sql: str) -> None:
    import asyncmy

    rest = MARIADB.split("://", 1)[1]
    user, _, host = rest.rpartition("@")
    name, _, password = user.partition(":")
    hostname, _, port = host.partition(":")
    conn = await asyncmy.connect(host=hostname, port=int(port or 3306), user=name or "root", password=password,
                                 connect_timeout=10)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
    finally:
        conn.close()


async def truncate(url: str) -> None:
    """Empty every table and restart every id, as a fresh database would be.

    DELETE with the triggers switched off for this session (we are a superuser here) rather than
    TRUNCATE: TRUNCATE makes new files for each table, ~90 ms a test against ~15 ms for a handful of rows.
    """
    import asyncpg

    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    try:
        sequences = [r[0] for r in await conn.fetch("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'S'")]
        await conn.execute("SET session_replication_role = replica;"
                           + "".join(f'DELETE FROM "{name}";' for name in tables)
                           + "".join(f"SELECT setval('{seq}', 1, false);" for seq in sequences))
    finally:
        await conn.close()
