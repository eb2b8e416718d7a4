"""PostgreSQL's own driver under a session, for the set-wise writes of the sweep.

Why: SQLAlchemy turns a multi-row insert into one parameter per value and runs each through its type
processors in Python: 1,000 outbox rows of 19 columns cost ~100 µs a row (bench/sweep.py), five times what
PostgreSQL takes to store them. Sent as one array per column and spread by `unnest`, the same rows are 19
parameters that asyncpg encodes in C, and the statement text is the same for every batch (one prepare).

The statements run on the session's own connection, inside its transaction: they commit or roll back with
everything else the session did. Only the types the sweep writes are mapped; another raises, so a new column
is noticed rather than sent wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, Table, Text, TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from store.coltypes import JSONText, UTCDateTime


def on_postgresql(session: AsyncSession) -> bool:
    bind = session.bind
    return bind is not None and bind.dialect.name == "postgresql"


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction. SQLAlchemy's adapter sends BEGIN with its first
    statement, not when the transaction is opened: a session that has run none yet runs one, or what follows
    would commit on its own."""
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return raw


def naive_utc(value: datetime | None) -> datetime | None:
    """As UTCDateTime stores an instant: UTC without its offset (a naive one never reaches the store)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime reached the store; every instant must carry its offset")
    return value.astimezone(UTC).replace(tzinfo=None)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _kind(column: Any) -> tuple[str, Callable[[Any], Any] | None]:
    """The array type a column's values travel in, and what turns a value into it."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "timestamp", naive_utc
    if isinstance(kind, JSONText):
        return "text", _json
    if isinstance(kind, TypeDecorator):  # SQLModel's AutoString: a String underneath
        kind = kind.impl_instance
    if isinstance(kind, Boolean):
        return "bool", None
    if isinstance(kind, Integer):
        return "int8", None
    if isinstance(kind, String | Text):
        return "text", None
    raise TypeError(f"{column.table.name}.{column.name}: no array type for {kind!r}")


def unnest_insert(table: Table, rows: Sequence[dict[str, Any]]) -> tuple[str, list[list[Any]]]:
    """`INSERT INTO table (…) SELECT * FROM unnest($1::…[], …)` for these rows (every row with the same keys,
    those of the first) and its arguments, one list per column: the caller adds ON CONFLICT and RETURNING,
    and its own parameters after these."""
    columns = [c for c in table.columns if c.name in rows[0]]
    kinds = [_kind(c) for c in columns]
    arrays: list[list[Any]] = []
    for column, (_, convert) in zip(columns, kinds, strict=True):
        name = column.name
        values = [row[name] for row in rows]
        arrays.append([convert(v) for v in values] if convert is not None else values)
    casts = ", ".join(f"${i}::{kind}[]" for i, (kind, _) in enumerate(kinds, start=1))
    names = ", ".join(c.name for c in columns)
    return f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({casts})", arrays
