"""Tokenwise over MCP, driven by the official SDK's own client (Streamable HTTP) against the real server:
list the tools, call each one, read a report resource; a second user sees none of the first user's data;
no credential is a 401. Runs against the in-process server, or a deployment (TOKENWISE_E2E_URL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import httpx2
import pytest
import pytest_asyncio
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from mission_critical.deployment import Target
from support.clients import Account
from support.compat import bearer

QUESTION = "What did we spend by model?"


@asynccontextmanager
async def mcp_client(target: Target, credential: str | None, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's client on `/api/mcp`, sending `Authorization: Bearer <credential>`."""
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300)) as http:
        transport = streamable_http_client(f"{target.url}/api/mcp", http_client=http)
        async with Client(transport, mode=mode, cache=None) as client:
            yield client


def _records() -> list[dict[str, Any]]:
    """Three days of two features on two models, at known token counts."""
    start = datetime(2025, 11, 3, tzinfo=UTC)
    records = []
    for hour in range(72):
        at = (start + timedelta(hours=hour)).isoformat()
        records.append(
            {
                "timestamp": at,
                "model": "gpt-4o",
                "feature": "classifier",
                "input_tokens": 2000,
                "output_tokens": 300,
            }
        )
        records.append(
            {
                "timestamp": at,
                "model": "gpt-4o-mini",
                "feature": "faq-bot",
                "input_tokens": 800,
                "output_tokens": 200,
            }
        )
    return records


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def owner(target: Target) -> Account:
    """A fresh user with usage data."""
    account = await target.new_account()
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(account), timeout=60) as http:
        response = await http.post("/api/workload/events", json={"records": _records()})
    assert response.status_code == 201, response.text
    return account


def _result(result: Any) -> dict[str, Any]:
    assert result.is_error is False, result.content
    structured: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == structured  # the same, as text for a model to read
    return structured


async def test_the_sdk_client_lists_and_calls_every_tool_and_reads_a_report(
    target: Target, owner: Account
) -> None:
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(owner), timeout=60) as http:
        listed = (await http.get("/api/mcp/tools")).json()["tools"]
    async with mcp_client(target, owner.access_token) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == [t["name"] for t in listed]
        for tool, rest in zip(tools, listed, strict=True):
            assert tool.input_schema == rest["input_schema"]
            assert tool.input_schema["type"] == "object"
            assert tool.description
        called: set[str] = set()

        async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            called.add(name)
            return _result(await client.call_tool(name, args))

        asked = await call("ask", {"question": QUESTION})
        assert asked["status"] == "completed"
        assert asked["report_id"] == asked["run_id"]
        assert "gpt-4o" in asked["answer"]
        datasets = (await call("list_datasets", {}))["datasets"]
        assert [d["row_count"] for d in datasets] == [144]
        reports = (await call("list_reports", {}))["reports"]
        assert [r["report_id"] for r in reports] == [asked["report_id"]]
        report = await call("get_report", {"report_id": asked["report_id"]})
        assert report["report"]["answer"]["text"] == asked["answer"]
        assert report["markdown"].strip()

        spend = await call("spend", {"start": "2025-11-03", "end": "2025-11-06"})
        assert spend["answer"]["answerable"] is True
        assert spend["plan"]["intent"] == "total"
        by_model = await call(
            "breakdown",
            {"by": "model", "filters": [{"dimension": "feature", "values": ["classifier", "faq-bot"]}]},
        )
        assert {row[0] for row in by_model["answer"]["table"]["rows"]} == {"gpt-4o", "gpt-4o-mini"}
        what_if = await call(
            "what_if",
            {
                "scenario": {"kind": "route", "target_model": "gpt-4o-mini", "share_pct": 50},
                "filters": [{"dimension": "feature", "values": ["classifier"]}],
            },
        )
        assert what_if["scenario"]["saving_monthly_usd"] > 0
        assert what_if["answer"]["answerable"] is True
        assert called == {t.name for t in tools}

        # Reports are resources too, the same report as GET /api/reports/{id} (and .md).
        uri = f"tokenwise://reports/{asked['report_id']}"
        assert uri in [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        assert "tokenwise://reports/{report_id}" in templates
        as_json = (await client.read_resource(uri)).contents[0]
        as_markdown = (await client.read_resource(f"{uri}.md")).contents[0]
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(owner), timeout=60) as http:
        stored = (await http.get(f"/api/reports/{asked['report_id']}")).json()
        markdown = (await http.get(f"/api/reports/{asked['report_id']}.md")).text
    assert as_json.mime_type == "application/json"
    assert json.loads(as_json.text) == stored  # type: ignore[union-attr]
    assert as_markdown.text == markdown  # type: ignore[union-attr]


