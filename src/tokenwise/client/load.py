"""Load scenarios for the load driver: simulated users, connection storms, idle connections.

Each scenario returns a Tally of what the clients saw. Latencies are measured on the client, from the
moment a message was due to be sent (so a saturated client or server cannot hide its queueing) to the
first and to the final event of its run. Every run's `seq` is checked for gaps and repeats.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tokenwise.client.api import Client
from tokenwise.client.connection import Connection, connect
from tokenwise.client.errors import (
    ClientError,
    ConnectionClosed,
    HandshakeRejected,
    ProtocolViolation,
    RequestFailed,
    ServerError,
    Unreachable,
)
from tokenwise.session.handshake import Method

QUESTION = "Where is our LLM spend going, and how do we cut it by 30%?"
PASSWORD = "load-test-password"  # noqa: S105 - the password of throwaway load-test users


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def error_key(exc: BaseException) -> str:
    """How an error is counted: by close code, HTTP status or error code."""
    match exc:
        case ConnectionClosed():
            return f"close {exc.code}"
        case HandshakeRejected():
            return f"http {exc.status}"
        case RequestFailed():
            return f"http {exc.status}"
        case ServerError():
            return f"error {exc.code}"
        case Unreachable():
            return "unreachable"
        case ProtocolViolation():
            return "protocol"
        case TimeoutError():
            return "timeout"
    return type(exc).__name__


@dataclass
class Tally:
    """What the clients of one phase saw."""

    ttfe_s: list[float] = field(default_factory=list)  # message due → first run event
    final_s: list[float] = field(default_factory=list)  # message due → final run event
    connect_s: list[float] = field(default_factory=list)  # connect → welcome frame
    runs: int = 0
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    failed_runs: int = 0  # runs whose final event was the supervisor's agent_error
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def check_run(self, seqs: Sequence[int]) -> None:
        """Count a finished run's lost, duplicated and out-of-order events from its seqs in arrival order."""
        self.runs += 1
        self.events += len(seqs)
        unique = set(seqs)
        self.duplicated += len(seqs) - len(unique)
        self.lost += max(seqs) - len(unique)
        self.reordered += sum(1 for before, after in itertools.pairwise(seqs) if after < before)

    def summary(self) -> dict[str, Any]:
        """The figures of the phase, JSON-ready (milliseconds for latencies)."""
        elapsed = self.elapsed_s or math.nan

        def ms(values: list[float]) -> dict[str, float]:
            return {f"p{p}": round(percentile(values, p) * 1000, 2) for p in (50, 95, 99)}

        result: dict[str, Any] = {
            "elapsed_s": round(self.elapsed_s, 3),
            "runs": self.runs,
            "events": self.events,
            "runs_per_s": round(self.runs / elapsed, 1),
            "events_per_s": round(self.events / elapsed, 1),
            "lost_events": self.lost,
            "duplicated_events": self.duplicated,
            "reordered_events": self.reordered,
            "failed_runs": self.failed_runs,
            "errors": dict(self.errors),
        }
        if self.ttfe_s:
            result["time_to_first_event_ms"] = ms(self.ttfe_s)
            result["time_to_final_event_ms"] = ms(self.final_s)
        if self.connect_s:
            result["connects"] = len(self.connect_s)
            result["connects_per_s"] = round(len(self.connect_s) / elapsed, 1)
            result["connect_ms"] = ms(self.connect_s)
        return result


async def provision(base_url: str, count: int, *, concurrency: int = 8) -> list[str]:
    """Sign up `count` fresh users and sign them in; their access tokens (argon2 makes this slow)."""
    limit = asyncio.Semaphore(concurrency)
    tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:

        async def one(index: int) -> str:
            async with limit:
                client = Client(base_url, http=http)
                email = f"load-{tag}-{index}@example.com"
                await client.sign_up(email, PASSWORD)
                return (await client.sign_in(email, PASSWORD)).access_token

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def open_connection(
    ws_url: str, token: str, tally: Tally, *, method: Method = Method.HEADER, base_url: str | None = None
) -> Connection:
    """Connect (timing it into `tally.connect_s`); for the ticket method, fetch a ticket first."""
    started = time.perf_counter()
    ticket = None
    if method is Method.TICKET:
        assert base_url is not None, "the ticket method needs the HTTP base URL"
        ticket = await Client(base_url).ticket(token)
    conn = await connect(ws_url, token, method, ticket=ticket, ping_interval=None, open_timeout=60)
    tally.connect_s.append(time.perf_counter() - started)
    return conn


async def run_once(conn: Connection, tally: Tally, due: float, question: str = QUESTION) -> None:
    """Send one message and read its run to the final event; `due` is when it should have been sent."""
    ack = await conn.send_message(question)
    seqs: list[int] = []
    async for event in conn.events(ack.run_id):
        if not seqs:
            tally.ttfe_s.append(time.perf_counter() - due)
        seqs.append(event.seq)
        if event.final:
            tally.final_s.append(time.perf_counter() - due)
            tally.failed_runs += event.type == "agent_error"
    tally.check_run(seqs)


