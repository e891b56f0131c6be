"""Stopping runs (WebSocket and HTTP), the agent and tool catalogue, /ws/health and /metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

from support.clients import Account, collect_run, open_ws, recv_json, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import violations

PIPELINE_AGENTS = ["supervisor", "triage", "data_helper", "data", "optimization", "actions", "reporting"]


def _client(server: LiveServer, account: Account | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"} if account else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30)


async def _wait_run(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(400):
        run: dict[str, Any] = (await http.get(f"/api/runs/{run_id}")).json()
        if run["status"] not in ("queued", "running"):
            return run
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} never ended")


def _assert_ended_properly(events: list[dict[str, Any]], run: dict[str, Any]) -> str:
    """A stopped run ends with either its report or the supervisor's cancellation, and says which."""
    assert violations(events) == []
    final = events[-1]
    assert final["agent_name"] == "supervisor"
    assert final["data"]["final"] is True
    if final["type"] == "agent_error":
        assert final["data"]["code"] == "cancelled"
        assert (run["status"], run["error_code"]) == ("cancelled", "cancelled")
        # Every sub-agent that started was closed before the supervisor's final event.
        started = [e["agent_name"] for e in events if e["type"] == "agent_started"]
        ended = [e["agent_name"] for e in events if e["type"] in ("agent_completed", "agent_error")]
        assert sorted(started) == sorted(ended)
    else:
        assert final["type"] == "agent_completed"
        assert run["status"] == "completed"
        assert run["report"] == final["data"]["result"]
    assert run["last_seq"] == len(events)
    return str(run["status"])


async def test_stopped_runs_always_end_with_a_final_event_and_keep_the_contract(
    start_server: Callable[..., LiveServer],
) -> None:
    # each step takes a moment, as a real run's do: a stop sent behind the ack lands mid-run
    server = start_server(test_step_delay_ms=20)
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    delivered: dict[str, list[dict[str, Any]]] = {}
    errors: list[dict[str, Any]] = []
    async with ws:
        for index in range(12):
            await ws.send(json.dumps({"type": "user_message", "content": f"stop me {index}"}))
            while (frame := await recv_json(ws))["type"] != "ack":
                if frame["type"] == "error":
                    errors.append(frame)
            run_id = frame["run_id"]
            # Stop the instant the run exists; it may already be past its last step.
            await ws.send(json.dumps({"type": "stop_agent", "run_id": run_id}))
            events = delivered.setdefault(run_id, [])
            while not (events and events[-1]["data"].get("final")):
                frame = await recv_json(ws)
                if frame["type"] == "error":
                    errors.append(frame)
                elif frame.get("run_id") == run_id and "seq" in frame:
                    events.append(frame)
        await ws.send(json.dumps({"type": "ping"}))
        while (frame := await recv_json(ws))["type"] != "pong":
            errors.append(frame)
    # A stop that came too late is answered with an error naming the run; nothing else goes wrong.
    for error in errors:
        assert error["type"] == "error", error
        assert error["code"] == "conflict", error
        assert error["run_id"] in delivered
    statuses = []
    async with _client(server, account) as http:
        for run_id, events in delivered.items():
            run = await _wait_run(http, run_id)
            statuses.append(_assert_ended_properly(events, run))
            assert (await http.get(f"/api/runs/{run_id}/events")).json()["events"] == events
    assert set(statuses) <= {"completed", "cancelled"}
    # The pipeline yields between its steps, so a stop sent right behind the ack lands mid-run.
    assert statuses.count("cancelled") >= len(statuses) // 2, statuses


async def test_stop_agent_of_a_finished_or_unknown_run_is_an_error_and_the_connection_stays_open(
    server: LiveServer,
) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "A question that finishes")
        events = await collect_run(ws, ack["run_id"])
        async with _client(server, account) as http:
            await _wait_run(http, ack["run_id"])
        replies = []
        for run_id in (ack["run_id"], "no-such-run"):
            await ws.send(json.dumps({"type": "stop_agent", "run_id": run_id}))
            replies.append(await recv_json(ws))
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"
    finished, unknown = replies
    assert (finished["type"], finished["code"], finished["field"]) == ("error", "conflict", "run_id")
    assert finished["run_id"] == ack["run_id"]
    assert (unknown["type"], unknown["code"]) == ("error", "not_found")
    assert events[-1]["type"] == "agent_completed"


