"""Gateway and tracing exports (LiteLLM, Langfuse, Helicone, OpenRouter, OTLP): recognised and exact.

Each fixture follows the tool's field names; its true spend, tokens and latency are computed here.
"""

from __future__ import annotations

import csv
import random
import statistics
from pathlib import Path

from format_cases import SONNET_4_5, close, list_cost, run, write_json, write_jsonl


def test_langfuse_v1_latency_is_seconds_and_p50_is_2_76_s(tmp_path: Path) -> None:
    latencies = [1.9, 2.2, 2.5, 2.76, 2.76, 3.1, 3.9, 4.4, 2.6]  # seconds; median 2.76
    records = []
    for i, latency in enumerate(latencies):
        records.append(
            {
                "id": f"obs-{i}",
                "traceId": f"trace-{i}",
                "type": "GENERATION",
                "name": "answer",
                "startTime": f"2025-06-04T09:00:{i:02d}.000Z",
                "endTime": f"2025-06-04T09:00:{i:02d}.500Z",
                "model": "gpt-4o",
                "level": "DEFAULT",
                "userId": f"user-{i % 3}",
                "sessionId": "s-1",
                "promptName": "qa",
                "latency": latency,
                "timeToFirstToken": 0.4,
                "usageDetails": {
                    "input": 800 + i,
                    "input_cached_tokens": 256,
                    "output": 120,
                    "total": 1176 + i,
                },
                "costDetails": {"input": 0.002, "output": 0.0012, "total": 0.0032 + i / 1e4},
                "calculatedTotalCost": 0.0032 + i / 1e4,
                "projectId": "lf-proj",
            }
        )
    # the trace's parent span and an event carry no usage: they are not requests
    records.append(
        {
            "id": "span-0",
            "traceId": "trace-0",
            "type": "SPAN",
            "name": "handler",
            "startTime": "2025-06-04T09:00:00.000Z",
            "endTime": "2025-06-04T09:00:09.000Z",
            "latency": 9.0,
        }
    )
    stored = run(
        write_json(tmp_path / "observations.json", {"data": records, "meta": {"page": 1, "totalPages": 1}})
    )
    m = stored.measurements
    assert stored.result.detection.format_name == "langfuse_observations"
    assert m.requests == len(latencies)
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == statistics.median(latencies) * 1000 == 2760
    assert close(m.spend_usd, sum(r["calculatedTotalCost"] for r in records[:-1]))
    assert m.input_tokens == sum(800 + i + 256 for i in range(len(latencies)))  # input excludes the cache
    assert m.cached_input_tokens == 256 * len(latencies)
    assert {r["user_tag"] for r in stored.rows} == {"user-0", "user-1", "user-2"}


def test_langfuse_v2_field_names(tmp_path: Path) -> None:
    records = [
        {
            "id": f"g{i}",
            "traceId": "t",
            "startTime": f"2025-12-17T16:09:0{i}.875Z",
            "endTime": "2025-12-17T16:09:09Z",
            "type": "GENERATION",
            "name": "llm-generation",
            "providedModelName": "claude-sonnet-4-5",
            "usageDetails": {
                "input": 98,
                "cache_read_input_tokens": 4000,
                "cache_creation_input_tokens": 500,
                "output": 68,
            },
            "totalCost": 0.00083 * (i + 1),
            "latency": 0.581 + i,
            "userId": "",
            "sessionId": "support",
        }
        for i in range(4)
    ]
    stored = run(write_jsonl(tmp_path / "observations_v2.jsonl", records))
    m = stored.measurements
    assert stored.result.detection.format_name == "langfuse_observations"
    assert close(m.spend_usd, sum(r["totalCost"] for r in records))
    assert (m.input_tokens, m.cached_input_tokens, m.cache_write_tokens) == (4 * 4598, 4 * 4000, 4 * 500)
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 2081.0


