"""Connectors over real HTTP against local stand-ins of the providers' report APIs: a sync pages through
the report, its figures reach the next answer, a later sync adds only what is new, a repeated sync does
not double anything, a refused key is reported as such, and the admin key is never shown or logged.
Every expected figure is computed here, from what the stand-in serves."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from support import anthropic_admin_server as anthropic
from support import openai_admin_server as openai
from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer, ServerProcess, wait_healthy
from support.report_server import DAY, ReportServer, midnight


def new_key(prefix: str) -> str:
    return f"{prefix}{secrets.token_urlsafe(24)}"


def client(base_url: str, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60)


async def create(
    base_url: str, account: Account, kind: str, key: str, stand_in: ReportServer
) -> dict[str, Any]:
    async with client(base_url, account) as http:
        response = await http.post(
            "/api/connectors", json={"kind": kind, "name": f"{kind} pull", "admin_key": key,
                                     "base_url": stand_in.url},
        )  # fmt: skip
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sync(base_url: str, account: Account, connector_id: str) -> dict[str, Any]:
    async with client(base_url, account) as http:
        response = await http.post(f"/api/connectors/{connector_id}/sync")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def spend(server: LiveServer, account: Account) -> float:
    """Ask "what did we spend?" over the WebSocket; the answer's Spend figure."""
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "What did we spend?")
        events = await collect_run(ws, ack["run_id"], timeout=60)
    figures = events[-1]["data"]["result"]["answer"]["figures"]
    [figure] = [f for f in figures if f["label"] == "Spend"]
    return float(figure["value"])


def tokens(server: LiveServer, user_id: str) -> tuple[int, int, int, int]:
    """(rows, input, cached input, output) over every file the analysis reads for the user."""
    usage = server.services.datasets.usage_for(user_id)
    paths = [str(p) for p in server.call(usage.parquet_paths())]
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT count(*), sum(input_tokens), sum(cached_input_tokens), sum(output_tokens) "
            "FROM read_parquet(?, union_by_name = true)",
            [paths],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


@pytest.fixture
def clock(server: LiveServer) -> Iterator[list[datetime]]:
    """The server's connector clock, set by the test (`clock[0] = moment`); the real one afterwards."""
    connectors = server.services.connectors
    moments = [datetime.now(UTC)]
    connectors.clock = lambda: moments[0]
    yield moments
    connectors.clock = lambda: datetime.now(UTC)


@pytest.fixture
def openai_api() -> Iterator[openai.OpenAIAdminServer]:
    stand_in = openai.OpenAIAdminServer(new_key("sk-admin-"), page_size=2).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def anthropic_api() -> Iterator[anthropic.AnthropicAdminServer]:
    stand_in = anthropic.AnthropicAdminServer(new_key("sk-ant-admin01-"), page_size=3).start()
    yield stand_in
    stand_in.stop()


def costs_of(day: int) -> list[dict[str, Any]]:
    """Day `day`'s OpenAI cost lines: a function of the day, so a re-pulled day serves the same lines."""
    return [
        openai.cost_result("gpt-4o, input", "proj_a", 1.25 + 0.5 * day),
        openai.cost_result("gpt-4o, output", "proj_a", 3.5 + day),
        openai.cost_result("gpt-4o-mini, input", "proj_b", 0.75 * (day + 1)),
    ]


def served_usd(stand_in: openai.OpenAIAdminServer) -> float:
    return sum(r["amount"]["value"] for results in stand_in.cost_days.values() for r in results)


