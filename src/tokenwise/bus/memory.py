"""The in-process bus: one bounded buffer per subscription; a full buffer drops and flags overflow."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from tokenwise.bus.base import Overflowed
from tokenwise.session.events import RunEvent


class Hub(Protocol):
    """The bus a subscription or listener belongs to (MemoryBus, RedisBus): told when it closes."""

    def unsubscribe(self, subscription: MemorySubscription) -> None: ...

    def unlisten(self, listener: MemorySignals) -> None: ...


class MemorySubscription:
    """A bounded buffer with one waiter: an idle connection holds a deque and nothing else."""

    __slots__ = ("_bus", "_events", "_maxsize", "_on_ready", "_overflowed", "_waiter", "user_id")

    def __init__(self, bus: Hub, user_id: str, maxsize: int) -> None:
        self._bus, self.user_id, self._maxsize = bus, user_id, maxsize
        # Allocated on the first event and dropped when drained: an idle subscription holds no buffer.
        self._events: deque[RunEvent] | None = None
        self._overflowed = False
        self._waiter: asyncio.Future[None] | None = None
        self._on_ready: Callable[[], None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        elif self._on_ready is not None:
            callback, self._on_ready = self._on_ready, None
            callback()

    def put(self, event: RunEvent) -> None:
        if self._events is None:
            self._events = deque()
        elif len(self._events) >= self._maxsize:
            # Never block the publisher for one slow reader: drop, and let the reader resync from storage.
            self._overflowed = True
            return
        self._events.append(event)
        self._wake()

    def overflow(self) -> None:
        """Events may have been missed (e.g. a Redis outage): `get` raises Overflowed once the buffer is
        drained, waking a waiting reader."""
        self._overflowed = True
        self._wake()

    def ready(self) -> bool:
        return bool(self._events) or self._overflowed

    def when_ready(self, callback: Callable[[], None]) -> None:
        if self.ready():
            callback()
        else:
            self._on_ready = callback

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
        self._on_ready = None
        self._bus.unsubscribe(self)


class MemorySignals:
    """One listener of one control channel: an unbounded queue (control messages are few and small)."""

    def __init__(self, bus: Hub, channel: str) -> None:
        self._bus, self.channel = bus, channel
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(self, message: str | None) -> None:
        self._queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str]:
        while (message := await self._queue.get()) is not None:
            yield message

    async def close(self) -> None:
        self._bus.unlisten(self)
        self._queue.put_nowait(None)


class MemoryBus:
    """Single-process delivery. Scaling out to several processes needs the Redis bus."""

    def __init__(self, queue_size: int = 1024) -> None:
        self._queue_size = queue_size
        self._subscribers: defaultdict[str, set[MemorySubscription]] = defaultdict(set)
        self._listeners: defaultdict[str, set[MemorySignals]] = defaultdict(set)

    crosses_processes = False

    async def start(self) -> None:
        return None

    async def ping(self) -> None:
        return None  # in-process: it can always deliver

    async def signal(self, channel: str, message: str) -> None:
        for listener in tuple(self._listeners.get(channel, ())):
            listener.put(message)

    async def listen(self, channel: str) -> MemorySignals:
        listener = MemorySignals(self, channel)
        self._listeners[channel].add(listener)
        return listener

    def unlisten(self, listener: MemorySignals) -> None:
        listeners = self._listeners.get(listener.channel)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.channel]

    async def publish(self, event: RunEvent) -> None:
        await self.publish_many((event,))

    async def publish_many(self, events: Sequence[RunEvent]) -> None:
        for event in events:
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
        for listeners in list(self._listeners.values()):
            for listener in tuple(listeners):
                await listener.close()
