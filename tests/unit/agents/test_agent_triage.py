from __future__ import annotations

import pytest

from tokenwise.agents.sufficiency import judge
from tokenwise.agents.triage import classify, extract_entities
from tokenwise.analysis.profile import OPTIONAL, ModelRows, Profile

EVERY_COLUMN = dict.fromkeys(OPTIONAL, 5000)
DATASET = {"id": "ds-1", "name": "usage.csv", "detected_format": "generic", "model": None, "mapping": {}}


def data(
    rows: int = 5000, days: float = 14.0, columns: dict[str, int] | None = None, **models: int
) -> Profile:
    """A profile of `rows` requests; `models` maps a model name to its unpriced rows ("none" = no model)."""
    counted = [ModelRows(None if name == "none" else name, n, 0, False) for name, n in models.items()]
    priced = rows - sum(models.values())
    rows_per_model = [ModelRows("gpt-4o", priced, 0, True)] if priced else []
    return Profile(
        rows,
        "2025-03-01T00:00:00",
        "2025-03-15T00:00:00",
        days,
        EVERY_COLUMN if columns is None else columns,
        rows_per_model + counted,
    )


def test_cost_question_with_targets() -> None:
    result = classify("how do we cut LLM spend 30% without hurting p95 latency over 800ms on gpt-4o")
    assert result["category"] == "cost_optimization"
    assert "latency_performance" in result["secondary"]
    assert result["entities"] == {
        "models": ["gpt-4o"],
        "reduction_pct": 30,
        "latency_slo": {"percentile": "p95", "threshold_ms": 800},
    }


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("Why is our chatbot so slow? p99 is terrible", "latency_performance"),
        ("Should we switch from GPT-4o to Claude 3.5 Sonnet?", "model_selection"),
        ("Give me a breakdown of usage per team and traffic patterns", "workload_analysis"),
        ("Will our rate limits hold at peak next quarter?", "capacity_planning"),
        ("Our OpenAI bill doubled, how do we save money?", "cost_optimization"),
        ("hello there", "general_question"),
        ("", "general_question"),
    ],
)
def test_categories(question: str, category: str) -> None:
    assert classify(question)["category"] == category


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("reduce costs by 25 percent", {"reduction_pct": 25}),
        ("we want a 40% reduction", {"reduction_pct": 40}),
        ("keep p99 under 1.5 s", {"latency_slo": {"percentile": "p99", "threshold_ms": 1500}}),
        ("budget of $12,500 a month", {"budget_usd": 12500.0}),
        ("budget of $5k", {"budget_usd": 5000.0}),
        (
            "Claude 3.5 Sonnet vs llama 3.1 vs gpt-4o-mini",
            {"models": ["claude-3.5-sonnet", "llama-3.1", "gpt-4o-mini"]},
        ),
        ("the haircut by 30% was fine", {}),
    ],
)
def test_entities(question: str, expected: dict[str, object]) -> None:
    assert extract_entities(question) == expected


def test_overlong_numbers_do_not_break_extraction() -> None:
    assert "latency_slo" not in extract_entities("p95 under " + "9" * 400 + "ms")
    assert extract_entities("$" + "9" * 400)["budget_usd"] > 0


@pytest.mark.parametrize(
    ("rows", "level"), [(0, "insufficient"), (1, "partial"), (999, "partial"), (1000, "sufficient")]
)
def test_sufficiency_levels_by_volume(rows: int, level: str) -> None:
    assert judge(data(rows), [DATASET] if rows else [])["level"] == level


def test_rows_without_model_or_price_are_partial_and_ask_for_the_model() -> None:
    verdict = judge(data(none=3000), [DATASET], "cost_optimization")
    assert verdict["level"] == "partial"
    assert "3,000 rows have no model" in verdict["reasons"][0]
    [missing] = verdict["missing"]
    assert missing["field"] == "model"
    assert missing["datasets"] == ["usage.csv"]
    assert missing["ids"] == ["ds-1"]
    assert "`PATCH /api/datasets/ds-1` with" in missing["how"]
    # a model named for the dataset fills its rows: nothing missing
    assert judge(data(), [{**DATASET, "model": "gpt-4o"}], "cost_optimization")["level"] == "sufficient"


def test_unknown_model_asks_for_a_price() -> None:
    verdict = judge(data(**{"my-llama": 200}), [DATASET])
    assert verdict["level"] == "partial"
    assert [m["field"] for m in verdict["missing"]] == ["price"]
    assert verdict["unpriced"] == [{"model": "my-llama", "rows": 200}]


def test_under_a_day_is_partial() -> None:
    verdict = judge(data(days=0.5), [DATASET])
    assert verdict["level"] == "partial"
    assert "12.0 hours" in verdict["reasons"][0]


def test_missing_strategy_columns_are_suggested_not_partial() -> None:
    bare = {c: 0 for c in OPTIONAL} | {"model": 5000}
    verdict = judge(data(columns=bare), [DATASET], "cost_optimization")
    # what the data holds is measured in full; what more it could check is a suggestion
    assert verdict["level"] == "sufficient"
    assert any(
        s.startswith("`prompt_hash` would let response_caching be checked") for s in verdict["suggestions"]
    )
    blind = {g["strategy"]: g["needs"] for g in verdict["gaps"]}
    assert blind == {
        "response_caching": ["prompt_hash"],
        "prompt_caching": ["prefix_hash"],
        "batching": ["feature"],
        "output_cap": ["max_output_tokens"],
        "retry_waste": ["is_error", "request_id"],
    }
    # the same gaps are only information for a capacity question
    assert judge(data(columns=bare), [DATASET], "capacity_planning")["level"] == "sufficient"
    # retry waste needs errors and one of request id / prompt hash
    some = bare | {"is_error": 5000, "prompt_hash": 5000}
    assert "retry_waste" not in {g["strategy"] for g in judge(data(columns=some), [DATASET])["gaps"]}


def test_latency_question_needs_latency() -> None:
    no_latency = EVERY_COLUMN | {"latency_ms": 0}
    verdict = judge(data(columns=no_latency), [DATASET], "latency_performance")
    assert verdict["level"] == "partial"
    assert [m["field"] for m in verdict["missing"]] == ["latency_ms"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("what did we spend in the last 7 days", {"text": "last 7 days", "days": 7.0}),
        ("costs this month", {"text": "this month", "days": 30.0}),
        ("past quarter", {"text": "past quarter", "days": 91.0}),
        ("from 2025-01-01 to 2025-02-01", {"start": "2025-01-01", "end": "2025-02-01"}),
        ("since 2025-03-10", {"start": "2025-03-10"}),
    ],
)
def test_time_range_entity(question: str, expected: dict[str, object]) -> None:
    assert extract_entities(question)["time_range"] == expected
