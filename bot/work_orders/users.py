"""The people who work on work orders: passwords, roles, jurisdictions and their bearer tokens.

Passwords are hashed with scrypt (memory-hard, in the standard library: no native wheel to ship
into a closed government network), with a random salt and the cost in the stored string so that it
can be raised later. A login gives a bearer token signed with a key derived from the service's
secret; it names the user and its expiry and carries a fingerprint of the password hash, so that a
changed password or a disabled user ends every token at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra import audit, keys
from bot.infra.runtime import Runtime
from bot.work_orders.actors import ROLE_NAMES, Actor
from store import users as user_store
from store.models import User

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
TOKEN_TTL = timedelta(hours=12)
TOKEN_PREFIX = "hcpu"
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10


# The log-in throttle (docs/operations.md, "Log-in and the throttle"). scrypt makes each guess slow; this makes many
# guesses impossible, without letting anyone lock a user out from elsewhere. Per (name, address) pair:
# FREE_FAILURES failures, then each further attempt waits backoff(failures) after the last failure
# (2, 4, 8 … s, at most BACKOFF_CAP); a pair's failures are forgotten PAIR_MEMORY after its last
# failure, and at once by a success. Per address (a 12345 centre's seats share one): ADDRESS_FAILURES
# failures in a window of ADDRESS_WINDOW, counted only for names that have not logged in from that
# address in the last KNOWN_FOR, so that guesses at made-up names slow down the guesser's address and
# never the people who work there. Every attempt is counted before its hash (never after): over the
# budget it is refused without one.
FREE_FAILURES, BACKOFF_CAP, PAIR_MEMORY = 5, 15 * 60, 24 * 3600
ADDRESS_FAILURES, ADDRESS_WINDOW, KNOWN_FOR = 100, 15 * 60, 30 * 24 * 3600
CHECK_HOLD = 60  # an attempt of a pair in back-off holds the pair's gate while checked (at most this long)
# scrypt (32 MiB each) releases the GIL: a pool of its own, so that a storm of log-ins neither blocks the
# event loop nor fills the default executor other code waits on. About half the cores, at most 4.
HASH_WORKERS = min(4, max(1, (os.cpu_count() or 2) // 2))
_hasher: ThreadPoolExecutor | None = None


class UserError(ValueError):
    pass


class LoginRefused(Exception):
    """A login that did not succeed: throttled (429, Retry-After: `retry_after` seconds) or not (401)."""

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s" if retry_after is not None
                         else "unknown user or wrong password")
        self.retry_after = retry_after

    @property
    def throttled(self) -> bool:
        return self.retry_after is not None


def backoff(failures: int) -> int:
    """Seconds a pair waits after its `failures`-th failure: none before FREE_FAILURES, then 2, 4, 8 …"""
    if failures < FREE_FAILURES:
        return 0
    return min(BACKOFF_CAP, 2 ** min(failures - FREE_FAILURES + 1, 30))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=2**27, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=2**27,
                             dklen=len(unb64(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, unb64(digest))


def _pool() -> ThreadPoolExecutor:
    global _hasher
    if _hasher is None:
        _hasher = ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="scrypt")
    return _hasher


async def check_password(password: str, stored: str) -> bool:
    """verify_password in the hashing pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), verify_password, password, stored)


