"""Fair import slots: a few CPU-bound imports at a time per process, and no user holds more than a share.

Imports, previews and workload-event batches run DuckDB in threads; a handful at once keeps the server
answering the rest. With one queue for everybody, a user who sends thirty batches makes the next user
wait behind all thirty. Here every user has their own queue: a freed slot goes to the waiting user
who was served least recently (round robin: a user who just had a turn goes behind the others, even
those who came later), and a user never holds more than `per_user` slots, so another user's small
upload takes a free slot at once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """`total` slots shared by users, at most `per_user` held by any one of them."""

    def __init__(self, total: int, per_user: int) -> None:
        if total < 1 or per_user < 1:
            raise ValueError("import slots: total and per_user must be at least 1")
        self.total = total
        self.per_user = min(per_user, total)
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}  # in the order users began waiting
        self._served: dict[str, int] = {}  # when each user was last given a slot (a running count)
        self._clock = itertools.count()

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        """Wait for a slot for `user_id` (round robin between users), hold it for the block."""
        await self._acquire(user_id)
        try:
            yield
        finally:
            self._release(user_id)

    def held(self, user_id: str) -> int:
        """How many slots `user_id` holds now."""
        return self._held.get(user_id, 0)

    def waiting(self, user_id: str) -> int:
        """How many of `user_id`'s holds are queued."""
        return len(self._waiting.get(user_id, ()))

    async def _acquire(self, user_id: str) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(user_id, deque()).append(waiter)
        self._grant()  # a free slot is granted at once: awaiting a done future does not suspend
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(user_id)  # granted as the cancellation came: hand the slot on
            else:
                self._forget(user_id, waiter)
            raise

    def _release(self, user_id: str) -> None:
        left = self.held(user_id) - 1
        if left > 0:
            self._held[user_id] = left
        else:
            self._held.pop(user_id, None)
        self._grant()

    def _free(self) -> bool:
        return sum(self._held.values()) < self.total

    def _grant(self) -> None:
        while self._free():
            eligible = [u for u in self._waiting if self.held(u) < self.per_user]
            if not eligible:
                break
            user_id = min(eligible, key=lambda u: self._served.get(u, -1))  # ties: who waited first
            queue = self._waiting[user_id]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[user_id]
            self._held[user_id] = self.held(user_id) + 1
            self._served[user_id] = next(self._clock)
            waiter.set_result(None)
        if not self._waiting:
            self._served = {u: t for u, t in self._served.items() if u in self._held}  # no one to be fair to

    def _forget(self, user_id: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user_id)
        if queue is None:
            return
        if waiter in queue:
            queue.remove(waiter)
        if not queue:
            del self._waiting[user_id]
