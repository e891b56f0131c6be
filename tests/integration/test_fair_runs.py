"""Fair runs on a real server: one worker executes at most `worker_runs_per_user` runs of one user at once.

A user's further runs wait queued (the one stored leased to the in-process worker is put back in the
queue) until one of theirs ends, while another user's run starts at once; every run still completes,
its events contiguous from seq 1. A run's first event (seq 1, the supervisor's `agent_started`) is stored
with the message and sent with the ack, so a waiting run shows it at once; it starts when a worker records
its next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from support.clients import open_ws, recv_json, signup
from support.live import LiveServer, test_settings

STEP_DELAY_MS = 60  # a run lasts several steps: long enough for the others to overlap it


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        test_settings(
            Path(tmp_path_factory.mktemp("fair-runs")),
            worker_runs_per_user=1,
            test_step_delay_ms=STEP_DELAY_MS,
            max_active_runs_per_user=10,
            runs_per_minute_per_user=1000,
            messages_per_second=1000.0,
            message_burst=1000,
        )
    ).start()
    worker = server.services.runs.worker
    assert worker is not None
    assert worker.per_user == 1  # the setting reached the worker
    yield server
    server.stop()


class Client:
    """One user's connection: acks by client_message_id, and each run's events with their arrival time."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.events: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        self.ended: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            frame = await recv_json(self.ws, 60)
            if frame["type"] == "ack":
                self.acks[frame["client_message_id"]].set_result(frame)
            elif frame["type"] == "error":
                future = self.acks.get(frame.get("client_message_id") or "")
                if future is not None and not future.done():
                    future.set_exception(AssertionError(frame))
            elif "seq" in frame:
                self.events[frame["run_id"]].append((time.monotonic(), frame))
                if frame.get("data", {}).get("final"):
                    self.ended[frame["run_id"]].set()

    async def say(self, content: str = "How do I cut my LLM costs by 30%?") -> str:
        client_message_id = uuid.uuid4().hex
        self.acks[client_message_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(
            json.dumps({"type": "user_message", "content": content, "client_message_id": client_message_id})
        )
        ack = await asyncio.wait_for(self.acks[client_message_id], 30)
        run_id: str = ack["run_id"]
        return run_id

    async def event(self, run_id: str, seq: int) -> tuple[float, dict[str, Any]]:
        """When the run's event `seq` arrived, and the event."""
        while len(self.events[run_id]) < seq:
            await asyncio.sleep(0.005)
        return self.events[run_id][seq - 1]

    async def started(self, run_id: str) -> float:
        """When a worker's first event of the run arrived (seq 2: seq 1 comes with the ack)."""
        arrived, _ = await self.event(run_id, 2)
        return arrived

    async def end(self, run_id: str) -> float:
        await asyncio.wait_for(self.ended[run_id].wait(), 60)
        return self.events[run_id][-1][0]

    def seqs(self, run_id: str) -> list[int]:
        return [frame["seq"] for _, frame in self.events[run_id]]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.ws.close()


async def _client(live: LiveServer) -> tuple[Client, str]:
    account = await signup(live.url)
    ws, _ = await open_ws(live.ws_url, account.access_token)
    return Client(ws), account.access_token


async def _status(live: LiveServer, token: str, run_id: str) -> str:
    async with httpx.AsyncClient(base_url=live.url) as http:
        response = await http.get(f"/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def test_a_users_second_run_waits_for_its_first_while_another_users_runs_at_once(
    live: LiveServer,
) -> None:
    (a, a_token), (b, b_token) = await _client(live), await _client(live)
    try:
        first = await a.say()
        await a.started(first)
        second = await a.say()  # a executes its one run already: this one waits queued
        # ... and its first event came with the ack, while no worker holds it
        _, opening = await asyncio.wait_for(a.event(second, 1), 5)
        assert (opening["type"], opening["agent_name"]) == ("agent_started", "supervisor")
        assert await _status(live, a_token, second) == "queued"
        assert len(a.events[second]) == 1
        other = await b.say()  # another user's run is not held back by a's
        b_started = await b.started(other)
        assert not a.ended[first].is_set(), "a's first run ended before b's started: no overlap seen"
        first_ended = await a.end(first)
        second_started = await a.started(second)
        assert second_started >= first_ended, "a's second run started before its first ended"
        assert b_started < first_ended
        await a.end(second)
        await b.end(other)
        for client, run_id, token in ((a, first, a_token), (a, second, a_token), (b, other, b_token)):
            seqs = client.seqs(run_id)
            assert seqs == list(range(1, len(seqs) + 1)), (run_id, seqs)
            assert await _status(live, token, run_id) == "completed"
    finally:
        await a.close()
        await b.close()


async def test_a_flood_of_one_user_runs_one_at_a_time_and_every_run_completes(live: LiveServer) -> None:
    (a, a_token), (b, b_token) = await _client(live), await _client(live)
    worker = live.services.runs.worker
    try:
        runs = [await a.say(f"question {n}") for n in range(4)]
        other = await b.say()
        await b.end(other)
        assert not all(a.ended[run_id].is_set() for run_id in runs)  # b's run did not wait for a's
        spans = [(await a.started(run_id), await a.end(run_id)) for run_id in runs]
        starts_and_ends = sorted(spans)
        for (_, ended), (started, _) in itertools.pairwise(starts_and_ends):
            assert started >= ended, "two runs of one user overlapped"
        for run_id in runs:
            seqs = a.seqs(run_id)
            assert seqs == list(range(1, len(seqs) + 1)), (run_id, seqs)
            assert await _status(live, a_token, run_id) == "completed"
        assert await _status(live, b_token, other) == "completed"
        assert worker.running() == 0
    finally:
        await a.close()
        await b.close()