async def new_hash(password: str) -> str:
    """hash_password in the hashing pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), hash_password, password)


def validate(username: str, role: str, agencies: list[str], password: str) -> None:
    if not USERNAME.match(username):
        raise UserError("username: 1–64 letters, digits or _ . @ -")
    if role not in ROLE_NAMES:
        raise UserError(f"role: expected one of {', '.join(ROLE_NAMES)}")
    if not agencies:
        raise UserError("agencies: at least one agency code, or * for every agency")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")


async def create(session: AsyncSession, username: str, role: str, agencies: list[str], password: str,
                 now: datetime, display_name: str | None = None, *, actor: str = "system",
                 address: str | None = None) -> User:
    validate(username, role, agencies, password)
    if (await user_store.by_name(session, username)) is not None:
        raise UserError(f"the user {username!r} exists already")
    user = User(username=username, display_name=display_name, role=role, agencies=agencies,
                password_hash=await new_hash(password), created_at=now, updated_at=now)
    session.add(user)
    await session.flush()
    await audit.record(session, now, actor, audit.USER_CREATE, target=("user", user.id), address=address,
                       details={"username": username, "role": role, "agencies": list(agencies),
                                "display_name": display_name})
    return user


# A user's changes, each audited in the session (the transaction) that makes it. A disabled user's and an
# old password's tokens and sessions end at once (the fingerprint); a role or jurisdiction holds from the
# next request.


async def disable(session: AsyncSession, user: User, now: datetime, *, actor: str, address: str | None = None) -> None:
    user.disabled_at = now
    user.updated_at = now
    session.add(user)
    await audit.record(session, now, actor, audit.USER_DISABLE, target=("user", user.id), address=address,
                       details={"username": user.username})


async def set_password(session: AsyncSession, user: User, password: str, now: datetime, *, actor: str,
                       address: str | None = None) -> None:
    validate(user.username, user.role, user.agencies, password)
    user.password_hash = await new_hash(password)
    user.updated_at = now
    session.add(user)
    await audit.record(session, now, actor, audit.USER_PASSWORD, target=("user", user.id), address=address,
                       details={"username": user.username})  # that it changed; never the password or its hash


async def update(session: AsyncSession, user: User, now: datetime, *, actor: str, role: str | None = None,
                 agencies: list[str] | None = None, display_name: str | None = None,
                 address: str | None = None) -> dict[str, Any]:
    """A new role, jurisdiction or display name; the changes as {field: [before, after]}, audited."""
    if role is not None and role not in ROLE_NAMES:
        raise UserError(f"role: expected one of {', '.join(ROLE_NAMES)}")
    if agencies is not None and not agencies:
        raise UserError("agencies: at least one agency code, or * for every agency")
    changes: dict[str, Any] = {}
    for name, value in (("role", role), ("agencies", agencies), ("display_name", display_name)):
        if value is not None and getattr(user, name) != value:
            changes[name] = [getattr(user, name), value]
            setattr(user, name, value)
    if changes:
        user.updated_at = now
        session.add(user)
        await audit.record(session, now, actor, audit.USER_UPDATE, target=("user", user.id), address=address,
                           details={"username": user.username, **changes})
    return changes


async def authenticate(rt: Runtime, username: str, password: str, address: str | None) -> User:
    """The user, if the name and password match and the throttle lets the attempt be checked.

    The API's login and the console's share this, and so share the counters: a guesser gains
    nothing by switching doors. The attempt is counted before the hash (so that concurrent guesses
    cannot all be checked), and a refused one costs no hash. The hash is computed even for an
    unknown name, so that timing does not tell which names exist.
    """
    state, now, where = rt.state, rt.clock().timestamp(), address or "-"
    pair = hashlib.sha256(f"{username[:64]}\0{where}".encode()).hexdigest()[:32]
    gate, known = keys.login_pair(pair), keys.login_known(pair)
    window = int(now // ADDRESS_WINDOW)
    budget = None if await state.get(known) is not None else keys.login_budget(where, window)
    if budget is not None and await state.hit(budget, 2 * ADDRESS_WINDOW) > ADDRESS_FAILURES:
        await state.hit(budget, 2 * ADDRESS_WINDOW, -1)
        raise LoginRefused(max(1, math.ceil((window + 1) * ADDRESS_WINDOW - now)))
    try:
        count, until = await state.gate(gate, now, FREE_FAILURES, CHECK_HOLD, PAIR_MEMORY)
    except BaseException:
        await _give_back(rt, budget)
        raise
    if until > now:  # waiting, or another attempt of the pair is being checked (its failure waits backoff)
        await _give_back(rt, budget)
        raise LoginRefused(max(1, math.ceil(min(until - now, backoff(count)))))
    success: bool | None = None  # None: not checked (an error on the way)
    try:
        async with rt.db.read() as session:
            user = await user_store.by_name(session, username)
        matches = await check_password(password, user.password_hash if user else DUMMY_HASH)
        success = matches and user is not None and user.disabled_at is None
    finally:
        await _settle(rt, gate, known, budget, count, success)
    if not success or user is None:
        raise LoginRefused()
    return user


async def _give_back(rt: Runtime, budget: str | None) -> None:
    if budget is not None:
        await rt.state.hit(budget, 2 * ADDRESS_WINDOW, -1)


async def _settle(rt: Runtime, gate: str, known: str, budget: str | None, count: int, success: bool | None
                  ) -> None:
    """After a checked attempt (the `count`-th of its pair): a success clears the pair, marks it known and
    gives the address its reservation back; a failure keeps both and, from FREE_FAILURES on, makes the
    pair wait. An attempt not checked (an error) gives everything back and opens the gate it held."""
    if success:
        await rt.state.delete(gate)
        await rt.state.put(known, "1", KNOWN_FOR)
        await _give_back(rt, budget)
        return
    if success is None:
        await _give_back(rt, budget)
    if count >= FREE_FAILURES:  # this attempt held the pair's gate
        value = f"{count} {rt.clock().timestamp() + backoff(count):.3f}" if success is False else f"{count - 1} 0"
        await rt.state.put(gate, value, PAIR_MEMORY)


def fingerprint(user: User) -> str:
    """Changes when the password does: what a token or session holds to end with the old password."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def actor_of(user: User) -> Actor:
    agencies = None if "*" in user.agencies else tuple(user.agencies)
    return Actor(user.username, user.role, agencies)


@dataclass(frozen=True)
class Tokens:
    key: bytes

    def _mac(self, payload: str, password_hash: str) -> str:
        digest = hashlib.sha256(password_hash.encode()).hexdigest()[:16]
        return b64(hmac.new(self.key, f"{payload}|{digest}".encode(), hashlib.sha256).digest()[:24])

    def issue(self, user: User, now: datetime) -> tuple[str, datetime]:
        assert user.id is not None
        expires = now + TOKEN_TTL
        payload = f"{TOKEN_PREFIX}.{user.id}.{int(expires.timestamp())}"
        return f"{payload}.{self._mac(payload, user.password_hash)}", expires

    @staticmethod
    def user_id(token: str) -> int | None:
        parts = token.split(".")
        if (len(parts) != 4 or parts[0] != TOKEN_PREFIX or not (parts[1].isascii() and parts[1].isdigit())
                or len(parts[1]) > 12):
            return None
        return int(parts[1])

    def valid(self, token: str, user: User, now: datetime) -> bool:
        prefix, uid, exp, mac = token.split(".")
        if (not (exp.isascii() and exp.isdigit()) or len(exp) > 12 or int(exp) <= now.timestamp()
                or user.disabled_at is not None):
            return False
        return hmac.compare_digest(mac.encode(), self._mac(f"{prefix}.{uid}.{exp}", user.password_hash).encode())


# Verified against when the name is unknown, so that a wrong name costs as long as a wrong password.
DUMMY_HASH = hash_password(secrets.token_hex(16))
