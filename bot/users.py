"""The people who work on work orders: passwords, roles, jurisdictions and their bearer tokens.

Passwords are hashed with scrypt (memory-hard, in the standard library: no native wheel to ship
into a closed government network), with a random salt and the cost in the stored string so that it
can be raised later. A login gives a bearer token signed with a key derived from the service's
secret; it names the user and its expiry and carries a fingerprint of the password hash, so that a
changed password or a disabled user ends every token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Runtime
from bot.work_orders import ROLE_NAMES, Actor
from store.models import User

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
TOKEN_TTL = timedelta(hours=12)
TOKEN_PREFIX = "hcpu"
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10


# Failed logins allowed per user name, and per client address (a 12345 centre's seats share one), in a
# window: scrypt makes each guess slow, this makes guessing many slow ones impossible.
FAILURES_PER_USER, FAILURES_PER_ADDRESS, FAILURE_WINDOW = 10, 100, 15 * 60


class UserError(ValueError):
    pass


class LoginRefused(Exception):
    """A login that did not succeed: `throttled` when too many failed before it (429), else 401."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("too many failed logins; try again later" if throttled else "unknown user or wrong password")
        self.throttled = throttled


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
                 now: datetime, display_name: str | None = None) -> User:
    validate(username, role, agencies, password)
    if (await by_name(session, username)) is not None:
        raise UserError(f"the user {username!r} exists already")
    user = User(username=username, display_name=display_name, role=role, agencies=agencies,
                password_hash=hash_password(password), created_at=now, updated_at=now)
    session.add(user)
    await session.flush()
    return user


async def by_name(session: AsyncSession, username: str) -> User | None:
    return (await session.exec(select(User).where(User.username == username))).first()


async def all_users(session: AsyncSession) -> list[User]:
    return list((await session.exec(select(User).order_by(User.username))).all())


async def authenticate(rt: Runtime, username: str, password: str, address: str | None) -> User:
    """The user, if the name and password match and too many failures have not come first.

    The API's login and the console's share this, and so share the counters: a guesser gains
    nothing by switching doors. The hash is computed even for an unknown name, so that timing does
    not tell which names exist.
    """
    limits = {f"login:user:{username[:64]}": FAILURES_PER_USER, f"login:addr:{address}": FAILURES_PER_ADDRESS}
    for key, limit in limits.items():
        if await rt.state.hit(key, FAILURE_WINDOW, 0) >= limit:
            raise LoginRefused(throttled=True)
    async with rt.db.read() as session:
        user = await by_name(session, username)
    ok = verify_password(password, user.password_hash if user else DUMMY_HASH)
    if user is None or not ok or user.disabled_at is not None:
        for key in limits:
            await rt.state.hit(key, FAILURE_WINDOW)
        raise LoginRefused(throttled=False)
    return user


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
        if not (exp.isascii() and exp.isdigit()) or int(exp) <= now.timestamp() or user.disabled_at is not None:
            return False
        return hmac.compare_digest(mac.encode(), self._mac(f"{prefix}.{uid}.{exp}", user.password_hash).encode())


# Verified against when the name is unknown, so that a wrong name costs as long as a wrong password.
DUMMY_HASH = hash_password(secrets.token_hex(16))
