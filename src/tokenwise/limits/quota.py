"""How many live connections a user may hold: counted in this process, or across every process in Redis.

`RedisQuota` keeps one sorted set per user (`<prefix>:conns:<user_id>`) of connection ids scored by
when they expire (Redis's own clock, so the processes' clocks do not matter). One task per process
pushes the expiry of the connections it holds forward every ttl/3, so the slots of a process that was
killed free themselves within the ttl. Redis is never a reason to refuse a connection: while it cannot
be reached, the limit is applied to this process's connections only.

`LocalRunRate` / `RedisRunRate` (their own section below): how many runs a user may start a minute, a
token bucket per user (`<prefix>:runrate:<user_id>` in Redis, refilled by one atomic script).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from tokenwise.errors import RateLimited, TooManyConnections
from tokenwise.limits.redis_link import REDIS_ERRORS, RedisLink, script_call
from tokenwise.limits.throttle import Buckets

log = logging.getLogger("tokenwise.quota")


# Drop the expired, then admit the connection if it is already counted or there is room.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

# Push the expiry of connections this process holds (and put back any a Redis restart lost).
_REFRESH = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expires, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""


def _too_many(max_per_user: int) -> TooManyConnections:
    return TooManyConnections(f"at most {max_per_user} connections per user; close another tab or client")


class ConnectionQuota(Protocol):
    """The per-user connection limit, wherever it is counted."""

    async def acquire(self, user_id: str, connection_id: str) -> None:
        """Take a slot for the connection; TooManyConnections when the user has none left."""
        ...

    async def release(self, user_id: str, connection_id: str) -> None:
        """Give the connection's slot back (never raises)."""
        ...

    async def close(self) -> None:
        """Stop any background work (the slots still held expire on their own)."""
        ...


class LocalQuota:
    """The limit counted in this process only."""

    def __init__(self, max_per_user: int) -> None:
        self.max_per_user = max_per_user
        self._held: dict[str, set[str]] = {}

    async def acquire(self, user_id: str, connection_id: str) -> None:
        self.take(user_id, connection_id)

    async def release(self, user_id: str, connection_id: str) -> None:
        self.give_back(user_id, connection_id)

    async def close(self) -> None:
        return None

    def take(self, user_id: str, connection_id: str) -> None:
        mine = self._held.get(user_id)
        if mine is None:
            mine = self._held[user_id] = set()
        elif connection_id not in mine and len(mine) >= self.max_per_user:
            raise _too_many(self.max_per_user)
        mine.add(connection_id)

    def give_back(self, user_id: str, connection_id: str) -> bool:
        """Release a slot; False if the connection held none."""
        mine = self._held.get(user_id)
        if mine is None or connection_id not in mine:
            return False
        mine.discard(connection_id)
        if not mine:
            del self._held[user_id]
        return True

    def held(self) -> dict[str, list[str]]:
        """The connections holding a slot, by user."""
        return {user_id: list(ids) for user_id, ids in self._held.items()}


