"""The in-process bus: one bounded queue per subscription; a full queue drops and flags overflow."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from tokenwise.bus.base import Overflowed
from tokenwise.session.events import RunEvent


class MemorySubscription:
    def __init__(self, bus: MemoryBus, user_id: str, maxsize: int) -> None:
        self._bus, self.user_id = bus, user_id
        self._queue: asyncio.Queue[RunEvent] = asyncio.Queue(maxsize)
        self._overflowed = False

    def put(self, event: RunEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Never block the publisher for one slow reader: drop, and let the reader resync from storage.
            self._overflowed = True

    async def get(self) -> RunEvent:
        if self._overflowed and self._queue.empty():
            self._overflowed = False
            raise Overflowed
        return await self._queue.get()

    def pending(self) -> int:
        return self._queue.qsize()

    async def close(self) -> None:
        self._bus.unsubscribe(self)


class MemoryBus:
    """Single-process delivery. Scaling out to several processes needs the Redis bus."""

    def __init__(self, queue_size: int = 1024) -> None:
        self._queue_size = queue_size
        self._subscribers: defaultdict[str, set[MemorySubscription]] = defaultdict(set)

    async def publish(self, event: RunEvent) -> None:
        for subscription in tuple(self._subscribers.get(event.user_id, ())):
            subscription.put(event)

    async def subscribe(self, user_id: str) -> MemorySubscription:
        subscription = MemorySubscription(self, user_id, self._queue_size)
        self._subscribers[user_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: MemorySubscription) -> None:
        subscribers = self._subscribers.get(subscription.user_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.user_id]

    async def close(self) -> None:
        self._subscribers.clear()
