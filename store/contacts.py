"""People as channels reach them, found by keyed hash (the address itself is sealed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import pg_driver
from store.models import Case, Contact

Hashes = str | tuple[str, ...]  # one look-up hash, or during a key rotation (store/sealing.py) the new one first


def matches(hashes: Hashes) -> ColumnElement[bool]:
    """The address-hash condition: equality in the usual case (the inbound road's plan stays the same), both
    hashes while a rotation is under way."""
    if isinstance(hashes, str):
        return col(Contact.address_hash) == hashes
    return col(Contact.address_hash) == hashes[0] if len(hashes) == 1 else col(Contact.address_hash).in_(hashes)


def written(hashes: Hashes) -> str:
    """The hash a new row carries: the current key's."""
    return hashes if isinstance(hashes, str) else hashes[0]


async def find(session: AsyncSession, channel: str, address_hash: Hashes) -> Contact | None:
    stmt = select(Contact).where(Contact.channel == channel, matches(address_hash))
    return (await session.exec(stmt)).first()


async def ensure(session: AsyncSession, channel: str, address_hash: Hashes, sealed: str, masked: str,
                 now: datetime) -> int:
    """The contact's id, created if new. A concurrent creation is absorbed by a savepoint."""
    found = await find(session, channel, address_hash)
    if found is not None:
        return found.id  # type: ignore[return-value]
    try:
        async with session.begin_nested():
            contact = Contact(channel=channel, address_hash=written(address_hash), address_sealed=sealed,
                              masked=masked, created_at=now)
            session.add(contact)
        return contact.id  # type: ignore[return-value]
    except IntegrityError:
        found = await find(session, channel, address_hash)
        assert found is not None
        return found.id  # type: ignore[return-value]


async def ids_by_hash(session: AsyncSession, channel: str, hashes: Iterable[str],
                      aliases: dict[str, str] | None = None) -> dict[str, int]:
    """{hash: id} of the contacts found; `aliases` ({previous key's hash: current hash}, during a rotation) finds
    a row not re-sealed yet under its current hash."""
    aliases = aliases or {}
    wanted = list(set(hashes))
    if not wanted:
        return {}
    if aliases:
        mine = set(wanted)
        asked = wanted + [old for old, new in aliases.items() if new in mine]
    else:
        asked = wanted
    if pg_driver.on_postgresql(session):  # one array, not a bound parameter per hash (bulk ingestion asks thousands)
        rows = [tuple(row) for row in await (await pg_driver.driver(session)).fetch(
            "SELECT address_hash, id FROM contacts WHERE channel = $1 AND address_hash = ANY($2::text[])",
            channel, asked)]
    else:
        stmt = select(Contact.address_hash, Contact.id).where(
            Contact.channel == channel, col(Contact.address_hash).in_(asked))
        rows = list((await session.exec(stmt)).all())  # type: ignore[arg-type]
    return {aliases.get(h, h): i for h, i in rows}


async def opt_out(session: AsyncSession, contact_id: int, source: str, now: datetime) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(Contact).where(col(Contact.id) == contact_id, col(Contact.opted_out_at).is_(None))
        .values(opted_out_at=now, opt_out_source=source))


async def opt_in(session: AsyncSession, contact_id: int) -> None:
    """Reminders again (the person sent START): the opt-out is cleared, whoever recorded it."""
    await session.exec(  # type: ignore[call-overload]
        update(Contact).where(col(Contact.id) == contact_id, col(Contact.opted_out_at).is_not(None))
        .values(opted_out_at=None, opt_out_source=None))


async def ensure_many(session: AsyncSession, channel: str, wanted: dict[str, tuple[str, str]],
                      now: datetime, aliases: dict[str, str] | None = None) -> dict[str, int]:
    """Ids for many addresses at once ({hash: (sealed, masked)}): one select, one multi-row insert. `aliases`:
    see `ids_by_hash`."""
    ids = await ids_by_hash(session, channel, wanted, aliases)
    missing = [h for h in wanted if h not in ids]
    if missing:
        rows = [{"channel": channel, "address_hash": h, "address_sealed": wanted[h][0],
                 "masked": wanted[h][1], "created_at": now} for h in missing]
        if pg_driver.on_postgresql(session):  # arrays through the driver; one added meanwhile is skipped
            head, arrays = pg_driver.unnest_insert(Contact.__table__, rows)  # type: ignore[attr-defined]
            await (await pg_driver.driver(session)).execute(
                head + " ON CONFLICT (channel, address_hash) DO NOTHING", *arrays)
            return {**ids, **await ids_by_hash(session, channel, missing, aliases)}
        try:
            async with session.begin_nested():
                await session.exec(insert(Contact), params=rows)  # type: ignore[call-overload]
        except IntegrityError:  # another writer added some of them: fall back to one at a time
            for h in missing:
                old = [a for a, b in (aliases or {}).items() if b == h]
                await ensure(session, channel, (h, *old), wanted[h][0], wanted[h][1], now)
        ids = await ids_by_hash(session, channel, wanted, aliases)
    return ids


