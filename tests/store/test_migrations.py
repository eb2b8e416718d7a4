"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from servers import BACKENDS
from sqlmodel import SQLModel

import store.models  # noqa: F401
from store import migrate
from store.engine import Database


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_upgrade_matches_the_models_and_is_repeatable(database_url):
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        await migrate.upgrade(db)  # again: nothing to do, no error
        assert await migrate.current(db) == migrate.head()

        def diff(sync_conn: Any) -> list[Any]:
            return compare_metadata(MigrationContext.configure(sync_conn), SQLModel.metadata)

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.close()


async def test_db_upgrade_command_on_a_fresh_sqlite_file(tmp_path, monkeypatch):
    from bot.cli.main import main

    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("HAOCHAPING_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    import asyncio

    assert await asyncio.to_thread(main, ["db", "upgrade"]) == 0
    assert (tmp_path / "fresh.db").exists()