async def _attempt(tally: Tally, action: Awaitable[None]) -> bool:
    """Await `action`, counting a client-visible failure instead of raising; False when the connection is
    unusable afterwards."""
    try:
        await action
        return True
    except ServerError as exc:
        tally.errors[error_key(exc)] += 1
        if exc.code == "rate_limited":
            await asyncio.sleep(float(exc.details.get("retry_after_s", 0.1)))
        return True
    except (ClientError, TimeoutError, OSError) as exc:
        tally.errors[error_key(exc)] += 1
        return False


async def users(
    ws_url: str, tokens: Sequence[str], *, concurrency: int, messages_per_user: int, question: str = QUESTION
) -> Tally:
    """The golden path: each user connects, sends its messages one after another, waits for each run's
    final event, and leaves; at most `concurrency` users at once."""
    tally, limit = Tally(), asyncio.Semaphore(concurrency)

    async def user(token: str) -> None:
        async with limit:
            conn: Connection | None = None
            for _ in range(messages_per_user):
                if conn is None:
                    try:
                        conn = await open_connection(ws_url, token, tally)
                    except (ClientError, TimeoutError, OSError) as exc:
                        tally.errors[error_key(exc)] += 1
                        continue
                if not await _attempt(tally, run_once(conn, tally, time.perf_counter(), question)):
                    await conn.close()
                    conn = None
            if conn is not None:
                await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(user(token) for token in tokens))
    tally.elapsed_s = time.perf_counter() - started
    return tally


async def connect_all(
    ws_url: str,
    tokens: Sequence[str],
    count: int,
    *,
    concurrency: int,
    method: Method = Method.HEADER,
    base_url: str | None = None,
) -> tuple[list[Connection], Tally]:
    """Open `count` connections (tokens used round-robin), at most `concurrency` handshakes at once;
    the connections stay open and are returned."""
    tally, limit, opened = Tally(), asyncio.Semaphore(concurrency), []

    async def one(index: int) -> None:
        async with limit:
            try:
                conn = await open_connection(
                    ws_url, tokens[index % len(tokens)], tally, method=method, base_url=base_url
                )
                opened.append(conn)
            except (ClientError, TimeoutError, OSError) as exc:
                tally.errors[error_key(exc)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    tally.elapsed_s = time.perf_counter() - started
    return opened, tally


async def close_all(connections: Sequence[Connection], *, concurrency: int = 500) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def one(conn: Connection) -> None:
        async with limit:
            await conn.close()

    await asyncio.gather(*(one(c) for c in connections), return_exceptions=True)


@dataclass
class _Slot:
    """One simulated user's place in a pool: its token, and its connection while it has one."""

    token: str
    conn: Connection | None = None

    async def run(self, ws_url: str, tally: Tally, due: float, question: str) -> None:
        """One run on this user's connection, connecting first if needed; failures are counted."""
        try:
            if self.conn is None:
                self.conn = await open_connection(ws_url, self.token, tally)
        except (ClientError, TimeoutError, OSError) as exc:
            tally.errors[error_key(exc)] += 1
            await asyncio.sleep(0.1)  # the server may be restarting; do not spin
            return
        if not await _attempt(tally, run_once(self.conn, tally, due, question)):
            await self.conn.close()
            self.conn = None


async def _slots(ws_url: str, tokens: Sequence[str], tally: Tally) -> list[_Slot]:
    slots = [_Slot(token) for token in tokens]
    connections, opened = await connect_all(ws_url, tokens, len(tokens), concurrency=64)
    tally.errors.update(opened.errors)
    for slot, conn in zip(slots, connections, strict=False):  # a failed connect is retried at first use
        slot.conn = conn
    return slots


async def _close_slots(slots: Sequence[_Slot]) -> None:
    await close_all([slot.conn for slot in slots if slot.conn is not None])


async def closed_loop(
    ws_url: str, tokens: Sequence[str], *, duration_s: float, question: str = QUESTION
) -> Tally:
    """One connection per token, each sending its next message as soon as its run has ended."""
    tally = Tally()
    slots = await _slots(ws_url, tokens, tally)
    deadline = time.perf_counter() + duration_s

    async def loop(slot: _Slot) -> None:
        while time.perf_counter() < deadline:
            await slot.run(ws_url, tally, time.perf_counter(), question)

    started = time.perf_counter()
    await asyncio.gather(*(loop(slot) for slot in slots))
    tally.elapsed_s = time.perf_counter() - started
    await _close_slots(slots)
    return tally


async def open_loop(
    ws_url: str, tokens: Sequence[str], *, rate_per_s: float, duration_s: float, question: str = QUESTION
) -> Tally:
    """Messages due at a fixed rate, whatever the server's pace, over a pool of connections (one per
    token, one run at a time each). Latency counts from when a message was due, so time spent waiting
    for a free connection is included rather than hidden (no coordinated omission)."""
    tally = Tally()
    idle: asyncio.Queue[_Slot] = asyncio.Queue()
    slots = await _slots(ws_url, tokens, tally)
    for slot in slots:
        idle.put_nowait(slot)
    count = max(1, round(rate_per_s * duration_s))
    start = time.perf_counter() + 0.05

    async def fire(index: int) -> None:
        due = start + index / rate_per_s
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        slot = await idle.get()
        try:
            await slot.run(ws_url, tally, due, question)
        finally:
            idle.put_nowait(slot)

    await asyncio.gather(*(fire(i) for i in range(count)))
    tally.elapsed_s = time.perf_counter() - start
    await _close_slots(slots)
    return tally
