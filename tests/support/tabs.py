"""Clients of a cluster test: `Tab` is one browser tab, a WebSocket read in the background with every frame
kept and when it arrived, so a test can act on several tabs at once and compare what each one received
with what is stored (`assert_exact`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.clients import Account, open_ws
from support.live import ServerProcess
from tokenwise.session.contract import violations

T = TypeVar("T")


class Tab:
    """One client connection; frames are read in the background and kept with their arrival times."""

    def __init__(self, ws: ClientConnection, api: ServerProcess) -> None:
        self.ws, self.api = ws, api
        self.frames: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # time.time() of each frame's arrival
        self.closed = False
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, api: ServerProcess, account: Account) -> Tab:
        ws, _ = await open_ws(api.ws_url, account.access_token)
        return cls(ws, api)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(json.loads(text))
                self.arrived.append(time.time())
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._changed.set()

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    def abort(self) -> None:
        """The network drops: no close frame."""
        self.ws.transport.abort()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def wait(self, found: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
        """Wait until `found()` returns something (neither None nor False)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._changed.clear()
                    value = found()
                    if value is not None and value is not False:
                        return value
                    if self.closed:
                        raise AssertionError(f"closed ({self.ws.close_code}) while waiting for {what}")
                    await self._changed.wait()
        except TimeoutError:
            tail = [frame.get("type") for frame in self.frames[-5:]]
            raise AssertionError(f"timed out waiting for {what}; the last frames: {tail}") from None

    async def wait_closed(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)

    def reply(self, client_message_id: str) -> dict[str, Any] | None:
        """The ack or error frame that answers a message."""
        return next(
            (
                f
                for f in self.frames
                if f.get("type") in ("ack", "error") and f.get("client_message_id") == client_message_id
            ),
            None,
        )

    async def submit(self, content: str, client_message_id: str, **fields: Any) -> dict[str, Any]:
        """Send a user message; its ack or error frame."""
        await self.send(
            {"type": "user_message", "content": content, "client_message_id": client_message_id, **fields}
        )
        return await self.wait(
            lambda: self.reply(client_message_id), what=f"the reply to {client_message_id}"
        )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("run_id") == run_id and "seq" in f]

    def final(self, run_id: str) -> dict[str, Any] | None:
        return next((e for e in self.events(run_id) if e["data"].get("final")), None)

    async def until_final(self, run_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        await self.wait(lambda: self.final(run_id), timeout, f"the final event of {run_id}")
        return self.events(run_id)

    async def until_events(self, run_id: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        await self.wait(lambda: len(self.events(run_id)) >= count, timeout, f"{count} events of {run_id}")
        return self.events(run_id)

    def arrivals(self, run_id: str) -> list[tuple[float, dict[str, Any]]]:
        """The run's events with when each arrived (time.time())."""
        return [
            (t, f)
            for t, f in zip(self.arrived, self.frames, strict=True)
            if f.get("run_id") == run_id and "seq" in f
        ]

    def first_created_after(self, run_id: str, since: float) -> tuple[float, dict[str, Any]] | None:
        """The first event of the run created after `since` (time.time()), with when it arrived: after a
        kill, the first event of the holder that took over."""
        return next(((t, e) for t, e in self.arrivals(run_id) if created(e) > since), None)

    def lags(self, run_id: str) -> list[float]:
        """For each event of the run, how long after its creation it arrived (seconds)."""
        return [t - created(e) for t, e in self.arrivals(run_id)]


class Tabs:
    """The tabs a test opened; all closed after it."""

    def __init__(self) -> None:
        self.opened: list[Tab] = []

    async def open(self, api: ServerProcess, account: Account) -> Tab:
        tab = await Tab.open(api, account)
        self.opened.append(tab)
        return tab

    async def close(self) -> None:
        for tab in self.opened:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(tab.close(), 5)


def created(event: dict[str, Any]) -> float:
    """When the event was created (its `timestamp`), as time.time()."""
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def ending(events: Sequence[dict[str, Any]]) -> tuple[str, str | None]:
    """How a run ended: the type of its last event, which is the supervisor's, and its code, if any."""
    last = events[-1]
    assert last["agent_name"] == "supervisor", last
    return last["type"], last["data"].get("code")


def assert_exact(received: Sequence[dict[str, Any]], stored: Sequence[dict[str, Any]]) -> None:
    """What a client received is the stored run, whole: seq 1..n each once, exactly one final event
    (the last), and the ordering contract kept."""
    seqs = [event["seq"] for event in received]
    assert seqs == list(range(1, len(seqs) + 1)), f"lost or duplicated events: {seqs}"
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1)), [e["seq"] for e in stored]
    assert list(received) == list(stored), "what the client received differs from what is stored"
    assert violations(list(stored)) == [], violations(list(stored))
    finals = [event["seq"] for event in stored if event["data"].get("final")]
    assert finals == [len(stored)], f"final events at seqs {finals} of {len(stored)}"


async def sse_events(http: httpx.AsyncClient, run_id: str, **headers: str) -> list[dict[str, Any]]:
    """A run's SSE stream to its end; each message's `id:` is its event's seq."""
    events: list[dict[str, Any]] = []
    async with http.stream("GET", f"/api/runs/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200, response.status_code
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"])
                events.append(event)
            fields = {}
    return events
