"""The tables. Every instant is a UTCDateTime; every phone number or openid is sealed (store/sealing.py).

Timed duties live in the rows themselves: a case waiting for its reminder has `remind_at`, one
waiting for its default grade has `default_at`, an outbox message waiting to go has
`next_attempt_at`. Each is cleared once done, so a sweep is an index range scan of what is due and
a repeated or earlier tick finds nothing twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.coltypes import JSONText, UTCDateTime


class Setting(SQLModel, table=True):
    """Small facts the service keeps about itself (the generated secret key)."""

    __tablename__ = "settings"
    key: str = Field(primary_key=True, max_length=64)
    value: str


class CalendarYear(SQLModel, table=True):
    """One year of the official calendar as the State Council's notice gives it (`haochaping calendar import`):
    its holidays (days off, weekdays among them) and make-up working days (调休, weekend days worked). Every
    other day of the year is a working day from Monday to Friday. It overrides the packaged calendar."""

    __tablename__ = "calendar_years"
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    holidays: list[str] = Field(default_factory=list, sa_type=JSONText)  # ISO dates
    workdays: list[str] = Field(default_factory=list, sa_type=JSONText)
    source: str | None = Field(default=None, max_length=300)  # the notice it comes from (国办发明电〔…〕…号)
    imported_at: datetime = Field(sa_type=UTCDateTime)
    imported_by: str = Field(max_length=100)


class Contact(SQLModel, table=True):
    """A person as one channel reaches them: a phone for SMS and calls, an openid for WeChat."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "address_hash", name="uq_contacts_channel_address"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)  # "phone", "wechat", "miniprogram"
    address_hash: str = Field(max_length=64)
    address_sealed: str
    masked: str = Field(max_length=32)
    opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opt_out_source: str | None = Field(default=None, max_length=32)
    # Shandong's blacklist: a rater whose bad reviews were upheld as false too often may not rate.
    barred_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A mini-program user's answers to wx.requestSubscribeMessage: one-time subscriptions granted and not used yet,
    # and when they last refused one (bot/web/miniprogram.py, bot/delivery/reminders.py).
    mp_grants: int | None = None
    mp_refused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Case(SQLModel, table=True):
    """One handling of one service for one applicant (办件)."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_hall_window", "hall_code", "window_no", "id"),)  # a window's newest cases
    id: int | None = Field(default=None, primary_key=True)
    case_no: str = Field(max_length=100, unique=True)
    item_code: str = Field(max_length=100, index=True)
    item_name: str = Field(max_length=300)
    agency_code: str = Field(max_length=100, index=True)
    agency_name: str = Field(max_length=300)
    completed_at: datetime = Field(sa_type=UTCDateTime, index=True)
    staff_id: str | None = Field(default=None, max_length=100)
    staff_name: str | None = Field(default=None, max_length=100)
    # Where it was served: the hall (政务服务大厅) and the district, for coverage and rankings (issue 8), and the
    # window (窗口号), whose rating device turns to the case when it is completed (issue 28, Shantou art. 17).
    window_no: str | None = Field(default=None, max_length=32)
    hall_code: str | None = Field(default=None, max_length=100, index=True)
    hall_name: str | None = Field(default=None, max_length=300)
    district_code: str | None = Field(default=None, max_length=100, index=True)
    district_name: str | None = Field(default=None, max_length=300)
    kind: str | None = Field(default=None, max_length=16)  # bot/policy/handling.py: who a rating of it rates
    # A joint case's (联办件) agencies involved besides the lead (`agency_code`): [{"code", "name"}], listed
    # on a bad review's work order (Shantou art. 29). Migration 0012.
    joint_agencies: list[dict[str, str]] | None = Field(default=None, sa_type=JSONText)
    batch_no: str | None = Field(default=None, max_length=100, index=True)
    bundle_no: str | None = Field(default=None, max_length=100, index=True)
    source: str = Field(default="api", max_length=16)
    applicant_name_sealed: str | None = None
    applicant_name_masked: str | None = Field(default=None, max_length=64)
    locale: str = Field(default="zh_Hans", max_length=16)
    phone_contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    wechat_contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    mp_contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    remind_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    default_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    rated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Evaluation(SQLModel, table=True):
    """A rating. Never updated in place except to append the rater's own sentence or to exclude it."""

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("ref", name="uq_evaluations_ref"),
                      Index("ix_evaluations_visit", "case_id", "visit_id"))
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    grade: str = Field(max_length=32)
    score: int
    reasons: list[str] = Field(default_factory=list, sa_type=JSONText)
    text: str | None = None
    channel: str = Field(max_length=16)
    # The self-service terminal's number (终端机编号, Shantou art. 23) a rating was given at. Migration 0012.
    terminal_id: str | None = Field(default=None, max_length=100)
    window_no: str | None = Field(default=None, max_length=32)  # the window whose device took it (channel hall)
    # A clerk-only rating given at one window visit of a 承诺件 or 联办件 (Shantou art. 22, 28, 29): the visit's
    # id and the clerk who served it. NULL on the case's own ratings. Migration 0013;
    # bot/rating/ratings.py record_visit.
    visit_id: str | None = Field(default=None, max_length=100)
    staff_id: str | None = Field(default=None, max_length=100)
    staff_name: str | None = Field(default=None, max_length=100)
    is_default: bool = False
    is_followup: bool = False
    status: str = Field(default="valid", max_length=16)
    # Where a rating came from when not typed for this case: "batch" or "bundle" (a sibling's rating
    # applied here), or "callback" (a work order's callback result).
    via: str | None = Field(default=None, max_length=16)
    origin_id: int | None = Field(default=None, index=True)  # what a batch/bundle copy came from, or a callback answers
    # A provider's reference for the act of rating (a call's CallSid): unique, so a retried request
    # cannot store the same rating twice.
    ref: str | None = Field(default=None, max_length=80)
    # Where a page's rating came from, for the supervision signals (bot/supervision): keyed hashes of the
    # client's address and of the browser's device cookie (never the values). Migration 0016.
    client_hash: str | None = Field(default=None, max_length=64)
    device_hash: str | None = Field(default=None, max_length=64, index=True)  # a device's ratings, looked up
    # The record's version as reported upward: 1 when given, +1 at each later change (a callback's
    # answer, an exclusion on appeal). With the id it is the idempotency key of a report.
    version: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the supervision scan reads ranges of it