async def by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, Contact]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = (await session.exec(select(Contact).where(col(Contact.id).in_(wanted)))).all()
    return {c.id: c for c in rows}  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class Reach:
    """Whether a contact may be written to now: the sweep needs no more of it (not the sealed address)."""

    id: int
    opted_out_at: datetime | None
    barred_until: datetime | None
    mp_grants: int | None = None
    mp_refused_at: datetime | None = None

    @property
    def subscription_refused(self) -> bool:
        """A mini-program user who refused the subscription and has no grant left: a subscribe message would be
        refused (43101), so the reminder goes by SMS at once."""
        return self.mp_refused_at is not None and not self.mp_grants


async def reach_of(session: AsyncSession, ids: Iterable[int]) -> dict[int, Reach]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = select(Contact.id, Contact.opted_out_at, Contact.barred_until, Contact.mp_grants,
                  Contact.mp_refused_at).where(col(Contact.id).in_(wanted))
    return {row[0]: Reach(*row) for row in (await session.exec(stmt)).all()}  # type: ignore[call-overload]


async def lock(session: AsyncSession, contact_id: int) -> None:
    """Hold the contact's row to the end of the transaction (PostgreSQL, MariaDB), so that the false
    reviews of one rater are counted one decision at a time and two decided at once both count."""
    await session.exec(select(Contact.id).where(col(Contact.id) == contact_id).with_for_update())


SHARED_AFTER = 3  # an address found with more addresses of one other kind than this is shared, not one person's
_ADDRESS_COLUMNS = ("phone_contact_id", "wechat_contact_id", "mp_contact_id")


async def same_person(session: AsyncSession, ids: Iterable[int]) -> set[int]:
    """The addresses of the person behind `ids` (a case's addresses): these, and those found with one of them on
    some case (a phone on one case, the same phone with a WeChat openid on another: one rater). One hop only,
    and an address found with more than SHARED_AFTER addresses of one other kind (a hall's phone typed for
    everyone who had none, a family's openid) is shared, not a person's: it joins nobody to anybody."""
    own = {i for i in ids if i}
    if not own:
        return set()
    found = await _partners(session, own)
    candidates = {p for i in own if not _shared(found[i]) for kinds in found[i] for p in kinds} - own
    theirs = await _partners(session, candidates)
    return own | {p for p in candidates if not _shared(theirs[p])}


def _shared(kinds: list[set[int]]) -> bool:
    return any(len(found) > SHARED_AFTER for found in kinds)


async def _partners(session: AsyncSession, ids: set[int]) -> dict[int, list[set[int]]]:
    """For each address, the other addresses found with it on a case, by kind (phone, WeChat, mini-program)."""
    out: dict[int, list[set[int]]] = {i: [set() for _ in _ADDRESS_COLUMNS] for i in ids}
    if not ids:
        return out
    columns = [col(getattr(Case, c)) for c in _ADDRESS_COLUMNS]
    stmt = select(*columns).where(or_(*(c.in_(list(ids)) for c in columns))).distinct()
    for row in (await session.exec(stmt)).all():  # type: ignore[call-overload]
        for i in ids & set(row):
            for kind, other in enumerate(row):
                if other is not None and other != i:
                    out[i][kind].add(other)
    return out


async def bar(session: AsyncSession, contact_id: int, until: datetime) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(Contact).where(col(Contact.id) == contact_id).values(barred_until=until)
        .execution_options(synchronize_session=False))


async def barred_until(session: AsyncSession, ids: Iterable[int], now: datetime) -> datetime | None:
    """The latest end of a bar on any of these contacts still running at `now`, or None."""
    wanted = [i for i in ids if i]
    if not wanted:
        return None
    rows = await session.exec(select(Contact.barred_until).where(
        col(Contact.id).in_(wanted), col(Contact.barred_until) > now))
    ends = [r for r in rows.all() if r is not None]
    return max(ends) if ends else None


async def masks(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    """The masks that may leave (138****1234, oAbC****xYz1) of these contacts."""
    wanted = list({i for i in ids if i})
    if not wanted:
        return {}
    rows = await session.exec(select(Contact.id, Contact.masked).where(col(Contact.id).in_(wanted)))
    return {i: m for i, m in rows.all()}  # type: ignore[misc]


async def subscription_answered(session: AsyncSession, contact_id: int, accepted: bool, now: datetime) -> int:
    """Record a mini-program user's answer to one subscription request: a grant more, or a refusal. The grants
    left (one-time subscriptions: WeChat lets one message through for each)."""
    grants = Contact.mp_grants
    if accepted:
        values = {"mp_grants": func.coalesce(grants, 0) + 1}
    else:
        values = {"mp_refused_at": now}
    await session.exec(update(Contact).where(col(Contact.id) == contact_id).values(**values)  # type: ignore[call-overload]
                       .execution_options(synchronize_session=False))
    found = (await session.exec(select(Contact.mp_grants).where(col(Contact.id) == contact_id))).first()
    return int(found or 0)


async def subscription_used(session: AsyncSession, contact_id: int, *, refused: bool = False) -> None:
    """A subscribe message went out (a grant used), or WeChat refused it (43101: none left, whatever we counted)."""
    value = 0 if refused else case((func.coalesce(Contact.mp_grants, 0) > 0, Contact.mp_grants - 1), else_=0)
    await session.exec(update(Contact).where(col(Contact.id) == contact_id,  # type: ignore[call-overload]
                                             col(Contact.mp_grants).is_not(None)).values(mp_grants=value)
                       .execution_options(synchronize_session=False))
