"""The supervision scan, run by every scheduler pass: the ratings stored since the last scan, read with the
ratings around them that the rules compare them with, the patterns of bot/supervision/detect.py, and a signal
for each finding that holds a new rating.

Incremental: a mark (settings `supervision.scanned`) holds the last rating looked at, advanced in the same
transaction as the signals, under its row lock and only from the value the pass read, so two schedulers never
record a finding twice; the reading happens before, outside the write. A pass reads
only what can hold a pattern with a new rating: the few minutes before them (bursts), the bad reviews of the
rules' days when a new one has words long enough to be a copy, the cases of the accounts and the ratings of the
page devices that rated (one account, several applicants; one rater's bad reviews of several agencies), the
other ratings of a clerk with a new answer faster than a person reads, each agency's daily figures (its grade
mix), and once an hour every hall's clerks' tallies at the device. A finding already signalled
grows its open signal; one whose ratings were all judged already is not raised again; new ratings of a pattern
a person judged raise a new signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
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
# The clerks' shares at their hall's device are one aggregate over every hall's ratings of the rule's days: a
# state that changes slowly, compared once an hour (settings `supervision.own_window_at`, the last time).
OWN_WINDOW_MARK = "supervision.own_window_at"
OWN_WINDOW_EVERY = timedelta(hours=1)
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
    await _start(rt, now)
    raised = 0
    seen = int(await settings.get(rt.db, MARK) or 0)
    compared = await settings.get(rt.db, OWN_WINDOW_MARK)
    own_windows = compared is None or not (now - OWN_WINDOW_EVERY < datetime.fromisoformat(compared) <= now)
    # The reading and the patterns outside the write: on SQLite a write holds every other writer back.
    async with rt.db.read() as session:
        new = [rated(row) for row in await store.ratings_after(session, seen, BATCH)]
        if not new:
            return 0
        found = await _findings(session, rt, new, own_windows)
    async with rt.db.write() as session:
        if int(await settings.locked(session, MARK) or 0) != seen:
            return 0  # another scheduler recorded these ratings' signals meanwhile
        for finding in found:
            raised += await _record(session, finding, now)
        await settings.put(session, MARK, str(max(r.evaluation_id for r in new)))
        if own_windows:
            await settings.put(session, OWN_WINDOW_MARK, now.isoformat())
    if raised:
        log.info("supervision: %d signal(s) raised or grown from %d new rating(s)", raised, len(new))
    return raised


async def _start(rt: Runtime, now: datetime) -> None:
    """The mark, made once: a service with ratings already stored starts the scan at those of the longest rule's
    days before `now` (older ones are past every rule), not at its first rating."""
    if await settings.get(rt.db, MARK) is not None:
        return
    async with rt.db.read() as session:
        first = await store.first_id_since(session, now - timedelta(days=rt.policy.supervision.lookback_days))
        start = first - 1 if first is not None else await store.last_id(session)
    await settings.get_or_create(rt.db, MARK, str(start))  # two processes at once: one wins, both go on


async def _findings(session: AsyncSession, rt: Runtime, new: list[Rated], own_windows: bool) -> list[Found]:
    """What the new ratings take part in: each pattern reads only the ratings that can hold it with them.
    `own_windows`: compare every hall's clerks too (once an hour: `OWN_WINDOW_EVERY`)."""
    rules = rt.policy.supervision
    first, last = min(r.at for r in new), max(r.at for r in new)
    facts: dict[int, Rated] = {r.evaluation_id: r for r in new}

    def add(rows: list[RatingRow]) -> None:
        for row in rows:
            facts.setdefault(row.evaluation_id, rated(row))

    # A burst with a new rating lies within `minutes` before the first new one.
    add(await store.ratings_between(session, first - timedelta(minutes=rules.good_burst.minutes), last))
    # The accounts and page devices that rated: their other ratings (one account or device, several applicants;
    # one rater's bad reviews of several agencies).
    days = max(rules.shared_rater.days, rules.serial_bad.days)
    accounts: dict[str, set[int]] = {}
    for r in new:
        if r.rater:
            channel, _, contact = r.rater.partition(":")
            accounts.setdefault(channel, set()).add(int(contact))
    for channel, ids in sorted(accounts.items()):
        add(await store.ratings_of_contacts(session, channel, sorted(ids), first - timedelta(days=days), last))
    devices = sorted({s.split(":", 1)[1] for r in new for s in r.sources if s.startswith("device:")})
    if devices:
        add(await store.ratings_of_devices(session, devices, first - timedelta(days=days), last))
    # A new bad review with words long enough to be a copy: the bad reviews with words of the rule's days, of
    # any agency (only then: most passes hold no such review, and the others need none of them).
    if any(r.bad and detect.text_key(r.text, rules.repeated_text.chars) for r in new):
        add(await store.ratings_between(session, first - timedelta(days=rules.repeated_text.days), last,
                                        bad_only=True, with_text=True))
    # The clerks (or agencies) with a new answer faster than a person reads: their other ratings.
    quick = {(r.agency_code, r.staff_id) for r in new if detect.answered_fast(r, rules)}
    if quick:
        add(await store.ratings_of_staff(session, sorted(quick, key=lambda c: (c[0], c[1] or "")),
                                         first - timedelta(days=rules.fast_answer.days), last))
    fresh = {r.evaluation_id for r in new}
    every = detect.detect(list(facts.values()), rules, _opener(rt))
    # A pattern with a new rating, in every agency it touches (a serial reviewer's earlier agencies too).
    touched = {(f.kind, f.subject) for f in every if any(r.evaluation_id in fresh for r in f.ratings)}
    found = [f for f in every if (f.kind, f.subject) in touched]
    if own_windows:
        found += await _own_windows(session, rules, last, _week(rt, last))
    agencies = sorted({r.agency_code for r in new})
    found += detect.grade_shifts(await _mixes(session, rt, rules, agencies, last), rules, _week(rt, last))
    return found


def _week(rt: Runtime, at: datetime) -> str:
    year, week, _ = at.astimezone(rt.policy.tz).isocalendar()
    return f"{year}-W{week:02d}"


async def _own_windows(session: AsyncSession, rules: SupervisionRules, last: datetime, week: str) -> list[Found]:
    """Every hall's clerks' tallies of the rule's days (one aggregate in the database); a clerk standing out, with
    their ratings. One signal per clerk and ISO week: a share is a state, not an event, and a supervisor who
    judged it sees it again a week later at most, if it lasts."""
    since = last - timedelta(days=rules.own_window.days)
    tallies = [detect.Tally(*t) for t in await store.device_tallies(session, since, last)]
    found: list[Found] = []
    for t, peers in detect.own_window_clerks(tallies, rules):
        rows = await store.ratings_of_staff_in_hall(session, t.hall_code, t.staff_id, since, last)
        found += [replace(f, subject=f"{f.subject}/{week}")
                  for f in detect.own_window_found(t, peers, [rated(row) for row in rows])]
    return found


def _opener(rt: Runtime) -> Callable[[str], str | None]:
    def name_of(sealed: str) -> str | None:
        try:
            return rt.sealer.open(sealed)
        except Exception:  # sealed under another key: says nothing about who it is
            return None
    return name_of


async def _mixes(session: AsyncSession, rt: Runtime, rules: SupervisionRules, agencies: Sequence[str],
                 until: datetime) -> list[Mix]:
    rule = rules.grade_shift
    today = until.astimezone(rt.policy.tz).date() + timedelta(days=1)
    split = today - timedelta(days=rule.recent_days)
    recent = await store.grade_mix(session, split, today, agencies)
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
