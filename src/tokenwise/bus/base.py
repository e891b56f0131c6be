"""The one interface every event bus implements (in-process by default, Redis when scaled out).

The contract, which every implementation is tested against (tests/integration/test_bus_contract.py):

- Storage is the truth and the bus is a hint. A published event was committed first, so a subscriber
  that misses one can read it back; `DeliveryTracker` drops repeats and fills gaps.
- A bus may therefore repeat an event or deliver a user's events out of order, and it may drop events,
  but **never silently**: a loss surfaces as `Overflowed` on every subscription that may have missed
  something (a full buffer, a reconnect to Redis, Redis unreachable), and keeps surfacing at least
  every `RESYNC_S` seconds while the bus cannot deliver, so feeds keep reading from storage.
- A user's events reach that user's subscriptions only. `subscribe` returns once the subscription is
  live: an event published after it returns is delivered (or flagged as lost).
- The control plane (`signal`/`listen`) carries small hints between processes: "wake up, a run was
  queued", "cancel run X". Each hint also has a durable fallback (the queue is polled, a cancel is a
  column), so a lost signal only costs time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from tokenwise.session.events import RunEvent

# While a bus cannot deliver, its subscriptions raise Overflowed at least this often.
RESYNC_S = 1.0


class Overflowed(Exception):
    """The subscriber may have missed events: resynchronise from storage."""


class Subscription(Protocol):
    """One subscriber's view of one user's events."""

    async def get(self) -> RunEvent:
        """The next event; raises Overflowed once after events may have been dropped for this subscriber."""
        ...

    def pending(self) -> int:
        """Events received and not yet taken by `get`."""
        ...

    def ready(self) -> bool:
        """Whether `get` would return (or raise Overflowed) without waiting."""
        ...

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, as soon as `ready()` (at once if it is already): a reader that keeps no
        task waiting in `get` while there is nothing to read."""
        ...

    async def close(self) -> None: ...


class Signals(Protocol):
    """Messages on one control channel, from the moment `listen` returned."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    """Publishes each user's events to every subscription of that user, and to no one else."""

    # Whether a subscription may live in another process. Only then can a committed event that its
    # publisher died before publishing be owed to a live subscriber (the final events' outbox); with
    # an in-process bus the subscribers die with the publisher, and resume from storage.
    crosses_processes: bool

    async def start(self) -> None:
        """Connect and start any reader task (from the app's lifespan)."""
        ...

    async def ping(self) -> None:
        """Raise ServiceUnavailable(dependency="bus") unless the bus can deliver right now."""
        ...

    async def publish(self, event: RunEvent) -> None:
        """Deliver to the user's subscriptions in every process. Never raises for a bus outage: the
        event is stored, and the subscriptions that miss it are told (Overflowed)."""
        ...

    async def publish_many(self, events: Sequence[RunEvent]) -> None:
        """`publish` each event, in order, in one go (a stored batch: one round trip, not one per event)."""
        ...

    async def subscribe(self, user_id: str) -> Subscription: ...

    async def signal(self, channel: str, message: str) -> None:
        """Send a control message to every listener of `channel` in every process (best effort)."""
        ...

    async def listen(self, channel: str) -> Signals: ...

    async def close(self) -> None: ...
