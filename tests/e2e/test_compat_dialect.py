"""The WebSocket dialect of the platform Tokenwise replaces: its clients work unchanged (docs/protocol.md,
"Accepted dialect"). Runs against the in-process server, or a deployment (TOKENWISE_E2E_URL)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mission_critical.deployment import Connections, Target
from support.clients import Account
from support.compat import Recorder, bearer, stored_events
from tokenwise.session.contract import missing_critical, violations
from tokenwise.session.events import CRITICAL_TYPES

QUESTION = "Where is our LLM spend going, and how do we cut it?"
# Each alias type with a different text key and place, so that every key and place is covered as well.
ALIASES = [
    ("execute_agent", "payload", "user_request"),
    ("EXECUTE_AGENT", "data", "request"),
    ("agent_request", None, "message"),
    ("agent", "payload", "content"),
    ("user_input", "data", "text"),
    ("user", None, "request"),
    ("chat", "payload", "message"),
]


def _frame(kind: str, place: str | None, key: str, text: str, **fields: Any) -> dict[str, Any]:
    body = {key: text, **fields}
    return {"type": kind, **body} if place is None else {"type": kind, place: body}


async def _open(connections: Connections, account: Account) -> Recorder:
    ws, welcome = await connections.open(account)
    return Recorder(ws, welcome)


@pytest.mark.parametrize(("kind", "place", "key"), ALIASES)
async def test_each_alias_frame_starts_a_run_with_the_five_critical_events(
    target: Target, account: Account, connections: Connections, kind: str, place: str | None, key: str
) -> None:
    client = await _open(connections, account)
    ack = await client.reply(_frame(kind, place, key, f"{QUESTION} ({kind})"))
    assert ack["type"] == "ack", ack
    events = await client.run(ack["run_id"])
    assert missing_critical(events) == []
    assert violations(events) == []
    assert events[-1]["type"] == "agent_completed"
    assert client.untimed() == []
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(account), timeout=30) as http:
        assert await stored_events(http, ack["run_id"]) == events


async def test_the_welcome_frame_carries_what_those_clients_read(
    account: Account, connections: Connections
) -> None:
    client = await _open(connections, account)
    welcome = client.frames[0]
    assert welcome["type"] == "connection_established"
    assert welcome["connection_ready"] is True
    assert welcome["golden_path_events"] == list(CRITICAL_TYPES)
    assert welcome["config"] == {
        "heartbeat_interval": welcome["heartbeat_interval_s"],
        "max_message_size": welcome["max_message_bytes"],
    }
    assert welcome["config"]["heartbeat_interval"] > 0
    assert welcome["config"]["max_message_size"] > 0
    assert client.untimed() == []


async def test_heartbeat_is_answered_healthy(account: Account, connections: Connections) -> None:
    client = await _open(connections, account)
    answer = await client.reply({"type": "heartbeat"})
    assert answer.pop("timestamp")
    assert answer == {"type": "heartbeat_ack", "status": "healthy"}


async def test_every_server_frame_carries_a_utc_timestamp(account: Account, connections: Connections) -> None:
    """Welcome, ack, run events, pong, heartbeat_ack, errors, history, auth_refreshed, diagnostics."""
    client = await _open(connections, account)
    ack = await client.reply({"type": "user_message", "content": QUESTION})
    await client.run(ack["run_id"])
    replies = [
        await client.reply({"type": "ping"}),
        await client.reply({"type": "heartbeat"}),
        await client.reply({"type": "teleport"}),  # unknown_type
        await client.reply({"type": "resume", "run_id": "no-such-run"}),  # not_found
        await client.reply({"type": "stop_agent", "run_id": ack["run_id"]}),  # conflict: it has ended
        await client.reply({"type": "get_thread_history", "thread_id": ack["thread_id"]}),
        await client.reply({"type": "auth_refresh", "token": account.access_token}),
        await client.reply({"type": "diagnostics"}),
    ]
    kinds = [reply["type"] for reply in replies]
    assert kinds == [
        "pong",
        "heartbeat_ack",
        "error",
        "error",
        "error",
        "thread_history",
        "auth_refreshed",
        "diagnostics",
    ]
    assert client.untimed() == []
    assert {frame["type"] for frame in client.frames} >= {"connection_established", "ack", *CRITICAL_TYPES}


async def test_a_thread_id_the_client_chooses_opens_that_thread(
    target: Target, account: Account, connections: Connections
) -> None:
    thread_id = f"crm:ticket-{uuid.uuid4().hex[:12]}_v1.0"
    client = await _open(connections, account)
    first = await client.reply(
        _frame("execute_agent", "payload", "user_request", QUESTION, thread_id=thread_id)
    )
    assert (first["type"], first["thread_id"]) == ("ack", thread_id)
    assert violations(await client.run(first["run_id"])) == []
    # The same id again continues that thread (a follow-up is read in its context).
    again = await client.reply(_frame("chat", None, "message", "and by model?", thread_id=thread_id))
    assert (again["type"], again["thread_id"]) == ("ack", thread_id)
    assert violations(await client.run(again["run_id"])) == []
    history = await client.reply({"type": "get_thread_history", "thread_id": thread_id})
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [m["run_id"] for m in history["messages"]][::2] == [first["run_id"], again["run_id"]]
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(account), timeout=30) as http:
        thread = await http.get(f"/api/threads/{thread_id}")
    assert thread.status_code == 200, thread.text
    assert thread.json()["id"] == thread_id


async def test_a_client_chosen_thread_stays_its_users(
    target: Target, account: Account, connections: Connections
) -> None:
    thread_id = f"shared-name-{uuid.uuid4().hex[:12]}"
    owner = await _open(connections, account)
    ack = await owner.reply(
        {"type": "user_input", "data": {"text": "Owner's question", "thread_id": thread_id}}
    )
    await owner.run(ack["run_id"])
    other_account = await target.new_account()
    intruder = await _open(connections, other_account)
    attempts: list[dict[str, Any]] = [
        {"type": "agent", "payload": {"content": "write into their thread", "thread_id": thread_id}},
        {"type": "user_message", "content": "and again", "thread_id": thread_id},
        {"type": "get_thread_history", "thread_id": thread_id},
    ]
    for attempt in attempts:
        error = await intruder.reply(attempt)
        assert error.pop("timestamp")
        # Exactly what a thread that does not exist at all would give: nothing says it exists.
        assert error == {
            "type": "error",
            "code": "not_found",
            "message": f"no thread {thread_id!r}",
            "field": "thread_id",
        }
    # A fresh id of the intruder's own is theirs, and the owner's thread is untouched.
    own = await intruder.reply({"type": "chat", "message": "mine", "thread_id": f"{thread_id}-b"})
    assert own["thread_id"] == f"{thread_id}-b"
    await intruder.run(own["run_id"])
    history = await owner.reply({"type": "get_thread_history", "thread_id": thread_id})
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["Owner's question"]
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(other_account), timeout=30) as http:
        threads = (await http.get("/api/threads")).json()["threads"]
    assert [t["id"] for t in threads] == [f"{thread_id}-b"]


@pytest.mark.parametrize("thread_id", ["x" * 129, "has space", "slash/ed"])
async def test_a_thread_id_no_client_may_choose_is_refused(
    account: Account, connections: Connections, thread_id: str
) -> None:
    client = await _open(connections, account)
    error = await client.reply(
        {"type": "execute_agent", "payload": {"message": "hi", "thread_id": thread_id}}
    )
    assert (error["type"], error["code"], error["field"]) == ("error", "invalid_message", "thread_id")
