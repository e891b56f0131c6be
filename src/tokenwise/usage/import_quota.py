"""Per-user import quotas: imports at once, and bytes received per UTC day; in-process or across Redis.

An import is an upload (`POST /api/datasets`, its preview), a workload-events batch or an OTLP export.
`importing(user_id)` holds one of the user's concurrent-import slots for the request and returns a
`Meter` that counts the request's body as it arrives: every byte received counts, whatever becomes
of the import, so a refused bomb is not free. A declared Content-Length that cannot fit is refused
before a byte is read.

With Redis (`bus_url=redis://…`) both counts are cluster-wide: the slots reuse `RedisQuota` (entries
that expire, refreshed while held, under `<prefix>:imports:conns:<user>`), the bytes one counter per
user and day (`<prefix>:import-bytes:<user>:<yyyymmdd>`). As for connections, Redis is never a reason to
refuse: while it cannot be reached, this process counts on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tokenwise.errors import RateLimited, TokenwiseError, TooManyConnections
from tokenwise.limits.quota import LocalQuota, RedisQuota
from tokenwise.limits.redis_link import RedisLink

if TYPE_CHECKING:
    from tokenwise.config import Settings


# Bytes are reported to the counter in steps of this size: one round trip per MiB, not per chunk.
FLUSH_BYTES = 1024 * 1024
# An import takes seconds: a client refused for too many at once may try again after this long.
BUSY_RETRY_S = 5.0
_DAY_S = 24 * 3600


class ImportQuotaExceeded(RateLimited):
    """A per-user import quota is used up: `quota` names its setting, `limit` its value (429)."""

    code = "import_quota_exceeded"

    def __init__(self, message: str, *, quota: str, limit: int, retry_after_s: float, **details: Any) -> None:
        TokenwiseError.__init__(
            self, message, quota=quota, limit=limit, retry_after_s=round(retry_after_s, 3), **details
        )
        self.retry_after_s = retry_after_s


class TooManyImports(ImportQuotaExceeded):
    """The user already has the most imports allowed at once in progress; nothing was read."""

    code = "too_many_imports"


def too_many_imports(limit: int) -> TooManyImports:
    return TooManyImports(
        f"at most {limit} imports per user at once (uploads, previews, workload events, OTLP): "
        f"wait for one to finish, then retry",
        quota="max_imports_per_user",
        limit=limit,
        retry_after_s=BUSY_RETRY_S,
    )


def bytes_used_up(limit: int, used: int, now: datetime | None = None) -> ImportQuotaExceeded:
    """The error for a user whose bytes today (`used`, with this request) pass `limit`."""
    now = now or datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return ImportQuotaExceeded(
        f"this import would take your uploads today to {used} bytes, over the quota of {limit} bytes "
        f"per user per day (UTC): nothing was stored; retry after midnight UTC",
        quota="max_import_bytes_per_user_per_day",
        limit=limit,
        used_bytes=used,
        retry_after_s=max(1.0, (midnight - now).total_seconds()),
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


class DailyBytes(Protocol):
    """Bytes received per user and UTC day, wherever they are counted."""

    async def used(self, user_id: str, day: str) -> int: ...

    async def add(self, user_id: str, day: str, size: int) -> int:
        """Count `size` more bytes; returns the day's new total."""
        ...