def test_litellm_spend_logs_keep_team_user_key_and_tags(tmp_path: Path) -> None:
    rng = random.Random(5)
    path = tmp_path / "spend_logs.csv"
    fields = [
        "request_id",
        "call_type",
        "api_key",
        "spend",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "startTime",
        "endTime",
        "request_duration_ms",
        "model",
        "model_group",
        "custom_llm_provider",
        "user",
        "metadata",
        "cache_hit",
        "request_tags",
        "team_id",
        "end_user",
        "status",
    ]
    rows = []
    for i in range(25):
        prompt, out = rng.randint(100, 5_000), rng.randint(10, 800)
        rows.append(
            {
                "request_id": f"r{i}",
                "call_type": "acompletion",
                "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
                "spend": round(prompt * 2.5e-6 + out * 1e-5, 8),
                "total_tokens": prompt + out,
                "prompt_tokens": prompt,
                "completion_tokens": out,
                "startTime": f"2025-06-05 12:00:{i:02d}.000",
                "endTime": f"2025-06-05 12:00:{i:02d}.750",
                "request_duration_ms": 750,
                "model": "gpt-4o",
                "model_group": "gpt-4o",
                "custom_llm_provider": "openai",
                "user": "alice",
                "metadata": '{"user_api_key_alias": "prod"}',
                "cache_hit": "False",
                "request_tags": '["search"]',
                "team_id": "team-a" if i % 2 else "team-b",
                "end_user": "",
                "status": "failure" if i == 3 else "success",
            }
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    stored = run(path)
    m = stored.measurements
    assert stored.result.detection.format_name == "litellm_spend_logs"
    assert close(m.spend_usd, sum(float(r["spend"]) for r in rows))
    assert m.reported_cost_requests == 25
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 750
    assert {r["team"] for r in stored.rows} == {"team-a", "team-b"}
    assert {(r["user_tag"], r["feature"]) for r in stored.rows} == {("alice", '["search"]')}
    assert sum(1 for r in stored.rows if r["is_error"]) == 1


def test_helicone_export_splits_cache_reads_and_writes(tmp_path: Path) -> None:
    rng = random.Random(9)
    records, truth_tokens = [], 0
    for i in range(20):
        prompt, read, write, out = (
            rng.randint(10, 600),
            rng.randint(0, 6_000),
            rng.randint(0, 800),
            rng.randint(5, 400),
        )
        cost = list_cost(SONNET_4_5, prompt, read, write, 0, out)
        records.append(
            {
                "request_id": f"h{i}",
                "request_created_at": f"2025-06-06T07:{i:02d}:00.000Z",
                "request_user_id": f"cust-{i % 4}",
                "request_properties": {"feature": "chat"},
                "request_model": "claude-sonnet-4-5",
                "response_status": 200,
                "model": "claude-sonnet-4-5",
                "provider": "ANTHROPIC",
                "delay_ms": 1000 + 100 * i,
                "time_to_first_token": 300,
                "total_tokens": prompt + read + write + out,
                "prompt_tokens": prompt,
                "prompt_cache_write_tokens": write,
                "prompt_cache_read_tokens": read,
                "completion_tokens": out,
                "cost": cost,
                "costUSD": cost,
            }
        )
        truth_tokens += prompt + read + write
    stored = run(write_jsonl(tmp_path / "helicone.jsonl", records))
    m = stored.measurements
    assert stored.result.detection.format_name == "helicone_requests"
    assert close(m.spend_usd, sum(r["costUSD"] for r in records))
    assert m.input_tokens == truth_tokens
    assert (m.cached_input_tokens, m.cache_write_tokens) == (
        sum(r["prompt_cache_read_tokens"] for r in records),
        sum(r["prompt_cache_write_tokens"] for r in records),
    )
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 1950
    assert {r["feature"] for r in stored.rows} == {"chat"}


def test_helicone_clickhouse_cost_in_nano_dollars(tmp_path: Path) -> None:
    records = [
        {
            "request_id": f"h{i}",
            "request_created_at": f"2025-06-06 07:00:0{i}",
            "delay_ms": 900,
            "model": "gpt-4o",
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "prompt_cache_read_tokens": 0,
            "prompt_cache_write_tokens": 0,
            "cost": 3_500_000 * (i + 1),
        }
        for i in range(5)
    ]
    stored = run(write_jsonl(tmp_path / "request_response_rmt.jsonl", records))
    assert close(stored.measurements.spend_usd, sum(r["cost"] for r in records) / 1e9)


def test_openrouter_generations_use_billed_cost_and_millisecond_latency(tmp_path: Path) -> None:
    records = [
        {
            "data": {
                "id": f"gen-{i}",
                "upstream_id": f"chatcmpl-{i}",
                "total_cost": 0.0015 * (i + 1),
                "cache_discount": 0.0002,
                "upstream_inference_cost": 0.0012,
                "created_at": f"2025-06-07T23:33:{i:02d}.433273+00:00",
                "model": "anthropic/claude-sonnet-4.5",
                "provider_name": "Anthropic",
                "latency": 1250 + i,
                "generation_time": 1200,
                "finish_reason": "stop",
                "tokens_prompt": 10,
                "tokens_completion": 25,
                "native_tokens_prompt": 1200,
                "native_tokens_completion": 250,
                "native_tokens_reasoning": 0,
                "native_tokens_cached": 1024,
                "is_byok": False,
                "streamed": True,
                "cancelled": False,
                "external_user": "user-123",
            }
        }
        for i in range(9)
    ]
    stored = run(write_jsonl(tmp_path / "generations.jsonl", records))
    m = stored.measurements
    assert stored.result.detection.format_name == "openrouter_generations"
    assert close(m.spend_usd, sum(r["data"]["total_cost"] for r in records))
    assert (m.input_tokens, m.cached_input_tokens) == (9 * 1200, 9 * 1024)
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 1254


def _attr(key: str, value: object) -> dict[str, object]:
    kind = "stringValue" if isinstance(value, str) else "intValue"
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def test_otlp_json_genai_spans(tmp_path: Path) -> None:
    start = 1_749_340_800_000_000_000  # 2025-06-08T00:00:00Z in nanoseconds
    spans, truth = [], 0.0
    for i in range(12):
        inp, read, out = 2_000 + 10 * i, 1_024, 300
        spans.append(
            {
                "traceId": f"{i:032x}",
                "spanId": f"{i + 1:016x}",
                "name": "chat claude-sonnet-4-5",
                "kind": 3,
                "startTimeUnixNano": str(start + i * 1_000_000_000),
                "endTimeUnixNano": str(start + i * 1_000_000_000 + 1_500_000_000 + i * 1_000_000),
                "attributes": [
                    _attr("gen_ai.operation.name", "chat"),
                    _attr("gen_ai.provider.name", "anthropic"),
                    _attr("gen_ai.request.model", "claude-sonnet-4-5"),
                    _attr("gen_ai.usage.input_tokens", inp),
                    _attr("gen_ai.usage.output_tokens", out),
                    _attr("gen_ai.usage.cache_read.input_tokens", read),
                ],
                "status": {},
            }
        )
        truth += list_cost(SONNET_4_5, inp - read, read, 0, 0, out)
    spans.append(
        {
            "traceId": "f" * 32,
            "spanId": "e" * 16,
            "name": "GET /answer",
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 9),
            "attributes": [_attr("http.route", "/answer")],
        }
    )
    request = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "support-bot")]},
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.anthropic"}, "spans": spans}
                ],
            }
        ]
    }
    stored = run(write_json(tmp_path / "traces.json", request))
    m = stored.measurements
    assert stored.result.detection.format_name == "otel_genai_spans"
    assert m.requests == 12
    assert close(m.spend_usd, truth)
    assert m.cached_input_tokens == 12 * 1_024
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 1505.5
    assert {r["feature"] for r in stored.rows} == {"support-bot"}
