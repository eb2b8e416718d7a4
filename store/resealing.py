"""Re-sealing every piece of personal data under a new secret key (`haochaping secret rotate`).

Phone numbers and openids are found by a keyed hash and stored encrypted, applicants' names encrypted:
all of it depends on the key. Rotation opens each with the old sealer and writes it again with the new,
in one transaction, batch by batch (keyset reads: memory stays flat), so the store is never half-rotated.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import Case, Contact
from store.sealing import Sealer

BATCH = 1000


@dataclass
class Resealed:
    contacts: int = 0
    names: int = 0


async def reseal(session: AsyncSession, old: Sealer, new: Sealer) -> Resealed:
    done = Resealed()
    last = 0
    while True:
        rows = (await session.exec(select(Contact.id, Contact.channel, Contact.address_sealed)
                                   .where(col(Contact.id) > last).order_by(col(Contact.id)).limit(BATCH))).all()
        if not rows:
            break
        for contact_id, channel, sealed in rows:
            address = old.open(sealed)
            await session.exec(update(Contact).where(col(Contact.id) == contact_id).values(  # type: ignore[call-overload]
                address_hash=new.lookup_hash(channel, address), address_sealed=new.seal(address)))
            done.contacts += 1
        last = rows[-1][0]
    last = 0
    while True:
        rows = (await session.exec(select(Case.id, Case.applicant_name_sealed)
                                   .where(col(Case.id) > last, col(Case.applicant_name_sealed).is_not(None))
                                   .order_by(col(Case.id)).limit(BATCH))).all()
        if not rows:
            break
        for case_id, sealed in rows:
            await session.exec(update(Case).where(col(Case.id) == case_id).values(  # type: ignore[call-overload]
                applicant_name_sealed=new.seal(old.open(sealed))))
            done.names += 1
        last = rows[-1][0]
    return done
