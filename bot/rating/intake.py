"""Completed cases (办结) from business systems: validation with named fields, then the store.

Validation goes through pydantic (already here with SQLModel) so that every error carries its
dotted field (`applicant.phone`) and a message a developer on the other side can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from bot.infra.i18n import negotiate
from bot.infra.limits import code_problem, instant_problem, text_problem
from bot.infra.runtime import Runtime
from bot.policy import handling
from dialogs.addresses import mask_name, mask_openid, mask_phone, normalize_phone
from store import cases as case_store
from store import contacts
from store.models import Case

# Ids and codes take no control character at all; names take tab, CR and LF (bot/infra/limits.py).
CODES = frozenset({"case_no", "item_code", "agency_code", "staff_id", "hall_code", "district_code", "batch_no",
                   "bundle_no", "phone", "wechat_openid", "mp_openid", "locale", "kind", "code"})
MAX_JOINT_AGENCIES = 50  # a joint approval (联办件) involves a handful of agencies, never a directory of them


def _no_controls(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        value = value.strip()  # as str_strip_whitespace does next: a code's trailing newline was always cut
    problem = code_problem(value) if info.field_name in CODES else text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class ApplicantIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    phone: str | None = None
    wechat_openid: str | None = Field(default=None, min_length=1, max_length=128)
    mp_openid: str | None = Field(default=None, min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=100)
    locale: str | None = Field(default=None, max_length=35)

    _controls = field_validator("*", mode="before")(_no_controls)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        e164 = normalize_phone(value)
        if e164 is None:
            raise ValueError("not a mobile number: expected 13800138000 or +8613800138000")
        return e164


def _text(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length)


class AgencyIn(BaseModel):
    """One of a joint case's agencies involved besides the lead (Shantou art. 29)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    code: str = _text(100)
    name: str = _text(300)

    _controls = field_validator("*", mode="before")(_no_controls)


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    case_no: str = _text(100)
    item_code: str = _text(100)
    item_name: str = _text(300)
    agency_code: str = _text(100)
    agency_name: str = _text(300)
    completed_at: datetime
    applicant: ApplicantIn | None = None
    staff_id: str | None = Field(default=None, max_length=100)
    staff_name: str | None = Field(default=None, max_length=100)
    hall_code: str | None = Field(default=None, max_length=100)
    hall_name: str | None = Field(default=None, max_length=300)
    window_no: str | None = Field(default=None, max_length=32)  # the window's rating device turns to the case
    district_code: str | None = Field(default=None, max_length=100)
    district_name: str | None = Field(default=None, max_length=300)
    kind: handling.Kind | None = None
    # The agencies a joint case (联办件) involves besides the lead `agency_code` (Shantou art. 29).
    joint_agencies: list[AgencyIn] | None = Field(default=None, max_length=MAX_JOINT_AGENCIES)
    batch_no: str | None = Field(default=None, max_length=100)
    bundle_no: str | None = Field(default=None, max_length=100)

    _controls = field_validator("*", mode="before")(_no_controls)

    @model_validator(mode="after")
    def _joint(self) -> CaseIn:
        """The agencies involved belong to a joint case only, each named once and none of them the lead: a
        list the work order repeats (art. 29) must say which other agencies, not restate the case's own."""
        if not self.joint_agencies:
            self.joint_agencies = None  # `[]` says nothing more than leaving it out
            return self
        if self.kind != "joint":
            raise _field_error("joint_agencies", "only a joint case (\"kind\": \"joint\") names agencies involved")
        codes = [a.code for a in self.joint_agencies]
        if self.agency_code in codes:
            raise _field_error("joint_agencies", f"{self.agency_code!r} is the lead agency (agency_code): "
                                                 "list only the other agencies involved")
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise _field_error("joint_agencies", f"each agency once: {', '.join(twice)} appear(s) more than once")
        return self

    @field_validator("completed_at", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("expected an ISO-8601 string with an offset, e.g. 2026-11-20T10:00:00+08:00")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO-8601 instant: {value[:40]!r}") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError("the instant has no offset: write it as 2026-11-20T10:00:00+08:00")
        problem = instant_problem(parsed)
        if problem:
            raise ValueError(problem)
        return parsed


class _NamedError(ValueError):
    """A whole-case check's error, carrying the field it concerns (a model validator has no field of its own)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _field_error(field: str, message: str) -> ValueError:
    return _NamedError(field, message)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _NamedError):  # a whole-case check names its own field
            loc = ".".join(p for p in (loc, cause.field) if p)
        msg = str(err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(FieldError(loc or "body", msg))
    return out


def parse_case(doc: Any) -> CaseIn | list[FieldError]:
    if not isinstance(doc, dict):
        return [FieldError("body", "expected a JSON object")]
    try:
        return CaseIn.model_validate(doc)
    except ValidationError as exc:
        return field_errors(exc)


def parse_case_json(raw: bytes | str) -> CaseIn | list[FieldError]:
    try:
        return CaseIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = field_errors(exc)
        if any(e.field == "body" for e in errors):
            return [FieldError("body", "not a JSON object: " + errors[0].message)]
        return errors


def _contact_fields(rt: Runtime, applicant: ApplicantIn | None) -> list[tuple[str, str, tuple[str, ...], str, str]]:
    """(column, channel, hashes, sealed, masked) for each address the applicant gave (hashes: the current key's
    first; the previous key's too while a rotation is under way)."""
    if applicant is None:
        return []
    out = []
    seal, lookup = rt.sealer.seal, rt.sealer.lookup_hashes
    if applicant.phone:
        out.append(("phone_contact_id", "phone", lookup("phone", applicant.phone), seal(applicant.phone),
                    mask_phone(applicant.phone)))
    if applicant.wechat_openid:
        w = applicant.wechat_openid
        out.append(("wechat_contact_id", "wechat", lookup("wechat", w), seal(w), mask_openid(w)))
    if applicant.mp_openid:
        mp = applicant.mp_openid
        out.append(("mp_contact_id", "miniprogram", lookup("miniprogram", mp), seal(mp), mask_openid(mp)))
    return out


def _place(rt: Runtime, c: CaseIn) -> dict[str, str | None]:
    """The hall and district as given; what is left out is filled from the policy's hall list."""
    hall = rt.policy.statistics.halls.get(c.hall_code) if c.hall_code else None
    return {
        "hall_code": c.hall_code, "hall_name": c.hall_name or (hall.name if hall else None),
        "district_code": c.district_code or (hall.district if hall else None),
        "district_name": c.district_name or (hall.district_name if hall and not c.district_code else None),
    }


def case_row(rt: Runtime, c: CaseIn, now: datetime, contact_ids: dict[str, int]) -> dict[str, Any]:
    """The row of a new case. An online consultation (Shantou art. 32) needs no rating: no reminder, no default."""
    name = c.applicant.name if c.applicant else None
    rated = not handling.online_consultation(c.kind, c.hall_code, c.staff_id)
    remindable = rated and ("phone_contact_id" in contact_ids or "mp_contact_id" in contact_ids)
    return {
        "case_no": c.case_no, "item_code": c.item_code, "item_name": c.item_name,
        "agency_code": c.agency_code, "agency_name": c.agency_name, "completed_at": c.completed_at,
        "staff_id": c.staff_id, "staff_name": c.staff_name, **_place(rt, c), "window_no": c.window_no, "kind": c.kind,
        "joint_agencies": [a.model_dump() for a in c.joint_agencies] if c.joint_agencies else None,
        "batch_no": c.batch_no, "bundle_no": c.bundle_no, "source": "api",
        "applicant_name_sealed": rt.sealer.seal(name) if name else None,
        "applicant_name_masked": mask_name(name) if name else None,
        "locale": negotiate(c.applicant.locale if c.applicant else None),
        "phone_contact_id": contact_ids.get("phone_contact_id"),
        "wechat_contact_id": contact_ids.get("wechat_contact_id"),
        "mp_contact_id": contact_ids.get("mp_contact_id"),
        "created_at": now,
        "remind_at": rt.timing.reminder_at(c.completed_at) if remindable else None,
        "default_at": rt.timing.default_at(c.completed_at) if rated else None,
        "rated_at": None,
    }


async def ingest(rt: Runtime, c: CaseIn, now: datetime, *, source: str = "api") -> tuple[Case, bool]:
    """Store a case; a repeat of a known case_no returns the stored case untouched."""
    async with rt.db.write() as session:
        existing = await case_store.by_no(session, c.case_no)
        if existing is not None:
            return existing, False
        ids = {}
        for column, channel, digest, sealed, masked in _contact_fields(rt, c.applicant):
            ids[column] = await contacts.ensure(session, channel, digest, sealed, masked, now)
        stored = await case_store.add(session, Case(**{**case_row(rt, c, now, ids), "source": source}))
    await _wake_halls(rt, [c])
    return stored


async def ingest_batch(rt: Runtime, batch: list[CaseIn], now: datetime) -> tuple[int, int]:
    """Store a batch of validated cases in one transaction; (created, existing)."""
    async with rt.db.write() as session:
        known = await case_store.existing_nos(session, [c.case_no for c in batch])
        fresh: list[tuple[CaseIn, list[tuple[str, str, tuple[str, ...], str, str]]]] = []
        seen: set[str] = set()
        wanted: dict[str, dict[str, tuple[str, str]]] = {}
        aliases: dict[str, dict[str, str]] = {}
        for c in batch:
            if c.case_no in known or c.case_no in seen:
                continue
            seen.add(c.case_no)
            fields = _contact_fields(rt, c.applicant)
            for _column, channel, (digest, *previous), sealed, masked in fields:
                wanted.setdefault(channel, {})[digest] = (sealed, masked)
                aliases.setdefault(channel, {}).update((old, digest) for old in previous)
            fresh.append((c, fields))
        ids = {ch: await contacts.ensure_many(session, ch, w, now, aliases.get(ch)) for ch, w in wanted.items()}
        rows = [case_row(rt, c, now, {col: ids[ch][digests[0]] for col, ch, digests, _s, _m in fields})
                for c, fields in fresh]
        created = await case_store.add_many(session, rows)
    await _wake_halls(rt, [c for c, _fields in fresh])
    return created, len(batch) - created


async def _wake_halls(rt: Runtime, cases: list[CaseIn]) -> None:
    """The halls whose window devices may have a new case to show (bot/web/hall_devices.py), after the commit."""
    for hall in sorted({c.hall_code for c in cases if c.hall_code and (c.window_no or c.staff_id)}):
        await rt.wakeups.wake(f"hall:{hall}")
