"""The service's own facts, such as the generated secret key that `serve` and `tick` must share."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.engine import Database
from store.models import Setting

SECRET_KEY = "secret_key"
# A fingerprint of the key the personal data is sealed with: a service started with another key refuses,
# instead of sealing new data with it and failing to open the old (store/sealing.py fingerprint()).
SEALED_WITH = "sealed_with"
# During an online rotation (`haochaping keys rotate`): the fingerprint of the key it moves the data to, so that a
# process started with a third key refuses; and, per table, the last id re-sealed (the rotation resumes there).
ROTATING_TO = "keys.rotating_to"
ROTATED_UP_TO = "keys.rotated_up_to."


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


async def get(db: Database, key: str) -> str | None:
    async with db.read() as session:
        found = (await session.exec(select(Setting).where(Setting.key == key))).first()
    return found.value if found is not None else None


async def put(session: AsyncSession, key: str, value: str) -> None:
    found = (await session.exec(select(Setting).where(Setting.key == key))).first()
    if found is None:
        session.add(Setting(key=key, value=value))
    else:
        found.value = value
        session.add(found)


async def delete(session: AsyncSession, key: str) -> bool:
    found = (await session.exec(select(Setting).where(Setting.key == key))).first()
    if found is not None:
        await session.delete(found)
    return found is not None


async def locked(session: AsyncSession, key: str) -> str | None:
    """The value, its row locked for the transaction: a mark several processes advance (the supervision scan's)
    is advanced by one at a time. Made first by `get_or_create`, outside the transaction that locks it."""
    found = (await session.exec(select(Setting).where(Setting.key == key).with_for_update())).first()
    return found.value if found is not None else None
