"""`haochaping stats`: the figures, the rankings and the published snapshots, from the command line.

The same functions as the API compute everything (bot/figures/rankings.py), so a script and a dashboard never
disagree; `verify` exits 1 when a recomputation differs from the frozen snapshot, for a cron job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from bot.figures import rankings as figures
from bot.figures import snapshots
from bot.infra import audit
from bot.infra.config import Settings
from bot.infra.runtime import open_runtime
from bot.policy.rules import load_policy
from bot.web.stats import LABEL, _bound
from store import snapshots as snapshot_store
from store import stats


class Usage(ValueError):
    pass


def _period_args(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # On a subcommand, SUPPRESS: its unset defaults would otherwise overwrite the period given before it
    # (`stats --from … --to … rankings` gave all-time rankings).
    default = argparse.SUPPRESS if sub else None
    p.add_argument("--from", dest="start", default=default,
                   help="a date (the local day) or an ISO-8601 instant with an offset")
    p.add_argument("--to", dest="end", default=default, help="a date (that whole local day included) or an instant")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("stats", help="figures per group (default), rankings, published snapshots")
    s.add_argument("--by", default="agency", choices=stats.GROUPS)
    s.add_argument("--agency", action="append", help="only this agency's cases (repeat for several)")
    _period_args(s)
    ssub = s.add_subparsers(dest="stats_command")
    r = ssub.add_parser("rankings", help="agencies, halls, districts or staff ranked, ties sharing a rank")
    r.add_argument("--of", default="agency", choices=figures.RANKED)
    r.add_argument("--metric", default="composite_score", choices=figures.RANK_METRICS)
    _period_args(r, sub=True)
    p = ssub.add_parser("publish", help="compute a period and freeze it with its SHA-256")
    _period_args(p, sub=True)
    p.add_argument("--label", help="the snapshot's name (default: FROM..TO)")
    ssub.add_parser("snapshots", help="list the published snapshots")
    v = ssub.add_parser("verify", help="recompute a snapshot's period; exit 1 when it differs")
    v.add_argument("label")


def _bounds(settings: Settings, args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    tz = load_policy(settings.policy_path).tz
    out: list[datetime | None] = []
    for name, raw in (("--from", args.start), ("--to", args.end)):
        try:
            out.append(_bound(raw, tz, end=name == "--to") if raw else None)
        except ValueError:
            raise Usage(f"{name} {raw!r}: expected a date (2026-11-01) or an ISO-8601 instant with an offset") from None
    if out[0] is not None and out[1] is not None and out[1] < out[0]:
        raise Usage("--to comes before --from")
    return out[0], out[1]


async def _run(settings: Settings, args: argparse.Namespace) -> tuple[int, Any]:
    command = args.stats_command
    start, end = _bounds(settings, args) if command in (None, "rankings", "publish") else (None, None)
    if command == "publish":
        if start is None or end is None:
            raise Usage("publish needs --from and --to")
        label = args.label or f"{args.start}..{args.end}"
        if not LABEL.match(label):
            raise Usage("--label: 1–64 letters, digits or _ . : -")
    rt = await open_runtime(settings)
    try:
        rules, dialect = rt.policy.statistics, rt.db.dialect
        if command is None:
            async with rt.db.read() as session:
                return 0, await figures.report(session, rules, args.by, start, end, args.agency, dialect)
        if command == "rankings":
            async with rt.db.read() as session:
                return 0, await figures.rankings(session, rules, args.of, args.metric, start, end, args.agency,
                                                 dialect)
        if command == "publish":
            try:
                snap = await snapshots.publish(rt, label, start, end, "cli", datetime.now(UTC), actor=audit.cli_actor())
            except snapshot_store.SnapshotExists as exc:
                return 1, {"error": str(exc), "snapshot": snapshots.summary(rt, exc.existing)}
            return 0, snapshots.summary(rt, snap)
        async with rt.db.read() as session:
            if command == "snapshots":
                return 0, {"snapshots": [snapshots.summary(rt, s) for s in await snapshot_store.listing(session)]}
            snap = await snapshot_store.by_label(session, args.label)
        if snap is None:
            return 1, {"error": f"no snapshot labelled {args.label!r}"}
        result = await snapshots.verify(rt, snap)
        return (0 if result["matches"] and result["stored_content_intact"] else 1), result
    finally:
        await rt.close()


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        status, doc = asyncio.run(_run(settings, args))
    except Usage as exc:
        print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        return 2
    print(json.dumps(doc, ensure_ascii=False, indent=1))
    return status