class HotlineCall(SQLModel, table=True):
    """A call a switch's IVR script drives through the JSON keypad dialog (CONTRACT "Hotline keypads beyond
    Twilio"; bot/inbound/ivr.py). Twilio carries a call's state in its signed URLs; a switch's script carries
    nothing, so the state lives here, where any worker answers the next step. `answers` holds every step's
    answer as it was given (step n is answers[n - 1]): keys posted again for a step already answered get that
    same answer. `state` is None once the call is over. Migration 0015."""

    __tablename__ = "hotline_calls"
    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(max_length=64, unique=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    work_order_id: int | None = Field(default=None, foreign_key="work_orders.id")
    locale: str = Field(max_length=16)
    step: int = 1
    state: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    answers: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONText)
    pressed: list[str] = Field(default_factory=list, sa_type=JSONText)  # the keys of each step, in order
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime, index=True)  # tick's prune looks calls up by it


class OutboxMessage(SQLModel, table=True):
    """A message on its way to a person. `dedupe_key` makes "one reminder per case per channel, ever"
    a unique index rather than a hope; `next_attempt_at` is set only while it still has to go."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # "reminder", "reply", "notice"
    channel: str = Field(max_length=16)  # "sms", …
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    dedupe_key: str | None = Field(default=None, max_length=160, unique=True)
    body: str
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Wall-clock times: when the last attempt began, and when the first attempt whose outcome is unknown
    # (a timeout, a worker that died holding the lease) began; the provider is asked before resending.
    attempted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unsure_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider: str | None = Field(default=None, max_length=16)
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class DeliveryReceipt(SQLModel, table=True):
    """Every delivery status a provider reported, kept as it came. A callback can arrive before the
    sender has recorded the provider's message id; the receipt waits here and is applied then."""

    __tablename__ = "delivery_receipts"
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)
    error_code: str | None = Field(default=None, max_length=16)
    stopped: bool = False  # the provider says the person unsubscribed
    received_at: datetime = Field(sa_type=UTCDateTime)


