"""What may be lost: per-person locks and dedupe keys (ARCHITECTURE invariant 1).

In-process without HAOCHAPING_REDIS_URL (one `serve` process), in Redis with it (any number). The
conversation itself lives in the database; flushing Redis costs at most a dedupe key, and the
database keeps a durable copy of the last message ids per conversation behind it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError

# Delete a key only if it still holds the value we know: a lock taken since by someone else, or a newer
# provider token fetched by another process, must survive.
_DEL_IF_SAME = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# SET NX with a TTL; when the key was there already, its value (one round trip, atomic: Redis 6 has no SET NX GET).
_CLAIM = ("if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end "
          "return redis.call('get', KEYS[1])")
# A counted gate (SessionState.gate): the value is "count until"; refused while `until` is after now.
_GATE = """
local v = redis.call('get', KEYS[1])
local count, untl = 0, 0
if v then
  local sp = string.find(v, ' ', 1, true)
  count = tonumber(string.sub(v, 1, sp - 1)) or 0
  untl = tonumber(string.sub(v, sp + 1)) or 0
end
local now = tonumber(ARGV[1])
if untl > now then return {count, tostring(untl)} end
count = count + 1
if count >= tonumber(ARGV[2]) then untl = now + tonumber(ARGV[3]) end
redis.call('set', KEYS[1], count .. ' ' .. string.format('%.3f', untl), 'EX', ARGV[4])
return {count, '0'}
"""


class StateUnavailable(RuntimeError):
    """Redis does not answer: webhooks say 503 so that the provider retries later."""


class SessionState(Protocol):
    async def hit(self, key: str, window: int, amount: int = 1) -> int: ...
    def lock(self, key: str) -> AsyncIterator[None]: ...
    async def get(self, key: str) -> str | None: ...
    async def put(self, key: str, value: str, ttl: int) -> None: ...
    async def claim(self, key: str, value: str, ttl: int) -> str | None: ...
    async def gate(self, key: str, now: float, free: int, hold: float, ttl: int) -> tuple[int, float]: ...
    async def delete(self, key: str) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryState:
    """One process's state. Values (dedupe keys among them) and hit counts expire lazily, swept at most
    once a minute (a sweep per write would be quadratic); locks are dropped when nobody waits on them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._hits: dict[str, tuple[int, float]] = {}
        self._values: dict[str, tuple[str, float]] = {}
        self._swept_at = {"values": 0.0, "hits": 0.0}

    async def hit(self, key: str, window: int, amount: int = 1) -> int:
        """Count `amount` more hits in the key's fixed window of `window` seconds (0 only reads); the count."""
        now = time.monotonic()
        if now >= self._swept_at["hits"]:
            self._hits = {k: v for k, v in self._hits.items() if v[1] > now}
            self._swept_at["hits"] = now + 60
        count, ends = self._hits.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window
        self._hits[key] = (count + amount, ends)
        return count + amount

    async def get(self, key: str) -> str | None:
        found = self._values.get(key)
        return found[0] if found and found[1] > time.monotonic() else None

    async def put(self, key: str, value: str, ttl: int) -> None:
        now = time.monotonic()
        if now >= self._swept_at["values"]:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._swept_at["values"] = now + 60
        self._values[key] = (value, now + ttl)

    async def claim(self, key: str, value: str, ttl: int) -> str | None:
        """Write the key only if it is absent (SET NX): None when written, else the value it holds."""
        found = self._values.get(key)
        if found and found[1] > time.monotonic():
            return found[0]
        await self.put(key, value, ttl)  # does not suspend: nothing runs between the look and the write
        return None

    async def gate(self, key: str, now: float, free: int, hold: float, ttl: int) -> tuple[int, float]:
        """A counted gate, atomically (the log-ins' back-off, bot/work_orders/users.py). The value is "count until".
        While `until` is after `now`: (count, until), unchanged: refused. Otherwise one more attempt is
        counted and, from the `free`-th on, it holds the gate until `now + hold` (its owner then `put`s
        the real `until`): (the new count, 0.0). Read and replaced with get/put, removed with delete."""
        found = self._values.get(key)
        count, until = _gate_value(found[0] if found and found[1] > time.monotonic() else None)
        if until > now:
            return count, until
        count += 1
        await self.put(key, f"{count} {now + hold if count >= free else until:.3f}", ttl)  # does not suspend
        return count, 0.0

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


# Locks whose acquiring timed out: the SET may still have landed when Redis came back, leaving a lock
# that nobody holds. The next acquire of the same name in this process deletes them (if still theirs).
_abandoned: dict[str, set[bytes]] = {}


