"""Publishing a period: every figure and ranking computed from the records, frozen with its hash, and
compared later with a fresh recomputation (Shantou art. 34's periodic publication; Haikou 九)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.figures import rankings as figures
from bot.infra import audit
from bot.infra.runtime import Runtime
from store import snapshots, stats
from store.models import StatsSnapshot

log = logging.getLogger("haochaping.snapshots")

MAX_DIFFERENCES = 100
SCHEDULE = "schedule"  # created_by of the snapshots the tick publishes


def _instant(rt: Runtime, at: datetime | None) -> str | None:
    return at.astimezone(rt.policy.tz).isoformat() if at is not None else None


async def content(session: AsyncSession, rt: Runtime, label: str, start: datetime | None,
                  end: datetime | None) -> dict[str, Any]:
    """What a snapshot holds. The policy's statistics rules are part of it: a recomputation under other
    weights or another hall list differs, and the differences say so."""
    rules = rt.policy.statistics
    dialect = rt.db.dialect
    return {
        "label": label, "from": _instant(rt, start), "to": _instant(rt, end),
        "policy": {"weights": rules.weights, "rank_min_cases": rules.rank_min_cases,
                   "halls": {h.code: {"name": h.name, "district": h.district, "rating": h.rating}
                             for h in rules.halls.values()}},
        "figures": {by: await figures.report(session, rules, by, start, end, None, dialect)
                    for by in stats.GROUPS},
        "rankings": {of: await figures.rankings(session, rules, of, "composite_score", start, end, None, dialect)
                     for of in figures.PUBLISHED_RANKINGS},
    }


async def _audit(session: AsyncSession, rt: Runtime, snap: StatsSnapshot, actor: str, now: datetime,
                 address: str | None) -> None:
    """The publication's audit row, in the transaction that freezes it."""
    await audit.record(session, now, actor, audit.SNAPSHOT, target=("snapshot", snap.label), address=address,
                       details={"sha256": snap.sha256, "from": _instant(rt, snap.from_at),
                                "to": _instant(rt, snap.to_at), "created_by": snap.created_by})


async def publish(rt: Runtime, label: str, start: datetime | None, end: datetime | None, created_by: str,
                  now: datetime, *, actor: str | None = None, address: str | None = None) -> StatsSnapshot:
    """Compute and freeze, audited (by `actor`, else `created_by`); `snapshots.SnapshotExists` when the
    label was published before."""
    async with rt.db.read() as session:
        doc = await content(session, rt, label, start, end)
    try:
        async with rt.db.write() as session:
            snap = await snapshots.freeze(session, label, start, end, doc, created_by, now)
            await _audit(session, rt, snap, actor or created_by, now, address)
            return snap
    except snapshots.SnapshotExists as exc:  # published at the same moment: name the one that is stored
        async with rt.db.read() as session:
            stored = await snapshots.by_label(session, label)
        raise snapshots.SnapshotExists(stored or exc.existing) from None


async def publish_due(rt: Runtime, now: datetime) -> int:
    """The policy's periodic publication: freeze the latest period whose delay has run out at `now`,
    unless a snapshot of its label exists (by hand or by another worker). 1 when published, else 0.

    Only the latest such period: a service that was off for months does not publish a backlog of
    periods on its own (they are published by hand, with their labels). A period without a single case
    is not frozen: on a new installation that would take the label of a month whose cases come later.
    """
    schedule = rt.policy.statistics.publish
    if schedule is None:
        return 0
    tz = rt.policy.tz
    day = now.astimezone(tz).date()
    for _ in range(24):  # a delay is at most 366 days: well within 24 periods of a month or more
        first, last, label = schedule.period_before(day)
        due = rt.timing.window_end(datetime.combine(last, time(12), tzinfo=tz), schedule.after)
        if due <= now:
            break
        day = first
    else:
        return 0
    async with rt.db.read() as session:
        if await snapshots.by_label(session, label) is not None:
            return 0
        start = datetime.combine(first, time(0), tzinfo=tz)
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
        doc = await content(session, rt, label, start, end)
    if not doc["figures"]["agency"]["total"]["cases"]:
        return 0
    try:
        async with rt.db.write() as session:
            snap = await snapshots.freeze(session, label, start, end, doc, SCHEDULE, now)
            await _audit(session, rt, snap, "system", now, None)
    except snapshots.SnapshotExists:
        return 0
    log.info("published the statistics of %s (sha256 %s)", label, snap.sha256)
    return 1


async def verify(rt: Runtime, snap: StatsSnapshot) -> dict[str, Any]:
    """Recompute the snapshot's period now and compare: the hashes, and the first differences by path."""
    async with rt.db.read() as session:
        fresh = await content(session, rt, snap.label, snap.from_at, snap.to_at)
    text = snapshots.canonical(fresh)
    recomputed = snapshots.digest(text)
    frozen_doc = json.loads(snap.content)
    frozen = dict(_leaves(frozen_doc, ""))
    now = dict(_leaves(json.loads(text), ""))
    paths = sorted(set(frozen) | set(now))
    differences = [{"path": p, "frozen": frozen.get(p), "now": now.get(p)} for p in paths
                   if frozen.get(p, _MISSING) != now.get(p, _MISSING)]
    return {"label": snap.label, "sha256": snap.sha256, "recomputed_sha256": recomputed,
            "stored_content_intact": snapshots.digest(snap.content) == snap.sha256,
            "matches": recomputed == snap.sha256, "differences": differences[:MAX_DIFFERENCES],
            "more_differences": max(0, len(differences) - MAX_DIFFERENCES)}


_MISSING = object()


def _leaves(doc: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of every leaf; list items are addressed by their `key` when they have one, so a
    group that moved in a ranking is compared with itself, not with its neighbour."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            name = f"[{v['key']}]" if isinstance(v, dict) and "key" in v else f"[{i}]"
            yield from _leaves(v, path + name)
    else:
        yield path, doc


def summary(rt: Runtime, snap: StatsSnapshot) -> dict[str, Any]:
    return {"label": snap.label, "sha256": snap.sha256, "from": _instant(rt, snap.from_at),
            "to": _instant(rt, snap.to_at), "created_by": snap.created_by,
            "created_at": _instant(rt, snap.created_at)}
