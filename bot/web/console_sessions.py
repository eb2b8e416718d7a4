"""The console's log-in sessions: in Redis when it is configured, in a signed cookie otherwise.

With Redis (several worker processes), the cookie holds only a random session id and the session
lives in Redis, where logging out deletes it. Without Redis (one process, the embedded default),
the cookie holds the session itself, signed with a key derived from the service's secret, so that
a restart does not log everyone out; logging out then voids every session of that user begun so
far (it moves `users.session_epoch` on, in the database, so that it outlives a restart).

Either way a session names its user, a CSRF token for the forms, its expiry, and a fingerprint of
the user's password hash: a new password or a disabled user ends every session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra import keys
from bot.infra.state import RedisState, SessionState
from bot.work_orders.users import b64, fingerprint, unb64
from store.models import User

TTL = timedelta(hours=12)
COOKIE = "hcp_console"


@dataclass(frozen=True)
class ConsoleSession:
    sid: str
    user_id: int
    csrf: str
    expires_at: datetime
    fingerprint: str
    epoch: int

    def valid_for(self, user: User | None, now: datetime) -> bool:
        return (user is not None and user.id == self.user_id and user.disabled_at is None and now < self.expires_at
                and self.epoch == user.session_epoch
                and hmac.compare_digest(self.fingerprint.encode(), fingerprint(user).encode()))

    def to_json(self) -> str:
        return json.dumps({"sid": self.sid, "uid": self.user_id, "csrf": self.csrf,
                           "exp": int(self.expires_at.timestamp()), "fp": self.fingerprint,
                           "ep": self.epoch}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ConsoleSession | None:
        try:
            doc = json.loads(text)
            return cls(sid=str(doc["sid"]), user_id=int(doc["uid"]), csrf=str(doc["csrf"]),
                       expires_at=datetime.fromtimestamp(int(doc["exp"]), UTC), fingerprint=str(doc["fp"]),
                       epoch=int(doc["ep"]))
        except (ValueError, KeyError, TypeError):
            return None


class Sessions:
    def __init__(self, state: SessionState, key: bytes) -> None:
        self.state = state
        self.key = key
        self.in_redis = isinstance(state, RedisState)

    def _mac(self, payload: str) -> str:
        return b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())

    async def start(self, user: User, now: datetime) -> tuple[str, ConsoleSession]:
        """A new session for a user who just logged in; (the cookie's value, the session)."""
        assert user.id is not None
        session = ConsoleSession(sid=secrets.token_urlsafe(24), user_id=user.id, csrf=secrets.token_urlsafe(24),
                                 expires_at=now + TTL, fingerprint=fingerprint(user),
                                 epoch=user.session_epoch)
        if self.in_redis:
            await self.state.put(keys.console_session(session.sid), session.to_json(), int(TTL.total_seconds()))
            return session.sid, session
        payload = b64(session.to_json().encode())
        return f"{payload}.{self._mac(payload)}", session

    async def load(self, cookie: str | None, now: datetime) -> ConsoleSession | None:
        """The session a cookie names, if it is genuine, not ended and not expired (the user is checked
        by the caller)."""
        if not cookie or len(cookie) > 1024:
            return None
        if self.in_redis:
            found = await self.state.get(keys.console_session(cookie))
            session = ConsoleSession.from_json(found) if found else None
        else:
            payload, _, mac = cookie.partition(".")
            if not mac or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
                return None
            try:
                session = ConsoleSession.from_json(unb64(payload))
            except ValueError:
                return None
        if session is None or now >= session.expires_at:
            return None
        return session

    async def end(self, db: AsyncSession, session: ConsoleSession) -> None:
        """Log out: this session (Redis), or every session of the user begun until now (signed cookies)."""
        if self.in_redis:
            await self.state.delete(keys.console_session(session.sid))
            return
        user = await db.get(User, session.user_id)
        if user is not None and user.session_epoch == session.epoch:
            user.session_epoch += 1
            db.add(user)
