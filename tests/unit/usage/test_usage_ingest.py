"""Ingest: each format normalized into exactly the schema; values and derived columns are right."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from usage_files import ingest_path, ingest_text, parquet_schema

from tokenwise.usage import schema
from tokenwise.usage.ingest import ingest
from tokenwise.usage.normalize import Options


def test_written_file_has_exactly_the_schema_in_order(tmp_path: Path) -> None:
    result, _ = ingest_text(
        tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"
    )
    assert parquet_schema(tmp_path / "out.parquet") == [(c.name, c.duckdb_type) for c in schema.COLUMNS]
    assert result.row_count == 1
    assert result.bytes == (tmp_path / "out.parquet").stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_azure_trace_with_seven_digit_fractions_and_default_model(tmp_path: Path) -> None:
    text = (
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n"
    )
    result, rows = ingest_text(tmp_path, "trace.csv", text, options=Options(default_model="llama-3-70b"))
    assert result.detection.format_name == "azure_llm_inference_2023"
    assert rows[0]["ts"] == datetime(2023, 11, 16, 18, 17, 3, 979960)
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (4808, 10)
    assert {r["model"] for r in rows} == {"llama-3-70b"}
    assert {r["provider"] for r in rows} == {"azure"}
    assert result.period_start is not None
    assert result.period_start.isoformat() == "2023-11-16T18:17:03.979960+00:00"


def test_no_model_and_no_default_leaves_model_null(tmp_path: Path) -> None:
    _, rows = ingest_text(
        tmp_path, "t.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,2\n"
    )
    assert rows[0]["model"] is None


def test_burstgpt_relative_time_and_zero_output_failures(tmp_path: Path) -> None:
    text = (
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45.5,GPT-4,1087,0,1087,API log\n"
    )
    result, rows = ingest_text(tmp_path, "burst.csv", text)
    assert result.detection.format_name == "burstgpt"
    assert rows[0]["ts"] == datetime(2024, 1, 1, 0, 0, 5)
    assert rows[1]["ts"] == datetime(2024, 1, 1, 0, 0, 45, 500000)
    assert [r["is_error"] for r in rows] == [False, True]
    assert [r["feature"] for r in rows] == ["Conversation log", "API log"]
    assert [r["model"] for r in rows] == ["ChatGPT", "GPT-4"]
    assert "seconds from the start" in result.time_meaning


def test_openai_jsonl_with_nested_cached_tokens(tmp_path: Path) -> None:
    lines = [
        {"created": 1700000000, "model": "gpt-4o", "usage": {"prompt_tokens": 1200, "completion_tokens": 80,
         "prompt_tokens_details": {"cached_tokens": 1024}}, "id": "chatcmpl-1", "user": "alice"},
        {"created": 1700000060, "model": "gpt-4o-mini",
         "usage": {"prompt_tokens": 50, "completion_tokens": 5}},
    ]  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    result, rows = ingest_text(tmp_path, "openai.jsonl", text)
    assert result.kind == "jsonl"
    assert result.detection.format_name == "openai_usage"
    assert rows[0]["ts"] == datetime(2023, 11, 14, 22, 13, 20)
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"], rows[0]["cached_input_tokens"]) == (
        1200,
        80,
        1024,
    )
    assert rows[1]["cached_input_tokens"] is None
    assert rows[0]["request_id"] == "chatcmpl-1"
    assert rows[0]["user_tag"] == "alice"


def test_litellm_spend_logs_latency_cost_and_status(tmp_path: Path) -> None:
    text = (
        "request_id,startTime,endTime,model,prompt_tokens,completion_tokens,spend,api_key,user,status\n"
        "r1,2024-05-01T12:00:00.000+00:00,2024-05-01T12:00:01.250+00:00,gpt-4o,100,20,0.00045,hash1,bob,success\n"
        "r2,2024-05-01T12:00:02+02:00,2024-05-01T12:00:02.5+02:00,gpt-4o,100,0,0,hash1,bob,failure\n"
    )
    result, rows = ingest_text(tmp_path, "spend.csv", text)
    assert result.detection.format_name == "litellm_spend_logs"
    assert rows[0]["latency_ms"] == pytest.approx(1250.0)
    assert rows[0]["cost_usd"] == pytest.approx(0.00045)
    assert rows[1]["ts"] == datetime(2024, 5, 1, 10, 0, 2)  # converted to UTC
    assert [r["is_error"] for r in rows] == [False, True]
    assert [r["status"] for r in rows] == ["success", "failure"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12)),
        ("2024-05-01 12:00:00.1234567", datetime(2024, 5, 1, 12, 0, 0, 123456)),
        ("2024-05-01", datetime(2024, 5, 1)),
        ("1714564800", datetime(2024, 5, 1, 12)),
        ("1714564800.5", datetime(2024, 5, 1, 12, 0, 0, 500000)),
        ("1714564800000", datetime(2024, 5, 1, 12)),
        ("1714564800000000", datetime(2024, 5, 1, 12)),
    ],
)
def test_timestamp_forms(tmp_path: Path, value: str, expected: datetime) -> None:
    _, rows = ingest_text(tmp_path, "t.csv", f"timestamp,input_tokens,output_tokens\n{value},1,1\n")
    assert rows[0]["ts"] == expected


@pytest.mark.parametrize(
    ("status", "is_error"),
    [("200", False), ("429", True), ("500", True), ("ok", False), ("Success", False), ("error", True),
     ("Request timed out", True), ("rate_limit_exceeded", True), ("", None)],
)  # fmt: skip
def test_is_error_from_status(tmp_path: Path, status: str, is_error: bool | None) -> None:
    _, rows = ingest_text(
        tmp_path, "s.csv", f"time,input_tokens,output_tokens,status\n1714564800,1,1,{status}\n"
    )
    assert rows[0]["is_error"] is is_error


def test_error_column_marks_failures(tmp_path: Path) -> None:
    text = "time,input_tokens,output_tokens,error\n1714564800,1,1,\n1714564801,1,0,context_length_exceeded\n"
    _, rows = ingest_text(tmp_path, "e.csv", text)
    assert [r["is_error"] for r in rows] == [None, True]
    assert rows[1]["status"] == "context_length_exceeded"


def test_prompt_text_is_hashed_and_dropped_unless_kept(tmp_path: Path) -> None:
    prompt = "You are a helpful assistant. " * 50 + "Question?"
    text = f'time,input_tokens,output_tokens,prompt\n1714564800,10,2,"{prompt}"\n'
    _, rows = ingest_text(tmp_path, "p.csv", text)
    assert rows[0]["prompt_hash"] == hashlib.sha256(prompt.encode()).hexdigest()
    assert rows[0]["prefix_hash"] == hashlib.sha256(prompt[:1024].encode()).hexdigest()
    assert rows[0]["prompt_text"] is None
    _, kept = ingest_text(tmp_path, "p.csv", text, options=Options(keep_prompt_text=True))
    assert kept[0]["prompt_text"] == prompt


def test_mapping_override_for_unknown_headers(tmp_path: Path) -> None:
    text = "when,llm,in,out,spent\n2024-05-01T00:00:00Z,claude-3-5-sonnet,10,20,0.5\n"
    override: dict[str, str | None] = {"ts": "when", "model": "llm", "input_tokens": "in",
                                       "output_tokens": "out", "cost_usd": "spent"}  # fmt: skip
    result, rows = ingest_text(tmp_path, "x.csv", text, override=override)
    assert result.detection.mapping == override
    assert (rows[0]["model"], rows[0]["cost_usd"]) == ("claude-3-5-sonnet", 0.5)


def test_parquet_and_semicolon_csv_and_gzip(tmp_path: Path) -> None:
    parquet = tmp_path / "in.parquet"
    select = (
        "SELECT TIMESTAMPTZ '2024-05-01 12:00:00+00' AS timestamp, 'gpt-4o' AS model, "
        "10::INT AS input_tokens, 5::BIGINT AS output_tokens, {'cached_tokens': 4} AS prompt_tokens_details"
    )
    duckdb.sql(f"COPY ({select}) TO '{parquet}' (FORMAT parquet)")
    result, rows = ingest_path(parquet, tmp_path / "p.parquet")
    assert result.kind == "parquet"
    assert (rows[0]["ts"], rows[0]["input_tokens"], rows[0]["cached_input_tokens"]) == (
        datetime(2024, 5, 1, 12),
        10,
        4,
    )
    _, rows = ingest_text(tmp_path, "semi.csv", "timestamp;prompt_tokens;completion_tokens\n1714564800;3;4\n")
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (3, 4)
    packed = tmp_path / "usage.csv.gz"
    packed.write_bytes(gzip.compress(b"timestamp,prompt_tokens,completion_tokens\n1714564800,7,8\n"))
    _, rows = ingest_path(packed, tmp_path / "g.parquet")
    assert rows[0]["input_tokens"] == 7


def test_kind_detected_from_content_without_extension(tmp_path: Path) -> None:
    result, _ = ingest_text(
        tmp_path, "upload", '{"timestamp": 1714564800, "input_tokens": 1, "output_tokens": 2}\n'
    )
    assert result.kind == "jsonl"


def test_work_dir_and_filename_hint(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_text("timestamp,input_tokens,output_tokens\n1714564800,1,2\n")
    result = ingest(source, tmp_path / "o.parquet", filename="usage.csv", work_dir=tmp_path / "work")
    assert result.kind == "csv"


def test_openai_usage_api_buckets_expand_to_requests_with_exact_totals(tmp_path: Path) -> None:
    result_row = {"object": "organization.usage.completions.result", "input_tokens": 1000,
                  "output_tokens": 503, "input_cached_tokens": 100, "num_model_requests": 4,
                  "project_id": "proj_1", "user_id": None, "api_key_id": "key_1",
                  "model": "gpt-4o-mini-2024-07-18", "batch": False}  # fmt: skip
    page = {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": 1730419200, "end_time": 1730505600, "results": [result_row]},
            {"object": "bucket", "start_time": 1730505600, "end_time": 1730592000, "results": []},
        ],
    }
    result, rows = ingest_text(tmp_path, "usage.json", json.dumps(page))
    assert result.detection.format_name == "openai_usage_api"
    assert result.row_count == 4
    assert sum(r["input_tokens"] for r in rows) == 1000
    assert sum(r["output_tokens"] for r in rows) == 503
    assert sum(r["cached_input_tokens"] for r in rows) == 100
    assert sorted(r["ts"] for r in rows)[-1] == datetime(2024, 11, 1, 18)
    assert {(r["project"], r["api_key"], r["provider"]) for r in rows} == {("proj_1", "key_1", "openai")}
