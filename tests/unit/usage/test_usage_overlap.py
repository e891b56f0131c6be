"""Ingest without a server: several bad values in one row, and rows the user's other datasets hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from usage_files import read_rows

from tokenwise.errors import Conflict, InvalidInput
from tokenwise.usage.ingest import ingest
from tokenwise.usage.overlap import Known, keys_path


def test_two_bad_values_in_one_row_name_the_leftmost_and_list_the_other(tmp_path: Path) -> None:
    source = tmp_path / "u.csv"
    source.write_text(
        "timestamp,input_tokens,output_tokens,latency_ms\n"
        "2025-01-01T00:00:00Z,1,1,5\n"
        "2025-01-01T00:00:00Z,x,-2,slow\n"
        "2025-01-01T00:00:00Z,1,-3,5\n"
    )
    with pytest.raises(InvalidInput) as caught:
        ingest(source, tmp_path / "o.parquet")
    error = caught.value
    assert error.message == (
        "line 3, column input_tokens: expected a non-negative integer, got 'x'; "
        "also invalid on this line: output_tokens, latency_ms"
    )
    assert error.details["also_invalid"] == ["output_tokens", "latency_ms"]
    assert not (tmp_path / "o.parquet").exists()


def test_a_huge_field_before_the_bad_line_still_names_its_line(tmp_path: Path) -> None:
    source = tmp_path / "u.csv"
    huge = "y" * 300_000
    source.write_text(f"timestamp,input_tokens,output_tokens,note\n1714564800,1,1,{huge}\n1714564800,1,z,n\n")
    with pytest.raises(InvalidInput, match=r"^line 3, column output_tokens"):
        ingest(source, tmp_path / "o.parquet")


def _jsonl(path: Path, ids: list[str | None]) -> Path:
    records = [{"timestamp": 1714564800 + i, "input_tokens": 100 + i, "output_tokens": 1,
                **({"request_id": rid} if rid is not None else {})} for i, rid in enumerate(ids)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_known_request_ids_are_skipped_and_counted(tmp_path: Path) -> None:
    stored = tmp_path / "a.parquet"
    ingest(_jsonl(tmp_path / "a.jsonl", ["r1", "r2", "r3"]), stored)
    result = ingest(
        _jsonl(tmp_path / "b.jsonl", ["r3", "r4", None, "r1", "r4"]),
        tmp_path / "b.parquet",
        known=Known(files=(stored,)),
    )
    assert (result.row_count, result.skipped.request_id, result.skipped.bucket) == (3, 2, 0)
    assert [r["request_id"] for r in read_rows(tmp_path / "b.parquet")] == ["r4", None, "r4"]
    assert not keys_path(tmp_path / "b.parquet").exists()  # not a bucketed source
    with pytest.raises(Conflict, match="all 2 rows"):
        ingest(_jsonl(tmp_path / "c.jsonl", ["r2", "r4"]), tmp_path / "c.parquet",
               known=Known(files=(stored, tmp_path / "b.parquet")))  # fmt: skip
    assert not (tmp_path / "c.parquet").exists()


def test_bucket_keys_ignore_the_measures(tmp_path: Path) -> None:
    def page(path: Path, tokens: int, project: str) -> Path:
        result = {"input_tokens": tokens, "output_tokens": 1, "num_model_requests": 2, "model": "gpt-4o",
                  "project_id": project, "api_key_id": "k", "user_id": None, "batch": False}  # fmt: skip
        bucket = {"start_time": 1740787200, "end_time": 1740873600, "results": [result]}
        path.write_text(json.dumps({"object": "page", "data": [bucket]}))
        return path

    first = tmp_path / "a.parquet"
    assert ingest(page(tmp_path / "a.json", 10, "p1"), first).bucket_keys
    assert keys_path(first).exists()
    known = Known(files=(first,), bucket_files=(keys_path(first),))
    # The same bucket and grouping keys with other figures (a later, fuller pull) is the same bucket.
    with pytest.raises(Conflict, match="2 by bucket and grouping keys"):
        ingest(page(tmp_path / "b.json", 99, "p1"), tmp_path / "b.parquet", known=known)
    other = ingest(page(tmp_path / "c.json", 10, "p2"), tmp_path / "c.parquet", known=known)
    assert (other.row_count, other.skipped.total) == (2, 0)