async def test_openai_costs_sync_pages_resumes_and_never_doubles(
    server: LiveServer, openai_api: openai.OpenAIAdminServer, clock: list[datetime]
) -> None:
    account = await signup(server.url)
    day0 = midnight(datetime.now(UTC)) - timedelta(days=8)
    for d in range(4):
        openai_api.cost_days[day0 + d * DAY] = costs_of(d)
    openai_api.cost_days[day0 + 4 * DAY] = costs_of(4)[:1]  # the open day, so far
    clock[0] = openai_api.now = day0 + 4 * DAY + timedelta(hours=12)

    connector = await create(server.url, account, "openai_costs", openai_api.admin_key, openai_api)
    assert (connector["status"], connector["last_sync_at"], connector["rows_imported"]) == ("new", None, 0)
    synced = await sync(server.url, account, connector["id"])
    assert (synced["status"], synced["last_error"]) == ("ok", None), synced
    assert synced["rows_imported"] == 4 * 3 + 1
    assert synced["cursor"] == (day0 + 4 * DAY).isoformat()  # the open day is pulled again next time
    first = openai_api.requests
    assert len(first) > 1
    assert all(r.path == openai.COSTS for r in first)
    assert all(r.headers["authorization"] == f"Bearer {openai_api.admin_key}" for r in first)
    assert first[0].query["bucket_width"] == ["1d"]
    assert "page" in first[1].query
    assert sorted(first[0].query["group_by"]) == ["line_item", "project_id"]
    assert await spend(server, account) == pytest.approx(served_usd(openai_api), abs=0.005)

    # A day later: the open day is complete, and a new one has begun.
    openai_api.cost_days[day0 + 4 * DAY] = costs_of(4)
    openai_api.cost_days[day0 + 5 * DAY] = costs_of(5)[:2]
    clock[0] = openai_api.now = day0 + 5 * DAY + timedelta(hours=12)
    openai_api.requests.clear()
    again = await sync(server.url, account, connector["id"])
    assert again["status"] == "ok", again
    # From the open day of the last sync, or the last two closed days if earlier: here, day 3.
    assert openai_api.requests[0].query["start_time"] == [str(int((day0 + 3 * DAY).timestamp()))]
    assert again["rows_imported"] == 5 * 3 + 2
    assert again["dataset_id"] == synced["dataset_id"]
    assert await spend(server, account) == pytest.approx(served_usd(openai_api), abs=0.005)

    # The same pull again: nothing doubles.
    third = await sync(server.url, account, connector["id"])
    assert (third["rows_imported"], third["cursor"]) == (again["rows_imported"], again["cursor"])
    assert await spend(server, account) == pytest.approx(served_usd(openai_api), abs=0.005)
    async with client(server.url, account) as http:
        listed = (await http.get("/api/connectors")).json()["connectors"]
        datasets = (await http.get("/api/datasets")).json()["datasets"]
    assert [(c["id"], c["rows_imported"], c["status"]) for c in listed] == [(connector["id"], 17, "ok")]
    assert [d["id"] for d in datasets] == [synced["dataset_id"]]
    assert datasets[0]["detected_format"] == "openai_costs_api"


