"""Live connections of this process: the per-user limit, and who to tell when the server shuts down.

The limit is a `ConnectionQuota`: counted in this process by default (`LocalQuota`), or across every
process with a `RedisQuota`; either way this registry tracks the process's own connections.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

from tokenwise.limits.quota import ConnectionQuota, LocalQuota


class Live(Protocol):
    id: str  # unique per connection: its slot in the quota

    async def shutdown(self) -> None:
        """Tell the client the server is going away, and close."""
        ...


class ConnectionRegistry:
    def __init__(self, max_per_user: int, *, quota: ConnectionQuota | None = None) -> None:
        # A quota given brings its own limit; `max_per_user` is the limit of the default, local one.
        self._quota = quota if quota is not None else LocalQuota(max_per_user)
        self._by_user: defaultdict[str, set[Live]] = defaultdict(set)
        # Not authenticated yet: told about a shutdown too, so every close carries a reason.
        self._pending: set[Live] = set()

    async def add(self, user_id: str, connection: Live) -> None:
        """Register a connection; TooManyConnections when the user already has the maximum."""
        await self._quota.acquire(user_id, connection.id)
        self._by_user[user_id].add(connection)

    async def remove(self, user_id: str, connection: Live) -> None:
        """Unregister a connection and give its slot back."""
        mine = self._by_user.get(user_id)
        if mine is None or connection not in mine:
            return
        mine.discard(connection)
        if not mine:
            del self._by_user[user_id]
        await self._quota.release(user_id, connection.id)

    def hold(self, connection: Live) -> None:
        """Track a connection that is still in its handshake or first-message auth."""
        self._pending.add(connection)

    def release(self, connection: Live) -> None:
        self._pending.discard(connection)

    def count(self, user_id: str | None = None) -> int:
        if user_id is not None:
            return len(self._by_user.get(user_id, ()))
        return sum(len(c) for c in self._by_user.values())

    async def shutdown_all(self) -> None:
        """Send every connection its server_shutdown and close (1012)."""
        everyone = [*self._pending, *(c for mine in self._by_user.values() for c in mine)]
        await asyncio.gather(*(c.shutdown() for c in everyone), return_exceptions=True)
