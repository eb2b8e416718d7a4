"""The supervision scan, run by every scheduler pass: the ratings stored since the last scan, read with the
ratings around them that the rules compare them with, the patterns of bot/supervision/detect.py, and a signal
for each finding that holds a new rating.

Incremental: a mark (settings `supervision.scanned`) holds the last rating looked at, advanced in the same
transaction as the signals, under its row lock, so two schedulers never record a finding twice. The scan
reads, for the agencies of the new ratings only: a few minutes before them for bursts, the rules' days before
them for the rest, the bad reviews alone for the patterns of bad reviews; and each agency's counts for the grade
mix. A finding already signalled grows its open signal; one whose ratings were all judged already is not raised
again; new ratings of a pattern a person judged raise a new signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.runtime import Runtime
from bot.policy.supervision import SupervisionRules
from bot.supervision import detect
from bot.supervision.detect import Found, Mix, Rated
from dialogs.grades import Grade
from store import settings
from store import signals as store
from store.models import Signal
from store.signals import RatingRow

log = logging.getLogger("haochaping.supervision")

MARK = "supervision.scanned"
BATCH = 20_000  # new ratings a pass looks at (a backlog is worked off pass by pass)
CONTACT_OF = {"sms": "phone", "phone": "phone", "web": "phone", "wechat": "wechat", "miniprogram": "miniprogram"}


def rated(row: RatingRow) -> Rated:
    contact = {"phone": row.phone_contact_id, "wechat": row.wechat_contact_id,
               "miniprogram": row.mp_contact_id}.get(CONTACT_OF.get(row.channel, ""))
    sources = []
    if row.device_hash:
        sources.append(f"device:{row.device_hash}")
    if row.terminal_id:
        sources.append(f"terminal:{row.terminal_id}")
    if row.channel == "hall" and row.hall_code and row.staff_id:
        sources.append(f"window:{row.hall_code}/{row.staff_id}")
    grade = Grade(row.grade)
    return Rated(row.evaluation_id, row.case_no, row.agency_code, row.staff_id, row.hall_code, row.channel,
                 grade.score, grade.is_bad, row.text, row.created_at,
                 rater=f"{CONTACT_OF[row.channel]}:{contact}" if contact else None,
                 applicant=row.applicant_name_sealed, sources=tuple(sources), reminded_at=row.reminded_at)


async def scan(rt: Runtime, now: datetime) -> int:
    """Signals raised or grown by this pass."""
    rules = rt.policy.supervision
    raised = 0
    await settings.get_or_create(rt.db, MARK, "0")  # two processes making it at once: one wins, both go on
    async with rt.db.write() as session:
        seen = int(await settings.locked(session, MARK) or 0)
        new = await store.ratings_after(session, seen, BATCH)
        if not new:
            return 0
        agencies = sorted({r.agency_code for r in new})
        first, last = min(r.created_at for r in new), max(r.created_at for r in new)
        around = {r.evaluation_id: r for r in await store.ratings_between(
            session, first - timedelta(days=max(rules.fast_answer.days, rules.shared_rater.days,
                                                rules.own_window.days)), last, agencies)}
        bad = await store.ratings_between(session, first - timedelta(days=max(rules.serial_bad.days,
                                                                              rules.repeated_text.days)),
                                          last, agencies, bad_only=True)
        for row in [*new, *bad]:
            around.setdefault(row.evaluation_id, row)
        facts = [rated(row) for row in around.values()]
        fresh = {r.evaluation_id for r in new}
        found = [f for f in detect.detect(facts, rules, _opener(rt))
                 if any(r.evaluation_id in fresh for r in f.ratings)]
        year, week, _ = last.astimezone(rt.policy.tz).isocalendar()
        found += detect.grade_shifts(await _mixes(session, rules, agencies, last), rules, f"{year}-W{week:02d}")
        for finding in found:
            raised += await _record(session, finding, now)
        await settings.put(session, MARK, str(max(fresh)))
    if raised:
        log.info("supervision: %d signal(s) raised or grown from %d new rating(s)", raised, len(new))
    return raised


def _opener(rt: Runtime) -> Callable[[str], str | None]:
    def name_of(sealed: str) -> str | None:
        try:
            return rt.sealer.open(sealed)
        except Exception:  # sealed under another key: says nothing about who it is
            return None
    return name_of


async def _mixes(session: AsyncSession, rules: SupervisionRules, agencies: Sequence[str],
                 until: datetime) -> list[Mix]:
    rule = rules.grade_shift
    split = until - timedelta(days=rule.recent_days)
    recent = await store.grade_mix(session, split, until + timedelta(microseconds=1), agencies)
    history = await store.grade_mix(session, split - timedelta(days=rule.history_days), split, agencies)
    return [Mix(code, *recent.get(code, (0, 0)), *history.get(code, (0, 0))) for code in agencies]


async def _record(session: AsyncSession, finding: Found, now: datetime) -> int:
    """Grow the subject's open signal, or raise a new one for ratings no signal of it holds yet."""
    known = await store.of_subject(session, finding.kind, finding.subject, finding.agency_code)
    held = {e for s in known for e in s.evaluation_ids}
    ids = [r.evaluation_id for r in finding.ratings]
    open_ = next((s for s in known if s.status == "open"), None)
    if finding.kind == "grade_shift":  # about the agency's mix, not ratings: one signal a week (its subject)
        if open_ is None:
            session.add(Signal(kind=finding.kind, subject=finding.subject, agency_code=finding.agency_code,
                               evidence=finding.evidence, detected_at=now, updated_at=now))
            return 1
        if open_.evidence != finding.evidence:
            open_.evidence, open_.updated_at = finding.evidence, now
            session.add(open_)
        return 0
    if not set(ids) - held:
        return 0
    cases = list(dict.fromkeys(r.case_no for r in finding.ratings))
    if open_ is not None:
        open_.evaluation_ids = sorted(set(open_.evaluation_ids) | set(ids))
        open_.cases = list(dict.fromkeys([*open_.cases, *cases]))
        open_.evidence, open_.updated_at = finding.evidence, now
        session.add(open_)
        return 1
    session.add(Signal(kind=finding.kind, subject=finding.subject, agency_code=finding.agency_code,
                       staff_id=finding.staff_id, cases=cases, evaluation_ids=sorted(ids), evidence=finding.evidence,
                       detected_at=now, updated_at=now))
    return 1