async def test_revised_closed_days_are_pulled_again_and_replace_the_old_figures(
    server: LiveServer,
    openai_api: openai.OpenAIAdminServer,
    anthropic_api: anthropic.AnthropicAdminServer,
    clock: list[datetime],
) -> None:
    account, other = await signup(server.url), await signup(server.url)
    today = midnight(datetime.now(UTC))
    for d in range(1, 6):
        openai_api.cost_days[today - d * DAY] = costs_of(d)
        anthropic_api.cost_days[today - d * DAY] = [anthropic.cost_result("Input", None, f"{1000 + d}")]
    clock[0] = openai_api.now = anthropic_api.now = today + timedelta(hours=9)
    costs = await create(server.url, account, "openai_costs", openai_api.admin_key, openai_api)
    reports = await create(server.url, other, "anthropic_costs", anthropic_api.admin_key, anthropic_api)
    assert (await sync(server.url, account, costs["id"]))["rows_imported"] == 5 * 3
    assert (await sync(server.url, other, reports["id"]))["rows_imported"] == 5

    # The provider revises the two closed days before today, and one day older than the window.
    openai_api.cost_days[today - 2 * DAY] = [*costs_of(2), openai.cost_result("late batch", "proj_c", 4.5)]
    openai_api.cost_days[today - DAY] = [openai.cost_result("gpt-4o, input", "proj_a", 99.0)]
    openai_api.cost_days[today - 3 * DAY] = [openai.cost_result("gpt-4o, input", "proj_a", 1000.0)]
    anthropic_api.cost_days[today - 2 * DAY] = [anthropic.cost_result("Input", None, "5555")]
    stale = sum(r["amount"]["value"] for r in costs_of(3))
    openai_api.requests.clear()
    anthropic_api.requests.clear()
    clock[0] = openai_api.now = anthropic_api.now = today + timedelta(hours=20)
    again = await sync(server.url, account, costs["id"])
    assert again["status"] == "ok", again
    assert openai_api.requests[0].query["start_time"] == [str(int((today - 2 * DAY).timestamp()))]
    assert again["rows_imported"] == 3 * 3 + 4 + 1  # days 5, 4, 3 as they were; day 2 revised; day 1 one line
    # The revised days replace what was stored; the day outside the window keeps its first figures.
    truth = served_usd(openai_api) - 1000.0 + stale
    assert await spend(server, account) == pytest.approx(truth, abs=0.005)
    assert await spend(server, account) == pytest.approx(truth, abs=0.005)  # asked twice: nothing doubles
    assert (await sync(server.url, account, costs["id"]))["rows_imported"] == again["rows_imported"]
    assert await spend(server, account) == pytest.approx(truth, abs=0.005)

    revised = await sync(server.url, other, reports["id"])
    assert anthropic_api.requests[0].query["starting_at"] == [f"{today - 2 * DAY:%Y-%m-%dT%H:%M:%SZ}"]
    assert revised["rows_imported"] == 5
    cents = sum(float(r["amount"]) for day in anthropic_api.cost_days.values() for r in day)
    assert await spend(server, other) == pytest.approx(cents / 100, abs=0.005)


async def test_openai_usage_tokens_arrive_with_cached_apart(
    server: LiveServer, openai_api: openai.OpenAIAdminServer, clock: list[datetime]
) -> None:
    account = await signup(server.url)
    day0 = midnight(datetime.now(UTC)) - timedelta(days=5)
    for d in range(3):
        openai_api.days[day0 + d * DAY] = [
            openai.usage_result("gpt-4o-2024-08-06", "proj_a", 40_000 + d, 10_000, 9_000 + d, 20 + d),
            openai.usage_result("gpt-4o-mini-2024-07-18", "proj_b", 90_000, 0, 12_000, 30),
        ]
    clock[0] = openai_api.now = day0 + 3 * DAY + timedelta(hours=1)  # today: no usage yet
    connector = await create(server.url, account, "openai_usage", openai_api.admin_key, openai_api)
    synced = await sync(server.url, account, connector["id"])
    assert synced["status"] == "ok", synced
    results = [r for day in openai_api.days.values() for r in day]
    truth = (
        sum(r["num_model_requests"] for r in results),
        sum(r["input_tokens"] for r in results),
        sum(r["input_cached_tokens"] for r in results),
        sum(r["output_tokens"] for r in results),
    )
    assert tokens(server, account.user_id) == truth
    assert "model" in openai_api.requests[0].query["group_by"]
    assert (await sync(server.url, account, connector["id"]))["rows_imported"] == truth[0]
    assert tokens(server, account.user_id) == truth


