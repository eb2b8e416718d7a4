"""Wake-ups: a hint to those waiting on a topic (a hall's window devices) that something changed, so that they look
again at once instead of at their next poll. Never the data itself: the database is the truth, a lost wake-up
costs a few seconds (the waiter's own poll), a duplicate costs one read.

In one process the waiters are woken directly (the embedded defaults need no broker). With Redis, a wake-up is
also published on one channel (`<prefix>wake`) and every process's listener (`listen`, started by `serve`) wakes
its own waiters, so a case posted to one worker reaches a device connected to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)


class Wakeups:
    def __init__(self, redis: Any = None, prefix: str = "haochaping:") -> None:
        self._redis = redis
        self._channel = prefix + "wake"
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    @asynccontextmanager
    async def waiter(self, topic: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever `topic` is woken, while the context lasts (the waiter clears it)."""
        event = asyncio.Event()
        self._waiters[topic].add(event)
        try:
            yield event
        finally:
            self._waiters[topic].discard(event)
            if not self._waiters[topic]:
                del self._waiters[topic]

    def wake_here(self, topic: str) -> None:
        for event in self._waiters.get(topic, ()):
            event.set()

    def wake_all(self) -> None:
        """Every waiter of this process (the app is stopping: they look, find it so, and end)."""
        for events in list(self._waiters.values()):
            for event in events:
                event.set()

    async def wake(self, topic: str) -> None:
        self.wake_here(topic)
        if self._redis is not None:
            try:
                await self._redis.publish(self._channel, topic)
            except Exception as exc:  # a hint lost: the waiters' own poll finds it a little later
                log.warning("wake-up of %s not published: %s", topic, exc)

    async def listen(self) -> None:
        """Forward the other processes' wake-ups to this one's waiters until cancelled (Redis only)."""
        if self._redis is None:
            return
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    data = message.get("data")
                    self.wake_here(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarted: subscribe again; meanwhile the polls carry on
                log.warning("wake-ups: the subscription failed (%s); again in 1 s", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):  # closing a subscription that broke, or was cancelled
                    await asyncio.wait_for(pubsub.aclose(), 2)
