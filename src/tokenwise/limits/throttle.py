"""Sign-in throttling: token buckets per account and per client address, and a lock after failures.

`Throttle` is the interface; `LocalThrottle` counts in this process (the default), and
limits/redis_throttle.py counts in Redis so that every process of a cluster spends from the same
buckets (docs/operations.md#limits-and-quotas). A login takes a token from its account's bucket before
the password is checked and gives it back when it succeeds; its address's bucket is only looked at
then, and a failure spends from it afterwards (into debt, so a burst of concurrent failures is paid
back), so that many people signing in at once behind one address are not refused. `lock_after`
failures in a row lock the account for `lock_s`, whatever password comes while it lasts. Unknown
emails are throttled and locked like known ones, so a refusal does not tell which emails are registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tokenwise.errors import RateLimited

Clock = Callable[[], float]
_MAX_KEYS = 50_000  # per bucket family; an attacker's endless distinct emails cannot grow it further


class AccountLocked(RateLimited):
    """Too many failed sign-ins in a row: the account is refused until the lock ends."""

    code = "account_locked"


@dataclass
class _Level:
    tokens: float
    at: float


class Buckets:
    """Token buckets keyed by a string: `burst` tokens, refilled at `per_minute`."""

    def __init__(self, burst: int, per_minute: float, *, clock: Clock = time.monotonic) -> None:
        self.burst, self._rate, self._clock = burst, per_minute / 60.0, clock
        self._levels: dict[str, _Level] = {}

    @classmethod
    def per_minute(cls, limit: int, clock: Clock) -> Buckets:
        """`limit` a minute, all of them at once at most."""
        return cls(limit, limit, clock=clock)

    def _level(self, key: str) -> _Level:
        now = self._clock()
        level = self._levels.get(key)
        if level is None:
            if len(self._levels) >= _MAX_KEYS:
                self._prune(now)
            level = self._levels[key] = _Level(float(self.burst), now)
        else:
            level.tokens = min(float(self.burst), level.tokens + (now - level.at) * self._rate)
            level.at = now
        return level

    def _prune(self, now: float) -> None:
        full = [k for k, v in self._levels.items() if v.tokens + (now - v.at) * self._rate >= self.burst]
        for key in full:
            del self._levels[key]
        for key in list(self._levels)[: max(0, len(self._levels) - _MAX_KEYS // 2)]:
            del self._levels[key]  # the oldest keys, when nearly every bucket is in use

    def take(self, key: str) -> float:
        """0 when a token was taken; otherwise the seconds until one is there."""
        level = self._level(key)
        if level.tokens >= 1:
            level.tokens -= 1
            return 0.0
        return (1 - level.tokens) / self._rate

    def wait(self, key: str) -> float:
        """0 when a token is there (nothing is taken); otherwise the seconds until one is."""
        level = self._level(key)
        return 0.0 if level.tokens >= 1 else (1 - level.tokens) / self._rate

    def spend(self, key: str) -> None:
        """Take a token after the fact, down to a debt of one burst."""
        level = self._level(key)
        level.tokens = max(-float(self.burst), level.tokens - 1)

    def give_back(self, key: str) -> None:
        level = self._level(key)
        level.tokens = min(float(self.burst), level.tokens + 1)

    def fill(self, key: str) -> None:
        self._levels.pop(key, None)


@dataclass(frozen=True)
class ThrottleLimits:
    """The limits, as in Settings (burst = the per-minute figure unless named)."""

    login_per_minute_per_account: int = 10
    login_per_minute_per_address: int = 30
    login_lock_after: int = 10
    login_lock_s: float = 300.0
    register_burst_per_address: int = 60
    register_per_hour_per_address: int = 120
    refresh_per_minute_per_address: int = 60
    tickets_per_minute_per_user: int = 120


class Throttle(Protocol):
    """The auth service's rate limits; each check raises RateLimited (429 with Retry-After)."""

    limits: ThrottleLimits

    async def begin_login(self, account: str, address: str) -> None:
        """Refuse a sign-in while its account is locked or a bucket is empty; else take their tokens."""
        ...

    async def login_failed(self, account: str, address: str) -> None: ...

    async def login_succeeded(self, account: str) -> None: ...

    async def login_abandoned(self, account: str) -> None:
        """The attempt ended without an answer about the password (an error): its token goes back."""
        ...

    async def register(self, address: str) -> None: ...

    async def refresh(self, address: str) -> None: ...

    async def ticket(self, user_id: str) -> None: ...

    async def close(self) -> None: ...


class LocalThrottle:
    """The limits counted in this process."""

    def __init__(self, limits: ThrottleLimits, *, clock: Clock = time.monotonic) -> None:
        self.limits, self._clock = limits, clock
        self._login_account = Buckets.per_minute(limits.login_per_minute_per_account, clock)
        self._login_address = Buckets.per_minute(limits.login_per_minute_per_address, clock)
        self._register = Buckets(
            limits.register_burst_per_address, limits.register_per_hour_per_address / 60, clock=clock
        )
        self._refresh = Buckets.per_minute(limits.refresh_per_minute_per_address, clock)
        self._tickets = Buckets.per_minute(limits.tickets_per_minute_per_user, clock)
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}

    def _locked(self, account: str) -> float:
        until = self._locked_until.get(account)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left > 0:
            return left
        # the lock has served its purpose: the account starts again with a full bucket
        del self._locked_until[account]
        self._failures.pop(account, None)
        self._login_account.fill(account)
        return 0.0

    async def begin_login(self, account: str, address: str) -> None:
        """Refuse a sign-in while its account is locked or a bucket is empty; else take their tokens."""
        locked = self._locked(account)
        if locked:
            raise AccountLocked(
                "too many failed sign-ins for this account; try again later", retry_after_s=locked
            )
        wait = self._login_account.take(account)
        if wait:
            raise RateLimited("too many sign-in attempts for this account; slow down", retry_after_s=wait)
        wait = self._login_address.wait(address)
        if wait:
            self._login_account.give_back(account)
            raise RateLimited("too many sign-in attempts from this address; slow down", retry_after_s=wait)

    async def login_failed(self, account: str, address: str) -> None:
        self._login_address.spend(address)
        failures = self._failures.get(account, 0) + 1
        if len(self._failures) >= _MAX_KEYS and account not in self._failures:
            self._failures.clear()  # forgets old streaks rather than growing without bound
        self._failures[account] = failures
        if failures >= self.limits.login_lock_after:
            self._locked_until[account] = self._clock() + self.limits.login_lock_s
            if len(self._locked_until) > _MAX_KEYS:
                now = self._clock()
                self._locked_until = {k: v for k, v in self._locked_until.items() if v > now}

    async def login_succeeded(self, account: str) -> None:
        self._failures.pop(account, None)
        self._login_account.give_back(account)

    async def login_abandoned(self, account: str) -> None:
        """The attempt ended without an answer about the password (an error): its token goes back."""
        self._login_account.give_back(account)

    async def register(self, address: str) -> None:
        """A registration from `address`, or RateLimited."""
        self._check(self._register, address, "too many registrations from this address")

    async def refresh(self, address: str) -> None:
        self._check(self._refresh, address, "too many token refreshes from this address")

    async def ticket(self, user_id: str) -> None:
        self._check(self._tickets, user_id, "too many WebSocket tickets for this user")

    async def close(self) -> None:
        return None

    @staticmethod
    def _check(buckets: Buckets, key: str, message: str) -> None:
        wait = buckets.take(key)
        if wait:
            raise RateLimited(f"{message}; slow down", retry_after_s=wait)