@asynccontextmanager
async def redis_lock(redis: aioredis.Redis, name: str, wait: float, hold: float = 15) -> AsyncIterator[None]:
    """A Redis lock held at most `hold` seconds; StateUnavailable when Redis is down or `wait` runs out."""
    lock = redis.lock(name, timeout=hold, blocking_timeout=wait)
    token = secrets.token_hex(16).encode()
    try:
        for old in _abandoned.pop(name, set()):
            await redis.eval(_DEL_IF_SAME, 1, name, old)
        acquired = await lock.acquire(token=token)
    except RedisError as exc:
        if len(_abandoned) > 10_000:  # a bound; a forgotten lock still expires after `hold`
            _abandoned.clear()
        _abandoned.setdefault(name, set()).add(token)
        raise StateUnavailable(f"redis: {exc}") from exc
    if not acquired:
        raise StateUnavailable(f"{name} busy for {wait:g} s")
    try:
        yield
    finally:
        try:
            await lock.release()
        except (LockError, RedisError):
            pass  # expired or Redis gone: the database's conditional writes still guard the state


class RedisState:
    def __init__(self, url: str, prefix: str = "haochaping:", *, max_connections: int = 50,
                 pool_timeout: float = 5.0) -> None:
        # A pooled connection that the server closed (a restart) is retried once on a new connection; a
        # timeout is not retried: the command may have run, and the caller decides what that means.
        # A burst waits for a free connection (at most `pool_timeout` s, then StateUnavailable) rather
        # than failing at once: redis-py's own pool refuses the command past its maximum ("Too many
        # connections", 100 since redis-py 6). A Redis that is down refuses the connection itself: that
        # is no wait, and stays a prompt StateUnavailable.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout, socket_timeout=5, socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))
        self.redis = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self.prefix = prefix

    async def hit(self, key: str, window: int, amount: int = 1) -> int:
        name = f"{self.prefix}hits:{key}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                count, _ = await pipe.incrby(name, amount).expire(name, window, nx=True).execute()
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return int(count)

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return redis_lock(self.redis, f"{self.prefix}lock:{key}", wait=10)

    async def get(self, key: str) -> str | None:
        try:
            found = await self.redis.get(f"{self.prefix}val:{key}")
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return found.decode() if found is not None else None

    async def put(self, key: str, value: str, ttl: int) -> None:
        try:
            await self.redis.set(f"{self.prefix}val:{key}", value.encode(), ex=ttl)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    async def claim(self, key: str, value: str, ttl: int) -> str | None:
        """SET NX EX, atomically: None when written, else the value the key holds."""
        try:
            found = await self.redis.eval(_CLAIM, 1, f"{self.prefix}val:{key}", value.encode(), ttl)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return found.decode() if found is not None else None

    async def gate(self, key: str, now: float, free: int, hold: float, ttl: int) -> tuple[int, float]:
        """MemoryState.gate, in one Lua script."""
        try:
            count, until = await self.redis.eval(_GATE, 1, f"{self.prefix}val:{key}", repr(now), free, repr(hold),
                                                 ttl)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return int(count), float(until)

    async def delete(self, key: str) -> None:
        try:
            await self.redis.delete(f"{self.prefix}val:{key}")
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    async def close(self) -> None:
        await self.redis.aclose()


def _gate_value(value: str | None) -> tuple[int, float]:
    """A gate's "count until" (SessionState.gate); (0, 0.0) when absent or unreadable."""
    count, _, until = (value or "").partition(" ")
    try:
        return int(count), float(until)
    except ValueError:
        return 0, 0.0


def open_state(redis_url: str | None, prefix: str, *, max_connections: int = 50,
               pool_timeout: float = 5.0) -> SessionState:
    if not redis_url:
        return MemoryState()
    return RedisState(redis_url, prefix, max_connections=max_connections, pool_timeout=pool_timeout)


class MemoryTokens:
    """Provider access tokens for one process (a `TokenStore`)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> str | None:
        found = self._tokens.get(key)
        return found[0] if found and found[1] > time.monotonic() else None

    async def put(self, key: str, token: str, ttl: int) -> None:
        self._tokens[key] = (token, time.monotonic() + ttl)

    async def drop(self, key: str, token: str) -> None:
        if self._tokens.get(key, ("",))[0] == token:
            del self._tokens[key]

    def refresh_lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())




class RedisTokens:
    """Provider access tokens shared by every process, refreshed by one at a time."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def get(self, key: str) -> str | None:
        try:
            found = await self.redis.get(self.prefix + key)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc
        return found.decode() if found else None

    async def put(self, key: str, token: str, ttl: int) -> None:
        try:
            await self.redis.set(self.prefix + key, token.encode(), ex=ttl)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    async def drop(self, key: str, token: str) -> None:
        try:
            await self.redis.eval(_DEL_IF_SAME, 1, self.prefix + key, token)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    def refresh_lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return redis_lock(self.redis, f"{self.prefix}lock:{key}", wait=20)


def tokens_for(state: SessionState) -> MemoryTokens | RedisTokens:
    return RedisTokens(state.redis, state.prefix) if isinstance(state, RedisState) else MemoryTokens()
