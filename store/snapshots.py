"""Frozen statistics snapshots: a published period's figures as canonical JSON with its SHA-256.

Rows are inserted once and never updated (migration 0007 adds a trigger that refuses an UPDATE), so a
published figure cannot be edited after the fact; a later recomputation is compared with it instead.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import StatsSnapshot


class SnapshotExists(Exception):
    def __init__(self, existing: StatsSnapshot) -> None:
        super().__init__(f"a snapshot labelled {existing.label!r} exists already")
        self.existing = StatsSnapshot(**existing.model_dump())  # a copy: outlives the rolled-back session


def canonical(content: Any) -> str:
    """One text per content: sorted keys, no spaces, UTF-8 kept as is; what the hash is taken over."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def by_label(session: AsyncSession, label: str) -> StatsSnapshot | None:
    return (await session.exec(select(StatsSnapshot).where(StatsSnapshot.label == label))).first()


async def listing(session: AsyncSession, limit: int = 500) -> list[StatsSnapshot]:
    stmt = select(StatsSnapshot).order_by(col(StatsSnapshot.id).desc()).limit(limit)
    return list((await session.exec(stmt)).all())


async def freeze(session: AsyncSession, label: str, start: datetime | None, end: datetime | None,
                 content: Any, created_by: str, now: datetime) -> StatsSnapshot:
    """Insert the snapshot; SnapshotExists when the label is taken (a period is published once)."""
    existing = await by_label(session, label)
    if existing is not None:
        raise SnapshotExists(existing)
    text = canonical(content)
    row = StatsSnapshot(label=label, from_at=start, to_at=end, sha256=digest(text), content=text,
                        created_by=created_by, created_at=now)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # published by someone else at the same moment
        raise SnapshotExists(row) from None
    return row
