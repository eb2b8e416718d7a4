"""`haochaping reports`: what the upstream platforms have not received yet, and sending the rejected again.

A rejected report (the upstream answered 4xx) waits for a person: the profile or the upstream is
wrong, and pushing it again unchanged would be refused again. Once fixed, `reports retry` puts the
rejected reports back in the queue; the next tick pushes them, with their original idempotency keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.config import Settings
from bot.policy.rules import Policy, load_policy
from store import migrate, reports
from store.engine import Database


class Usage(ValueError):
    pass


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("reports", help="reporting upward: the queue per profile, and retrying rejected reports")
    rsub = r.add_subparsers(dest="reports_command", required=True)
    status = rsub.add_parser("status", help="per profile: reports pending, sent, rejected; the oldest pending; "
                                            "recent errors")
    status.add_argument("--now", help="ISO-8601 instant the ages are counted at (default: the real time)")
    retry = rsub.add_parser("retry", help="put the rejected reports back in the queue (the next tick pushes them)")
    retry.add_argument("--profile", help="only this profile's")
    retry.add_argument("--now", help="ISO-8601 instant they become due at (default: the real time)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the subcommand; the exit status."""
    try:
        code, doc = asyncio.run(_run(settings, args))
    except Usage as exc:
        print(f"haochaping reports: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, ensure_ascii=False))
    return code


def _instant(at: datetime | None, tz: tzinfo) -> str | None:
    return at.astimezone(tz).isoformat() if at is not None else None


def _now(value: str | None, tz: tzinfo) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Usage(f"--now {value!r} is not an ISO-8601 instant") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


async def _run(settings: Settings, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    policy = load_policy(settings.policy_path)
    names = [p.name for p in policy.reporting]
    if args.reports_command == "retry" and args.profile is not None and args.profile not in names:
        raise Usage(f"--profile {args.profile!r}: no such profile in the policy "
                    f"(profiles: {', '.join(names) or 'none'})")
    now = _now(args.now, policy.tz)
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        if args.reports_command == "retry":
            async with db.write() as session:
                return 0, {"retried": await reports.retry_rejected(session, now, args.profile)}
        async with db.read() as session:
            return 0, await _status(session, policy, now)
    finally:
        await db.close()


async def _status(session: AsyncSession, policy: Policy, now: datetime) -> dict[str, Any]:
    tz = policy.tz
    tallies = await reports.tally(session)
    configured = {p.name: p for p in policy.reporting}
    out = []
    for name in [*configured, *sorted({t.profile for t in tallies} - set(configured))]:
        mine = {t.status: t for t in tallies if t.profile == name}
        pending = mine.get("pending")
        oldest = pending.oldest if pending is not None else None
        profile = configured.get(name)
        out.append({
            "profile": name, "configured": profile is not None, "enabled": bool(profile and profile.enabled),
            "endpoint": profile.endpoint if profile else None,
            **{status: (mine[status].count if status in mine else 0) for status in reports.STATUSES},
            "oldest_pending": _instant(oldest, tz),
            "oldest_pending_age_seconds": max((now - oldest).total_seconds(), 0) if oldest else None,
        })
    errors = [{"id": r.id, "profile": r.profile, "case_no": (r.record or {}).get("case_no"), "version": r.version,
               "status": r.status, "attempts": r.attempts, "next_attempt_at": _instant(r.next_attempt_at, tz),
               "error": r.last_error, "at": _instant(r.updated_at, tz)}
              for r in await reports.recent_errors(session)]
    return {"profiles": out, "recent_errors": errors}
