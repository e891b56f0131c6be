"""Mapping detection: each named format is recognised from its header, aliases fill the rest."""

from __future__ import annotations

import pytest

from tokenwise.errors import InvalidInput
from tokenwise.usage.mapping import detect, normalize, require


def test_azure_trace() -> None:
    found = detect(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
    assert found.format_name == "azure_llm_inference_2023"
    assert found.mapping == {
        "ts": "TIMESTAMP",
        "input_tokens": "ContextTokens",
        "output_tokens": "GeneratedTokens",
    }


def test_burstgpt() -> None:
    found = detect(["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"])
    assert found.format_name == "burstgpt"
    assert found.format is not None
    assert found.format.relative_time
    assert found.format.zero_output_is_error
    assert found.mapping == {
        "ts": "Timestamp",
        "model": "Model",
        "input_tokens": "Request tokens",
        "output_tokens": "Response tokens",
        "feature": "Log Type",
    }


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            ["timestamp", "model", "prompt_tokens", "completion_tokens", "user", "request_id"],
            {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens", "user_tag": "user"},
        ),
        (
            ["created", "model", "input_tokens", "output_tokens", "prompt_tokens_details.cached_tokens"],
            {"ts": "created", "cached_input_tokens": "prompt_tokens_details.cached_tokens"},
        ),
        (
            ["created", "model", "usage.prompt_tokens", "usage.completion_tokens", "id"],
            {
                "input_tokens": "usage.prompt_tokens",
                "output_tokens": "usage.completion_tokens",
                "request_id": "id",
            },
        ),
    ],
)
def test_openai_style_exports(columns: list[str], expected: dict[str, str]) -> None:
    found = detect(columns)
    assert found.format_name == "openai_usage"
    assert expected.items() <= found.mapping.items()


def test_litellm_spend_logs() -> None:
    columns = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
               "completion_tokens", "startTime", "endTime", "model", "user", "metadata", "cache_hit",
               "status", "end_user"]  # fmt: skip
    found = detect(columns)
    assert found.format_name == "litellm_spend_logs"
    assert found.mapping["ts"] == "startTime"
    assert found.mapping["end_ts"] == "endTime"
    assert found.mapping["cost_usd"] == "spend"
    assert found.mapping["user_tag"] == "user"
    assert found.mapping["status"] == "status"
    assert found.mapping["request_id"] == "request_id"


def test_generic_aliases_are_case_and_separator_insensitive() -> None:
    found = detect(
        ["Time", "Prompt-Tokens", "GENERATED_TOKENS", "Latency MS", "cache_read_input_tokens", "Route"]
    )
    assert found.format_name == "generic"
    assert found.mapping == {
        "ts": "Time",
        "input_tokens": "Prompt-Tokens",
        "output_tokens": "GENERATED_TOKENS",
        "latency_ms": "Latency MS",
        "cached_input_tokens": "cache_read_input_tokens",
        "feature": "Route",
    }
    assert normalize(" Request tokens ") == "requesttokens"


def test_a_column_feeds_one_field_only() -> None:
    found = detect(["time", "tokens_in", "tokens_out", "duration_ms", "latency_s"])
    assert found.mapping["latency_ms"] == "duration_ms"
    assert "latency_s" not in found.mapping


def test_override_wins_and_can_unmap() -> None:
    columns = ["when", "model", "in", "out", "feature"]
    found = detect(columns, {"ts": "when", "input_tokens": "in", "output_tokens": "out", "feature": None})
    assert found.mapping == {"ts": "when", "model": "model", "input_tokens": "in", "output_tokens": "out"}


def test_override_names_unknown_field_and_missing_column() -> None:
    with pytest.raises(InvalidInput, match="unknown field 'tokens'"):
        detect(["a"], {"tokens": "a"})
    with pytest.raises(InvalidInput, match=r"no such column; columns found: a, b") as caught:
        detect(["a", "b"], {"ts": "c"})
    assert caught.value.field == "mapping"


def test_missing_required_column_names_it_and_lists_columns() -> None:
    found = detect(["timestamp", "prompt_tokens", "feature"])
    with pytest.raises(InvalidInput) as caught:
        require(found)
    assert caught.value.field == "output_tokens"
    assert "missing required column for output_tokens" in caught.value.message
    assert "columns found: timestamp, prompt_tokens, feature" in caught.value.message
