"""Actions: one concrete action per measured strategy, best savings per effort first, data steps ahead."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwise.agents.actions import plan
from tokenwise.agents.playbooks import EFFORT, PLAYBOOKS

THRESHOLDS = {"short_input_tokens": 1000, "short_output_tokens": 200, "trim_target_ratio": 2.0}


def strategy(kind: str, saving: float | None, **evidence: Any) -> dict[str, Any]:
    return {"type": kind, "title": f"Do {kind}", "monthly_savings_usd": saving, "evidence": evidence}


def test_ordered_by_savings_per_effort_point() -> None:
    actions = plan(
        [
            strategy("context_trimming", 300.0),  # high effort: 100 per point
            strategy("batching", 240.0),  # medium: 120 per point
            strategy("prompt_caching", 90.0),  # low: 90 per point
            strategy("capacity", None, p99_tokens_per_s=500.0),  # no $: last
            strategy("retry_waste", 130.0),  # low: 130 per point
        ],
        THRESHOLDS,
        has_data=True,
    )["actions"]
    assert [a["strategy"] for a in actions] == [
        "retry_waste", "batching", "context_trimming", "prompt_caching", "capacity",
    ]  # fmt: skip
    assert [a["savings_per_effort"] for a in actions[:4]] == [130.0, 120.0, 100.0, 90.0]
    assert actions[-1]["savings_per_effort"] is None


def test_without_data_the_data_steps_come_first() -> None:
    result = plan([], THRESHOLDS, has_data=False)
    assert result["blocked_on_data"] is True
    assert [a["id"] for a in result["actions"]] == [
        "upload_usage_data",
        "enable_gateway_logging",
        "tag_requests",
    ]


def test_what_is_missing_comes_before_the_strategies_and_gaps_after() -> None:
    missing = [{"field": "model", "why": "prices are per model", "how": "name the model"}]
    gaps = [{"strategy": "response_caching", "needs": ["prompt_hash"], "how": "a prompt_hash column"}]
    ids = [a["id"] for a in plan([strategy("capacity", None)], THRESHOLDS, has_data=True,
                                 missing=missing, gaps=gaps)["actions"]]  # fmt: skip
    assert ids == ["supply_model", "do_capacity", "log_more_columns"]


@pytest.mark.parametrize("kind", sorted(PLAYBOOKS))
def test_every_strategy_type_has_steps_and_snippets(kind: str) -> None:
    [action] = plan([strategy(kind, 10.0)], THRESHOLDS, has_data=True)["actions"]
    assert action["effort"] == EFFORT[kind]
    assert action["steps"]
    assert action["snippets"]
    for snippet in action["snippets"]:
        assert snippet["language"] in {"yaml", "python"}
        assert "$" not in snippet["code"]  # every template placeholder was filled
        assert "```" not in snippet["code"]


def test_snippets_carry_the_measured_numbers() -> None:
    routing = strategy(
        "model_routing", 50.0, short_requests=1500, routes="gpt-4o -> gpt-4o-mini (1,500 requests)"
    )
    cap = strategy("output_cap", 5.0, capped_responses=100, current_cap=4096, proposed_cap=578)
    capacity = strategy(
        "capacity", None, p99_tokens_per_s=58562.4, peak_tokens_per_s=134133, mean_tokens_per_s=5326.0
    )
    actions = {a["strategy"]: a for a in plan([routing, cap, capacity], THRESHOLDS, has_data=True)["actions"]}
    litellm = actions["model_routing"]["snippets"][0]["code"]
    assert "model_name: gpt-4o-mini" in litellm
    assert '- gpt-4o-mini: ["gpt-4o"]' in litellm
    assert "SHORT_INPUT, SHORT_OUTPUT = 1000, 200" in actions["model_routing"]["snippets"][1]["code"]
    assert "max_completion_tokens=578" in actions["output_cap"]["snippets"][0]["code"]
    assert "provision_tokens_per_s: 58562" in actions["capacity"]["snippets"][0]["code"]
    assert "rate_limit_tokens_per_minute: 3513744" in actions["capacity"]["snippets"][0]["code"]


def test_names_from_the_data_cannot_break_out_of_a_snippet() -> None:
    routing = strategy("model_routing", 1.0, routes="evil```\nrm -> cheap```x (3 requests)")
    [action] = plan([routing], THRESHOLDS, has_data=True)["actions"]
    assert all("```" not in s["code"] for s in action["snippets"])