async def test_a_second_user_sees_none_of_the_first_users_data(target: Target, owner: Account) -> None:
    async with mcp_client(target, owner.access_token) as client:
        asked = _result(
            await client.call_tool("ask", {"question": QUESTION, "thread_id": f"mcp-{owner.user_id[:8]}"})
        )
    stranger = await target.new_account()
    async with mcp_client(target, stranger.access_token) as client:
        assert _result(await client.call_tool("list_datasets", {})) == {"datasets": []}
        assert _result(await client.call_tool("list_reports", {})) == {"reports": []}
        assert (await client.list_resources()).resources == []
        spend = _result(await client.call_tool("spend", {}))
        assert spend["answer"]["answerable"] is False
        refused = await client.call_tool("get_report", {"report_id": asked["report_id"]})
        assert refused.is_error is True
        assert refused.structured_content == {
            "error": {
                "code": "not_found",
                "message": f"no report {asked['report_id']!r}",
                "field": "report_id",
            }
        }
        into = await client.call_tool("ask", {"question": "theirs?", "thread_id": asked["thread_id"]})
        assert into.is_error is True
        assert into.structured_content["error"]["code"] == "not_found"
        with pytest.raises(MCPError):
            await client.read_resource(f"tokenwise://reports/{asked['report_id']}")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_both_protocol_generations_are_served(target: Target, owner: Account, mode: str) -> None:
    async with mcp_client(target, owner.access_token, mode=mode) as client:
        assert "ask" in [t.name for t in (await client.list_tools()).tools]
        assert len(_result(await client.call_tool("list_datasets", {}))["datasets"]) == 1
        bad = await client.call_tool("breakdown", {"by": "colour"})
        assert bad.is_error is True
        assert bad.structured_content["error"]["field"] == "by"


async def test_an_api_key_with_read_scope_works_and_one_without_is_refused(
    target: Target, owner: Account
) -> None:
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(owner), timeout=60) as http:
        reader = (await http.post("/api/keys", json={"name": "mcp reader", "scopes": ["read"]})).json()
        ingester = (await http.post("/api/keys", json={"name": "exporter", "scopes": ["ingest"]})).json()
    async with mcp_client(target, reader["secret"]) as client:
        assert len(_result(await client.call_tool("list_datasets", {}))["datasets"]) == 1
    async with httpx.AsyncClient(base_url=target.url, timeout=60) as http:
        refused = await http.post(
            "/api/mcp", json=_initialize(), headers={"Authorization": f"Bearer {ingester['secret']}"}
        )
    assert refused.status_code == 403
    assert refused.json()["error"]["reason"] == "scope"


def _initialize() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/mcp"), ("GET", "/api/mcp/servers"), ("GET", "/api/mcp/tools")]
)
async def test_no_credential_is_401(target: Target, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=target.url, timeout=60) as http:
        response = await http.request(method, path, json=_initialize() if method == "POST" else None)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_the_sdk_client_without_a_credential_cannot_connect(target: Target) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK wraps the 401 in its own errors
        async with mcp_client(target, None) as client:
            await client.list_tools()


async def test_servers_names_this_one_with_its_tools(target: Target, owner: Account) -> None:
    async with httpx.AsyncClient(base_url=target.url, headers=bearer(owner), timeout=60) as http:
        servers = (await http.get("/api/mcp/servers")).json()["servers"]
        tools = (await http.get("/api/mcp/tools")).json()["tools"]
    assert len(servers) == 1
    server = servers[0]
    assert server["name"] == "tokenwise"
    assert server["url"].endswith("/api/mcp")
    assert (server["transport"], server["status"]) == ("streamable-http", "connected")
    assert server["tools"] == [t["name"] for t in tools]
    assert {"ask", "list_datasets", "get_report", "spend", "breakdown", "what_if"} <= set(server["tools"])
