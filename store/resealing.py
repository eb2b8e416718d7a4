"""Re-sealing every piece of personal data under a new secret key (`haochaping keys rotate`, `secret rotate`).

Phone numbers and openids are found by a keyed hash and stored encrypted, applicants' names encrypted:
all of it depends on the key. A rotation reads each table in id order, batch by batch (memory stays flat), opens
each value with the previous key and writes it again with the new one. A value the new key opens already (written
by a service that runs with both keys meanwhile) is left as it is; the write is conditional on the value read, so
a row the service changed between the read and the write is left for the next pass instead of overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from sqlalchemy import Table, bindparam, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, Contact, IntermediaryRating
from store.sealing import Sealer

BATCH = 500


@dataclass(frozen=True)
class Sealed:
    """A column of sealed values, and the look-up hash beside it (keyed by the channel column, or one kind)."""

    name: str
    table: Table
    sealed: str
    hash: str | None = None
    kind: str | None = None  # the hash's kind for every row; None: the row's `channel`


TABLES = (
    Sealed("contacts", Contact.__table__, "address_sealed", "address_hash"),  # type: ignore[attr-defined]
    Sealed("cases", Case.__table__, "applicant_name_sealed"),  # type: ignore[attr-defined]
    Sealed("intermediary_ratings", IntermediaryRating.__table__,  # type: ignore[attr-defined]
           "rater_phone_sealed", "rater_phone_hash", "phone"),
)


class Unopenable(Exception):
    """A value neither key opens: sealed with a third key, or damaged. Nothing of the batch is written."""


@dataclass
class Pass:
    """What one batch did: the last id it read (None: nothing left after the mark), and the values re-sealed."""

    last: int | None = None
    resealed: int = 0


@dataclass
class Resealed:
    per_table: dict[str, int] = field(default_factory=dict)

    @property
    def contacts(self) -> int:
        return self.per_table.get("contacts", 0)

    @property
    def names(self) -> int:
        return self.per_table.get("cases", 0)


async def reseal_batch(session: AsyncSession, what: Sealed, sealer: Sealer, after: int,
                       limit: int = BATCH) -> Pass:
    """Re-seal the values of up to `limit` rows after id `after` under `sealer`'s key, opening the rest with
    `sealer.previous`."""
    assert sealer.previous is not None, "a rotation needs the key the data was sealed with"
    t = what.table
    columns = [t.c.id, t.c[what.sealed]] + ([t.c.channel] if what.hash and what.kind is None else [])
    rows = (await session.exec(select(*columns).where(t.c.id > after, t.c[what.sealed].is_not(None))
                                  .order_by(t.c.id).limit(limit))).all()
    if not rows:
        return Pass()
    changes = []
    for row in rows:
        sealed = row[1]
        try:
            sealer.open_own(sealed)
            continue  # written with the new key already
        except InvalidTag:
            pass
        try:
            plain = sealer.previous.open_own(sealed)
        except InvalidTag:
            raise Unopenable(f"{what.name} {row[0]}: {what.sealed} opens with neither key") from None
        change = {"row_id": row[0], "old": sealed, "new": sealer.seal(plain)}
        if what.hash:
            change["digest"] = sealer.lookup_hash(what.kind or row[2], plain)
        changes.append(change)
    if changes:
        values = {what.sealed: bindparam("new")} | ({what.hash: bindparam("digest")} if what.hash else {})
        stmt = (update(t).where(t.c.id == bindparam("row_id"), t.c[what.sealed] == bindparam("old"))
                .values(values))
        await session.exec(stmt, params=changes)  # type: ignore[call-overload]
    return Pass(last=rows[-1][0], resealed=len(changes))


async def last_ids(session: AsyncSession) -> dict[str, int]:
    """The last id of each table with sealed values: how far a rotation has to go."""
    return {what.name: int((await session.exec(select(func.max(what.table.c.id)))).one()[0] or 0)  # type: ignore[call-overload]
            for what in TABLES}


async def reseal(session: AsyncSession, old: Sealer, new: Sealer) -> Resealed:
    """Everything in one transaction (`secret rotate`, the service stopped)."""
    sealer = new.rotating_from(old)
    done = Resealed()
    for what in TABLES:
        after, count = 0, 0
        while (step := await reseal_batch(session, what, sealer, after, 1000)).last is not None:
            after, count = step.last, count + step.resealed
        done.per_table[what.name] = count
    return done
