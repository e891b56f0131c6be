"""The REST agent routes and the health wording of the platform Tokenwise replaces: the same runs, the
same storage, the same events as the WebSocket. Runs against the in-process server, or a deployment
(TOKENWISE_E2E_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mission_critical.deployment import Connections, Target
from support.clients import Account, signup
from support.compat import Recorder, bearer, finished_run, is_utc_timestamp, sse_events, stored_events
from support.live import LiveServer, test_settings
from tokenwise.agents.catalogue import PIPELINE
from tokenwise.session.contract import missing_critical, violations

QUESTION = "How do I cut my LLM costs by 30%?"
AGENTS = ["triage", "data", "optimization", "actions", "reporting"]


def _client(target: Target, account: Account | None = None) -> httpx.AsyncClient:
    headers = bearer(account) if account is not None else {}
    return httpx.AsyncClient(base_url=target.url, headers=headers, timeout=60)


async def test_execute_starts_the_run_the_websocket_shows(
    target: Target, account: Account, connections: Connections
) -> None:
    ws, welcome = await connections.open(account)
    client = Recorder(ws, welcome)  # follows the user's new runs, whoever started them
    async with _client(target, account) as http:
        response = await http.post("/api/agents/execute", json={"message": QUESTION})
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "queued"
        assert accepted["thread_id"]
        events = await client.run(accepted["run_id"])
        assert await stored_events(http, accepted["run_id"]) == events
        run = await finished_run(http, accepted["run_id"])
    assert missing_critical(events) == []
    assert violations(events) == []
    assert {e["thread_id"] for e in events} == {accepted["thread_id"]}
    assert run["status"] == "completed"
    assert run["report"] == events[-1]["data"]["result"]


async def test_stream_returns_the_events_the_websocket_delivers(
    target: Target, account: Account, connections: Connections
) -> None:
    ws, welcome = await connections.open(account)
    client = Recorder(ws, welcome)
    async with _client(target, account) as http:
        async with http.stream("POST", "/api/agents/stream", json={"message": QUESTION}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            run_id, thread_id = response.headers["x-run-id"], response.headers["x-thread-id"]
            body = (await response.aread()).decode()  # the stream ends after the final event
        streamed = sse_events(body)
        over_ws = await client.run(run_id)
        stored = await stored_events(http, run_id)
    assert streamed == over_ws == stored
    assert streamed[-1]["data"]["final"] is True
    assert {e["thread_id"] for e in streamed} == {thread_id}
    assert missing_critical(streamed) == []
    assert violations(streamed) == []


async def test_execute_into_a_thread_the_client_names(target: Target, account: Account) -> None:
    thread_id = f"ext-{account.user_id[:8]}:rest_1.0"
    async with _client(target, account) as http:
        first = await http.post("/api/agents/execute", json={"message": QUESTION, "thread_id": thread_id})
        assert first.status_code == 202, first.text
        assert first.json()["thread_id"] == thread_id
        await finished_run(http, first.json()["run_id"])
        again = await http.post(
            "/api/agents/execute", json={"message": "and by model?", "thread_id": thread_id}
        )
        await finished_run(http, again.json()["run_id"])
        messages = (await http.get(f"/api/threads/{thread_id}/messages")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    other = await target.new_account()
    async with _client(target, other) as http:
        refused = await http.post("/api/agents/execute", json={"message": "hi", "thread_id": thread_id})
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"] == {
        "code": "not_found",
        "message": f"no thread {thread_id!r}",
        "field": "thread_id",
    }


@pytest.mark.parametrize("agent", AGENTS)
async def test_an_agent_route_runs_the_pipeline_up_to_that_agent(
    target: Target, account: Account, agent: str
) -> None:
    async with _client(target, account) as http:
        response = await http.post(f"/api/agents/{agent}", json={"message": QUESTION})
        assert response.status_code == 202, response.text
        assert response.json()["agent"] == agent
        run = await finished_run(http, response.json()["run_id"])
        events = await stored_events(http, run["id"])
    assert violations(events) == []
    assert run["status"] == "completed"
    started = [e["agent_name"] for e in events if e["type"] == "agent_started"][1:]  # after the supervisor's
    later = PIPELINE[PIPELINE.index(agent) + 1 : -1]
    assert agent in started
    assert not set(started) & set(later), started
    assert started[-1] == "reporting"  # the report is always written
    completed = {e["agent_name"]: e["data"]["result"] for e in events if e["type"] == "agent_completed"}
    assert run["report"]["agent"] == {"name": agent, "result": completed[agent]}


@dataclass
class Slow:
    """A server whose runs last a few seconds (TEST ONLY step delay), to watch and stop one mid-flight;
    a deployment has no such setting, so against one only what holds whatever the timing is checked."""

    target: Target
    mid_flight: bool

    async def account(self) -> Account:
        return await (signup(self.target.url) if self.mid_flight else self.target.login())


@pytest.fixture(scope="module")
def slow(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slow]:
    if target.external:
        yield Slow(target, mid_flight=False)
        return
    data_dir: Path = tmp_path_factory.mktemp("slow")
    live = LiveServer(test_settings(data_dir, test_step_delay_ms=40)).start()
    try:
        yield Slow(Target(live.url, "", "", external=False), mid_flight=True)
    finally:
        live.stop()


async def test_status_lists_the_active_runs_and_cancel_stops_one(slow: Slow) -> None:
    account = await slow.account()
    async with _client(slow.target, account) as http:
        run_id = (await http.post("/api/agents/execute", json={"message": QUESTION})).json()["run_id"]
        status = (await http.get("/api/agents/status")).json()
        listed = {run["run_id"]: run for run in status["runs"]}
        assert status["active"] == len(status["runs"])
        assert all(run["status"] in ("queued", "running") for run in status["runs"])
        cancelled = await http.post(f"/api/agents/{run_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        ended = await finished_run(http, run_id)
        events = await stored_events(http, run_id)
        assert violations(events) == []
        if slow.mid_flight:
            assert run_id in listed
            assert listed[run_id]["thread_id"]
            assert cancelled.json() == {"run_id": run_id, "status": "cancelling"}
            assert ended["status"] == "cancelled"
            assert events[-1]["type"] == "agent_error"
            assert events[-1]["data"]["code"] == "cancelled"
        after = (await http.get("/api/agents/status")).json()
        assert run_id not in {run["run_id"] for run in after["runs"]}
        again = await http.post(f"/api/agents/{run_id}/cancel")
        assert again.json() == {"run_id": run_id, "status": ended["status"]}
        missing = await http.post("/api/agents/no-such-run/cancel")
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "run_id"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/agents/execute"),
        ("POST", "/api/agents/triage"),
        ("POST", "/api/agents/stream"),
        ("GET", "/api/agents/status"),
        ("POST", "/api/agents/some-run/cancel"),
    ],
)
async def test_every_agent_route_needs_a_bearer_token(target: Target, method: str, path: str) -> None:
    async with _client(target) as http:
        response = await http.request(method, path, json={"message": QUESTION})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/agents/execute", {}, "message"),
        ("/api/agents/execute", {"thread_id": "t-1"}, "message"),
        ("/api/agents/execute", {"message": "   "}, "message"),
        ("/api/agents/execute", {"message": 42}, "message"),
        ("/api/agents/execute", {"message": "hi", "thread_id": "no spaces allowed"}, "thread_id"),
        ("/api/agents/execute", {"message": "hi", "agent": "janitor"}, "agent"),
        ("/api/agents/stream", {"payload": {}}, "message"),
        ("/api/agents/data", {"text": ""}, "message"),
        ("/api/agents/execute", [1, 2], "body"),
    ],
)
async def test_a_body_without_text_is_422_naming_the_field(
    target: Target, account: Account, path: str, body: object, field: str
) -> None:
    async with _client(target, account) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert response.json()["error"]["field"] == field


async def test_the_text_may_come_in_the_dialects_spellings(target: Target, account: Account) -> None:
    async with _client(target, account) as http:
        for body in (
            {"content": QUESTION},
            {"payload": {"user_request": QUESTION}},
            {"data": {"request": QUESTION}},
        ):
            response = await http.post("/api/agents/execute", json=body)
            assert response.status_code == 202, (body, response.text)
            await finished_run(http, response.json()["run_id"])
        unknown = await http.post("/api/agents/janitor", json={"message": QUESTION})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "agent"


async def test_the_agent_catalogue_still_answers(target: Target) -> None:
    async with _client(target) as http:
        response = await http.get("/api/agents")
    assert response.status_code == 200
    names = [agent["name"] for agent in response.json()["agents"]]
    assert names[0] == "supervisor"
    assert set(AGENTS) <= set(names)


@pytest.mark.parametrize("path", ["/health", "/api/health"])
async def test_health_answers_in_the_wording_those_clients_read(target: Target, path: str) -> None:
    async with _client(target) as http:
        response = await http.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["service"] == "tokenwise"
    assert body["version"]
    assert is_utc_timestamp(body["timestamp"])
    assert body["role"] in ("all", "api")
