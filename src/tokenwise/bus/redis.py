"""The Redis bus: one pub/sub connection per process, each user's channel subscribed once, fanned out locally.

Each process holds one pub/sub connection, read by one task. A user's channel (`<prefix>:events:<user_id>`)
is subscribed while at least one local subscription of that user is open, and its messages (the events'
JSON bodies, one per line: a stored batch publishes one message per user) are fanned out to the local
`MemorySubscription`s, so an idle connection costs what it costs with the in-process bus. Control channels
(`<prefix>:control:<name>`) ride on the same connection.

Redis pub/sub is at most once, so every way an event can be missed becomes `Overflowed`:

- The pub/sub connection drops or stops answering PINGs: every local subscription overflows at once, again
  every RESYNC_S while Redis is away, and once more when every channel is subscribed again.
- A publish is skipped (Redis away) or fails: the local subscriptions get the event directly, and once
  Redis answers again an empty message on the user's channel (or on `<prefix>:resync`, for everyone, when
  too many users were missed) makes the other processes' subscriptions resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from tokenwise.bus.base import RESYNC_S
from tokenwise.bus.memory import MemorySignals, MemorySubscription
from tokenwise.errors import ServiceUnavailable
from tokenwise.session.events import RunEvent

log = logging.getLogger("tokenwise.bus.redis")

# What a Redis that is away, or a socket that breaks, raises.
REDIS_ERRORS = (RedisError, OSError, TimeoutError)
_TICK_S = RESYNC_S / 4  # how often the connection's task looks at its clocks
_FIRST_RETRY_S = 0.05
_CHUNK = 500  # channels per SUBSCRIBE / UNSUBSCRIBE
_OWED_MAX = 10_000  # users remembered for a targeted resync; past that, everyone resyncs
_GO_LIVE_S = 10.0  # a new connection must have every channel confirmed by then, or it is dropped


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _chunks(channels: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(channels), _CHUNK):
        yield channels[start : start + _CHUNK]


class RedisBus:
    """Delivery across processes through Redis pub/sub, one channel per user."""

    crosses_processes = True

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 1024,
        timeout_s: float = 0.5,
        max_backoff_s: float = 5.0,
        max_connections: int = 64,
        prefix: str = "tokenwise",
    ) -> None:
        self._queue_size, self._timeout, self._max_backoff = queue_size, timeout_s, max_backoff_s
        self._events = f"{prefix}:events:"
        self._control = f"{prefix}:control:"
        self._resync = f"{prefix}:resync"
        # One retry, on a broken connection only (a pooled one that a Redis restart closed): a Redis that
        # is away costs a publish one short timeout, then nothing until the bus is live again.
        self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._client = Redis(connection_pool=self._pool)
        self._subscribers: dict[str, set[MemorySubscription]] = {}
        self._listeners: dict[str, set[MemorySignals]] = {}
        # The pub/sub connection's state, reset with every connection.
        self._live = False  # every wanted channel is confirmed: an event published now is delivered
        self._sent: set[str] = set()  # SUBSCRIBEd, and not UNSUBSCRIBEd since
        self._acks_due: Counter[str] = Counter()  # SUBSCRIBE confirmations still to come, per channel
        self._unconfirmed: set[str] = set()  # sent, with confirmations still to come
        self._waiters: dict[str, asyncio.Future[None]] = {}  # subscribe() calls waiting for a channel
        self._dirty: set[str] = set()  # channels whose wanted state may differ from Redis's
        self._wake = asyncio.Event()
        self._last_rx = 0.0
        self._ping_sent: float | None = None
        self._last_overflow = 0.0
        # Publishing.
        self._paused_until = 0.0  # after a failed publish, skip Redis until then
        self._owed: set[str] = set()  # users whose events other processes may have missed
        self._owe_everyone = False
        self._task: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()  # the first connection attempt ended, either way
        self._closed = False

    # ---- the EventBus interface ------------------------------------------------------------------
    async def start(self) -> None:
        """Start the connection's task; wait briefly for the first attempt (never raises for Redis)."""
        if self._task is not None or self._closed:
            return
        self._task = asyncio.create_task(self._run(), name="tokenwise-redis-bus")
        with contextlib.suppress(TimeoutError):  # if Redis is away, the task says so and keeps trying
            async with asyncio.timeout(self._timeout * 4 + 1.0):
                await self._settled.wait()

    async def ping(self) -> None:
        if not self._live:
            raise ServiceUnavailable("the event bus (Redis) is unreachable", dependency="bus")
        try:
            async with asyncio.timeout(self._timeout * 2):
                await self._client.ping()
        except REDIS_ERRORS as exc:
            raise ServiceUnavailable("the event bus (Redis) does not answer", dependency="bus") from exc

    async def publish(self, event: RunEvent) -> None:
        await self.publish_many((event,))

    async def publish_many(self, events: Sequence[RunEvent]) -> None:
        """One PUBLISH per user (the bodies of its events, in order, one per line), all in one pipeline:
        a stored batch costs one round trip, and the other processes read one message per user."""
        if self._closed or not events:
            return
        bodies: dict[str, list[str]] = {}
        for event in events:
            bodies.setdefault(event.user_id, []).append(event.body)
        messages = [(self._events + user_id, "\n".join(lines)) for user_id, lines in bodies.items()]
        if await self._send_all(messages):
            return
        # The events are stored: local subscriptions take them from here, the other processes' are told later.
        for event in events:
            for subscription in tuple(self._subscribers.get(event.user_id, ())):
                subscription.put(event)
        for user_id in bodies:
            self._owe(user_id)

    async def subscribe(self, user_id: str) -> MemorySubscription:
        subscription = MemorySubscription(self, user_id, self._queue_size)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        try:
            live = await self._join(self._events + user_id)
        except BaseException:
            self.unsubscribe(subscription)  # cancelled while waiting: nobody will close it
            raise
        if not live:
            subscription.overflow()  # whatever is published now may be missed
        return subscription

    def unsubscribe(self, subscription: MemorySubscription) -> None:
        subscribers = self._subscribers.get(subscription.user_id)
        if subscribers is not None and subscription in subscribers:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.user_id]
                self._touch(self._events + subscription.user_id)

    async def signal(self, channel: str, message: str) -> None:
        if self._closed:
            return
        if not await self._send_all([(self._control + channel, message)]):
            for listener in tuple(self._listeners.get(channel, ())):
                listener.put(message)  # best effort: at least this process hears it

    async def listen(self, channel: str) -> MemorySignals:
        listener = MemorySignals(self, channel)
        self._listeners.setdefault(channel, set()).add(listener)
        try:
            await self._join(self._control + channel)  # not live: signals are lost until it is (best effort)
        except BaseException:
            self.unlisten(listener)
            raise
        return listener

    def unlisten(self, listener: MemorySignals) -> None:
        listeners = self._listeners.get(listener.channel)
        if listeners is not None and listener in listeners:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.channel]
                self._touch(self._control + listener.channel)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Cancel until it is done: Python 3.11's wait_for (inside redis-py) can swallow a cancellation.
        while self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=_TICK_S)
        self._release_waiters()
        self._subscribers.clear()
        for listeners in list(self._listeners.values()):
            for listener in tuple(listeners):
                await listener.close()
        await self._client.aclose(close_connection_pool=True)

    # ---- publishing ----------------------------------------------------------------------------------
    async def _send_all(self, messages: Sequence[tuple[str, str]]) -> bool:
        """PUBLISH each (channel, message), several in one pipeline, unless Redis is known to be away;
        False when they did not (all) go out."""
        if not self._live or asyncio.get_running_loop().time() < self._paused_until:
            return False
        try:
            if len(messages) == 1:
                await self._client.publish(*messages[0])
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for channel, message in messages:
                        pipe.publish(channel, message)
                    await pipe.execute()
        except REDIS_ERRORS as exc:
            self._pause(exc)
            return False
        return True

    def _pause(self, error: BaseException) -> None:
        now = asyncio.get_running_loop().time()
        if now >= self._paused_until:
            log.warning("publishing to Redis failed (%s); skipping it for %.1fs", error, RESYNC_S)
        self._paused_until = now + RESYNC_S

    def _owe(self, user_id: str) -> None:
        if not self._owe_everyone:
            self._owed.add(user_id)
            if len(self._owed) > _OWED_MAX:
                self._owed.clear()
                self._owe_everyone = True
        self._wake.set()

    async def _settle(self) -> None:
        """Tell the other processes' subscriptions of every user whose events were not published."""
        if not (self._owed or self._owe_everyone) or asyncio.get_running_loop().time() < self._paused_until:
            return
        owed, everyone = self._owed, self._owe_everyone
        self._owed, self._owe_everyone = set(), False
        channels = [self._resync] if everyone else [self._events + user_id for user_id in owed]
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.publish(channel, b"")
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._pause(exc)
            self._owed |= owed
            self._owe_everyone |= everyone

    # ---- subscriptions -------------------------------------------------------------------------------
    def _wanted(self, channel: str) -> bool:
        if channel.startswith(self._events):
            return channel[len(self._events) :] in self._subscribers
        if channel.startswith(self._control):
            return channel[len(self._control) :] in self._listeners
        return channel == self._resync

    def _all_wanted(self) -> set[str]:
        return {
            self._resync,
            *(self._events + user_id for user_id in self._subscribers),
            *(self._control + channel for channel in self._listeners),
        }

    def _touch(self, channel: str) -> None:
        self._dirty.add(channel)
        self._wake.set()

    async def _join(self, channel: str) -> bool:
        """Make sure Redis has `channel` subscribed; True once it confirmed, False if the bus is not live."""
        if not self._live:
            self._touch(channel)  # subscribed with the others once the connection is back
            return False
        if channel in self._sent and channel not in self._unconfirmed:
            return True
        waiter = self._waiters.get(channel)
        if waiter is None:
            waiter = self._waiters[channel] = asyncio.get_running_loop().create_future()
        self._touch(channel)
        try:
            async with asyncio.timeout(_GO_LIVE_S):
                await asyncio.shield(waiter)
        except TimeoutError:
            return False
        # A connection lost meanwhile releases the waiters too; it left the bus not live.
        return self._live

    def _release_waiters(self) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _overflow_all(self) -> None:
        self._last_overflow = asyncio.get_running_loop().time()
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.overflow()

    def _tick(self) -> None:
        """While not live: make every subscription resync from storage at least every RESYNC_S."""
        if asyncio.get_running_loop().time() - self._last_overflow >= RESYNC_S - _TICK_S:
            self._overflow_all()

    # ---- the pub/sub connection --------------------------------------------------------------------
    async def _run(self) -> None:
        """Keep one pub/sub connection up: connect, serve, and after a loss retry with backoff."""
        loop = asyncio.get_running_loop()
        delay, warned = _FIRST_RETRY_S, False
        while not self._closed:
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            error: BaseException | None = None
            try:
                await self._serve(conn)
            except REDIS_ERRORS as exc:
                error = exc
            except Exception as exc:  # a bug: log it, and keep the bus alive
                log.exception("the Redis bus's connection task failed")
                error = exc
            finally:
                was_live = self._live
                await self._drop(conn)
            if self._closed:
                return
            if was_live:
                log.warning("lost the Redis pub/sub connection (%s); resyncing from storage meanwhile", error)
                delay, warned = _FIRST_RETRY_S, True
            elif not warned:
                log.warning("cannot reach Redis (%s); retrying in the background", error)
                warned = True
            self._settled.set()
            deadline = loop.time() + delay
            while not self._closed and (remaining := deadline - loop.time()) > 0:
                await asyncio.sleep(min(remaining, _TICK_S))
                self._tick()
            delay = min(delay * 2, self._max_backoff)

    async def _serve(self, conn: AbstractConnection) -> None:
        """Subscribe every wanted channel on a new connection, then keep Redis in step until it fails."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(2 * self._timeout):
            await conn.connect()  # type: ignore[no-untyped-call]
        self._dirty = self._all_wanted()
        self._last_rx, self._ping_sent = loop.time(), None
        reader = asyncio.create_task(self._read(conn), name="tokenwise-redis-bus-reader")
        give_up = loop.time() + _GO_LIVE_S
        try:
            while not self._closed:
                self._wake.clear()
                await self._reconcile(conn)
                now = loop.time()
                if not self._live:
                    if not self._dirty and not self._unconfirmed:
                        self._go_live()
                    elif now >= give_up:
                        raise RedisTimeout("Redis did not confirm the subscriptions")
                    else:
                        self._tick()
                if self._live:
                    await self._settle()
                await self._check_health(conn, now)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_TICK_S):
                        await self._wake.wait()
                if reader.done():
                    reader.result()  # raises what ended the connection
                    raise RedisError("the pub/sub connection closed")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await reader

    def _go_live(self) -> None:
        first = not self._settled.is_set()
        self._live = True
        self._settled.set()
        # Events published before every channel was confirmed may have been missed.
        self._overflow_all()
        if not first:
            log.warning("Redis pub/sub connection restored: %d channel(s) subscribed", len(self._sent))

    async def _drop(self, conn: AbstractConnection) -> None:
        was_live, self._live = self._live, False
        self._sent.clear()
        self._acks_due.clear()
        self._unconfirmed.clear()
        self._dirty.clear()
        self._release_waiters()
        if was_live and not self._closed:
            self._overflow_all()
        elif not self._closed:
            self._tick()
        with contextlib.suppress(*REDIS_ERRORS):
            await conn.disconnect(nowait=True)

    async def _reconcile(self, conn: AbstractConnection) -> None:
        """SUBSCRIBE what is wanted and not subscribed, UNSUBSCRIBE what is subscribed and not wanted."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        add = [channel for channel in dirty if channel not in self._sent and self._wanted(channel)]
        drop = [channel for channel in dirty if channel in self._sent and not self._wanted(channel)]
        self._sent.difference_update(drop)
        self._unconfirmed.difference_update(drop)
        self._sent.update(add)
        self._unconfirmed.update(add)
        self._acks_due.update(add)
        for chunk in _chunks(drop):
            await self._command(conn, "UNSUBSCRIBE", *chunk)
        for chunk in _chunks(add):
            await self._command(conn, "SUBSCRIBE", *chunk)

    @staticmethod
    async def _command(conn: AbstractConnection, *args: str) -> None:
        if not conn.is_connected:  # never let redis-py reconnect behind the reader's back
            raise RedisError("the pub/sub connection closed")
        await conn.send_command(*args, check_health=False)

    async def _check_health(self, conn: AbstractConnection, now: float) -> None:
        """PING an idle connection; a PING unanswered for two timeouts means the connection is dead."""
        if self._ping_sent is not None:
            if now - self._ping_sent > 2 * self._timeout:
                raise RedisTimeout("Redis did not answer PING on the pub/sub connection")
        elif now - self._last_rx >= RESYNC_S:
            self._ping_sent = now
            await self._command(conn, "PING")

    async def _read(self, conn: AbstractConnection) -> None:
        """The one reader: messages go to local subscriptions, confirmations to `subscribe`."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                response = await conn.read_response(
                    timeout=math.inf, disconnect_on_error=False, push_request=True
                )
                self._last_rx, self._ping_sent = loop.time(), None
                if isinstance(response, list) and len(response) >= 3:
                    kind, channel, data = _text(response[0]), _text(response[1]), response[2]
                    if kind == "message":
                        self._deliver(channel, data if isinstance(data, bytes) else _text(data).encode())
                    elif kind == "subscribe":
                        self._confirm(channel)
        finally:
            self._wake.set()

    def _confirm(self, channel: str) -> None:
        self._acks_due[channel] -= 1
        if self._acks_due[channel] > 0:
            return
        del self._acks_due[channel]
        if channel in self._sent:
            self._unconfirmed.discard(channel)
            waiter = self._waiters.pop(channel, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if not self._unconfirmed:
            self._wake.set()  # may be the last one the connection waits for to go live

    def _deliver(self, channel: str, data: bytes) -> None:
        if channel.startswith(self._events):
            user_id = channel[len(self._events) :]
            subscribers = tuple(self._subscribers.get(user_id, ()))
            if not subscribers:
                return
            if not data:
                # An empty message is a resync: a publisher could not publish some of this user's events.
                for subscription in subscribers:
                    subscription.overflow()
                return
            for body in data.decode().split("\n"):  # one event's JSON per line (publish_many)
                try:
                    event = RunEvent.from_body(user_id, body)
                except (ValueError, KeyError, TypeError) as exc:
                    # Stored all the same: the subscriptions read it back from storage.
                    log.warning("dropped an unreadable message on %s: %s", channel, exc)
                    for subscription in subscribers:
                        subscription.overflow()
                    continue
                for subscription in subscribers:
                    subscription.put(event)
        elif channel.startswith(self._control):
            for listener in tuple(self._listeners.get(channel[len(self._control) :], ())):
                listener.put(data.decode(errors="replace"))
        elif channel == self._resync:
            self._overflow_all()