async def test_anthropic_reports_sync_with_their_headers_and_units(
    server: LiveServer, anthropic_api: anthropic.AnthropicAdminServer, clock: list[datetime]
) -> None:
    usage_user, cost_user = await signup(server.url), await signup(server.url)
    day0 = midnight(datetime.now(UTC)) - timedelta(days=6)
    for d in range(4):
        anthropic_api.days[day0 + d * DAY] = [
            anthropic.usage_result("claude-sonnet-4-5-20250929", "wrkspc_1", 50_000, 8_000, 2_000, 300_000,
                                   7_000 + d),
            anthropic.usage_result("claude-haiku-4-5-20251001", None, 120_000, 0, 0, 0, 20_000),
        ]  # fmt: skip
        anthropic_api.cost_days[day0 + d * DAY] = [
            anthropic.cost_result("Claude Sonnet 4.5 Usage - Input Tokens", "wrkspc_1", f"{1234.5 + d}"),
            anthropic.cost_result("Claude Sonnet 4.5 Usage - Output Tokens", None, "98765.4"),
        ]
    clock[0] = anthropic_api.now = day0 + 4 * DAY + timedelta(hours=3)
    usage = await create(server.url, usage_user, "anthropic_usage", anthropic_api.admin_key, anthropic_api)
    assert (await sync(server.url, usage_user, usage["id"]))["status"] == "ok"
    request = anthropic_api.requests[0]
    assert request.path == anthropic.USAGE
    assert (request.headers["x-api-key"], request.headers["anthropic-version"]) == (
        anthropic_api.admin_key,
        "2023-06-01",
    )
    assert "model" in request.query["group_by[]"]
    assert request.query["starting_at"][0].endswith("Z")
    results = [r for day in anthropic_api.days.values() for r in day]
    inputs = sum(
        r["uncached_input_tokens"] + r["cache_read_input_tokens"] + sum(r["cache_creation"].values())
        for r in results
    )
    reads = sum(r["cache_read_input_tokens"] for r in results)
    outputs = sum(r["output_tokens"] for r in results)
    assert tokens(server, usage_user.user_id) == (len(results), inputs, reads, outputs)

    costs = await create(server.url, cost_user, "anthropic_costs", anthropic_api.admin_key, anthropic_api)
    synced = await sync(server.url, cost_user, costs["id"])
    assert (synced["status"], synced["rows_imported"]) == ("ok", 8)
    cents = sum(float(r["amount"]) for day in anthropic_api.cost_days.values() for r in day)
    assert await spend(server, cost_user) == pytest.approx(cents / 100, abs=0.005)
    assert (await sync(server.url, cost_user, costs["id"]))["rows_imported"] == 8
    assert await spend(server, cost_user) == pytest.approx(cents / 100, abs=0.005)


async def test_a_refused_key_and_provider_errors_are_reported_without_the_key(
    server: LiveServer, openai_api: openai.OpenAIAdminServer, anthropic_api: anthropic.AnthropicAdminServer
) -> None:
    account, other = await signup(server.url), await signup(server.url)
    wrong = new_key("sk-admin-")
    refused = await create(server.url, account, "openai_costs", wrong, openai_api)
    body = await sync(server.url, account, refused["id"])
    assert body["status"] == "error"
    assert body["last_error"].startswith("the admin key was refused")
    assert wrong not in str(body)
    assert body["last_sync_at"] is None
    ant_wrong = new_key("sk-ant-admin01-")
    ant = await create(server.url, account, "anthropic_usage", ant_wrong, anthropic_api)
    assert (await sync(server.url, account, ant["id"]))["last_error"].startswith("the admin key was refused")

    # A provider that echoes the key in its error: the message is kept, the key is not.
    openai_api.failure = 500
    right = await create(server.url, account, "openai_usage", openai_api.admin_key, openai_api)
    failed = await sync(server.url, account, right["id"])
    assert failed["status"] == "error"
    assert "HTTP 500" in failed["last_error"]
    assert "[redacted]" in failed["last_error"]
    assert openai_api.admin_key not in str(failed)
    openai_api.failure = None
    assert (await sync(server.url, account, right["id"]))["status"] == "ok"

    async with client(server.url, account) as http, client(server.url, other) as theirs:
        listed = await http.get("/api/connectors")
        assert wrong not in listed.text
        assert openai_api.admin_key not in listed.text
        assert len(listed.json()["connectors"]) == 3
        for method, path in (("POST", f"/api/connectors/{right['id']}/sync"),
                             ("DELETE", f"/api/connectors/{right['id']}")):  # fmt: skip
            response = await theirs.request(method, path)
            assert response.status_code == 404, response.text
        assert (await theirs.get("/api/connectors")).json()["connectors"] == []
        for bad, field in (
            ({"kind": "gemini_usage", "name": "x", "admin_key": "sk-admin-123456"}, "kind"),
            ({"kind": "openai_usage", "name": " ", "admin_key": "sk-admin-123456"}, "name"),
            ({"kind": "openai_usage", "name": "x", "admin_key": "short"}, "admin_key"),
            ({"kind": "openai_usage", "name": "x", "admin_key": "sk-admin-123456", "base_url": "ftp://x"},
             "base_url"),
        ):  # fmt: skip
            response = await http.post("/api/connectors", json=bad)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["field"] == field
        dataset_id = (await http.get("/api/connectors")).json()["connectors"][2]["dataset_id"]
        assert (await http.delete(f"/api/connectors/{right['id']}")).status_code == 204
        assert (await http.get(f"/api/datasets/{dataset_id}")).status_code == 404
        assert len((await http.get("/api/connectors")).json()["connectors"]) == 2
    stored = server.call(server.services.connectors.list(account.user_id))
    assert all(wrong not in row.admin_key and ant_wrong not in row.admin_key for row in stored)


