"""What may be lost: per-person locks and dedupe keys (ARCHITECTURE invariant 1).

In-process without HAOCHAPING_REDIS_URL (one `serve` process), in Redis with it (any number). The
conversation itself lives in the database; flushing Redis costs at most a dedupe key, and the
database keeps a durable copy of the last message ids per conversation behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError


class StateUnavailable(RuntimeError):
    """Redis does not answer: webhooks say 503 so that the provider retries later."""


class SessionState(Protocol):
    async def first_time(self, key: str, ttl: int) -> bool: ...
    async def forget(self, key: str) -> None: ...
    async def hit(self, key: str, window: int, amount: int = 1) -> int: ...
    def lock(self, key: str) -> AsyncIterator[None]: ...
    async def get(self, key: str) -> str | None: ...
    async def put(self, key: str, value: str, ttl: int) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryState:
    """One process's state. Dedupe keys expire lazily; locks are dropped when nobody waits on them."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._sweep_at = 0.0
        self._hits: dict[str, tuple[int, float]] = {}
        self._values: dict[str, tuple[str, float]] = {}

    async def first_time(self, key: str, ttl: int) -> bool:
        now = time.monotonic()
        if now >= self._sweep_at:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            self._sweep_at = now + 60
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now:
            return False
        self._seen[key] = now + ttl
        return True

    async def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    async def hit(self, key: str, window: int, amount: int = 1) -> int:
        """Count `amount` more hits in the key's fixed window of `window` seconds (0 only reads); the count."""
        now = time.monotonic()
        if len(self._hits) > 10_000:
            self._hits = {k: v for k, v in self._hits.items() if v[1] > now}
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
        if len(self._values) > 10_000:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._values[key] = (value, now + ttl)

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


@asynccontextmanager
async def redis_lock(redis: aioredis.Redis, name: str, wait: float, hold: float = 30) -> AsyncIterator[None]:
    """A Redis lock held at most `hold` seconds; StateUnavailable when Redis is down or `wait` runs out."""
    lock = redis.lock(name, timeout=hold, blocking_timeout=wait)
    try:
        acquired = await lock.acquire()
    except RedisError as exc:
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
    def __init__(self, url: str, prefix: str = "haochaping:") -> None:
        self.redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = prefix

    async def first_time(self, key: str, ttl: int) -> bool:
        try:
            return bool(await self.redis.set(f"{self.prefix}seen:{key}", b"1", nx=True, ex=ttl))
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    async def forget(self, key: str) -> None:
        try:
            await self.redis.delete(f"{self.prefix}seen:{key}")
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

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


def open_state(redis_url: str | None, prefix: str) -> SessionState:
    return RedisState(redis_url, prefix) if redis_url else MemoryState()


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


# Delete the key only if it still holds the token we saw fail: a newer token fetched by another
# process must survive a late "invalid token" from an old call.
_DROP_IF_SAME = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


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
            await self.redis.eval(_DROP_IF_SAME, 1, self.prefix + key, token)
        except RedisError as exc:
            raise StateUnavailable(f"redis: {exc}") from exc

    def refresh_lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return redis_lock(self.redis, f"{self.prefix}lock:{key}", wait=20)


def tokens_for(state: SessionState) -> MemoryTokens | RedisTokens:
    return RedisTokens(state.redis, state.prefix) if isinstance(state, RedisState) else MemoryTokens()
