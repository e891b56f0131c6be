"""The in-process bus: one bounded buffer per subscription; a full buffer drops and flags overflow."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

from tokenwise.bus.base import Overflowed
from tokenwise.session.events import RunEvent


class MemorySubscription:
    """A bounded buffer with one waiter: an idle connection holds a deque and nothing else."""

    __slots__ = ("_bus", "_events", "_maxsize", "_overflowed", "_waiter", "user_id")

    def __init__(self, bus: MemoryBus, user_id: str, maxsize: int) -> None:
        self._bus, self.user_id, self._maxsize = bus, user_id, maxsize
        # Allocated on the first event and dropped when drained: an idle subscription holds no buffer.
        self._events: deque[RunEvent] | None = None
        self._overflowed = False
        self._waiter: asyncio.Future[None] | None = None

    def put(self, event: RunEvent) -> None:
        if self._events is None:
            self._events = deque()
        elif len(self._events) >= self._maxsize:
            # Never block the publisher for one slow reader: drop, and let the reader resync from storage.
            self._overflowed = True
            return
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> RunEvent:
        while not self._events:
            if self._overflowed:
                self._overflowed = False
                raise Overflowed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = self._events.popleft()
        if not self._events:
            self._events = None
        return event

    def pending(self) -> int:
        return len(self._events) if self._events is not None else 0

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
