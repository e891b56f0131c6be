"""A client of the platform Tokenwise replaces, as the compatibility suite (tests/e2e/test_compat_*.py,
tests/e2e/test_mcp.py) drives it: its frames, its REST agent routes, its SSE, its timestamps."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from support.clients import Account, recv_json

ACTIVE = ("queued", "running")


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


def is_utc_timestamp(value: object) -> bool:
    """ISO 8601 in UTC (`…Z` or `…+00:00`)."""
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None and moment.utcoffset() == UTC.utcoffset(None)


class Recorder:
    """Reads a WebSocket and keeps every frame the server sent, to check each one afterwards."""

    def __init__(self, ws: ClientConnection, welcome: dict[str, Any]) -> None:
        self.ws, self.frames = ws, [welcome]

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 30.0) -> dict[str, Any]:
        frame = await recv_json(self.ws, timeout)
        self.frames.append(frame)
        return frame

    async def reply(self, frame: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send `frame` and return the first frame that is not a run event (its answer)."""
        await self.send(frame)
        while "seq" in (answer := await self.recv(timeout)):
            pass
        return answer

    async def run(self, run_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The run's events, until its final one."""
        events: list[dict[str, Any]] = []
        while True:
            frame = await self.recv(timeout)
            if frame.get("run_id") == run_id and "seq" in frame:
                events.append(frame)
                if frame.get("data", {}).get("final"):
                    return events

    def untimed(self) -> list[dict[str, Any]]:
        """Every frame received that has no UTC ISO 8601 `timestamp`."""
        return [frame for frame in self.frames if not is_utc_timestamp(frame.get("timestamp"))]


def sse_events(text: str) -> list[dict[str, Any]]:
    """The `data:` envelopes of a Server-Sent Events body, in order."""
    events = []
    for block in text.split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


async def finished_run(http: httpx.AsyncClient, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """`GET /api/runs/{id}` once the run has ended."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] not in ACTIVE:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout}s"
        await asyncio.sleep(0.1)


async def stored_events(http: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/runs/{run_id}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events