async def test_the_schedule_syncs_on_its_own(start_server: Any, openai_api: openai.OpenAIAdminServer) -> None:
    live: LiveServer = start_server(connector_interval_s=0.5)
    account = await signup(live.url)
    openai_api.cost_days[midnight(datetime.now(UTC)) - DAY] = costs_of(0)
    connector = await create(live.url, account, "openai_costs", openai_api.admin_key, openai_api)
    async with client(live.url, account) as http:
        for _ in range(100):
            [listed] = (await http.get("/api/connectors")).json()["connectors"]
            if listed["status"] == "ok":
                break
            await asyncio.sleep(0.1)
    assert (listed["id"], listed["status"], listed["rows_imported"]) == (connector["id"], "ok", 3)


class _VerboseServer(ServerProcess):
    """`tokenwise serve` logging at debug level, access log included."""

    def start(self, *, wait: bool = True) -> _VerboseServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tokenwise", "serve", "--log-level", "debug"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.url)
        return self


@pytest.mark.slow
async def test_admin_keys_never_reach_the_log_or_the_database_in_clear(
    tmp_path: Path, openai_api: openai.OpenAIAdminServer, anthropic_api: anthropic.AnthropicAdminServer
) -> None:
    openai_api.cost_days[midnight(datetime.now(UTC)) - DAY] = costs_of(1)
    anthropic_api.cost_days[midnight(datetime.now(UTC)) - DAY] = [anthropic.cost_result("x", None, "250")]
    process = _VerboseServer(tmp_path / "verbose").start()
    keys = [openai_api.admin_key, anthropic_api.admin_key, new_key("sk-admin-")]
    try:
        account = await signup(process.url)
        made = [
            await create(process.url, account, "openai_costs", keys[0], openai_api),
            await create(process.url, account, "anthropic_costs", keys[1], anthropic_api),
            await create(process.url, account, "openai_usage", keys[2], openai_api),
        ]
        results = [await sync(process.url, account, c["id"]) for c in made]
        assert [r["status"] for r in results] == ["ok", "ok", "error"]
        openai_api.failure = 503
        await sync(process.url, account, made[0]["id"])
    finally:
        process.terminate()
    log = process.log()
    assert "POST /api/connectors" in log  # the access log was on
    assert "sync failed" in log
    database = (tmp_path / "verbose" / "tokenwise.db").read_bytes()
    for key in keys:
        assert key not in log
        assert key.encode() not in database
