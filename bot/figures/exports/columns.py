"""The columns of the exports and what each cell holds; personal data masked unless told otherwise.

The header is a row of stable field codes (the API's names), not translated labels: a spreadsheet
macro or an import script keyed on them keeps working whatever the reader's language. Only
`grade_label` is a text for people, in the source language (zh_Hans: the staff who read these files).

The rater is the contact the rating came through (its channel), else the case's phone, WeChat or
mini-program contact in that order. Masked, it is the contact's stored `masked` column (138****1234)
and the applicant's stored masked name; whole, the sealed address and name opened with the secret key
(a phone in its national form, 13800138000, as the console shows it). The masked query does not even
read the sealed columns (store/exports.py).

Whole for whom (issue 18, the console's reveal rule): an admin's unmasked export (and the CLI's) has
every row whole; an agent's has whole only the rows the console would reveal to them, the reviews
whose work order is at the callback step (`callback_wo_id`), and there only the rater's phone and the
words, never the applicant's name (the console shows an agent no name). Free text (the rater's words)
is masked like the rater, with the one mask of bot/infra/privacy.py, in every row not given whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.infra.privacy import mask_text

Cell = str | int | bool | None

EVALUATION_COLUMNS = (
    "id", "case_no", "item_code", "item_name", "agency_code", "agency_name", "hall_code", "district_code",
    "staff_id", "staff_name", "completed_at", "grade", "grade_label", "score", "reasons", "text", "channel",
    "is_default", "is_followup", "via", "status", "version", "rated_at",
    "terminal_id",  # the self-service terminal's number (Shantou art. 23); the personal data stays last
    "visit_id",  # a window visit's clerk-only rating (Shantou art. 22, 28): staff_* are that visit's clerk
    "rater", "applicant",
)
WORK_ORDER_COLUMNS = (
    "id", "case_no", "agency_code", "agency_name", "staff_id", "grade", "reasons", "status", "outcome",
    "reopened", "overdue", "due_at", "appeal_status", "created_at", "closed_at",
    "joint_agencies",  # a joint case's other agencies involved, codes joined by ";" (Shantou art. 29)
    "rater",  # the personal data stays last
)
KINDS = ("evaluations", "work-orders")
REASON_SEPARATOR = ";"
# The contact a rating came through, by its channel; the others follow as a fallback.
_CONTACT_ORDER = {"wechat": ("wechat", "phone", "mp"), "miniprogram": ("mp", "phone", "wechat")}
_DEFAULT_ORDER = ("phone", "wechat", "mp")
# Which rows of an unmasked export are whole: all of them (admins, the CLI), or those at the callback step.
ALL, CALLBACK_STEP = "all", "callback_step"


@dataclass(frozen=True)
class Formatting:
    """What turns a stored row into cells: the policy's zone, the grades' labels, and the key that opens
    sealed data (None: masked export)."""

    tz: tzinfo
    grade_labels: Mapping[str, str]
    unseal: Callable[[str], str] | None = None
    # Agencies see the rating and the reason, not who gave it (DOMAIN "Privacy"): False leaves the rater
    # and applicant columns empty, even masked.
    identity: bool = True
    scope: str = ALL  # with `unseal`: which rows are whole (ALL or CALLBACK_STEP)

    @property
    def full(self) -> bool:
        return self.unseal is not None

    def whole(self, row: Any) -> bool:
        """Whether this row's personal data leaves whole."""
        if self.unseal is None:
            return False
        return self.scope == ALL or getattr(row, "callback_wo_id", None) is not None

    def text(self, row: Any) -> str | None:
        return row.text if self.whole(row) else mask_text(row.text)

    def instant(self, value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(self.tz).isoformat()

    def rater(self, row: Any, channel: str | None) -> str | None:
        if not self.identity:
            return None
        whole = self.whole(row)
        if whole and self.scope == CALLBACK_STEP and row.phone_sealed is not None:
            assert self.unseal is not None
            return national(self.unseal(row.phone_sealed))  # the number the console would reveal
        for kind in _CONTACT_ORDER.get(channel or "", _DEFAULT_ORDER):
            masked = getattr(row, f"{kind}_masked")
            if masked is None:
                continue
            if self.unseal is None or not whole or self.scope != ALL:
                return str(masked)
            whole = self.unseal(getattr(row, f"{kind}_sealed"))
            return national(whole) if kind == "phone" else whole
        return None

    def applicant(self, row: Any) -> str | None:
        if not self.identity:
            return None
        if self.unseal is not None and self.scope == ALL and row.applicant_sealed is not None:
            return self.unseal(row.applicant_sealed)
        return row.applicant_masked


def national(e164: str) -> str:
    """A Chinese number as people dial it at home (13800138000); any other stays in E.164."""
    return e164[3:] if e164.startswith("+86") else e164


def reasons(codes: list[str] | None) -> str:
    return REASON_SEPARATOR.join(codes or [])


def evaluation_cells(row: Any, f: Formatting) -> list[Cell]:
    return [
        row.id, row.case_no, row.item_code, row.item_name, row.agency_code, row.agency_name, row.hall_code,
        row.district_code, row.staff_id, row.staff_name, f.instant(row.completed_at), row.grade,
        f.grade_labels.get(row.grade, row.grade), row.score, reasons(row.reasons), f.text(row), row.channel,
        bool(row.is_default), bool(row.is_followup), row.via, row.status, row.version, f.instant(row.created_at),
        row.terminal_id, row.visit_id, f.rater(row, row.channel), f.applicant(row),
    ]


def work_order_cells(row: Any, f: Formatting) -> list[Cell]:
    return [
        row.id, row.case_no, row.agency_code, row.agency_name, row.staff_id, row.grade, reasons(row.reasons),
        row.status, row.outcome, row.reopened, bool(row.overdue), f.instant(row.due_at), row.appeal_status,
        f.instant(row.created_at), f.instant(row.closed_at),
        REASON_SEPARATOR.join(a["code"] for a in row.joint_agencies or []), f.rater(row, row.channel),
    ]


COLUMNS = {"evaluations": EVALUATION_COLUMNS, "work-orders": WORK_ORDER_COLUMNS}
CELLS: dict[str, Callable[[Any, Formatting], list[Cell]]] = {"evaluations": evaluation_cells,
                                                             "work-orders": work_order_cells}
