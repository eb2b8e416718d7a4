"""Ratings of a case.

A case's own ratings (its first, its follow-up, its default, a callback's answer) are apart from the clerk-only
ratings given at its window visits (`visit_id` set: a 承诺件's or 联办件's acceptance, Shantou art. 22, 28, 29),
which are neither its rating nor its follow-up: `for_case` and `latest_for_case` leave them out, so that every
rule of "one rating and one follow-up" reads the case's own; `visits_for_case` has them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Evaluation


async def for_case(session: AsyncSession, case_id: int) -> list[Evaluation]:
    stmt = (select(Evaluation).where(Evaluation.case_id == case_id, col(Evaluation.visit_id).is_(None))
            .order_by(col(Evaluation.id)))
    return list((await session.exec(stmt)).all())


async def visits_for_case(session: AsyncSession, case_id: int, visit_id: str | None = None) -> list[Evaluation]:
    """The clerk-only ratings of the case's window visits (of one visit, when `visit_id` is given), with the
    callbacks' answers to them."""
    stmt = select(Evaluation).where(Evaluation.case_id == case_id, col(Evaluation.visit_id).is_not(None))
    if visit_id is not None:
        stmt = stmt.where(Evaluation.visit_id == visit_id)
    return list((await session.exec(stmt.order_by(col(Evaluation.id)))).all())


async def latest_for_case(session: AsyncSession, case_id: int) -> Evaluation | None:
    stmt = (select(Evaluation).where(Evaluation.case_id == case_id, col(Evaluation.visit_id).is_(None))
            .order_by(col(Evaluation.id).desc()).limit(1))
    return (await session.exec(stmt)).first()


async def by_ref(session: AsyncSession, ref: str) -> Evaluation | None:
    return (await session.exec(select(Evaluation).where(Evaluation.ref == ref))).first()


COPIES = ("batch", "bundle")  # `via` of an evaluation copied from a rating given to another case


async def review_of(session: AsyncSession, evaluation: Evaluation) -> Evaluation:
    """The review `evaluation` belongs to: the rating the rater gave. A batch or bundle (一件事) rating
    given at once is copied to the other cases with `origin_id` naming it; it is one review however many
    cases or agencies it rated (Shandong art. 17 counts false reviews, not the work orders they opened)."""
    if evaluation.via in COPIES and evaluation.origin_id is not None:
        origin = await session.get(Evaluation, evaluation.origin_id)
        if origin is not None:
            return origin
    return evaluation


async def exclude_derived(session: AsyncSession, original: Evaluation, via: str) -> list[Evaluation]:
    """Exclude the evaluations derived from `original` `via` a batch or bundle (its copies) or a callback
    (the answers to it); the ones it excluded (a batch or bundle copy is a change of its own to report)."""
    stmt = (select(Evaluation).where(col(Evaluation.origin_id) == original.id, col(Evaluation.via) == via,
                                     col(Evaluation.status) == "valid")
            .order_by(col(Evaluation.id)).execution_options(populate_existing=True))
    copies = list((await session.exec(stmt)).all())
    for copy in copies:
        copy.status = "excluded"
        session.add(copy)
    return copies


async def next_version(session: AsyncSession, evaluation: Evaluation) -> None:
    """Count one more change of `evaluation`, under its row lock, and reload it.

    Read-modify-write on the loaded object would let two overlapping changes (the rater's added words
    and an appeal's decision, which lock different rows) both write the same version: the second then
    fails on the report's unique key, or the count silently loses one. The UPDATE waits for the other
    transaction and counts on from what it wrote; the reload brings its changes into this version.
    """
    await session.flush()  # this transaction's own changes of the row go first (and take its lock)
    await session.exec(update(Evaluation).where(col(Evaluation.id) == evaluation.id)  # type: ignore[call-overload]
                       .values(version=col(Evaluation.version) + 1))
    await session.refresh(evaluation)


async def by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Evaluation]:
    if not ids:
        return {}
    stmt = select(Evaluation).where(col(Evaluation.id).in_(list(ids)))
    return {e.id: e for e in (await session.exec(stmt)).all()}  # type: ignore[misc]
