"""Which datasets answer a question by their grain (`agents.grain`): plain calls, no server."""

from __future__ import annotations

from typing import Any

import pytest

from tokenwise.agents.grain import coverage, mixed_text, need_of, readings, unanswerable_text
from tokenwise.analysis.plan import QueryPlan


def plan(**fields: Any) -> QueryPlan:
    return QueryPlan.model_validate(fields)


def dataset(
    name: str, fmt: str = "generic", *, bucketed: bool = False, counts: bool = True
) -> dict[str, Any]:
    return {"id": f"id-{name}", "name": name, "detected_format": fmt, "bucketed": bucketed,
            "request_counts": counts, "row_count": 10}  # fmt: skip


LOG = dataset("gateway.jsonl")
OPENAI = dataset("org usage", "openai_usage_api", bucketed=True)
ANTHROPIC = dataset("claude usage", "anthropic_usage_report", bucketed=True, counts=False)


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"intent": "percentiles", "measure": "latency_ms"}, "per_request"),
        ({"intent": "percentiles", "measure": "input_tokens"}, "per_request"),
        ({"intent": "top_requests"}, "per_request"),
        ({"intent": "capacity"}, "per_request"),
        ({"intent": "slo", "threshold": {"measure": "latency_ms", "value": 2000}}, "per_request"),
        ({"intent": "breakdown", "measure": "error_rate", "group_by": "model"}, "per_request"),
        ({"intent": "what_if", "scenario": {"kind": "output_cap", "max_output_tokens": 500}}, "per_request"),
        ({"intent": "what_if", "scenario": {"kind": "route", "target_model": "x", "condition": "short"}},
         "per_request"),
        ({"intent": "total", "measure": "requests"}, "request_count"),
        ({"intent": "unit_cost", "unit": "request"}, "request_count"),
        ({"intent": "total"}, None),
        ({"intent": "trend"}, None),
        ({"intent": "what_if", "scenario": {"kind": "growth", "growth_pct": 20}}, None),
    ],
)  # fmt: skip
def test_what_a_question_needs(fields: dict[str, Any], kind: str | None) -> None:
    need = need_of(plan(**fields))
    assert (need.kind if need else None) == kind


def test_per_request_logs_alone_need_nothing_said() -> None:
    assert coverage(plan(intent="percentiles", measure="latency_ms"), [LOG]) is None


def test_reports_only_cannot_answer_a_per_request_question() -> None:
    found = coverage(plan(intent="top_requests"), [OPENAI, ANTHROPIC])
    assert found is not None
    assert found["unanswerable"] is True
    assert found["used"] == []
    text = unanswerable_text(found)
    assert "the top requests need the requests themselves" in text
    assert "'org usage' (an OpenAI usage report) and 'claude usage' (an Anthropic usage report) hold" in text


def test_mixed_data_answers_from_the_logs_and_request_counts_from_reports_that_count() -> None:
    per_request = coverage(plan(intent="percentiles", measure="latency_ms"), [LOG, OPENAI])
    assert per_request is not None
    assert [d["name"] for d in per_request["used"]] == ["gateway.jsonl"]
    assert [d["name"] for d in per_request["left_out"]] == ["org usage"]
    assert mixed_text(per_request).startswith(" Answered from 'gateway.jsonl' only: latency percentiles")
    counted = coverage(plan(intent="total", measure="requests"), [LOG, OPENAI, ANTHROPIC])
    assert counted is not None
    assert [d["name"] for d in counted["used"]] == ["gateway.jsonl", "org usage"]
    assert [d["name"] for d in counted["left_out"]] == ["claude usage"]
    assert "holds time buckets that count no requests" in mixed_text(counted)


def test_totals_read_everything_and_say_what_the_reports_are() -> None:
    found = coverage(plan(intent="total"), [LOG, ANTHROPIC])
    assert found is not None
    assert (found["left_out"], found["unanswerable"]) == ([], False)
    notes = readings(found)
    assert notes[0].startswith("The figures add per-request data from 'gateway.jsonl' and time buckets")
    assert "'claude usage' (an Anthropic usage report) counts no requests" in notes[1]
