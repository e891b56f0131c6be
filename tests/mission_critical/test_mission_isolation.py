"""Isolation invariants: a user's events reach all of that user's connections and nobody else's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from mission_critical.deployment import Connections, Target
from support.clients import Account, recv_json, send_message

QUIET_S = 0.5  # how long to keep listening after a run's final event for anything that should not come


async def _frames(ws: ClientConnection, run_id: str) -> list[dict[str, Any]]:
    """Every frame until `run_id`'s final event, then whatever else arrives while the line is quiet."""
    frames: list[dict[str, Any]] = []
    while not (frames and frames[-1].get("run_id") == run_id and frames[-1].get("data", {}).get("final")):
        frames.append(await recv_json(ws))
    while True:
        try:
            frames.append(await recv_json(ws, timeout=QUIET_S))
        except TimeoutError:
            return frames


def _run_events(frames: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame.get("run_id") == run_id and "seq" in frame]


def _mentions(frames: list[dict[str, Any]], *ids: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if {frame.get("run_id"), frame.get("thread_id")} & set(ids)]


async def test_two_users_never_see_each_others_events(
    target: Target, account: Account, connections: Connections
) -> None:
    other = await target.new_account()
    tab1, _ = await connections.open(account)
    tab2, _ = await connections.open(account, "subprotocol")  # the same user in a second tab
    stranger, _ = await connections.open(other, "first_message")

    mine, theirs = await asyncio.gather(
        send_message(tab1, "What did we spend on embeddings?"),
        send_message(stranger, "What did we spend on fine-tuning?"),
    )
    tab1_frames, tab2_frames, stranger_frames = await asyncio.gather(
        _frames(tab1, mine["run_id"]), _frames(tab2, mine["run_id"]), _frames(stranger, theirs["run_id"])
    )

    # Each user gets their own run in full, in every tab; not one frame of the other's.
    assert _run_events(tab1_frames, mine["run_id"]) == _run_events(tab2_frames, mine["run_id"])
    assert _run_events(tab1_frames, mine["run_id"])[-1]["data"]["final"] is True
    assert _run_events(stranger_frames, theirs["run_id"])[-1]["data"]["final"] is True
    assert _mentions(tab1_frames + tab2_frames, theirs["run_id"], theirs["thread_id"]) == []
    assert _mentions(stranger_frames, mine["run_id"], mine["thread_id"]) == []
    # The fresh user has no other activity: everything they received is about their own run.
    assert {frame.get("run_id") for frame in stranger_frames} <= {theirs["run_id"]}

    # Nor can they ask for it: 404 over HTTP, an error frame over the WebSocket (which stays open).
    headers = {"Authorization": f"Bearer {other.access_token}"}
    async with httpx.AsyncClient(base_url=target.url, headers=headers, timeout=30) as http:
        for path in (
            f"/api/runs/{mine['run_id']}",
            f"/api/runs/{mine['run_id']}/events",
            f"/api/threads/{mine['thread_id']}",
            f"/api/threads/{mine['thread_id']}/messages",
        ):
            response = await http.get(path)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["code"] == "not_found"
    for request in (
        {"type": "resume", "run_id": mine["run_id"], "after_seq": 0},
        {"type": "get_thread_history", "thread_id": mine["thread_id"]},
    ):
        await stranger.send(json.dumps(request))
        reply = await recv_json(stranger)
        assert reply["type"] == "error", reply
        assert reply["code"] == "not_found"
    await stranger.send(json.dumps({"type": "ping"}))
    assert (await recv_json(stranger))["type"] == "pong"
