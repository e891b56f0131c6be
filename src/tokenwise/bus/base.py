"""The one interface every event bus implements (in-process by default, Redis when scaled out)."""

from __future__ import annotations

from typing import Protocol

from tokenwise.session.events import RunEvent


class Overflowed(Exception):
    """The subscriber fell behind and events were dropped: resynchronise from storage."""


class Subscription(Protocol):
    """One subscriber's view of one user's events."""

    async def get(self) -> RunEvent:
        """The next event; raises Overflowed once after events were dropped for this subscriber."""
        ...

    def pending(self) -> int:
        """Events received and not yet taken by `get`."""
        ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    """Publishes each user's events to every subscription of that user, and to no one else."""

    async def publish(self, event: RunEvent) -> None: ...

    async def subscribe(self, user_id: str) -> Subscription: ...

    async def close(self) -> None: ...
