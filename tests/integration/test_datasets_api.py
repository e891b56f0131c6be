"""Usage data over real HTTP: uploads of the real Azure traces and other formats, errors, privacy, events."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from support.clients import Account, signup
from support.data import AZURE_CODE, AZURE_CONV, AZURE_ROWS, shared_data_path
from support.live import LiveServer

AZURE_MAPPING = {"ts": "TIMESTAMP", "input_tokens": "ContextTokens", "output_tokens": "GeneratedTokens"}


def http(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60)


async def upload(client: httpx.AsyncClient, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as handle:
        return await client.post("/api/datasets", files={"file": (path.name, handle)}, data=fields)


def stored_files(server: LiveServer, user_id: str) -> list[Path]:
    root = Path(server.settings.data_dir) / "datasets" / user_id
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def parquet_totals(paths: list[Path]) -> tuple[int, int, int]:
    con = duckdb.connect()
    row = con.execute(
        "SELECT count(*), sum(input_tokens), sum(output_tokens) FROM read_parquet(?)",
        [[str(p) for p in paths]],
    ).fetchone()
    con.close()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@pytest.mark.parametrize("name", [AZURE_CODE, AZURE_CONV])
async def test_real_azure_traces(server: LiveServer, name: str) -> None:
    account = await signup(server.url)
    async with http(server, account) as client:
        created = await upload(client, shared_data_path(name), model="llama-3-70b")
        assert created.status_code == 201, created.text
        dataset = created.json()
        assert dataset["detected_format"] == "azure_llm_inference_2023"
        assert dataset["source_format"] == "csv"
        assert dataset["row_count"] == AZURE_ROWS[name]
        assert dataset["mapping"] == AZURE_MAPPING
        assert dataset["model"] == "llama-3-70b"
        assert dataset["period"]["start"].startswith("2023-11-16T18:1")
        fetched = (await client.get(f"/api/datasets/{dataset['id']}")).json()
        assert fetched["mapping"] == AZURE_MAPPING
        assert fetched["row_count"] == AZURE_ROWS[name]
        listed = (await client.get("/api/datasets")).json()["datasets"]
        assert [d["id"] for d in listed] == [dataset["id"]]
    # The usage source the agents get sees the same rows, with the same totals as the raw CSV.
    usage = server.services.datasets.usage_for(account.user_id)
    paths = server.call(usage.parquet_paths())
    assert server.call(usage.row_count()) == AZURE_ROWS[name]
    assert server.call(usage.default_models()) == {str(paths[0]): "llama-3-70b"}
    con = duckdb.connect()
    raw = con.execute(
        "SELECT count(*), sum(ContextTokens), sum(GeneratedTokens) FROM read_csv(?)",
        [str(shared_data_path(name))],
    ).fetchone()
    con.close()
    assert parquet_totals(paths) == raw


async def test_burstgpt_jsonl_and_parquet_uploads(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    burst = tmp_path / "BurstGPT_1.csv"
    lines = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
    lines += [f"{i * 3},{'ChatGPT' if i % 3 else 'GPT-4'},{100 + i},{0 if i % 10 == 0 else 20 + i},"
              f"{120 + 2 * i},{'Conversation log' if i % 2 else 'API log'}" for i in range(200)]  # fmt: skip
    burst.write_text("\n".join(lines) + "\n")
    jsonl = tmp_path / "openai.jsonl"
    records = [{"timestamp": f"2025-03-01T10:00:{i:02d}Z", "model": "gpt-4o", "prompt_tokens": 10 * i,
                "completion_tokens": i, "user": f"u{i % 3}"} for i in range(50)]  # fmt: skip
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    parquet = tmp_path / "usage.parquet"
    rows = (
        "SELECT TIMESTAMP '2025-03-01' + INTERVAL (i) MINUTE AS created_at, 'claude-3-5-sonnet' AS model, "
        "i AS input_tokens, 2 * i AS output_tokens FROM range(30) t(i)"
    )
    duckdb.sql(f"COPY ({rows}) TO '{parquet}' (FORMAT parquet)")
    async with http(server, account) as client:
        burst_ds = (await upload(client, burst)).json()
        assert burst_ds["detected_format"] == "burstgpt"
        assert burst_ds["row_count"] == 200
        assert burst_ds["mapping"]["feature"] == "Log Type"
        assert any("0 response tokens" in note for note in burst_ds["notes"])
        jsonl_ds = (await upload(client, jsonl)).json()
        assert (jsonl_ds["source_format"], jsonl_ds["detected_format"], jsonl_ds["row_count"]) == (
            "jsonl",
            "openai_usage",
            50,
        )
        parquet_ds = (await upload(client, parquet)).json()
        assert (parquet_ds["source_format"], parquet_ds["row_count"]) == ("parquet", 30)
        assert len((await client.get("/api/datasets")).json()["datasets"]) == 3
    usage = server.services.datasets.usage_for(account.user_id)
    errors = (
        duckdb.connect()
        .execute(
            "SELECT count(*) FILTER (WHERE is_error) FROM read_parquet(?)",
            [[str(p) for p in server.call(usage.parquet_paths())]],
        )
        .fetchone()
    )
    assert errors == (20,)  # BurstGPT rows with 0 response tokens are failures


async def test_bad_file_names_line_and_column_and_leaves_nothing(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    bad = tmp_path / "bad.csv"
    good_row = "2023-11-16 18:17:03.9799600,4808,10\n"
    bad.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n" + good_row * 15 + "2023-11-16 18:17:04,3180,abc\n"
    )
    async with http(server, account) as client:
        response = await upload(client, bad)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (
            error["message"] == "line 17, column GeneratedTokens: expected a non-negative integer, got 'abc'"
        )
        assert (error["line"], error["column"]) == (17, "GeneratedTokens")
        missing = await upload(client, _write(tmp_path / "m.csv", "timestamp,prompt_tokens\n1714564800,3\n"))
        assert missing.status_code == 422
        assert "output_tokens" in missing.json()["error"]["message"]
        assert "columns found: timestamp, prompt_tokens" in missing.json()["error"]["message"]
        mapping = await upload(client, bad, mapping="{not json")
        assert mapping.status_code == 422
        assert mapping.json()["error"]["field"] == "mapping"
        assert (await client.get("/api/datasets")).json()["datasets"] == []
    assert stored_files(server, account.user_id) == []
    assert list((Path(server.settings.data_dir) / "tmp").glob("upload-*")) == []


async def test_mapping_override_and_preview(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    odd = _write(
        tmp_path / "odd.csv",
        "when,llm,in,out\n2025-01-01T00:00:00Z,gpt-4o,10,2\n2025-01-01T00:01:00Z,gpt-4o,5,1\n",
    )
    mapping = {"ts": "when", "model": "llm", "input_tokens": "in", "output_tokens": "out"}
    async with http(server, account) as client:
        with odd.open("rb") as handle:
            preview = await client.post("/api/datasets/preview", files={"file": (odd.name, handle)})
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["columns"] == ["when", "llm", "in", "out"]
        assert body["missing_fields"] == ["ts", "input_tokens", "output_tokens"]
        assert body["normalized"] is None
        assert body["rows"][0] == {"when": "2025-01-01T00:00:00Z", "llm": "gpt-4o", "in": "10", "out": "2"}
        with odd.open("rb") as handle:
            confirmed = await client.post(
                "/api/datasets/preview",
                files={"file": (odd.name, handle)},
                data={"mapping": json.dumps(mapping)},
            )
        assert confirmed.json()["normalized"][0]["input_tokens"] == 10
        created = await upload(client, odd, mapping=json.dumps(mapping))
        assert created.status_code == 201, created.text
        assert created.json()["mapping"] == mapping
        assert created.json()["row_count"] == 2


async def test_oversize_upload_is_refused_with_its_limit(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = start_server(max_upload_bytes=4096)
    account = await signup(server.url)
    big = tmp_path / "big.csv"
    big.write_text("timestamp,prompt_tokens,completion_tokens\n" + "1714564800,100,20\n" * 2000)
    async with http(server, account) as client:
        response = await upload(client, big)
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "too_large"
        assert error["limit_bytes"] == 4096
        assert "4 KiB" in error["message"]

        # Streamed without a Content-Length: refused while the bytes arrive.
        async def chunks() -> Any:
            boundary = "b0undary"
            disposition = 'Content-Disposition: form-data; name="file"; filename="big.csv"'
            yield f"--{boundary}\r\n{disposition}\r\n\r\n".encode()
            for _ in range(40):
                yield b"1714564800,100,20\n" * 20
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = await client.post(
            "/api/datasets",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        assert streamed.status_code == 413
        assert (await client.get("/api/datasets")).json()["datasets"] == []
    assert stored_files(server, account.user_id) == []


async def test_datasets_are_private_and_delete_removes_the_file(server: LiveServer) -> None:
    owner, other = await signup(server.url), await signup(server.url)
    async with http(server, owner) as mine, http(server, other) as theirs:
        dataset = (await upload(mine, shared_data_path(AZURE_CODE))).json()
        path = f"/api/datasets/{dataset['id']}"
        assert (await theirs.get(path)).status_code == 404
        assert (await theirs.delete(path)).status_code == 404
        assert (await theirs.patch(path, json={"model": "gpt-4o"})).status_code == 404
        assert (await theirs.get("/api/datasets")).json()["datasets"] == []
        assert len(stored_files(server, owner.user_id)) == 1
        patched = await mine.patch(path, json={"model": "gpt-4o-mini"})
        assert patched.json()["model"] == "gpt-4o-mini"
        assert (await mine.delete(path)).status_code == 204
        assert (await mine.get(path)).status_code == 404
        assert (await mine.delete(path)).status_code == 404
    assert stored_files(server, owner.user_id) == []
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.post("/api/datasets", files={"file": ("a.csv", b"x")})).status_code == 401


async def test_workload_events_stream(server: LiveServer) -> None:
    account = await signup(server.url)
    batch = [{"timestamp": "2025-03-01T10:00:00Z", "model": "gpt-4o", "input_tokens": 100,
              "output_tokens": 10, "feature": "chat", "request_id": f"r{i}"} for i in range(3)]  # fmt: skip
    async with http(server, account) as client:
        first = await client.post("/api/workload/events", json={"records": batch})
        assert first.status_code == 201, first.text
        assert first.json()["accepted"] == 3
        second = await client.post(
            "/api/workload/events",
            json={
                "records": [{"ts": 1740823200, "prompt_tokens": 5, "completion_tokens": 1}],
                "model": "o4-mini",
            },
        )
        assert second.json() == {"accepted": 1, "dataset_id": first.json()["dataset_id"], "row_count": 4}
        bad = await client.post(
            "/api/workload/events",
            json={
                "records": [
                    batch[0],
                    {"timestamp": "2025-03-01T10:00:00Z", "input_tokens": -1, "output_tokens": 1},
                ]
            },
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["message"] == (
            "record 1, field input_tokens: expected a non-negative integer, got '-1'"
        )
        assert bad.json()["error"]["record"] == 1
        too_many = await client.post("/api/workload/events", json={"records": [batch[0]] * 1001})
        assert too_many.status_code == 422
        assert "at most 1000 records" in too_many.json()["error"]["message"]
        not_objects = await client.post("/api/workload/events", json={"records": [1]})
        assert not_objects.json()["error"]["message"] == "record 0: expected an object"
        stream = (await client.get(f"/api/datasets/{first.json()['dataset_id']}")).json()
        assert (stream["source_format"], stream["row_count"]) == ("events", 4)
    usage = server.services.datasets.usage_for(account.user_id)
    paths = server.call(usage.parquet_paths())
    assert len(paths) == 2
    assert parquet_totals(paths) == (4, 305, 31)
    con = duckdb.connect()
    models = con.execute(
        "SELECT list(DISTINCT model ORDER BY model) FROM read_parquet(?)", [[str(p) for p in paths]]
    )
    assert models.fetchone() == (["gpt-4o", "o4-mini"],)
    con.close()


async def test_prices(server: LiveServer) -> None:
    account = await signup(server.url)
    async with http(server, account) as client:
        table = (await client.get("/api/prices")).json()
    assert table["as_of"].startswith("2026-")
    assert table["models"]["gpt-4o"]["source"].startswith("https://")
    assert table["aliases"]["gpt-4o-2024-08-06"] == "gpt-4o"


def test_cli_ingest_against_a_real_server(server: LiveServer, tmp_path: Path) -> None:
    import asyncio

    account = asyncio.run(signup(server.url))
    base = [sys.executable, "-m", "tokenwise", "ingest"]
    login = ["--url", server.url, "--email", account.email, "--password", account.password]
    done = subprocess.run(
        [*base, str(shared_data_path(AZURE_CONV)), "--model", "llama-3-70b", *login],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "azure_llm_inference_2023" in done.stdout
    assert "19,366" in done.stdout
    assert "ContextTokens" in done.stdout
    bad = _write(tmp_path / "bad.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,x\n")
    failed = subprocess.run(
        [*base, str(bad), *login], capture_output=True, text=True, timeout=120, check=False
    )
    assert failed.returncode == 1
    assert "line 2, column GeneratedTokens: expected a non-negative integer, got 'x'" in failed.stderr
    wrong = subprocess.run(
        [*base, str(bad), "--url", server.url, "--email", account.email, "--password", "wrong-password"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "sign-in failed" in wrong.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
