"""The providers' own formats (OpenAI, Anthropic, Bedrock): recognised, normalised and priced exactly.

Each fixture follows the field names and shapes of the provider's docs; its true spend and tokens are
computed here in plain Python, at the published list prices (`format_cases`).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from format_cases import (
    GPT_4O,
    GPT_4O_MINI,
    HAIKU_4_5,
    SONNET_4_5,
    close,
    list_cost,
    run,
    write_json,
    write_jsonl,
)


def _anthropic_usage(rng: random.Random, split: bool) -> dict[str, object]:
    read, w5, w1h = rng.randint(0, 40_000), rng.randint(0, 3_000), rng.randint(0, 2_000) if split else 0
    usage: dict[str, object] = {
        "input_tokens": rng.randint(5, 900),
        "cache_creation_input_tokens": w5 + w1h,
        "cache_read_input_tokens": read,
        "output_tokens": rng.randint(20, 1_200),
        "service_tier": "standard",
    }
    if split:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1h}
    return usage


def test_anthropic_messages_log_is_no_longer_45_percent_under_its_spend(tmp_path: Path) -> None:
    rng = random.Random(7)
    records = []
    for i in range(60):
        usage = _anthropic_usage(rng, split=i % 2 == 0)
        records.append(
            {
                "timestamp": f"2025-06-02T10:{i:02d}:00Z",
                "id": f"msg_{i:03d}",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "stop_reason": "end_turn",
                "usage": usage,
            }
        )
    truth = uncached = read = writes = 0.0
    for record in records:
        u = record["usage"]
        split = u.get("cache_creation") or {
            "ephemeral_5m_input_tokens": u["cache_creation_input_tokens"],
            "ephemeral_1h_input_tokens": 0,
        }
        w5, w1h = split["ephemeral_5m_input_tokens"], split["ephemeral_1h_input_tokens"]
        truth += list_cost(
            SONNET_4_5, u["input_tokens"], u["cache_read_input_tokens"], w5, w1h, u["output_tokens"]
        )
        uncached += u["input_tokens"]
        read += u["cache_read_input_tokens"]
        writes += w5 + w1h
    stored = run(write_jsonl(tmp_path / "messages.jsonl", records))
    m = stored.measurements
    assert stored.result.detection.format_name == "anthropic_messages"
    assert close(m.spend_usd, truth)  # before: input_tokens read as all input, about 45 % under
    assert m.input_tokens == uncached + read + writes
    assert (m.cached_input_tokens, m.cache_write_tokens) == (read, writes)
    assert stored.total("cache_write_1h_tokens") == sum(
        r["usage"].get("cache_creation", {}).get("ephemeral_1h_input_tokens", 0) for r in records
    )
    assert m.reported_cost_requests == 0
    assert {r["provider"] for r in stored.rows} == {"anthropic"}


def test_openai_per_request_log_counts_cached_tokens_inside_prompt_tokens(tmp_path: Path) -> None:
    rng = random.Random(3)
    records, truth = [], 0.0
    for i in range(40):
        prompt, cached, out = rng.randint(1_200, 9_000), 0, rng.randint(10, 700)
        cached = rng.choice([0, 1024, 2048, prompt - prompt % 128])
        records.append(
            {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "created": 1748858400 + 37 * i,
                "model": "gpt-4o-2024-08-06",
                "latency_ms": 400 + 10 * i,
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": out,
                    "total_tokens": prompt + out,
                    "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                },
            }
        )
        truth += list_cost(GPT_4O, prompt - cached, cached, 0, 0, out)
    stored = run(write_jsonl(tmp_path / "responses.jsonl", records))
    m = stored.measurements
    assert stored.result.detection.format_name == "openai_usage"
    assert close(m.spend_usd, truth)
    assert m.input_tokens == sum(r["usage"]["prompt_tokens"] for r in records)
    assert m.cached_input_tokens == sum(r["usage"]["prompt_tokens_details"]["cached_tokens"] for r in records)
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 400 + 10 * 19.5


def test_openai_usage_api_prices_batch_results_at_half_and_keeps_the_dimensions(tmp_path: Path) -> None:
    def result(
        model: str, inp: int, cached: int, out: int, n: int, batch: bool, project: str
    ) -> dict[str, object]:
        return {
            "object": "organization.usage.completions.result",
            "input_tokens": inp,
            "output_tokens": out,
            "input_cached_tokens": cached,
            "input_audio_tokens": 0,
            "output_audio_tokens": 0,
            "num_model_requests": n,
            "project_id": project,
            "user_id": "user_9",
            "api_key_id": "key_a",
            "model": model,
            "batch": batch,
            "service_tier": "default",
        }

    buckets = [
        {
            "object": "bucket",
            "start_time": 1748822400 + day * 86400,
            "end_time": 1748908800 + day * 86400,
            "results": [
                result("gpt-4o-2024-08-06", 900_000 + day, 300_000, 120_000, 37, False, "proj_web"),
                result("gpt-4o-mini", 2_000_000, 0, 400_000, 81, True, "proj_jobs"),
            ],
        }
        for day in range(3)
    ]
    page = {"object": "page", "data": buckets, "has_more": False, "next_page": None}
    truth = 0.0
    for bucket in buckets:
        for r in bucket["results"]:
            rates = GPT_4O if r["model"].startswith("gpt-4o-2024") else GPT_4O_MINI
            dollars = list_cost(
                rates,
                r["input_tokens"] - r["input_cached_tokens"],
                r["input_cached_tokens"],
                0,
                0,
                r["output_tokens"],
            )
            truth += dollars * (0.5 if r["batch"] else 1.0)
    stored = run(write_json(tmp_path / "usage.json", page))
    m = stored.measurements
    assert stored.result.detection.format_name == "openai_usage_api"
    assert m.requests == 3 * (37 + 81)
    assert close(m.spend_usd, truth)
    assert m.cached_input_tokens == 3 * 300_000
    assert {(r["project"], r["batch"]) for r in stored.rows} == {("proj_web", False), ("proj_jobs", True)}
    assert {(r["user_tag"], r["api_key"]) for r in stored.rows} == {("user_9", "key_a")}


def test_openai_costs_api_is_a_cost_only_source_in_usd(tmp_path: Path) -> None:
    items = [
        ("Chat completions gpt-4o, input", 12.3456),
        ("Chat completions gpt-4o, output", 30.5),
        ("Web search", 2.0),
    ]
    buckets = [
        {
            "object": "bucket",
            "start_time": 1748822400 + d * 86400,
            "end_time": 1748908800 + d * 86400,
            "results": [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": value * (d + 1), "currency": "usd"},
                    "line_item": item,
                    "project_id": "proj_web",
                    "api_key_id": None,
                    "quantity": None,
                }
                for item, value in items
            ],
        }
        for d in range(4)
    ]
    truth = sum(r["amount"]["value"] for b in buckets for r in b["results"])
    stored = run(write_json(tmp_path / "costs.json", {"object": "page", "data": buckets, "has_more": False}))
    m = stored.measurements
    assert stored.result.detection.format_name == "openai_costs_api"
    assert close(m.spend_usd, truth)
    assert m.reported_cost_requests == m.requests == 12
    assert (m.input_tokens, m.output_tokens) == (0, 0)
    assert {r["feature"] for r in stored.rows} == {item for item, _ in items}


def test_anthropic_usage_report_prices_each_token_type_and_the_batch_tier(tmp_path: Path) -> None:
    def result(
        model: str, tier: str, uncached: int, w5: int, w1h: int, read: int, out: int
    ) -> dict[str, object]:
        return {
            "uncached_input_tokens": uncached,
            "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1h},
            "cache_read_input_tokens": read,
            "output_tokens": out,
            "server_tool_use": {"web_search_requests": 0},
            "model": model,
            "service_tier": tier,
            "workspace_id": "wrkspc_01",
            "api_key_id": None,
            "context_window": "0-200k",
        }

    buckets = [
        {
            "starting_at": f"2025-06-0{d + 1}T00:00:00Z",
            "ending_at": f"2025-06-0{d + 2}T00:00:00Z",
            "results": [
                result(
                    "claude-sonnet-4-5-20250929", "standard", 410_000, 220_000, 90_000, 3_800_000, 150_000
                ),
                result("claude-haiku-4-5-20251001", "batch", 1_000_000, 0, 0, 0, 300_000),
            ],
        }
        for d in range(3)
    ]
    page = {"data": buckets, "has_more": False, "next_page": None}
    truth = 0.0
    for b in buckets:
        for r in b["results"]:
            rates = SONNET_4_5 if "sonnet" in r["model"] else HAIKU_4_5
            c = r["cache_creation"]
            dollars = list_cost(
                rates,
                r["uncached_input_tokens"],
                r["cache_read_input_tokens"],
                c["ephemeral_5m_input_tokens"],
                c["ephemeral_1h_input_tokens"],
                r["output_tokens"],
            )
            truth += dollars * (0.5 if r["service_tier"] == "batch" else 1.0)
    stored = run(write_json(tmp_path / "anthropic_usage.json", page))
    m = stored.measurements
    assert stored.result.detection.format_name == "anthropic_usage_report"
    assert close(m.spend_usd, truth)
    assert m.input_tokens == 3 * (410_000 + 220_000 + 90_000 + 3_800_000 + 1_000_000)
    assert (m.cached_input_tokens, m.cache_write_tokens) == (3 * 3_800_000, 3 * 310_000)
    assert stored.total("cache_write_1h_tokens") == 3 * 90_000
    assert {r["project"] for r in stored.rows} == {"wrkspc_01"}


def test_anthropic_cost_report_amount_is_a_string_in_cents(tmp_path: Path) -> None:
    lines = [
        ("Claude Sonnet 4.5 Usage - Input Tokens", "12345.678"),
        ("Claude Sonnet 4.5 Usage - Output Tokens", "98765.4"),
        ("Web Search", "1000"),
    ]
    buckets = [
        {
            "starting_at": f"2025-06-0{d + 1}T00:00:00Z",
            "ending_at": f"2025-06-0{d + 2}T00:00:00Z",
            "results": [
                {
                    "currency": "USD",
                    "amount": amount,
                    "workspace_id": None,
                    "description": desc,
                    "cost_type": "tokens",
                    "context_window": "0-200k",
                    "model": "claude-sonnet-4-5",
                    "service_tier": "standard",
                    "token_type": "uncached_input_tokens",
                }
                for desc, amount in lines
            ],
        }
        for d in range(2)
    ]
    truth = sum(float(r["amount"]) / 100 for b in buckets for r in b["results"])
    stored = run(write_json(tmp_path / "anthropic_cost.json", {"data": buckets, "has_more": False}))
    assert stored.result.detection.format_name == "anthropic_cost_report"
    assert close(stored.measurements.spend_usd, truth)
    assert truth == pytest.approx(2 * (123.45678 + 987.654 + 10.0))  # dollars, not cents


def test_bedrock_invocation_logs_are_priced_from_the_book(tmp_path: Path) -> None:
    rng = random.Random(11)
    records, truth = [], 0.0
    for i in range(30):
        inp, out, read, write = (
            rng.randint(100, 4_000),
            rng.randint(50, 900),
            rng.randint(0, 9_000),
            rng.randint(0, 900),
        )
        model = (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"
            if i % 3 == 0
            else "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        )
        records.append(
            {
                "schemaType": "ModelInvocationLog",
                "schemaVersion": "1.0",
                "timestamp": f"2025-06-03T08:{i:02d}:11Z",
                "accountId": "123456789012",
                "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/app/worker"},
                "region": "us-east-1",
                "requestId": f"req-{i}",
                "operation": "Converse",
                "modelId": model,
                "requestMetadata": {"feature": "summaries"},
                "input": {
                    "inputContentType": "application/json",
                    "inputTokenCount": inp,
                    "cacheReadInputTokenCount": read,
                    "cacheWriteInputTokenCount": write,
                },
                "output": {
                    "outputContentType": "application/json",
                    "outputTokenCount": out,
                    "outputBodyJson": {"metrics": {"latencyMs": 900 + i}},
                },
            }
        )
        truth += list_cost(HAIKU_4_5 if i % 3 == 0 else SONNET_4_5, inp, read, write, 0, out)
    stored = run(write_jsonl(tmp_path / "bedrock.jsonl", records))
    m = stored.measurements
    assert stored.result.detection.format_name == "bedrock_invocation_logs"
    assert m.unpriced_requests == 0
    assert close(m.spend_usd, truth)
    assert m.cached_input_tokens == sum(r["input"]["cacheReadInputTokenCount"] for r in records)
    assert m.latency_ms is not None
    assert m.latency_ms.p50 == 900 + 14.5
    assert {(r["feature"], r["provider"]) for r in stored.rows} == {("summaries", "bedrock")}
