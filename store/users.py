"""Users of the console and the API (agency staff, 12345 agents, admins): the queries."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import User


async def by_name(session: AsyncSession, username: str) -> User | None:
    return (await session.exec(select(User).where(User.username == username))).first()


async def every(session: AsyncSession) -> list[User]:
    """Every user, by name."""
    return list((await session.exec(select(User).order_by(User.username))).all())