class LocalDailyBytes:
    """The counts of this process (they start again from zero when it restarts)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    async def used(self, user_id: str, day: str) -> int:
        return self._counts.get((user_id, day), 0)

    async def add(self, user_id: str, day: str, size: int) -> int:
        for key in [key for key in self._counts if key[1] != day]:
            del self._counts[key]  # yesterday's counts are no longer needed
        total = self._counts[user_id, day] = self._counts.get((user_id, day), 0) + size
        return total


class RedisDailyBytes:
    """The counts of every process sharing Redis (this process's own while Redis is away)."""

    def __init__(self, link: RedisLink, prefix: str) -> None:
        self._link, self._key = link, f"{prefix}:import-bytes:"
        self._local = LocalDailyBytes()

    async def used(self, user_id: str, day: str) -> int:
        value = await self._link.ask(lambda: self._link.client.get(f"{self._key}{user_id}:{day}"))
        if value is None and not self._link.reachable():
            return await self._local.used(user_id, day)
        return int(value or 0)

    async def add(self, user_id: str, day: str, size: int) -> int:
        key = f"{self._key}{user_id}:{day}"

        async def increment() -> int:
            async with self._link.client.pipeline(transaction=True) as pipe:
                pipe.incrby(key, size)
                pipe.expire(key, 2 * _DAY_S)
                total, _ = await pipe.execute()
            return int(total)

        total = await self._link.ask(increment)
        return await self._local.add(user_id, day, size) if total is None else total


class Meter:
    """One request's body bytes, counted against the user's bytes of the day as they arrive."""

    def __init__(self, store: DailyBytes, user_id: str, limit: int, used: int, day: str) -> None:
        self._store, self._user_id, self._day = store, user_id, day
        self.limit = limit
        self._used = used  # the day's total as last reported by the store, this request included
        self._pending = 0  # received, not reported yet

    def expect(self, declared: int) -> None:
        """Refuse a body whose declared size cannot fit in what is left today (nothing is counted)."""
        if self._used + declared > self.limit:
            raise bytes_used_up(self.limit, self._used + declared)

    async def received(self, size: int) -> None:
        """Count `size` bytes just received; ImportQuotaExceeded once the day's total passes the limit."""
        self._pending += size
        if self._pending >= FLUSH_BYTES or self._used + self._pending > self.limit:
            await self.flush()
        if self._used + self._pending > self.limit:
            raise bytes_used_up(self.limit, self._used + self._pending)

    async def flush(self) -> None:
        if self._pending:
            size, self._pending = self._pending, 0
            self._used = await self._store.add(self._user_id, self._day, size)


class ImportQuota(Protocol):
    """The per-user import quotas, wherever they are counted."""

    def importing(self, user_id: str) -> AbstractAsyncContextManager[Meter]:
        """Hold one of the user's import slots for the block (TooManyImports when none is left)."""
        ...

    async def close(self) -> None: ...


class CountedImports:
    """The quotas over one slot counter (`LocalQuota` or `RedisQuota`) and one `DailyBytes`."""

    def __init__(
        self,
        slots: LocalQuota | RedisQuota,
        daily: DailyBytes,
        *,
        max_bytes_per_day: int,
        link: RedisLink | None = None,
    ) -> None:
        self.slots, self.daily, self.max_bytes_per_day = slots, daily, max_bytes_per_day
        self._link = link

    @classmethod
    def local(cls, max_imports: int, max_bytes_per_day: int) -> CountedImports:
        return cls(LocalQuota(max_imports), LocalDailyBytes(), max_bytes_per_day=max_bytes_per_day)

    @classmethod
    def redis(
        cls, redis_url: str, max_imports: int, max_bytes_per_day: int, *, prefix: str = "tokenwise"
    ) -> CountedImports:
        link = RedisLink(redis_url, "import bytes are")
        slots = RedisQuota(redis_url, max_imports, prefix=f"{prefix}:imports")
        return cls(slots, RedisDailyBytes(link, prefix), max_bytes_per_day=max_bytes_per_day, link=link)

    @asynccontextmanager
    async def importing(self, user_id: str) -> AsyncIterator[Meter]:
        import_id = uuid.uuid4().hex
        try:
            await self.slots.acquire(user_id, import_id)
        except TooManyConnections:
            raise too_many_imports(self.slots.max_per_user) from None
        try:
            day = today()
            meter = Meter(
                self.daily, user_id, self.max_bytes_per_day, await self.daily.used(user_id, day), day
            )
            try:
                yield meter
            finally:
                with suppress(Exception):  # the counter is best effort; the import's outcome stands
                    await meter.flush()
        finally:
            await self.slots.release(user_id, import_id)

    async def close(self) -> None:
        await self.slots.close()
        if self._link is not None:
            await self._link.close()


def import_quota(settings: Settings) -> ImportQuota:
    """The import quotas of `settings`: cluster-wide when the processes share Redis (`bus_url`)."""
    if settings.bus_url in ("", "memory://"):
        return CountedImports.local(settings.max_imports_per_user, settings.max_import_bytes_per_user_per_day)
    return CountedImports.redis(
        settings.bus_url, settings.max_imports_per_user, settings.max_import_bytes_per_user_per_day
    )