class Conversation(SQLModel, table=True):
    """The one open conversation of a contact (at most one): the dialog state between messages.

    It lives in the database, not only in Redis, so that a flush, a restart or the `tick` process
    opening a conversation from outside `serve` loses nothing. The row, locked for a message's
    transaction, is what handles one person's messages one at a time, and `recent_ids` keeps the last
    provider message ids acted on, committed with what they did: the inbound road's dedupe.
    """

    __tablename__ = "conversations"
    contact_id: int = Field(foreign_key="contacts.id", primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    state: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recent_ids: list[str] = Field(default_factory=list, sa_type=JSONText)
    version: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WorkOrder(SQLModel, table=True):
    """The task a bad review becomes (差评工单). Its columns are the current state; every change of
    them is also written as a WorkOrderEvent, and nothing here changes except by such an event."""

    __tablename__ = "work_orders"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    evaluation_id: int = Field(foreign_key="evaluations.id", unique=True)
    agency_code: str = Field(max_length=100, index=True)
    agency_name: str = Field(max_length=300)
    staff_id: str | None = Field(default=None, max_length=100)  # set when the reasons concern the clerk
    staff_name: str | None = Field(default=None, max_length=100)
    grade: str = Field(max_length=32)
    reasons: list[str] = Field(default_factory=list, sa_type=JSONText)
    status: str = Field(default="created", max_length=16, index=True)
    outcome: str | None = Field(default=None, max_length=32)
    reopened: int = 0
    unreachable: int = 0  # callback attempts that reached nobody
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    overdue: bool = Field(default=False, index=True)
    overdue_steps: int = 0  # how many steps passed their deadline, over the whole life
    appeal_status: str | None = Field(default=None, max_length=16)  # pending, upheld, rejected
    appeal_reason: str | None = None
    appeal_by: str | None = Field(default=None, max_length=100)
    appeal_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    appeal_decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Automated callback calls (Twilio Voice): when the next call is due, and how many were made.
    call_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    calls: int = 0
    call_sid: str | None = Field(default=None, max_length=64, index=True)
    agent_queue: bool = False  # the automated calls gave up: a person must call
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WorkOrderEvent(SQLModel, table=True):
    """Append-only history of a work order: who did what, when, with which note."""

    __tablename__ = "work_order_events"
    id: int | None = Field(default=None, primary_key=True)
    work_order_id: int = Field(foreign_key="work_orders.id", index=True)
    action: str = Field(max_length=32)
    actor: str = Field(max_length=100)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    note: str | None = None
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    at: datetime = Field(sa_type=UTCDateTime)


class RaterStrike(SQLModel, table=True):
    """A review judged false by an upheld appeal, counted against one of the rater's addresses (Shandong
    art. 17: 3 false reviews made within a year bar the rater).

    One row per review and address, whatever number of its work orders are appealed: a batch or bundle
    (一件事) rating given at once is one review, however many agencies' items it rated. `evaluation_id` is
    that review: the evaluation the rater gave, of which a batch or bundle copy is only a copy
    (`Evaluation.origin_id`). `at` is when the review was made, since the rule counts the reviews a rater
    made within a year, not when appeals about them happened to be decided (migration 0011).
    """

    __tablename__ = "rater_strikes"
    __table_args__ = (UniqueConstraint("contact_id", "evaluation_id", name="uq_rater_strikes_review"),)
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    evaluation_id: int = Field(foreign_key="evaluations.id")
    at: datetime = Field(sa_type=UTCDateTime)


class User(SQLModel, table=True):
    """A person who works on work orders: L1 (dispatch, review, decide appeals), L2 (the agency:
    rectify, appeal), a 12345 agent (callbacks), or an admin. `agencies` is their jurisdiction:
    agency codes, or "*" for all."""

    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str | None = Field(default=None, max_length=100)
    role: str = Field(max_length=16)
    agencies: list[str] = Field(default_factory=list, sa_type=JSONText)
    password_hash: str
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A console session holds the value of this counter when it began, and is void once it moved on:
    # a log-out where sessions live in signed cookies (no Redis), which outlives a restart here.
    session_epoch: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StatsDay(SQLModel, table=True):
    """The figures of one UTC day of completed cases, per group, for one way of grouping (`dim`).

    Kept so that statistics over millions of evaluations are sums over a few thousand rows. A day is
    rebuilt from the records (never edited by hand) by `store.stats.refresh` once it is marked dirty;
    until then its figures are computed live, so a reader never sees a stale day.
    """

    __tablename__ = "stats_days"
    __table_args__ = (Index("ix_stats_days_dim_day", "dim", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    dim: str = Field(max_length=8)  # agency, item, staff, channel, hall, district
    day: date
    agency_code: str = Field(max_length=100)
    key: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=300)
    cases: int = 0
    # The cases that should be rated (应评价办件, the participation rate's base): every case but those whose
    # every rating was judged false on an upheld appeal (不予采纳; docs/figures.md). Migration 0011.
    to_rate: int = 0
    rated: int = 0
    score_sum: int = 0
    scored: int = 0
    bad: int = 0
    orders: int = 0
    rectified: int = 0
    overdue: int = 0


class StatsDirty(SQLModel, table=True):
    """Marks of days whose `StatsDay` rows are out of date, one per change: database triggers on cases,
    evaluations and work orders add them in the same transaction as the change, so no code path can
    forget to. One row per change rather than one per day: a mark is removed only by the refresh that
    saw it committed, and two writers of the same day never wait for each other."""

    __tablename__ = "stats_dirty"
    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True)


class StatsSnapshot(SQLModel, table=True):
    """A published period's figures, frozen: the canonical JSON and its SHA-256. Never updated (a
    database trigger refuses it): a later recomputation is compared with it, not written over it."""

    __tablename__ = "stats_snapshots"
    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(max_length=64, unique=True)
    from_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    to_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sha256: str = Field(max_length=64)
    content: str
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """One act on personal data or on who may see it: a number revealed, an unmasked export, a user made,
    disabled, given a password, a role or a jurisdiction; a period published; an appeal decided.

    Written in the same transaction as the change it records (an export, which changes nothing, when it
    ends), and never changed: database triggers refuse an UPDATE or a DELETE (migration 0009). `details`
    is masked before it is stored; `target_id` is text, so that a row outlives what it names.
    """

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=100)  # a user's name, "api", "system", "cli:<operator>"
    action: str = Field(max_length=64, index=True)
    target_kind: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=100)
    details: dict[str, Any] | None = Field(default=None, sa_type=JSONText)
    address: str | None = Field(default=None, max_length=64)  # the client's address, for a request


