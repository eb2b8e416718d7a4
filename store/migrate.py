"""Alembic, driven from inside the application so that `serve`, `tick` and `db upgrade` share one path.

The migrations run on a connection of our own engine (handed to env.py through
`config.attributes`), which keeps the SQLite pragmas and works with every async driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from store.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _run(sync_conn: Any, fn: Any, *args: Any, **kwargs: Any) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    fn(cfg, *args, **kwargs)


_LOCK_ID = 0x4843505F  # "HCP_": serialises concurrent upgrades of one PostgreSQL database


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe when several processes start at once."""
    if db.dialect == "mysql":
        await _upgrade_mysql(db, revision)
        return
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
        await conn.run_sync(_run, command.upgrade, revision)


async def _upgrade_mysql(db: Database, revision: str) -> None:
    """MySQL's named lock belongs to the connection, not the transaction: it is released here, before the
    connection goes back to the pool. Left held, an idle pooled connection of `serve` kept it, and every `tick`
    and every other worker waited on start for its 300 s to run out."""
    async with db.engine.connect() as conn:
        got = (await conn.execute(text("SELECT GET_LOCK('haochaping_migrate', 300)"))).scalar()
        if got != 1:
            raise RuntimeError("another process has been upgrading this database's schema for 300 s; try again")
        try:
            await conn.commit()
            async with conn.begin():
                await conn.run_sync(_run, command.upgrade, revision)
        finally:
            await conn.execute(text("SELECT RELEASE_LOCK('haochaping_migrate')"))
            await conn.commit()


async def downgrade(db: Database, revision: str) -> None:
    """For developers and the tests of a migration's data step: back to `revision`."""
    async with db.engine.begin() as conn:
        await conn.run_sync(_run, command.downgrade, revision)


async def revision(db: Database, message: str) -> None:
    """For developers: autogenerate a migration from the models against an up-to-date database."""
    async with db.engine.begin() as conn:
        await conn.run_sync(_run, command.revision, message=message, autogenerate=True)


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current(db: Database) -> str | None:
    def _current(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.read_engine.connect() as conn:
        return await conn.run_sync(_current)
