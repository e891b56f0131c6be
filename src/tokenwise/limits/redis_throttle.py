"""Sign-in throttling counted in Redis: every process of a cluster spends from the same buckets.

The limits and semantics of limits/throttle.py's LocalThrottle, each step one Lua script (atomic, on
Redis's clock, so the processes' clocks do not matter). A bucket is a hash {t: tokens, at: ms} that
expires when it would be full again (an absent key is a full bucket); a lock is a key that expires when
it ends; a failure streak is a counter forgotten `lock_s` after its last failure, which lets through no
more than the in-process streak does (that one starts again when a lock ends). Keys are digests of the
account or address: no email is stored in Redis and a key's size does not depend on the client.

Redis is never a reason to refuse a sign-in (nor a 500): while it cannot be reached, the in-process
buckets apply, and that is logged once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from redis.commands.core import AsyncScript

from tokenwise.errors import RateLimited
from tokenwise.limits.redis_link import RedisLink, script_call
from tokenwise.limits.throttle import AccountLocked, LocalThrottle, ThrottleLimits

_BUCKETS = """
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function level(key, burst, rate, now)
  local v = redis.call('HMGET', key, 't', 'at')
  if not v[1] then return burst end
  return math.min(burst, tonumber(v[1]) + (now - tonumber(v[2])) * rate)
end
local function store(key, tokens, burst, rate, now)
  if tokens >= burst then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 't', tostring(tokens), 'at', tostring(now))
    redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate))
  end
end
local function wait(tokens, rate)
  return math.ceil((1 - tokens) / rate)
end
"""

# KEYS: bucket. ARGV: burst, tokens per ms. The ms until a token is there, or 0 when one was taken.
_TAKE = (
    _BUCKETS
    + """
local now, burst, rate = clock(), tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = level(KEYS[1], burst, rate, now)
if tokens < 1 then return wait(tokens, rate) end
store(KEYS[1], tokens - 1, burst, rate, now)
return 0
"""
)

# KEYS: lock, account bucket, address bucket. ARGV: account burst, rate, address burst, rate.
# {0, 0} when the account's token was taken; else {1 locked | 2 account empty | 3 address empty, ms}.
_BEGIN_LOGIN = (
    _BUCKETS
    + """
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return {1, left} end
local now = clock()
local a_burst, a_rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local b_burst, b_rate = tonumber(ARGV[3]), tonumber(ARGV[4])
local account = level(KEYS[2], a_burst, a_rate, now)
if account < 1 then return {2, wait(account, a_rate)} end
local address = level(KEYS[3], b_burst, b_rate, now)
if address < 1 then return {3, wait(address, b_rate)} end
store(KEYS[2], account - 1, a_burst, a_rate, now)
return {0, 0}
"""
)

# KEYS: address bucket, failures, lock, account bucket. ARGV: address burst, rate, lock_after, lock ms.
# The address pays (into a debt of one burst); the streak grows, and locks the account at lock_after,
# when the account starts again: a full bucket and no streak once the lock ends.
_LOGIN_FAILED = (
    _BUCKETS
    + """
local now, burst, rate = clock(), tonumber(ARGV[1]), tonumber(ARGV[2])
store(KEYS[1], math.max(-burst, level(KEYS[1], burst, rate, now) - 1), burst, rate, now)
local failures = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if failures >= tonumber(ARGV[3]) then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
  redis.call('DEL', KEYS[2], KEYS[4])
end
return failures
"""
)

# KEYS: account bucket, failures. ARGV: burst, rate, 1 to end the streak (a success) or 0 (abandoned).
_GIVE_BACK = (
    _BUCKETS
    + """
