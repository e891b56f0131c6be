"""Redis for the limits counted across processes, and what they do while Redis is away.

Every cluster-wide limit (connections per user, runs a minute, sign-in throttles, import bytes) asks
Redis with a short timeout and no retry, and while Redis cannot be reached counts in this process
instead: Redis is never the reason a user is refused, nor a 500. `RedisLink` is that policy, once: the
client, the pause before Redis is asked again, one log line when it goes away and one when it is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger("tokenwise.quota")

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
RETRY_S = 2.0  # after Redis failed, count locally for this long before asking it again
T = TypeVar("T")


class RedisLink:
    """The Redis at `redis_url` for the limit called `name` ("runs a minute", ...) in the log lines."""

    def __init__(self, redis_url: str, name: str, *, timeout_s: float = 0.5) -> None:
        self.name = name
        self.client = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                redis_url,
                max_connections=16,
                timeout=timeout_s,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
        )
        self._retry_at = 0.0
        self._down = False

    def reachable(self) -> bool:
        """False for RETRY_S after a failure: the caller counts locally meanwhile, without a round trip."""
        return asyncio.get_running_loop().time() >= self._retry_at

    async def ask(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()`'s answer; None when Redis is away (or just failed): the caller counts locally."""
        if not self.reachable():
            return None
        try:
            answer = await call()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return None
        self.restored()
        return answer

    def failed(self, error: BaseException) -> None:
        self._retry_at = asyncio.get_running_loop().time() + RETRY_S
        if not self._down:
            self._down = True
            log.warning("Redis is unreachable (%s): %s counted in this process only", error, self.name)

    def restored(self) -> None:
        self._retry_at = 0.0
        if self._down:
            self._down = False
            log.warning("Redis is back: %s counted across every process again", self.name)

    async def close(self) -> None:
        await self.client.aclose(close_connection_pool=True)


def script_call(script: Any, keys: list[str], args: list[Any]) -> Callable[[], Awaitable[Any]]:
    """A registered Lua script's call, for `RedisLink.ask`."""
    return lambda: script(keys=keys, args=args)
