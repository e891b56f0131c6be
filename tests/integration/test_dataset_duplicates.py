"""Data that stays right, over real HTTP: the same file twice is refused, overlapping rows count once,
datasets are listed, renamed, re-modelled and deleted. Every expected figure is computed here, from the
rows the test wrote, not by the code under test."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import httpx

from support.clients import Account, signup
from support.data import AZURE_CODE, AZURE_ROWS, shared_data_path
from support.live import LiveServer


def http(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60)


async def upload(client: httpx.AsyncClient, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as handle:
        return await client.post("/api/datasets", files={"file": (path.name, handle)}, data=fields)


def stored_files(server: LiveServer, user_id: str) -> list[Path]:
    root = Path(server.settings.data_dir) / "datasets" / user_id
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def totals(server: LiveServer, user_id: str) -> tuple[int, int, int]:
    """(rows, input tokens, output tokens) over every file the analysis would read for the user."""
    usage = server.services.datasets.usage_for(user_id)
    paths = [str(p) for p in server.call(usage.parquet_paths())]
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT count(*), sum(input_tokens), sum(output_tokens) "
            "FROM read_parquet(?, union_by_name = true)",
            [paths],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def request(i: int) -> dict[str, Any]:
    """Request `r<i>`: its tokens are a function of i, so any file that holds it holds the same row."""
    return {
        "timestamp": f"2025-03-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
        "model": "gpt-4o",
        "request_id": f"r{i}",
        "prompt_tokens": 1000 + 7 * i,
        "completion_tokens": 10 + i,
    }


def write_jsonl(path: Path, ids: range | list[int]) -> Path:
    path.write_text("".join(json.dumps(request(i)) + "\n" for i in ids))
    return path


def write_csv(path: Path, ids: range | list[int]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(request(0)))
        writer.writeheader()
        writer.writerows(request(i) for i in ids)
    return path


async def test_the_same_file_twice_is_refused_naming_the_dataset(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    azure = shared_data_path(AZURE_CODE)
    digest = hashlib.sha256(azure.read_bytes()).hexdigest()
    renamed = tmp_path / "copy-under-another-name.csv"
    renamed.write_bytes(azure.read_bytes())
    async with http(server, account) as client:
        first = await upload(client, azure, name="week 1")
        assert first.status_code == 201, first.text
        dataset = first.json()
        assert dataset["content_hash"] == digest
        for again in (azure, renamed):
            refused = await upload(client, again)
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "conflict"
            assert (error["dataset_id"], error["dataset_name"]) == (dataset["id"], "week 1")
            assert dataset["id"] in error["message"]
            assert "'week 1'" in error["message"]
        assert [d["id"] for d in (await client.get("/api/datasets")).json()["datasets"]] == [dataset["id"]]
        assert len(stored_files(server, account.user_id)) == 1
        # Other bytes (the same rows, gzipped) are another file: imported, and without request ids
        # or buckets its rows cannot be told apart from the first file's.
        zipped = tmp_path / "azure.csv.gz"
        zipped.write_bytes(gzip.compress(azure.read_bytes()))
        other = await upload(client, zipped)
        assert other.status_code == 201, other.text
        assert other.json()["content_hash"] == hashlib.sha256(zipped.read_bytes()).hexdigest()
        assert other.json()["skipped_rows"]["total"] == 0
        # Deleted, the file can be imported again.
        assert (await client.delete(f"/api/datasets/{dataset['id']}")).status_code == 204
        assert (await upload(client, azure)).status_code == 201
    # Another user may upload the same file.
    stranger = await signup(server.url)
    async with http(server, stranger) as theirs:
        assert (await upload(theirs, azure)).status_code == 201
    assert (
        server.call(server.services.datasets.usage_for(account.user_id).row_count())
        == 2 * AZURE_ROWS[AZURE_CODE]
    )


async def test_rows_with_a_known_request_id_are_stored_once(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    async with http(server, account) as client:
        first = await upload(client, write_jsonl(tmp_path / "march-a.jsonl", range(100)))
        assert first.status_code == 201, first.text
        assert first.json()["skipped_rows"] == {"request_id": 0, "bucket": 0, "total": 0}
        # Another export, another format, overlapping by half.
        second = await upload(client, write_csv(tmp_path / "march-b.csv", range(50, 150)))
        assert second.status_code == 201, second.text
        body = second.json()
        assert body["row_count"] == 50
        assert body["skipped_rows"] == {"request_id": 50, "bucket": 0, "total": 50}
        assert any(note.startswith("50 rows were already in your other datasets") for note in body["notes"])
        fetched = (await client.get(f"/api/datasets/{body['id']}")).json()
        assert fetched["skipped_rows"]["request_id"] == 50
        # Nothing new at all: refused, and nothing is stored.
        inside = await upload(client, write_jsonl(tmp_path / "inside.jsonl", range(10, 21)))
        assert inside.status_code == 409, inside.text
        assert "all 11 rows" in inside.json()["error"]["message"]
        assert inside.json()["error"]["skipped_rows"]["request_id"] == 11
        # A repeated id inside one file is a retry: both rows are kept.
        retries = await upload(client, write_jsonl(tmp_path / "retries.jsonl", [200, 200, 201]))
        assert retries.json()["row_count"] == 3
        assert len((await client.get("/api/datasets")).json()["datasets"]) == 3
    ids = [*range(150), 200, 200, 201]
    expected = (len(ids), sum(request(i)["prompt_tokens"] for i in ids), sum(10 + i for i in ids))
    assert totals(server, account.user_id) == expected


def usage_page(days: range, projects: tuple[str, ...] = ("proj_a",)) -> dict[str, Any]:
    """An OpenAI Usage API completions page: one bucket a day, one result per project; day d's result of a
    project always has the same figures."""
    day0 = 1_740_787_200  # 2025-03-01T00:00:00Z
    data = []
    for d in days:
        results = [
            {
                "object": "organization.usage.completions.result",
                "input_tokens": 10_000 * (d + 1) + p,
                "output_tokens": 1_000 * (d + 1) + p,
                "input_cached_tokens": 100 * d,
                "num_model_requests": d + 2,
                "project_id": project,
                "user_id": None,
                "api_key_id": "key_1",
                "model": "gpt-4o-mini-2024-07-18",
                "batch": False,
            }
            for p, project in enumerate(projects)
        ]
        start = day0 + 86_400 * d
        data.append({"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results})
    return {"object": "page", "data": data, "has_more": False, "next_page": None}


async def test_usage_report_buckets_that_repeat_count_once(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    first_pull, second_pull = tmp_path / "usage-1.json", tmp_path / "usage-2.json"
    first_pull.write_text(json.dumps(usage_page(range(0, 3))))
    second_pull.write_text(json.dumps(usage_page(range(1, 5), projects=("proj_a", "proj_b"))))
    async with http(server, account) as client:
        first = await upload(client, first_pull)
        assert first.status_code == 201, first.text
        assert first.json()["detected_format"] == "openai_usage_api"
        assert first.json()["row_count"] == sum(d + 2 for d in range(0, 3))
        second = await upload(client, second_pull)
        assert second.status_code == 201, second.text
        body = second.json()
        # Days 1 and 2 of proj_a were in the first pull; proj_b is new every day, days 3-4 are new.
        repeated = (1 + 2) + (2 + 2)
        assert body["skipped_rows"] == {"request_id": 0, "bucket": repeated, "total": repeated}
        assert body["row_count"] == sum(d + 2 for d in range(1, 5)) * 2 - repeated
        assert any("by bucket and grouping keys" in note for note in body["notes"])
        again = tmp_path / "usage-3.json"
        again.write_text(json.dumps(usage_page(range(2, 4))))
        assert (await upload(client, again)).status_code == 409  # every bucket is already stored
        keys = [p for p in stored_files(server, account.user_id) if p.name.endswith(".buckets.parquet")]
        assert len(keys) == 2
        assert (await client.delete(f"/api/datasets/{body['id']}")).status_code == 204
        assert (
            len([p for p in stored_files(server, account.user_id) if p.name.endswith(".buckets.parquet")])
            == 1
        )
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for d in range(0, 3):
        seen[(d, "proj_a")] = usage_page(range(d, d + 1))["data"][0]["results"][0]
    rows = sum(r["num_model_requests"] for r in seen.values())
    assert totals(server, account.user_id) == (
        rows,
        sum(r["input_tokens"] for r in seen.values()),
        sum(r["output_tokens"] for r in seen.values()),
    )


async def test_datasets_are_listed_renamed_remodelled_and_deleted(server: LiveServer, tmp_path: Path) -> None:
    account, other = await signup(server.url), await signup(server.url)
    azure = shared_data_path(AZURE_CODE)
    async with http(server, account) as client, http(server, other) as theirs:
        dataset = (await upload(client, azure)).json()
        assert dataset["model"] is None
        path = f"/api/datasets/{dataset['id']}"
        renamed = await client.patch(path, json={"name": "  Azure code trace, Nov 2023  "})
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["name"], renamed.json()["model"]) == ("Azure code trace, Nov 2023", None)
        both = await client.patch(path, json={"name": "azure", "model": "llama-3-70b"})
        assert (both.json()["name"], both.json()["model"]) == ("azure", "llama-3-70b")
        listed = (await client.get("/api/datasets")).json()["datasets"]
        assert [(d["id"], d["name"], d["model"]) for d in listed] == [(dataset["id"], "azure", "llama-3-70b")]
        usage = server.services.datasets.usage_for(account.user_id)
        assert list(server.call(usage.default_models()).values()) == ["llama-3-70b"]
        cleared = await client.patch(path, json={"model": None})
        assert (cleared.json()["name"], cleared.json()["model"]) == ("azure", None)
        for body, field in (
            ({"name": ""}, "name"),
            ({"name": "   "}, "name"),
            ({"name": "x" * 256}, "name"),
            ({"name": "two\nlines"}, "name"),
            ({"name": None}, "name"),
            ({"name": 7}, "name"),
            ({}, "body"),
        ):
            bad = await client.patch(path, json=body)
            assert bad.status_code == 422, (body, bad.text)
            assert (bad.json()["error"]["code"], bad.json()["error"]["field"]) == ("invalid_input", field)
        assert (await client.get(path)).json()["name"] == "azure"
        missing = "00000000-0000-0000-0000-000000000000"
        for method in ("GET", "PATCH", "DELETE"):
            for who, target in ((client, missing), (theirs, dataset["id"])):
                answer = await who.request(method, f"/api/datasets/{target}", json={"name": "n"})
                assert answer.status_code == 404, answer.text
                error = answer.json()["error"]
                assert (error["code"], error["field"], error["dataset_id"]) == (
                    "not_found",
                    "dataset_id",
                    target,
                )
        assert (await client.delete(path)).status_code == 204
        assert (await client.get("/api/datasets")).json()["datasets"] == []
    assert stored_files(server, account.user_id) == []
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.patch(path, json={"name": "n"})).status_code == 401
