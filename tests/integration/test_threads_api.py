"""Threads and messages over plain HTTP: listing, creating, paging, validation, authentication."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest

from support.clients import Account, signup
from support.live import LiveServer


def _client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {account.access_token}"}, timeout=30
    )


async def _wait_run(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(400):
        run: dict[str, Any] = (await http.get(f"/api/runs/{run_id}")).json()
        if run["status"] not in ("queued", "running"):
            return run
        await asyncio.sleep(0.025)
    raise AssertionError(f"run {run_id} never ended")


async def _ask(http: httpx.AsyncClient, thread_id: str, content: str) -> dict[str, Any]:
    """Post a message and wait for its run to end, so the assistant's answer is stored too."""
    response = await http.post(f"/api/threads/{thread_id}/messages", json={"content": content})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert (await _wait_run(http, body["run_id"]))["status"] == "completed"
    return body


async def test_create_list_and_get_threads(server: LiveServer) -> None:
    account = await signup(server.url)
    async with _client(server, account) as http:
        assert (await http.get("/api/threads")).json() == {"threads": []}
        titled = await http.post("/api/threads", json={"title": "  Q3 spend  "})
        untitled = await http.post("/api/threads", json={})
        assert titled.status_code == untitled.status_code == 201
        first, second = titled.json(), untitled.json()
        assert set(first) == {"id", "title", "created_at", "updated_at"}
        assert first["title"] == "Q3 spend"
        assert second["title"]
        assert (await http.get(f"/api/threads/{first['id']}")).json() == first
        listed = (await http.get("/api/threads")).json()["threads"]
        assert {t["id"] for t in listed} == {first["id"], second["id"]}
        # A new message moves its thread to the top of the list.
        await _ask(http, first["id"], "What did Q3 cost?")
        listed = (await http.get("/api/threads")).json()["threads"]
        assert [t["id"] for t in listed] == [first["id"], second["id"]]
        assert datetime.fromisoformat(listed[0]["updated_at"]) > datetime.fromisoformat(first["updated_at"])
        missing = await http.get("/api/threads/no-such-thread")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_messages_page_through_with_before_oldest_first_within_a_page(server: LiveServer) -> None:
    account = await signup(server.url)
    async with _client(server, account) as http:
        thread_id = (await http.post("/api/threads", json={"title": "paging"})).json()["id"]
        asked = [await _ask(http, thread_id, f"question {i}") for i in range(4)]
        everything = (await http.get(f"/api/threads/{thread_id}/messages", params={"limit": 500})).json()
        pages: list[list[dict[str, Any]]] = []
        before: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if before is not None:
                params["before"] = before
            page = (await http.get(f"/api/threads/{thread_id}/messages", params=params)).json()
            assert page["thread_id"] == thread_id
            if page["messages"]:
                pages.append(page["messages"])
            before = page["next_before"]
            if before is None:
                break
            assert len(pages) <= 4, "paging does not terminate"
    all_messages = everything["messages"]
    assert everything["next_before"] is None
    assert len(all_messages) == 8
    assert [m["role"] for m in all_messages] == ["user", "assistant"] * 4
    assert [m["content"] for m in all_messages[::2]] == [f"question {i}" for i in range(4)]
    assert [m["id"] for m in all_messages[::2]] == [a["message_id"] for a in asked]
    assert [m["run_id"] for m in all_messages] == [a["run_id"] for a in asked for _ in (0, 1)]
    for page in [all_messages, *pages]:
        stamps = [datetime.fromisoformat(m["created_at"]) for m in page]
        assert stamps == sorted(stamps)
    assert [len(page) for page in pages] == [3, 3, 2]
    # The first page is the newest; pages go back in time; together they are every message once.
    stitched = [message for page in reversed(pages) for message in page]
    assert stitched == all_messages


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/threads/{thread}/messages", {"content": ""}, "content"),
        ("POST", "/api/threads/{thread}/messages", {"content": "   "}, "content"),
        ("POST", "/api/threads/{thread}/messages", {}, "content"),
        ("POST", "/api/threads/{thread}/messages", {"content": "x" * 32_001}, "content"),
        ("POST", "/api/threads", {"title": ""}, "title"),
        ("GET", "/api/threads/{thread}/messages?limit=0", None, "limit"),
        ("GET", "/api/threads/{thread}/messages?limit=501", None, "limit"),
        ("GET", "/api/threads/{thread}/messages?before=yesterday", None, "before"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    server: LiveServer, method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    account = await signup(server.url)
    async with _client(server, account) as http:
        thread_id = (await http.post("/api/threads", json={})).json()["id"]
        response = await http.request(method, path.format(thread=thread_id), json=body)
        messages = (await http.get(f"/api/threads/{thread_id}/messages")).json()["messages"]
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert error["message"]
    assert messages == []


async def test_posting_the_same_client_message_id_twice_starts_one_run(server: LiveServer) -> None:
    account = await signup(server.url)
    async with _client(server, account) as http:
        thread_id = (await http.post("/api/threads", json={})).json()["id"]
        body = {"content": "Where does the money go?", "client_message_id": "http-1"}
        first = await http.post(f"/api/threads/{thread_id}/messages", json=body)
        second = await http.post(f"/api/threads/{thread_id}/messages", json=body)
        await _wait_run(http, first.json()["run_id"])
        messages = (await http.get(f"/api/threads/{thread_id}/messages")).json()["messages"]
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert [m["role"] for m in messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/threads"),
        ("POST", "/api/threads"),
        ("GET", "/api/threads/some-thread"),
        ("GET", "/api/threads/some-thread/messages"),
        ("POST", "/api/threads/some-thread/messages"),
        ("GET", "/api/runs/some-run"),
        ("GET", "/api/runs/some-run/events"),
        ("GET", "/api/runs/some-run/stream"),
        ("POST", "/api/runs/some-run/cancel"),
    ],
)
async def test_unauthenticated_requests_are_401_with_a_json_body(
    server: LiveServer, method: str, path: str
) -> None:
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for headers in attempts:
            response = await http.request(method, path, headers=headers, json={"content": "hi"})
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["content-type"].startswith("application/json")
            error = response.json()["error"]
            assert error["code"] in ("unauthenticated", "invalid_credentials", "token_expired")
            assert error["message"]
            assert response.headers["www-authenticate"].startswith("Bearer")
