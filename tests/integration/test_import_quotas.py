"""Per-user import quotas and fair import slots, against the real server (and a real Redis for a cluster).

Imports at once per user (`max_imports_per_user`) and body bytes per UTC day
(`max_import_bytes_per_user_per_day`) are refused with 429, a Retry-After and the quota's name, before
anything is stored; the workload-events stream stays within the rows of one dataset; and one user's
flood of imports never queues another user's upload behind it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Account, signup
from support.live import LiveServer
from support.servers import RedisServer
from tokenwise.usage.import_quota import CountedImports, ImportQuotaExceeded, TooManyImports

HEADER = "ts,model,input_tokens,output_tokens\n"
BOUNDARY = "quota-test-boundary"


def _csv(rows: int, seed: int = 0) -> bytes:
    lines = (
        f"2024-01-0{1 + i % 9}T{i % 24:02d}:{i % 60:02d}:00Z,gpt-4o,{seed * 10_000 + i},{i % 97}\n"
        for i in range(rows)
    )
    return (HEADER + "".join(lines)).encode()


def _records(count: int, seed: int = 0) -> list[dict[str, Any]]:
    return [
        {"ts": f"2024-01-01T00:{i % 60:02d}:00Z", "model": "gpt-4o", "input_tokens": seed * 10_000 + i,
         "output_tokens": 1}
        for i in range(count)
    ]  # fmt: skip


def _client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120)


async def _upload(client: httpx.AsyncClient, name: str, content: bytes) -> httpx.Response:
    return await client.post("/api/datasets", files={"file": (name, content)})


async def _held_upload(client: httpx.AsyncClient, content: bytes, go: asyncio.Event) -> httpx.Response:
    """An upload whose body stops half way until `go` is set: an import in progress, holding its slot."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="held.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head + content[: len(content) // 2]
        await go.wait()
        yield content[len(content) // 2 :] + tail

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return await client.post("/api/datasets", content=body(), headers=headers)


async def _datasets(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/datasets")
    assert response.status_code == 200, response.text
    datasets: list[dict[str, Any]] = response.json()["datasets"]
    return datasets


def _leftovers(server: LiveServer) -> list[Path]:
    """Files an import left in the work directory (a refused one must leave none)."""
    work_dir: Path = server.services.datasets.work_dir
    return [path for path in work_dir.glob("*") if path.is_file()] if work_dir.exists() else []


def _assert_quota_refusal(response: httpx.Response, code: str, quota: str, limit: int) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["quota"] == quota
    assert error["limit"] == limit
    assert str(limit) in error["message"]
    assert int(response.headers["Retry-After"]) >= 1
    return error


async def test_imports_at_once_over_the_quota_are_refused_before_reading(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(max_imports_per_user=1)
    flooder, other = await signup(server.url), await signup(server.url)
    go = asyncio.Event()
    async with _client(server, flooder) as client, _client(server, other) as other_client:
        held = asyncio.create_task(_held_upload(client, _csv(50, seed=1), go))
        await asyncio.sleep(0.5)  # the held upload has its slot and is being received
        assert not held.done()
        refused = await _upload(client, "second.csv", _csv(20, seed=2))
        events = await client.post("/api/workload/events", json={"records": _records(5)})
        others = await _upload(other_client, "theirs.csv", _csv(20, seed=3))  # their own quota
        go.set()
        finished = await held
        again = await _upload(client, "third.csv", _csv(20, seed=4))  # the slot is free again
        names = [row["name"] for row in await _datasets(client)]

    error = _assert_quota_refusal(refused, "too_many_imports", "max_imports_per_user", 1)
    assert "at most 1 imports per user at once" in error["message"]
    _assert_quota_refusal(events, "too_many_imports", "max_imports_per_user", 1)
    assert int(refused.headers["Retry-After"]) <= 60
    assert others.status_code == 201, others.text
    assert finished.status_code == 201, finished.text
    assert again.status_code == 201, again.text
    assert sorted(names) == ["held.csv", "third.csv"]  # nothing of the refused ones was stored
    assert _leftovers(server) == []


async def test_bytes_a_day_over_the_quota_are_refused_and_nothing_is_stored(
    start_server: Callable[..., LiveServer],
) -> None:
    limit = 24 * 1024
    server = start_server(max_import_bytes_per_user_per_day=limit)
    user, other = await signup(server.url), await signup(server.url)
    file = _csv(270, seed=1)
    assert 9 * 1024 < len(file) < 11 * 1024

    async def streamed(content: bytes) -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(content), 4096):
            yield content[start : start + 4096]

    async with _client(server, user) as client, _client(server, other) as other_client:
        first = await _upload(client, "one.csv", file)
        second = await _upload(client, "two.csv", _csv(270, seed=2))
        declared = await _upload(client, "three.csv", _csv(270, seed=3))  # refused from Content-Length
        events = await client.post("/api/workload/events", json={"records": _records(100)})
        form = httpx.Request("POST", server.url, files={"file": ("four.csv", _csv(270, seed=4))})
        chunked = await client.post(
            "/api/datasets",
            content=streamed(form.read()),
            headers={"Content-Type": form.headers["Content-Type"]},
        )
        otlp = await client.post(
            "/v1/traces", content=b'{"resourceSpans": []}', headers={"Content-Type": "application/json"}
        )
        theirs = await _upload(other_client, "theirs.csv", file)  # another user's bytes are their own
        names = [row["name"] for row in await _datasets(client)]

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    for refused in (declared, events, chunked, otlp):
        error = _assert_quota_refusal(
            refused, "import_quota_exceeded", "max_import_bytes_per_user_per_day", limit
        )
        assert error["used_bytes"] > limit
        assert "per user per day" in error["message"]
        assert int(refused.headers["Retry-After"]) <= 24 * 3600
    assert otlp.json()["code"] == 8  # google.rpc RESOURCE_EXHAUSTED: an exporter retries after Retry-After
    assert theirs.status_code == 201, theirs.text
    assert sorted(names) == ["one.csv", "two.csv"]
    assert _leftovers(server) == []


async def test_the_events_stream_stays_within_the_rows_of_one_dataset(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(max_dataset_rows=1500)
    account = await signup(server.url)
    async with _client(server, account) as client:
        first = await client.post("/api/workload/events", json={"records": _records(1000, seed=1)})
        over = await client.post("/api/workload/events", json={"records": _records(1000, seed=2)})
        fits = await client.post("/api/workload/events", json={"records": _records(500, seed=3)})
        full = await client.post("/api/workload/events", json={"records": _records(1, seed=4)})
        (stream,) = await _datasets(client)

    assert first.status_code == 201, first.text
    for refused in (over, full):
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["limit_rows"] == 1500
        assert "rows per dataset" in refused.json()["error"]["message"]
    assert over.json()["error"]["stored_rows"] == 1000
    assert fits.status_code == 201, fits.text
    assert stream["row_count"] == 1500
    parts = server.services.datasets.files_of(await _row(server, stream["id"], account))
    assert len(parts) == 2  # the refused batches left no part file behind


async def _row(server: LiveServer, dataset_id: str, account: Account) -> Any:
    return server.call(server.services.datasets.get(account.user_id, dataset_id))


async def test_a_flood_of_imports_does_not_queue_another_users_upload(
    start_server: Callable[..., LiveServer],
) -> None:
    # A quota high enough to let the flood in: this is about the slots, not the quota.
    server = start_server(max_imports_per_user=100)
    flooder, other = await signup(server.url), await signup(server.url)
    async with _client(server, flooder) as client, _client(server, other) as other_client:
        flood = [
            asyncio.create_task(client.post("/api/workload/events", json={"records": _records(1000, i)}))
            for i in range(30)
        ]
        await asyncio.sleep(0.5)  # the flood is queued for the import slots
        small = await _upload(other_client, "small.csv", _csv(100))
        in_flight = sum(not task.done() for task in flood)
        done = await asyncio.gather(*flood)

    assert small.status_code == 201, small.text
    assert all(response.status_code == 201 for response in done)
    # One queue for all would have run the ~30 batches queued first before the small upload (about two
    # slots' worth were left when it finished); a fair slot starts it next, while most still wait.
    assert in_flight >= 10, in_flight


# ---- across processes (real Redis) ------------------------------------------------------------------


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Callable[..., CountedImports]]:
    """CountedImports of one deployment (one key prefix): each stands for one server process."""
    redis_server.start()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    made: list[CountedImports] = []

    def process(max_imports: int = 1, max_bytes: int = 10_000) -> CountedImports:
        quota = CountedImports.redis(redis_server.url, max_imports, max_bytes, prefix=prefix)
        made.append(quota)
        return quota

    yield process
    for quota in made:
        await quota.close()


@pytest.mark.redis
async def test_the_quotas_hold_across_processes(cluster: Callable[..., CountedImports]) -> None:
    one, two = cluster(), cluster()
    async with one.importing("alice") as meter:
        await meter.received(6000)
        with pytest.raises(TooManyImports):
            async with two.importing("alice"):
                pass  # alice's one import at once is held by the other process
        async with two.importing("bob"):
            pass
    async with two.importing("alice") as meter:  # freed: the other process may take it
        meter.expect(4000)
        with pytest.raises(ImportQuotaExceeded) as over:
            meter.expect(4001)  # 6,000 bytes counted by the other process today
        assert over.value.details["quota"] == "max_import_bytes_per_user_per_day"
        with pytest.raises(ImportQuotaExceeded):
            await meter.received(5000)
    async with one.importing("alice") as meter:
        with pytest.raises(ImportQuotaExceeded) as spent:
            meter.expect(1)
        assert spent.value.details["used_bytes"] == 11_001
