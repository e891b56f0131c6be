from __future__ import annotations

import pytest

from tokenwise.agents.triage import classify, extract_entities, sufficiency


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
def test_sufficiency_levels(rows: int, level: str) -> None:
    assert sufficiency(1, rows)["level"] == level