class UpstreamReport(SQLModel, table=True):
    """One version of one evaluation, to be pushed to one upstream platform (a reporting profile).

    Written in the same transaction as the change it reports, so none is forgotten; `record` is the
    neutral snapshot of that version (named grades and channels: the profile maps them to digits
    only when the request is built). `idempotency_key` is what the upstream sees twice, never the
    change: a retry after a timeout carries the same key.
    """

    __tablename__ = "upstream_reports"
    __table_args__ = (UniqueConstraint("profile", "evaluation_id", "version", name="uq_upstream_reports_version"),
                      Index("ix_upstream_reports_due", "status", "next_attempt_at"))
    id: int | None = Field(default=None, primary_key=True)
    profile: str = Field(max_length=64)
    evaluation_id: int = Field(foreign_key="evaluations.id", index=True)
    version: int
    idempotency_key: str = Field(max_length=160, unique=True)
    record: dict[str, Any] = Field(sa_type=JSONText)
    status: str = Field(default="pending", max_length=16)  # pending, sent, rejected
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IntermediaryRating(SQLModel, table=True):
    """A project owner's (项目业主) rating of one completed intermediary-service project (中介服务), once per project
    (一事一评, Hainan 中介服务 art. 21): a grade on each of five dimensions, not one grade for the whole.

    Not an `Evaluation`: the project is no case of ours, the rater is the owner and not a citizen served at a
    window, and nothing of it feeds the case figures, work orders or upward reports. The grades are named
    (dialogs/grades.py), `score_sum` the sum of their five scores, so the figures are sums in SQL. The rater's
    phone is kept as contacts keep theirs: sealed, a keyed hash to find it, and the mask that may leave.
    """

    __tablename__ = "intermediary_ratings"
    id: int | None = Field(default=None, primary_key=True)
    project_no: str = Field(max_length=100, unique=True)
    intermediary_code: str = Field(max_length=100, index=True)
    intermediary_name: str = Field(max_length=300)
    agency_code: str | None = Field(default=None, max_length=100, index=True)  # the approving agency (审批部门)
    agency_name: str | None = Field(default=None, max_length=300)
    service: str | None = Field(default=None, max_length=300)  # the intermediary service's name
    fulfilled_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the contract fulfilled (合同履行完毕)
    quality: str = Field(max_length=32)  # 服务质量
    timeliness: str = Field(max_length=32)  # 服务时效
    attitude: str = Field(max_length=32)  # 服务态度
    fees: str = Field(max_length=32)  # 服务收费
    conduct: str = Field(max_length=32)  # 服务规范
    score_sum: int
    text: str | None = None
    channel: str = Field(max_length=16)
    rater_phone_hash: str | None = Field(default=None, max_length=64, index=True)
    rater_phone_sealed: str | None = None
    rater_phone_masked: str | None = Field(default=None, max_length=32)
    status: str = Field(default="valid", max_length=16)  # valid, excluded
    created_at: datetime = Field(sa_type=UTCDateTime)