async def test_cancel_over_http(server: LiveServer) -> None:
    account = await signup(server.url)
    async with _client(server, account) as http:
        thread_id = (await http.post("/api/threads", json={})).json()["id"]
        for index in range(5):
            posted = (
                await http.post(f"/api/threads/{thread_id}/messages", json={"content": f"q{index}"})
            ).json()
            cancel = await http.post(f"/api/runs/{posted['run_id']}/cancel")
            assert cancel.status_code == 202
            assert cancel.json()["run_id"] == posted["run_id"]
            assert cancel.json()["status"] in ("cancelling", "completed", "cancelled")
            run = await _wait_run(http, posted["run_id"])
            events = (await http.get(f"/api/runs/{posted['run_id']}/events")).json()["events"]
            _assert_ended_properly(events, run)
            # Cancelling an ended run changes nothing and says how it ended.
            again = await http.post(f"/api/runs/{posted['run_id']}/cancel")
            assert again.status_code == 202
            assert again.json()["status"] == run["status"]
            assert (await http.get(f"/api/runs/{posted['run_id']}")).json() == run
        unknown = await http.post("/api/runs/no-such-run/cancel")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_agents_and_tools_list_the_pipeline_and_match_a_real_run(server: LiveServer) -> None:
    account = await signup(server.url)
    async with _client(server) as http:
        agents = (await http.get("/api/agents")).json()["agents"]
        tools = (await http.get("/api/tools")).json()["tools"]
    assert [a["name"] for a in agents] == PIPELINE_AGENTS
    assert agents[0]["pipeline"] == PIPELINE_AGENTS[1:]
    for agent in agents:
        assert agent["description"]
        assert isinstance(agent["tools"], list)
    assert agents[0]["tools"] == []  # the supervisor orchestrates; its sub-agents call the tools
    by_name = {tool["name"]: tool for tool in tools}
    assert len(by_name) == len(tools)
    owned = {(agent["name"], tool) for agent in agents for tool in agent["tools"]}
    assert owned == {(tool["agent"], tool["name"]) for tool in tools}
    for tool in tools:
        assert tool["description"]
        assert isinstance(tool["args_schema"], dict)
    # The catalogue describes what runs really do.
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Where is our spend going?")
        events = await collect_run(ws, ack["run_id"])
    used = {(e["agent_name"], e["tool_name"]) for e in events if e["type"] == "tool_executing"}
    assert used
    assert used <= owned
    assert {e["agent_name"] for e in events} <= set(PIPELINE_AGENTS)


async def _ws_health(live: LiveServer) -> dict[str, Any]:
    async with _client(live) as http:
        response = await http.get("/ws/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_ws_health_reports_connections_messages_and_authentication(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server()
    account = await signup(live.url)
    fresh = await _ws_health(live)
    assert set(fresh) == {"status", "service", "version", "metrics"}
    assert (fresh["status"], fresh["service"]) == ("ok", "websocket")
    assert isinstance(fresh["version"], str)
    assert fresh["version"]
    assert set(fresh["metrics"]) == {"websocket", "authentication"}
    assert set(fresh["metrics"]["websocket"]) == {
        "active_connections",
        "total_connections",
        "messages_processed",
        "error_rate",
    }
    assert set(fresh["metrics"]["authentication"]) == {"success_rate", "failures_by_reason"}
    assert fresh["metrics"]["websocket"]["active_connections"] == 0

    async with _client(live) as http:
        refused = await http.get(
            "/ws",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Authorization": "Bearer not-a-jwt",
            },
        )
    assert refused.status_code == 401
    first, _ = await open_ws(live.ws_url, account.access_token)
    second, _ = await open_ws(live.ws_url, account.access_token, method="first_message")
    async with first:
        async with second:
            await first.send(json.dumps({"type": "ping"}))
            assert (await recv_json(first))["type"] == "pong"
            await first.send("{not json")
            assert (await recv_json(first))["code"] == "invalid_json"
            both = (await _ws_health(live))["metrics"]
        one_left = await _until(live, lambda m: m["websocket"]["active_connections"] == 1)
    assert both["websocket"] == {
        "active_connections": 2,
        "total_connections": 2,
        "messages_processed": 2,
        "error_rate": 0.5,
    }
    assert both["authentication"]["success_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert sum(both["authentication"]["failures_by_reason"].values()) == 1
    assert one_left["websocket"]["total_connections"] == 2


async def _until(live: LiveServer, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll /ws/health until the server has processed a close (it happens after the client's)."""
    for _ in range(200):
        metrics: dict[str, Any] = (await _ws_health(live))["metrics"]
        if condition(metrics):
            return metrics
        await asyncio.sleep(0.025)
    raise AssertionError(f"/ws/health never reached the expected state: {metrics}")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _metrics(live: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with _client(live) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


async def test_metrics_expose_connections_events_closes_and_run_latencies(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server()
    account = await signup(live.url)
    ws: ClientConnection
    ws, _ = await open_ws(live.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Where is our spend going?")
        events = await collect_run(ws, ack["run_id"])
        async with _client(live, account) as http:
            await _wait_run(http, ack["run_id"])
        while_open = await _metrics(live)
    assert while_open[("tokenwise_ws_connections_active", frozenset())] == 1
    started = sum(1 for e in events if e["type"] == "agent_started")
    key = frozenset({("type", "agent_started"), ("transport", "websocket")})
    assert while_open[("tokenwise_events_sent_total", key)] == started
    sent = sum(v for (name, _), v in while_open.items() if name == "tokenwise_events_sent_total")
    assert sent == len(events)
    # The server records a close, and a run's duration, just after the client can see them happen.
    for _ in range(200):
        closed = await _metrics(live)
        if (
            closed.get(("tokenwise_ws_connections_active", frozenset())) == 0
            and closed.get(("tokenwise_run_duration_seconds_count", frozenset())) == 1
        ):
            break
        await asyncio.sleep(0.025)
    assert closed[("tokenwise_ws_connections_active", frozenset())] == 0
    assert closed[("tokenwise_ws_closes_total", frozenset({("code", "1000")}))] == 1
    assert closed[("tokenwise_run_duration_seconds_count", frozenset())] == 1
    assert closed[("tokenwise_time_to_first_event_seconds_count", frozenset())] == 1
    assert closed[("tokenwise_run_duration_seconds_sum", frozenset())] > 0
