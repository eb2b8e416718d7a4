"""Intermediary services (中介服务): the project owner's ratings and complaints (Hainan 中介服务 art. 21–25).

- Art. 21: the project owner (项目业主) rates each completed intermediary-service project once (一事一评), on
  five dimensions: 服务质量 quality, 服务时效 timeliness, 服务态度 attitude, 服务收费 fees, 服务规范 conduct.
  Each takes one of the five grades (dialogs/grades.py) and its score (10/8/6/3/0); all five are required, since
  the article names them all and a mean over fewer would not compare with another project's.
  A bad grade needs no reason nor text here: the dimension is the reason (it names what went wrong), and
  art. 21 asks for nothing more; a rating is not a 差评 of a government service and opens no work order.
- Art. 22, 23: the project owner may complain about the intermediary's quality, time limit or contract
  performance within 10 working days after the contract was fulfilled (policy `intermediary_complaint_window`).
  The window is counted from the project's rating's `fulfilled_at`, or, for a project not rated here, from the
  one the complaint gives; like every deadline it ends at 00:00 after the last counted day (bot/policy/timing.py).
  A window counted over a calendar year nobody described yet is not closed: the owner is not refused by a
  guess (bot/policy/workdays.py is_final).
- Art. 25: the centre answers within 5 working days of receipt (policy `intermediary_complaint_answer`).
  `tick` marks an unanswered complaint past its deadline `overdue`, once; the mark stays after a late answer.

The parsing is pure (time comes in as an argument); the rest takes the runtime for its store, its calendar
and its sealer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.infra import audit
from bot.infra.limits import code_problem, instant_problem, text_problem
from bot.infra.privacy import mask_text
from bot.infra.refusals import Invalid, NotFound, NotNow
from bot.infra.runtime import Runtime, instant
from bot.rating.intake import FieldError
from bot.rating.ratings import CHANNELS as RATING_CHANNELS
from dialogs.addresses import mask_phone, normalize_phone
from dialogs.grades import SCORES, Grade, parse_grade_name
from store import intermediaries as store
from store.models import IntermediaryComplaint, IntermediaryRating

log = logging.getLogger("haochaping.intermediaries")

# Art. 21's five dimensions, in its order (服务质量, 服务时效, 服务态度, 服务收费, 服务规范); the keys of `scores` and
# the rating's columns.
DIMENSIONS: tuple[str, ...] = ("quality", "timeliness", "attitude", "fees", "conduct")
# Art. 22: what a project owner may complain about (the intermediary's 服务质量, 服务时限, 合同履行情况).
ABOUTS: tuple[str, ...] = ("quality", "timeliness", "contract")
# The ways a rating reaches us: the cases' channels, less those no project owner types in (a default grade, a
# work order's callback).
CHANNELS = tuple(c for c in RATING_CHANNELS if c not in ("default", "callback"))
GRADES = ", ".join(g.value for g in Grade)
BAD = tuple(g.value for g in Grade if g.is_bad)
MAX_TEXT = 2000
# A business system's clock may run a little ahead of ours: a contract "fulfilled" that much in the future is
# taken; beyond it, the project is not completed yet and art. 21 rates completed projects only.
CLOCK_SLACK = timedelta(minutes=5)
ANSWER_ACTION = "intermediary_complaint.answer"  # the audit log's action of an answer (bot/infra/audit.py)
BATCH = 500


@dataclass(frozen=True)
class RatingIn:
    project_no: str
    intermediary_code: str
    intermediary_name: str
    agency_code: str | None
    agency_name: str | None
    service: str | None
    fulfilled_at: datetime
    scores: dict[str, Grade]
    text: str | None
    channel: str
    phone: str | None  # E.164


@dataclass(frozen=True)
class ComplaintIn:
    project_no: str
    about: str
    text: str
    fulfilled_at: datetime | None  # only for a project not rated here


# --- parsing (pure) ---------------------------------------------------------------------------------------


def _string(doc: dict[str, Any], name: str, errs: list[FieldError], *, max_length: int, code: bool = False,
            required: bool = False, field: str | None = None) -> str | None:
    """A string field, stripped (a trailing newline cut, as intake cuts a case's), then checked: codes take no
    control character, texts none but tab, CR and LF (bot/infra/limits.py). An empty optional one is None; an empty
    required one is an error."""
    field = field or name
    value = doc.get(name)
    if value is None:
        if required:
            errs.append(FieldError(field, "required"))
        return None
    if not isinstance(value, str):
        errs.append(FieldError(field, "expected a string"))
        return None
    value = value.strip()
    problem = code_problem(value) if code else text_problem(value)
    if problem:
        errs.append(FieldError(field, problem))
        return None
    if not value:
        if required:
            errs.append(FieldError(field, "required: not empty"))
        return None
    if len(value) > max_length:
        errs.append(FieldError(field, f"at most {max_length} characters"))
        return None
    return value


def _instant(doc: dict[str, Any], name: str, errs: list[FieldError], now: datetime, *, required: bool
             ) -> datetime | None:
    """An ISO-8601 instant with its offset, as a case's `completed_at` (bot/rating/intake.py), not in the future."""
    value = doc.get(name)
    if value is None:
        if required:
            errs.append(FieldError(name, "required: an ISO-8601 instant with an offset, e.g. "
                                         "2026-09-28T10:00:00+08:00"))
        return None
    if not isinstance(value, str):
        errs.append(FieldError(name, "expected an ISO-8601 string with an offset, e.g. 2026-09-28T10:00:00+08:00"))
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        errs.append(FieldError(name, f"not an ISO-8601 instant: {value[:40]!r}"))
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        errs.append(FieldError(name, "the instant has no offset: write it as 2026-09-28T10:00:00+08:00"))
        return None
    problem = instant_problem(parsed)
    if problem:
        errs.append(FieldError(name, problem))
        return None
    if parsed > now + CLOCK_SLACK:
        errs.append(FieldError(name, "later than now: only a fulfilled contract is rated or complained about "
                                     "(Hainan intermediary services art. 21, 23)"))
        return None
    return parsed


def _scores(value: Any, errs: list[FieldError]) -> dict[str, Grade]:
    """All five dimensions, each a grade name; an unknown key is an error (a misspelt dimension must not
    leave one unrated while the rater believes it rated)."""
    if not isinstance(value, dict):
        errs.append(FieldError("scores", f"required: an object with a grade for each of {', '.join(DIMENSIONS)}"))
        return {}
    out: dict[str, Grade] = {}
    for key in [k for k in value if k not in DIMENSIONS][:len(DIMENSIONS)]:  # a few name the mistake
        shown = key[:40] if not code_problem(key) else repr(key[:40])
        errs.append(FieldError(f"scores.{shown}", f"not a dimension; expected {', '.join(DIMENSIONS)}"))
    for dim in DIMENSIONS:
        if dim not in value:
            errs.append(FieldError(f"scores.{dim}", f"required: one of {GRADES}"))
            continue
        grade = parse_grade_name(value[dim])
        if grade is None:
            errs.append(FieldError(f"scores.{dim}", f"expected one of {GRADES}"))
        else:
            out[dim] = grade
    return out


def parse_rating(doc: Any, now: datetime) -> RatingIn | list[FieldError]:
    """A rating body (POST /api/v1/intermediary-ratings), or what is wrong with it, field by field."""
    if not isinstance(doc, dict):
        return [FieldError("body", "expected a JSON object")]
    errs: list[FieldError] = []
    project_no = _string(doc, "project_no", errs, max_length=100, code=True, required=True)
    code = _string(doc, "intermediary_code", errs, max_length=100, code=True, required=True)
    name = _string(doc, "intermediary_name", errs, max_length=300, required=True)
    agency_code = _string(doc, "agency_code", errs, max_length=100, code=True)
    agency_name = _string(doc, "agency_name", errs, max_length=300)
    service = _string(doc, "service", errs, max_length=300)
    fulfilled_at = _instant(doc, "fulfilled_at", errs, now, required=True)
    scores = _scores(doc.get("scores"), errs)
    text = _string(doc, "text", errs, max_length=MAX_TEXT)
    channel = doc.get("channel")
    if channel not in CHANNELS:
        errs.append(FieldError("channel", f"expected one of {', '.join(CHANNELS)}"))
    phone = None
    rater = doc.get("rater")
    if rater is not None and not isinstance(rater, dict):
        errs.append(FieldError("rater", "expected an object: {\"phone\"}"))
    elif rater is not None:
        given = _string(rater, "phone", errs, max_length=32, code=True, field="rater.phone")
        if given is not None:
            phone = normalize_phone(given)
            if phone is None:
                errs.append(FieldError("rater.phone", "not a mobile number: expected 13800138000 or +8613800138000"))
    if errs:
        return errs
    assert project_no and code and name and fulfilled_at and isinstance(channel, str)
    return RatingIn(project_no, code, name, agency_code, agency_name, service, fulfilled_at, scores, text, channel,
                    phone)


def parse_complaint(doc: Any, now: datetime) -> ComplaintIn | list[FieldError]:
    """A complaint body (POST /api/v1/intermediary-complaints), or what is wrong with it."""
    if not isinstance(doc, dict):
        return [FieldError("body", "expected a JSON object")]
    errs: list[FieldError] = []
    project_no = _string(doc, "project_no", errs, max_length=100, code=True, required=True)
    about = doc.get("about")
    if about not in ABOUTS:
        errs.append(FieldError("about", f"expected one of {', '.join(ABOUTS)} (Hainan intermediary services art. 22)"))
    text = _string(doc, "text", errs, max_length=MAX_TEXT, required=True)
    fulfilled_at = _instant(doc, "fulfilled_at", errs, now, required=False)
    if errs:
        return errs
    assert project_no and text and isinstance(about, str)
    return ComplaintIn(project_no, about, text, fulfilled_at)


def parse_answer(doc: Any) -> str | list[FieldError]:
    if not isinstance(doc, dict):
        return [FieldError("body", "expected a JSON object")]
    errs: list[FieldError] = []
    answer = _string(doc, "answer", errs, max_length=MAX_TEXT, required=True)
    return errs if errs or answer is None else answer


# --- deadlines --------------------------------------------------------------------------------------------


def complaint_window_end(rt: Runtime, fulfilled_at: datetime) -> datetime:
    """When complaints about a project stop being taken: 10 working days after its contract was fulfilled
    (art. 23), 00:00 after the last one."""
    return rt.timing.window_end(fulfilled_at, rt.policy.intermediary_complaint_window)


def window_open(rt: Runtime, fulfilled_at: datetime, now: datetime) -> bool:
    """Whether a complaint is taken at `now`; open, too, while the end is counted over an unknown year."""
    end = complaint_window_end(rt, fulfilled_at)
    return rt.timing.open_at(end, now)


def answer_due(rt: Runtime, received_at: datetime) -> datetime:
    """The centre's answer is due 5 working days after it received the complaint (art. 25)."""
    return rt.timing.window_end(received_at, rt.policy.intermediary_complaint_answer)


# --- acting -----------------------------------------------------------------------------------------------


async def rate(rt: Runtime, r: RatingIn, now: datetime) -> IntermediaryRating:
    """Store a project's one rating; NotNow when the project is rated already (一事一评, art. 21)."""
    seal, lookup = rt.sealer.seal, rt.sealer.lookup_hash
    row = IntermediaryRating(
        project_no=r.project_no, intermediary_code=r.intermediary_code, intermediary_name=r.intermediary_name,
        agency_code=r.agency_code, agency_name=r.agency_name, service=r.service, fulfilled_at=r.fulfilled_at,
        **{dim: grade.value for dim, grade in r.scores.items()},
        score_sum=sum(grade.score for grade in r.scores.values()), text=r.text, channel=r.channel,
        rater_phone_hash=lookup("phone", r.phone) if r.phone else None,
        rater_phone_sealed=seal(r.phone) if r.phone else None,
        rater_phone_masked=mask_phone(r.phone) if r.phone else None,
        status="valid", created_at=now)
    async with rt.db.write() as session:
        stored = await store.add_rating(session, row)
        if stored is None:
            existing = await store.rating_by_project(session, r.project_no)
            raise NotNow(f"project {r.project_no} is rated already: one rating a project "
                          "(Hainan intermediary services art. 21)", rating_id=existing.id if existing else None)
    return stored


async def complain(rt: Runtime, c: ComplaintIn, now: datetime) -> IntermediaryComplaint:
    """Take a complaint inside its window (art. 23), its answer due in 5 working days (art. 25)."""
    async with rt.db.write() as session:
        rating = await store.rating_by_project(session, c.project_no)
        if rating is not None:
            if c.fulfilled_at is not None and c.fulfilled_at != rating.fulfilled_at:
                raise Invalid(f"the project's rating says its contract was fulfilled at "
                              f"{instant(rt, rating.fulfilled_at)}: leave fulfilled_at out, or give that",
                              errors=[{"field": "fulfilled_at", "message": "differs from the rating's"}])
            fulfilled_at = rating.fulfilled_at
        elif c.fulfilled_at is None:
            raise Invalid(f"project {c.project_no} has no rating here: give fulfilled_at, when its contract was "
                          "fulfilled",
                          errors=[{"field": "fulfilled_at", "message": "required for a project without a rating"}])
        else:
            fulfilled_at = c.fulfilled_at
        if not window_open(rt, fulfilled_at, now):
            closed = instant(rt, complaint_window_end(rt, fulfilled_at))
            span = rt.policy.intermediary_complaint_window
            raise NotNow(f"the complaint window closed at {closed}: {span.days} {span.unit} days after the contract "
                          "was fulfilled (Hainan intermediary services art. 23)", window_closed_at=closed)
        return await store.add_complaint(session, IntermediaryComplaint(
            rating_id=rating.id if rating else None, project_no=c.project_no, about=c.about, text=c.text,
            fulfilled_at=fulfilled_at, received_at=now, due_at=answer_due(rt, now), created_at=now))


async def answer(rt: Runtime, complaint_id: int, text: str, actor: str, now: datetime, *,
                 address: str | None = None) -> IntermediaryComplaint:
    """The centre's one answer (art. 25), written to the audit log with it; a second is NotNow."""
    async with rt.db.write() as session:
        complaint = await store.complaint_by_id(session, complaint_id, lock=rt.db.locks_rows)
        if complaint is None:
            raise NotFound("no such complaint")
        if complaint.answered_at is not None:
            raise NotNow(f"the complaint was answered already, at {instant(rt, complaint.answered_at)}",
                          answered_at=instant(rt, complaint.answered_at))
        complaint.answer, complaint.answered_at, complaint.answered_by = text, now, actor
        session.add(complaint)
        await audit.record(session, now, actor, ANSWER_ACTION, target=("intermediary_complaint", complaint_id),
                           details={"project_no": complaint.project_no, "about": complaint.about,
                                    "due_at": instant(rt, complaint.due_at), "late": now >= complaint.due_at},
                           address=address)
    return complaint


async def mark_overdue(rt: Runtime, now: datetime) -> int:
    """Mark each unanswered complaint whose answer deadline has come (inclusive) `overdue`, once (the scheduler's
    tick). Each deadline is counted again from the receipt, so a calendar year imported since it was stored
    moves it; none counted over a year nobody described is applied (it waits, as every deadline does)."""
    span = rt.policy.intermediary_complaint_answer
    # "n days" end at a local midnight more than n days after their start: only what came in by then can be due.
    received_by = now - timedelta(days=max(span.days - 1, 0))
    marked, after = 0, 0
    while True:
        async with rt.db.write() as session:
            rows = await store.unanswered_received_by(session, received_by, after, BATCH,
                                                      skip_locked=rt.db.locks_rows)
            for complaint in rows:
                due = answer_due(rt, complaint.received_at)
                if due != complaint.due_at:
                    complaint.due_at = due
                if due <= now and rt.timing.calendar.is_final(due, rt.policy.tz):
                    complaint.overdue = True
                    marked += 1
                session.add(complaint)
        if len(rows) < BATCH:
            break
        after = rows[-1].id or after
    if marked:
        log.info("intermediary complaints past their answer deadline: %d marked overdue", marked)
    return marked


# --- JSON -------------------------------------------------------------------------------------------------


def _mean(total: int, count: int) -> float | None:
    return round(total / count, 4) if count else None


def rating_json(rt: Runtime, r: IntermediaryRating) -> dict[str, Any]:
    """A rating as it leaves: the phone masked, the rater's words through the one mask (bot/infra/privacy.py)."""
    grades = {dim: getattr(r, dim) for dim in DIMENSIONS}
    return {
        "id": r.id, "project_no": r.project_no, "intermediary_code": r.intermediary_code,
        "intermediary_name": r.intermediary_name, "agency_code": r.agency_code, "agency_name": r.agency_name,
        "service": r.service, "fulfilled_at": instant(rt, r.fulfilled_at), "scores": grades,
        "score_sum": r.score_sum, "mean_score": _mean(r.score_sum, len(DIMENSIONS)),
        "bad": any(g in BAD for g in grades.values()), "text": mask_text(r.text), "channel": r.channel,
        "rater": {"phone": r.rater_phone_masked}, "status": r.status, "created_at": instant(rt, r.created_at),
        "complaint_window_closes_at": instant(rt, complaint_window_end(rt, r.fulfilled_at)),
    }


def complaint_json(rt: Runtime, c: IntermediaryComplaint) -> dict[str, Any]:
    return {
        "id": c.id, "project_no": c.project_no, "rating_id": c.rating_id, "about": c.about,
        "text": mask_text(c.text), "fulfilled_at": instant(rt, c.fulfilled_at),
        "received_at": instant(rt, c.received_at), "due_at": instant(rt, c.due_at),
        "status": "open" if c.answered_at is None else "answered", "answered_at": instant(rt, c.answered_at),
        "answer": mask_text(c.answer), "answered_by": c.answered_by, "overdue": c.overdue,
        "created_at": instant(rt, c.created_at),
    }


def figures_json(f: store.Figures) -> dict[str, Any]:
    """One intermediary's figures: means of the 10/8/6/3/0 scores, null when nothing was rated."""
    return {
        "code": f.code, "name": f.name, "projects": f.projects,
        "mean_score": _mean(f.score_sum, f.projects * len(DIMENSIONS)),
        "dimensions": {dim: _mean(f.dimension_sums.get(dim, 0), f.projects) for dim in DIMENSIONS},
        "bad_projects": f.bad_projects,
    }


async def figures(rt: Runtime, start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
    """Per intermediary, the valid ratings of the projects fulfilled in [start, end)."""
    scores = {grade.value: score for grade, score in SCORES.items()}
    async with rt.db.read() as session:
        rows = await store.figures(session, tuple(DIMENSIONS), scores, BAD, start, end)
    return [figures_json(f) for f in rows]
