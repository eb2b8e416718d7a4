"""The service's own facts, such as the generated secret key that `serve` and `tick` must share."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from store.engine import Database
from store.models import Setting

SECRET_KEY = "secret_key"


async def get_or_create(db: Database, key: str, make: str | None = None) -> str:
    """The stored value, or `make` (a fresh random secret by default) stored once and for all."""
    async with db.read() as session:
        found = (await session.exec(select(Setting).where(Setting.key == key))).first()
    if found is not None:
        return found.value
    value = make if make is not None else secrets.token_urlsafe(32)
    try:
        async with db.write() as session:
            session.add(Setting(key=key, value=value))
    except IntegrityError:
        pass  # another process stored it first: theirs wins
    async with db.read() as session:
        return (await session.exec(select(Setting).where(Setting.key == key))).one().value
