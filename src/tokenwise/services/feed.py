"""A feed of run events for one connection: live events, gaps read back from storage, nothing twice.

Both the WebSocket and the SSE adapters deliver through a Feed. It subscribes to the user's events
*before* reading anything from storage, so no event can fall between the stored past and the live
present; the DeliveryTracker then drops what was already sent and fills any gap from the event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from tokenwise.bus.base import EventBus, Overflowed, Subscription
from tokenwise.db.tables import utcnow
from tokenwise.runs.event_log import EventLog
from tokenwise.session.delivery import DeliveryTracker, Verdict
from tokenwise.session.events import RunEvent

Send = Callable[[RunEvent], Awaitable[None]]


class Feed:
    def __init__(
        self,
        user_id: str,
        subscription: Subscription,
        event_log: EventLog,
        send: Send,
        *,
        follow_new_runs: bool,
        opened_at: datetime,
    ) -> None:
        self.user_id, self._subscription, self._log, self._send = user_id, subscription, event_log, send
        self.tracker = DeliveryTracker()
        self._follow_new = follow_new_runs
        self._opened_at = opened_at  # runs stored since are this feed's to show
        # Held while deciding and sending, so that a resume and the live pump never interleave.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, bus: EventBus, user_id: str, event_log: EventLog, send: Send, *, follow_new_runs: bool = True
    ) -> Feed:
        """Subscribe to the user's events; call before reading or announcing anything."""
        opened_at = utcnow()
        subscription = await bus.subscribe(user_id)
        return cls(
            user_id, subscription, event_log, send, follow_new_runs=follow_new_runs, opened_at=opened_at
        )

    async def close(self) -> None:
        await self._subscription.close()

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until the pump has sent every event already received."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._subscription.pending() or self._lock.locked():
            if asyncio.get_running_loop().time() >= deadline:
                return
            await asyncio.sleep(0.005)

    async def _deliver(self, event: RunEvent) -> None:
        await self._send(event)
        self.tracker.delivered(event.run_id, event.seq, final=event.final)

    async def _replay(self, run_id: str, after_seq: int, until_seq: int | None = None) -> None:
        for event in await self._log.read(self.user_id, run_id, after_seq, until_seq):
            if self.tracker.next_seq(run_id) == event.seq:
                await self._deliver(event)

    async def follow(self, run_id: str, after_seq: int) -> None:
        """Deliver every stored event of the run after `after_seq`, then its live ones (a resume)."""
        async with self._lock:
            self.tracker.follow(run_id, after_seq)
            await self._replay(run_id, after_seq)

    async def start_run(self, submit: Callable[[], Awaitable[RunEvent | None]]) -> str | None:
        """Store and announce a run (`submit` returns its stored first event once the ack is sent, None
        for no new run), send that event and follow the run; no event of it can overtake the ack. The
        bus's copy of the first event then arrives as a repeat, and is dropped."""
        async with self._lock:
            first = await submit()
            if first is None:
                return None
            self.tracker.follow(first.run_id, 0)
            await self._deliver(first)
            return first.run_id

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call `callback` once there is something to deliver (see `deliver_ready`)."""
        self._subscription.when_ready(callback)

    async def deliver_ready(self) -> None:
        """Deliver what has arrived (resyncing after an overflow), then return: with `when_ready`, a pump
        that exists only while there is something to send, so an idle connection keeps no task for it."""
        while self._subscription.ready():
            await self._take()

    async def pump(self) -> None:
        """Deliver live events until cancelled."""
        while True:
            await self._take()

    async def _take(self) -> None:
        """Deliver the subscription's next event (waiting for one), or resync after an overflow."""
        try:
            event = await self._subscription.get()
        except Overflowed:
            await self._resync()
            return
        async with self._lock:
            await self._offer(event)

    async def _offer(self, event: RunEvent) -> None:
        if not self._follow_new and self.tracker.next_seq(event.run_id) is None:
            return
        offer = self.tracker.offer(event.run_id, event.seq)
        if offer.verdict is Verdict.GAP:
            await self._replay(event.run_id, offer.missing_from - 1, offer.missing_to)
            offer = self.tracker.offer(event.run_id, event.seq)
        if offer.verdict is Verdict.DELIVER:
            await self._deliver(event)

    async def _resync(self) -> None:
        # Events were dropped for this subscriber; everything it owes is in storage.
        async with self._lock:
            for run_id, next_seq in self.tracker.following().items():
                await self._replay(run_id, next_seq - 1)
            if self._follow_new:
                # Runs stored since the feed opened that the bus never announced to it (Redis away, or
                # their first events were among the dropped): live, it would have followed each from seq 1.
                for run_id in await self._log.started_since(self.user_id, self._opened_at):
                    if not self.tracker.knows(run_id):
                        self.tracker.follow(run_id, 0)
                        await self._replay(run_id, 0)
