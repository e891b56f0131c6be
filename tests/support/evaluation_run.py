"""Asking the evaluation's questions of a real server, as a user's client would: HTTP and a WebSocket.

Shared by tests/e2e/test_answers.py and bench/answers.py. Only `httpx` and `websockets`: a fresh user signs
up, uploads the log with `POST /api/datasets`, and asks each conversation (a case and its follow-ups) on
its own WebSocket, the follow-ups with the `thread_id` of their thread. Conversations run side by side, a
few at a time; within one, each question waits for the previous answer.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from support.evaluation import CASES, Case, threads


@dataclass
class Asked:
    """One question's run: its report (None when the run failed) and the time to its final event."""

    index: int
    report: dict[str, Any] | None
    seconds: float
    error: str | None = None

    @property
    def answer(self) -> dict[str, Any] | None:
        answer = (self.report or {}).get("answer")
        return answer if isinstance(answer, dict) else None


async def sign_up(base_url: str) -> str:
    """Register a fresh user and sign in; its access token."""
    email, password = f"eval-{uuid.uuid4().hex[:12]}@example.com", f"eval-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        created = await http.post("/auth/register", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
        login = await http.post("/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


async def upload(base_url: str, token: str, path: Path, timeout: float = 600) -> dict[str, Any]:
    """`POST /api/datasets` with the file; the dataset's description."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout) as http:
        with path.open("rb") as handle:
            response = await http.post("/api/datasets", files={"file": (path.name, handle, "text/csv")})
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


_RETRIED = ("rate_limited", "too_many_runs")  # the user's run limits: wait as told, then send again


async def _frame(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def _ask(
    ws: ClientConnection, question: str, thread_id: str | None, timeout: float
) -> tuple[str, dict[str, Any], float]:
    """Send one question; (thread id, the final event, seconds from the accepted send to it) once the run
    has ended. A message refused for the user's run limits is sent again after the wait it names, as a
    well-behaved client does (the evaluation asks faster than the default runs-a-minute quota)."""
    message: dict[str, Any] = {"type": "user_message", "content": question}
    if thread_id is not None:
        message["thread_id"] = thread_id
    while True:
        started = time.perf_counter()
        await ws.send(json.dumps(message))
        run_id = None
        while True:
            frame = await _frame(ws, timeout)
            if frame.get("type") == "ack" and run_id is None:
                run_id, thread_id = frame["run_id"], frame["thread_id"]
            elif frame.get("type") == "error" and run_id is None:
                if frame.get("code") in _RETRIED and isinstance(frame.get("retry_after_s"), int | float):
                    await asyncio.sleep(frame["retry_after_s"])
                    break
                raise RuntimeError(f"refused: {frame}")
            elif run_id is not None and frame.get("run_id") == run_id and frame.get("data", {}).get("final"):
                assert thread_id is not None
                return thread_id, frame, time.perf_counter() - started


async def _conversation(ws_url: str, token: str, chain: Sequence[int], timeout: float) -> list[Asked]:
    asked: list[Asked] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(ws_url, additional_headers=headers, open_timeout=30, max_size=None) as ws:
        welcome = await _frame(ws, 30)
        assert welcome["type"] == "connection_established", welcome
        thread_id: str | None = None
        for index in chain:
            started = time.perf_counter()
            try:
                thread_id, final, seconds = await _ask(ws, CASES[index].question, thread_id, timeout)
            except (TimeoutError, RuntimeError) as failure:
                asked.append(Asked(index, None, time.perf_counter() - started, repr(failure)))
                continue
            report = final.get("data", {}).get("result")
            error = None if isinstance(report, dict) else f"final event without a report: {final}"
            asked.append(Asked(index, report if isinstance(report, dict) else None, seconds, error))
    return asked


async def ask_all(
    base_url: str,
    token: str,
    cases: Sequence[Case] = CASES,
    *,
    only: Collection[int] | None = None,
    concurrency: int = 4,
    timeout: float = 60,
) -> dict[int, Asked]:
    """Every case's run (or those of `only`, with the questions of their thread before them),
    conversations `concurrency` at a time."""
    ws_url = "ws" + base_url.removeprefix("http") + "/ws"
    gate = asyncio.Semaphore(concurrency)
    chains = threads(cases)
    if only is not None:
        wanted = set(only)
        cut = [[i for i in chain if i <= max(wanted & set(chain), default=-1)] for chain in chains]
        chains = [chain for chain in cut if chain]

    async def run(chain: list[int]) -> list[Asked]:
        async with gate:
            return await _conversation(ws_url, token, chain, timeout)

    results = await asyncio.gather(*(run(chain) for chain in chains))
    return {asked.index: asked for chain in results for asked in chain}


def timing_line(asked: dict[int, Asked]) -> str:
    """p50 / p95 / max of the time to the final event."""
    seconds = sorted(a.seconds for a in asked.values())
    p95 = statistics.quantiles(seconds, n=100, method="inclusive")[94] if len(seconds) > 1 else seconds[0]
    return (
        f"time to the final event over {len(seconds)} answers: p50 {statistics.median(seconds):.2f} s, "
        f"p95 {p95:.2f} s, max {seconds[-1]:.2f} s"
    )