local now, burst, rate = clock(), tonumber(ARGV[1]), tonumber(ARGV[2])
store(KEYS[1], level(KEYS[1], burst, rate, now) + 1, burst, rate, now)
if ARGV[3] == '1' then redis.call('DEL', KEYS[2]) end
return 1
"""
)


class RedisThrottle:
    """The limits counted across every process that shares the Redis at `redis_url`."""

    def __init__(
        self, redis_url: str, limits: ThrottleLimits, *, timeout_s: float = 0.5, prefix: str = "tokenwise"
    ) -> None:
        self.limits = limits
        self._prefix = f"{prefix}:throttle:"
        self._link = RedisLink(redis_url, "sign-in limits are", timeout_s=timeout_s)
        self._client = self._link.client
        self._take = self._client.register_script(_TAKE)
        self._begin = self._client.register_script(_BEGIN_LOGIN)
        self._failed_script = self._client.register_script(_LOGIN_FAILED)
        self._give_back = self._client.register_script(_GIVE_BACK)
        self._local = LocalThrottle(limits)  # the limits while Redis is away
        minute = 60_000.0
        self._account = (limits.login_per_minute_per_account, limits.login_per_minute_per_account / minute)
        self._address = (limits.login_per_minute_per_address, limits.login_per_minute_per_address / minute)
        self._lock_ms = max(1, round(limits.login_lock_s * 1000))

    def _key(self, kind: str, value: str) -> str:
        return self._prefix + kind + ":" + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()

    def _login_keys(self, account: str) -> tuple[str, str, str]:
        """The account's bucket, failure streak and lock."""
        return self._key("login-account", account), self._key("failures", account), self._key("lock", account)

    async def begin_login(self, account: str, address: str) -> None:
        bucket, _failures, lock = self._login_keys(account)
        answer = await self._run(
            self._begin, [lock, bucket, self._key("login-address", address)], [*self._account, *self._address]
        )
        if answer is None:
            return await self._local.begin_login(account, address)
        reason, wait_s = int(answer[0]), int(answer[1]) / 1000
        if reason == 1:
            raise AccountLocked(
                "too many failed sign-ins for this account; try again later", retry_after_s=wait_s
            )
        if reason == 2:
            raise RateLimited("too many sign-in attempts for this account; slow down", retry_after_s=wait_s)
        if reason == 3:
            raise RateLimited("too many sign-in attempts from this address; slow down", retry_after_s=wait_s)
        return None

    async def login_failed(self, account: str, address: str) -> None:
        bucket, failures, lock = self._login_keys(account)
        keys = [self._key("login-address", address), failures, lock, bucket]
        args = [*self._address, self.limits.login_lock_after, self._lock_ms]
        if await self._run(self._failed_script, keys, args) is None:
            await self._local.login_failed(account, address)

    async def login_succeeded(self, account: str) -> None:
        await self._return_token(account, streak_ends=True)

    async def login_abandoned(self, account: str) -> None:
        await self._return_token(account, streak_ends=False)

    async def _return_token(self, account: str, *, streak_ends: bool) -> None:
        bucket, failures, _lock = self._login_keys(account)
        answer = await self._run(self._give_back, [bucket, failures], [*self._account, int(streak_ends)])
        if answer is None and streak_ends:
            await self._local.login_succeeded(account)
        elif answer is None:
            await self._local.login_abandoned(account)

    async def register(self, address: str) -> None:
        burst, per_hour = self.limits.register_burst_per_address, self.limits.register_per_hour_per_address
        bucket = (self._key("register", address), burst, per_hour / 3_600_000)
        message = "too many registrations from this address"
        await self._check(bucket, message, lambda: self._local.register(address))

    async def refresh(self, address: str) -> None:
        per_minute = self.limits.refresh_per_minute_per_address
        bucket = (self._key("refresh", address), per_minute, per_minute / 60_000)
        message = "too many token refreshes from this address"
        await self._check(bucket, message, lambda: self._local.refresh(address))

    async def ticket(self, user_id: str) -> None:
        per_minute = self.limits.tickets_per_minute_per_user
        bucket = (self._key("tickets", user_id), per_minute, per_minute / 60_000)
        message = "too many WebSocket tickets for this user"
        await self._check(bucket, message, lambda: self._local.ticket(user_id))

    async def _check(
        self, bucket: tuple[str, int, float], message: str, fallback: Callable[[], Awaitable[None]]
    ) -> None:
        """Take a token from the bucket (key, burst, tokens per ms) or raise RateLimited."""
        key, burst, per_ms = bucket
        wait_ms = await self._run(self._take, [key], [burst, per_ms])
        if wait_ms is None:
            return await fallback()
        if int(wait_ms):
            raise RateLimited(f"{message}; slow down", retry_after_s=int(wait_ms) / 1000)
        return None

    async def close(self) -> None:
        await self._link.close()

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """The script's answer; None when Redis cannot be reached (the caller falls back to this process)."""
        return await self._link.ask(script_call(script, keys, args))