class IntermediaryComplaint(SQLModel, table=True):
    """A project owner's complaint about an intermediary's quality, time limit or contract performance (Hainan
    中介服务 art. 22, 23), made within 10 working days of the contract's fulfilment and answered by the centre
    within 5 (art. 25). `fulfilled_at` is the instant the window was counted from (the project's rating's, or
    the one the complaint gave when the project has none); `due_at` the answer's deadline, which `tick` keeps
    in step with the calendar when it marks the complaint `overdue`."""

    __tablename__ = "intermediary_complaints"
    __table_args__ = (Index("ix_intermediary_complaints_open", "answered_at", "overdue", "received_at"),)
    id: int | None = Field(default=None, primary_key=True)
    rating_id: int | None = Field(default=None, foreign_key="intermediary_ratings.id", index=True)
    project_no: str = Field(max_length=100, index=True)
    about: str = Field(max_length=16)  # quality, timeliness, contract
    text: str
    fulfilled_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answer: str | None = None
    answered_by: str | None = Field(default=None, max_length=100)
    overdue: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)


class Signal(SQLModel, table=True):
    """A sign of fake praise (刷好评) or a malicious review (恶意差评) the supervision scan found (Haikou 九;
    bot/supervision). It only flags: a person decides (`status` dismissed or confirmed, audited), and
    nothing here changes a rating or a figure. `subject` is what the pattern is about (a device's hash, a
    contact, a clerk, an agency), so that a pattern seen again grows its open signal instead of a new one.
    `cases` holds case numbers, `evidence` the figures that met the rule. Migration 0016."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_kind_subject", "kind", "subject"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=160)
    agency_code: str = Field(max_length=100, index=True)
    staff_id: str | None = Field(default=None, max_length=100)
    cases: list[str] = Field(default_factory=list, sa_type=JSONText)
    evaluation_ids: list[int] = Field(default_factory=list, sa_type=JSONText)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSONText)
    detected_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="open", max_length=16, index=True)
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    note: str | None = None


class SupervisionDraw(SQLModel, table=True):
    """One seeded random draw of raters to call back (Hainan art. 17, Shantou art. 36, Shandong art. 15):
    the period and agency, the population (its rule, size and the ids in the order drawn from), the seed and
    who was drawn, so that an auditor repeats it (bot/supervision/draws.py). Migration 0016."""

    __tablename__ = "supervision_draws"
    __table_args__ = (UniqueConstraint("period", "agency_code", name="uq_supervision_draws_period_agency"),)
    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=16)  # "2026-11" (month) or "2026-W47" (week)
    agency_code: str = Field(max_length=100)
    seed: str = Field(max_length=64)
    rule: str = Field(max_length=300)
    population: int
    population_ids: list[int] = Field(default_factory=list, sa_type=JSONText)  # evaluation ids, ascending
    drawn_ids: list[int] = Field(default_factory=list, sa_type=JSONText)
    created_at: datetime = Field(sa_type=UTCDateTime)


class SupervisionCall(SQLModel, table=True):
    """A rater to call back with "did you give this rating, and is it what you meant?", and the answer
    (confirmed, different, not_mine, unreachable): drawn at random, or about a signal's ratings. One call per
    rating, ever. Migration 0016."""

    __tablename__ = "supervision_calls"
    id: int | None = Field(default=None, primary_key=True)
    # Drawn at random (`draw_id`), or asked for by a supervisor about a signal's ratings (`signal_id`).
    draw_id: int | None = Field(default=None, foreign_key="supervision_draws.id", index=True)
    signal_id: int | None = Field(default=None, foreign_key="signals.id", index=True)
    evaluation_id: int = Field(foreign_key="evaluations.id", unique=True)
    case_id: int = Field(foreign_key="cases.id")
    agency_code: str = Field(max_length=100, index=True)
    status: str = Field(default="pending", max_length=16, index=True)  # pending, answered
    answer: str | None = Field(default=None, max_length=16)
    note: str | None = None
    answered_by: str | None = Field(default=None, max_length=100)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class HallDevice(SQLModel, table=True):
    """A rating device on a hall's counter (评价器, Shantou art. 17 (一)) or a self-service terminal's rating screen
    (art. 23), registered by an admin. It holds a token (only its hash is kept) instead of a user's log-in; a
    revoked device is refused at once."""

    __tablename__ = "hall_devices"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # "window" or "terminal"
    hall_code: str = Field(max_length=100, index=True)
    window_no: str | None = Field(default=None, max_length=32)
    terminal_no: str | None = Field(default=None, max_length=64)
    staff_id: str | None = Field(default=None, max_length=100)  # the clerk at the window now
    staff_name: str | None = Field(default=None, max_length=100)
    label: str | None = Field(default=None, max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
