"""Hostile uploads against the real server: 422 or 413 with what was wrong, never 500; gzip bombs refused
before the work is done, while another user's upload still goes through."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable

import httpx
import pytest

from support.clients import Account, signup
from support.live import LiveServer

HEADER = "ts,model,input_tokens,output_tokens\n"


def _row(i: int, tokens: str = "") -> str:
    return f"2024-01-0{1 + i % 9}T{i % 24:02d}:{i % 60:02d}:00Z,gpt-4o,{tokens or i % 1000},{i % 97}\n"


def _client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120)


async def _post(
    client: httpx.AsyncClient, route: str, name: str, content: bytes, **fields: str
) -> httpx.Response:
    return await client.post(route, files={"file": (name, content)}, data=fields)


def _bomb(rows: int, seed: int) -> bytes:
    """A gzip CSV of `rows` rows in a few hundred KB: one gzip member of 100,000 rows, again and again
    (a file of several members is one valid gzip stream)."""
    member = gzip.compress(_row(seed).encode() * 100_000, 9)
    return gzip.compress(HEADER.encode()) + member * (rows // 100_000)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "csv field over 131,072 characters before a bad row": (
        "long.csv",
        (HEADER + _row(0).replace("gpt-4o", "m" * 200_000) + _row(1) + _row(2, "not-a-number")).encode(),
        {},
    ),
    "csv quoted field over 131,072 characters with newlines": (
        "long.csv",
        (HEADER + _row(0).replace("gpt-4o", '"' + "line\n" * 40_000 + '"') + _row(2, "x")).encode(),
        {},
    ),
    ".gz that is not gzip": ("usage.csv.gz", (HEADER + _row(0)).encode(), {}),
    ".gz truncated": ("usage.csv.gz", gzip.compress((HEADER + _row(0) * 5000).encode())[:300], {}),
    ".gz with a bad trailer": (
        "usage.csv.gz",
        gzip.compress((HEADER + _row(0)).encode())[:-4] + b"\0\0\0\0",
        {},
    ),
    "deeply nested JSON in a JSONL line": (
        "usage.jsonl",
        (
            json.dumps(
                {"ts": "2024-01-01T00:00:00Z", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 2}
            )
            + "\n"
            + '{"model": "gpt-4o", "extra": '
            + _nested(5000)
            + "}\n"
        ).encode(),
        {},
    ),
    "deeply nested JSON as the first JSONL line": (
        "usage.jsonl",
        ('{"a": ' + _nested(100_000) + "}\n").encode(),
        {},
    ),
    "deeply nested JSON array file": ("usage.json", _nested(100_000).encode(), {}),
    "deeply nested mapping field": (
        "usage.csv",
        (HEADER + _row(0)).encode(),
        {"mapping": '{"model": ' + _nested(100_000) + "}"},
    ),
    "deeply nested mapping field, unbalanced": (
        "usage.csv",
        (HEADER + _row(0)).encode(),
        {"mapping": "[" * 500_000},
    ),
}


@pytest.mark.parametrize("route", ["/api/datasets", "/api/datasets/preview"])
@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_upload_is_a_client_error(server: LiveServer, case: str, route: str) -> None:
    name, content, fields = HOSTILE[case]
    account = await signup(server.url)
    async with _client(server, account) as client:
        response = await _post(client, route, name, content, **fields)
    if route.endswith("preview") and response.status_code == 200:
        return  # a preview reads the first rows only: a bad row further on is not its business
    assert response.status_code in (413, 422), (case, response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] in ("invalid_input", "too_large"), error
    assert error["message"], error


def test_gzip_bombs_are_refused_before_the_work(start_server: Callable[..., LiveServer]) -> None:
    server = start_server()
    bombs = [_bomb(5_000_000, seed) for seed in (1, 2)]
    assert all(len(bomb) < 2_000_000 for bomb in bombs)

    async def attack() -> None:
        attacker, other = await signup(server.url), await signup(server.url)
        async with _client(server, attacker) as evil, _client(server, other) as client:
            started = time.monotonic()
            floods = [
                asyncio.create_task(_post(evil, "/api/datasets", f"bomb{i}.csv.gz", bomb))
                for i, bomb in enumerate(bombs)
            ]
            await asyncio.sleep(0.05)
            small = (HEADER + "".join(_row(i) for i in range(100))).encode()
            began = time.monotonic()
            ordinary = await _post(client, "/api/datasets", "small.csv", small)
            other_took = time.monotonic() - began
            refused = await asyncio.gather(*floods)
            took = time.monotonic() - started
        assert ordinary.status_code == 201, ordinary.text
        for response in refused:
            assert response.status_code == 413, response.text
            error = response.json()["error"]
            assert error["code"] == "too_large"
            assert "decompress" in error["message"]
        assert took < 10, took
        assert other_took < 5, other_took

    asyncio.run(attack())


async def test_rows_over_the_limit_are_refused(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(max_dataset_rows=1000)
    account = await signup(server.url)
    rows = (HEADER + "".join(_row(i, str(i)) for i in range(1001))).encode()
    async with _client(server, account) as client:
        plain = await _post(client, "/api/datasets", "rows.csv", rows)
        packed = await _post(client, "/api/datasets", "rows.csv.gz", gzip.compress(rows))
        fits = await _post(client, "/api/datasets", "fits.csv", rows[: rows.rindex(b"\n", 0, -1) + 1])
    for response in (plain, packed):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["limit_rows"] == 1000
    assert fits.status_code == 201, fits.text