class RedisQuota:
    """The limit counted across every process that shares the Redis at `redis_url`."""

    def __init__(
        self,
        redis_url: str,
        max_per_user: int,
        *,
        ttl_s: float = 30.0,
        timeout_s: float = 0.5,
        prefix: str = "tokenwise",
    ) -> None:
        self.max_per_user = max_per_user
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._key = f"{prefix}:conns:"
        self._link = RedisLink(redis_url, "the connection limit is", timeout_s=timeout_s)
        self._client = self._link.client
        self._acquire = self._client.register_script(_ACQUIRE)
        self._refresh = self._client.register_script(_REFRESH)
        self._local = LocalQuota(max_per_user)  # this process's connections; the limit while Redis is away
        self._refresher: asyncio.Task[None] | None = None

    async def acquire(self, user_id: str, connection_id: str) -> None:
        # This process's share is checked first: it needs no round trip, and it is the limit if Redis fails.
        self._local.take(user_id, connection_id)
        self._start_refreshing()
        try:
            admitted = await self._admit(user_id, connection_id)
        except BaseException:
            self._local.give_back(user_id, connection_id)
            raise
        if admitted is False:
            self._local.give_back(user_id, connection_id)
            raise _too_many(self.max_per_user)

    async def release(self, user_id: str, connection_id: str) -> None:
        if self._local.give_back(user_id, connection_id):
            # (while Redis is away the entry is left there: it expires within the ttl)
            await self._link.ask(lambda: self._client.zrem(self._key + user_id, connection_id))

    async def close(self) -> None:
        """Stop refreshing and disconnect; the slots still held in Redis expire within the ttl."""
        if self._refresher is not None:
            while not self._refresher.done():  # Python 3.11's wait_for can swallow a cancellation
                self._refresher.cancel()
                await asyncio.wait({self._refresher}, timeout=0.1)
            self._refresher = None
        await self._link.close()

    async def _admit(self, user_id: str, connection_id: str) -> bool | None:
        """Whether Redis admits the connection; None when Redis cannot be reached."""
        args: list[str | int] = [connection_id, self.max_per_user, self._ttl_ms]
        result = await self._link.ask(script_call(self._acquire, [self._key + user_id], args))
        return None if result is None else bool(result)

    def _start_refreshing(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_forever(), name="tokenwise-quota-refresh")

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                await self.refresh()
            except Exception:  # a bug: log it, and keep the slots alive
                log.exception("refreshing the connection quota failed")

    async def refresh(self) -> None:
        """Push the expiry of every connection this process holds forward by the ttl."""
        held = self._local.held()
        if not held:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id, ids in held.items():
                    await self._refresh(keys=[self._key + user_id], args=[self._ttl_ms, *ids], client=pipe)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._link.failed(exc)
        else:
            self._link.restored()


# ---- runs a minute per user ------------------------------------------------------------------------
# A token bucket per user (burst = the per-minute figure, refilled at that rate), spent by every message
# that would start a run before it is stored: one dict lookup in this process, or one script call on
# Redis (no database query either way). Over it: RunRateLimited (`rate_limited`, 429 + Retry-After).

# Refill the user's bucket (Redis's clock), take a token if there is one; returns 0 or the wait in ms.
_TAKE_RUN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local level = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(level[1])
local at = tonumber(level[2])
if tokens == nil or at == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return wait
"""


class RunRateLimited(RateLimited):
    """The user started `per_minute` runs within the last minute; nothing was stored."""

    def __init__(self, per_minute: int, retry_after_s: float) -> None:
        super().__init__(
            f"at most {per_minute} runs a minute per user; slow down", retry_after_s=retry_after_s
        )
        self.details["limit"] = "runs_per_minute"


class RunRate(Protocol):
    """The per-user limit of runs started a minute, wherever it is counted."""

    async def admit(self, user_id: str) -> None:
        """Spend one of the user's runs; RunRateLimited (with the wait) when none is left."""
        ...

    async def close(self) -> None: ...


class LocalRunRate:
    """Runs a minute per user, counted in this process only."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._buckets = Buckets.per_minute(per_minute, clock)

    def take(self, user_id: str) -> None:
        if wait := self._buckets.take(user_id):
            raise RunRateLimited(self.per_minute, wait)

    async def admit(self, user_id: str) -> None:
        self.take(user_id)

    async def close(self) -> None:
        return None


class RedisRunRate:
    """Runs a minute per user, counted across every process sharing the Redis at `redis_url` (one atomic
    script call a message). While Redis cannot be reached, this process's own bucket is the limit."""

    def __init__(
        self, redis_url: str, per_minute: int, *, timeout_s: float = 0.5, prefix: str = "tokenwise"
    ) -> None:
        self.per_minute = per_minute
        self._rate_per_ms = per_minute / 60_000
        self._key = f"{prefix}:runrate:"
        self._link = RedisLink(redis_url, "runs a minute are", timeout_s=timeout_s)
        self._take = self._link.client.register_script(_TAKE_RUN)
        self._local = LocalRunRate(per_minute)

    async def admit(self, user_id: str) -> None:
        args: list[float] = [self.per_minute, self._rate_per_ms]
        wait_ms = await self._link.ask(script_call(self._take, [self._key + user_id], args))
        if wait_ms is None:
            self._local.take(user_id)  # Redis is away: this process's bucket is the limit
        elif wait_ms:
            raise RunRateLimited(self.per_minute, int(wait_ms) / 1000)

    async def close(self) -> None:
        await self._link.close()
