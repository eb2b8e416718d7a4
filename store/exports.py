"""The rows of the exports, read in keyset batches: `WHERE id > last ORDER BY id LIMIT n`.

Each batch is its own short read transaction, so an export of millions of rows holds neither a
snapshot open for minutes (PostgreSQL's vacuum would wait on it) nor more than one batch in memory.
The price: the export is not one snapshot; a row committed during it with a higher id is included
when it falls in the period, and a row changed after its batch was read shows its earlier state.

Personal data is read only when the caller asked for it whole (`Filters.full`): the masked query does
not select the sealed columns at all. An unmasked query also names, in `callback_wo_id`, the work order
at the callback step that a row belongs to (the review a work order answers, or the work order itself),
which is where the console's reveal rule gives an agent the rater's number (bot/figures/exports/columns.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from store.engine import Database
from store.models import Case, Contact, Evaluation, WorkOrder

BATCH = 1000
CALLBACK_STEP = "reviewed"  # the status of a work order whose rater is being called back


@dataclass(frozen=True)
class Filters:
    """The period [start, end) on the rows' own `created_at`; agencies and districts (None = any)."""

    start: datetime | None = None
    end: datetime | None = None
    agencies: Sequence[str] | None = None
    districts: Sequence[str] | None = None
    full: bool = False


def _contacts(stmt: Select[Any], full: bool) -> Select[Any]:
    """The case's three contacts, masked (and sealed when asked), joined by their primary keys."""
    for kind, column in (("phone", Case.phone_contact_id), ("wechat", Case.wechat_contact_id),
                         ("mp", Case.mp_contact_id)):
        contact = aliased(Contact, name=f"{kind}_contact")
        stmt = stmt.outerjoin(contact, contact.id == column).add_columns(contact.masked.label(f"{kind}_masked"))
        if full:
            stmt = stmt.add_columns(contact.address_sealed.label(f"{kind}_sealed"))
    return stmt


def _where(stmt: Select[Any], f: Filters, created: Any, agency: Any) -> Select[Any]:
    if f.start is not None:
        stmt = stmt.where(created >= f.start)
    if f.end is not None:
        stmt = stmt.where(created < f.end)
    if f.agencies is not None:
        stmt = stmt.where(agency.in_(list(f.agencies)))
    if f.districts is not None:
        stmt = stmt.where(col(Case.district_code).in_(list(f.districts)))
    return stmt


def evaluations_query(f: Filters, after: int, limit: int) -> Select[Any]:
    stmt = (select(Evaluation.id, Case.case_no, Case.item_code, Case.item_name, Case.agency_code,
                   Case.agency_name, Case.hall_code, Case.district_code,
                   # a window visit's rating is its own clerk's (Shantou art. 22, 28)
                   func.coalesce(Evaluation.staff_id, Case.staff_id).label("staff_id"),
                   func.coalesce(Evaluation.staff_name, Case.staff_name).label("staff_name"),
                   Case.completed_at, Evaluation.grade, Evaluation.score, Evaluation.reasons, Evaluation.text,
                   Evaluation.channel, Evaluation.is_default, Evaluation.is_followup, Evaluation.via,
                   Evaluation.status, Evaluation.version, Evaluation.created_at, Evaluation.terminal_id,
                   Evaluation.visit_id,
                   Case.applicant_name_masked.label("applicant_masked"))  # type: ignore[call-overload]
            .select_from(Evaluation).join(Case, col(Case.id) == col(Evaluation.case_id)))
    if f.full:
        stmt = stmt.add_columns(col(Case.applicant_name_sealed).label("applicant_sealed"))
        # The work order of this review, when it is at the callback step (evaluation_id is unique there).
        order = aliased(WorkOrder, name="callback_order")
        stmt = stmt.outerjoin(order, (order.evaluation_id == Evaluation.id) & (order.status == CALLBACK_STEP)
                              ).add_columns(order.id.label("callback_wo_id"))  # type: ignore[union-attr]
    stmt = _contacts(stmt, f.full)
    stmt = _where(stmt, f, col(Evaluation.created_at), col(Case.agency_code))
    return stmt.where(col(Evaluation.id) > after).order_by(col(Evaluation.id)).limit(limit)


def work_orders_query(f: Filters, after: int, limit: int) -> Select[Any]:
    stmt = (select(WorkOrder.id, Case.case_no, WorkOrder.agency_code, WorkOrder.agency_name, WorkOrder.staff_id,
                   WorkOrder.grade, WorkOrder.reasons, WorkOrder.status, WorkOrder.outcome, WorkOrder.reopened,
                   WorkOrder.overdue, WorkOrder.due_at, WorkOrder.appeal_status, WorkOrder.created_at,
                   WorkOrder.closed_at, Evaluation.channel, Case.joint_agencies)  # type: ignore[call-overload]
            .select_from(WorkOrder).join(Case, col(Case.id) == col(WorkOrder.case_id))
            .join(Evaluation, col(Evaluation.id) == col(WorkOrder.evaluation_id)))
    if f.full:
        stmt = stmt.add_columns(case((col(WorkOrder.status) == CALLBACK_STEP, col(WorkOrder.id)),
                                     else_=None).label("callback_wo_id"))
    stmt = _contacts(stmt, f.full)
    stmt = _where(stmt, f, col(WorkOrder.created_at), col(WorkOrder.agency_code))
    return stmt.where(col(WorkOrder.id) > after).order_by(col(WorkOrder.id)).limit(limit)


QUERIES = {"evaluations": evaluations_query, "work-orders": work_orders_query}


async def batches(db: Database, kind: str, f: Filters, size: int = BATCH) -> AsyncIterator[Sequence[Any]]:
    """The rows of an export (`kind`: evaluations or work-orders), a batch at a time, in id order."""
    query = QUERIES[kind]
    after = 0
    while True:
        async with db.read() as session:
            rows = (await session.exec(query(f, after, size))).all()  # type: ignore[call-overload]
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        after = rows[-1].id
