"""Golden-path invariants: sign in, connect (any credential method), ask, and get every event and a report."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from mission_critical.deployment import Connections, Target
from support.clients import Account, collect_run, recv_json, send_message
from tokenwise.session.contract import missing_critical, violations

METHODS = ["header", "subprotocol", "ticket", "first_message"]
QUESTION = "Where is our LLM spend going, and how do we cut it by 30%?"


async def _stored(
    target: Target, account: Account, run_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its stored events, over HTTP."""
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=target.url, headers=headers, timeout=30) as http:
        run = await http.get(f"/api/runs/{run_id}")
        assert run.status_code == 200, run.text
        events = await http.get(f"/api/runs/{run_id}/events")
        assert events.status_code == 200, events.text
    return run.json(), events.json()["events"]


@pytest.mark.parametrize("method", METHODS)
async def test_message_gets_ack_then_every_critical_event_then_a_report(
    target: Target, account: Account, connections: Connections, method: str
) -> None:
    ws, welcome = await connections.open(account, method)
    assert welcome["user_id"] == account.user_id
    assert welcome["protocol_version"] == 1
    assert welcome["connection_id"]
    assert welcome["heartbeat_interval_s"] > 0
    assert welcome["max_message_bytes"] > 0

    client_message_id = f"mc-{method}-{uuid.uuid4().hex[:8]}"
    ack = await send_message(ws, QUESTION, client_message_id=client_message_id)
    assert ack["client_message_id"] == client_message_id
    assert ack["message_id"]
    assert ack["thread_id"]
    assert ack["run_id"]
    events = await collect_run(ws, ack["run_id"])

    assert violations(events) == []
    assert missing_critical(events) == []
    assert {(event["run_id"], event["thread_id"]) for event in events} == {(ack["run_id"], ack["thread_id"])}
    final = events[-1]
    assert final["type"] == "agent_completed"
    report = final["data"]["result"]
    assert report
    assert report["report_type"]
    answer = "".join(event["data"]["delta"] for event in events if event["type"] == "partial_result")
    assert answer.strip()

    run, stored = await _stored(target, account, ack["run_id"])
    assert run["status"] == "completed"
    assert run["report"] == report
    assert stored == events  # what the WebSocket delivered is exactly what is stored


@pytest.mark.parametrize("method", METHODS)
async def test_resume_after_a_forced_disconnect_loses_and_duplicates_nothing(
    target: Target, account: Account, connections: Connections, method: str
) -> None:
    ws, _ = await connections.open(account)
    ack = await send_message(ws, QUESTION)
    seen: list[dict[str, Any]] = []
    while len(seen) < 5:
        frame = await recv_json(ws)
        if frame.get("run_id") == ack["run_id"] and "seq" in frame:
            seen.append(frame)
    await connections.drop(ws)

    ws, _ = await connections.open(account, method)
    await ws.send(json.dumps({"type": "resume", "run_id": ack["run_id"], "after_seq": seen[-1]["seq"]}))
    rest = await collect_run(ws, ack["run_id"])
    events = seen + rest

    assert violations(events) == []  # seq 1, 2, 3, … with no gap and no repeat, ending with the final event
    assert len({event["event_id"] for event in events}) == len(events)
    _run, stored = await _stored(target, account, ack["run_id"])
    assert events == stored
