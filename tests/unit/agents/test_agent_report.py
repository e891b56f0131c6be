"""Report composition: full, partial and guidance reports from the agents' results, and their Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.workload import PRICES, Workload, write
from tokenwise.agents.actions import plan
from tokenwise.agents.data import dataset_info
from tokenwise.agents.optimization import evaluate
from tokenwise.agents.rendering import render
from tokenwise.agents.report import compose, pieces
from tokenwise.agents.sufficiency import judge
from tokenwise.analysis import analyze, profile

DATASET = {
    "id": "ds-1",
    "name": "usage.csv",
    "detected_format": "litellm_spend_logs",
    "row_count": 0,
    "model": None,
    "mapping": {"model": "model"},
    "period": {"start": "2025-03-03", "end": "2025-03-10"},
}


def results_for(path: Path, question: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """What the agents would have produced for one dataset, built from the same functions they call."""
    analysis, found = analyze([path], PRICES).to_json(), profile([path], PRICES)
    entities = question or {}
    datasets = [{**DATASET, "row_count": found.rows}]
    optimization = evaluate(analysis, found, entities)
    return {
        "triage": {"category": "cost_optimization", "entities": entities, "rows": found.rows,
                   "sufficiency": judge(found, datasets, "cost_optimization")},
        "data": {"has_data": True, "rows": found.rows, "datasets": 1, "analysis": analysis,
                 "profile": found.to_json(), "datasets_info": [dataset_info(d) for d in datasets]},
        "optimization": optimization,
        "actions": plan(optimization["strategies"], analysis["thresholds"], has_data=True),
    }  # fmt: skip


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "usage.parquet"
    write(Workload(seed=5, duplicates=800, nightly_job=1400, retries=300), path)
    return path


def test_full_report(planted: Path) -> None:
    report = compose(results_for(planted, {"reduction_pct": 10}))
    assert report["report_type"] == "full"
    m = report["measurements"]
    assert {"requests", "input_tokens", "output_tokens", "spend_usd", "period", "models"} <= set(m)
    assert set(m["period"]) == {"start", "end", "days"}
    assert {row["model"] for row in m["models"]} == {"acme-large", "acme-small"}
    assert {s["type"] for s in report["strategies"]} == {"response_caching", "batching", "retry_waste"}
    for s in report["strategies"]:
        assert {
            "type",
            "title",
            "monthly_savings_usd",
            "savings_pct",
            "confidence",
            "assumptions",
            "actions",
        } <= set(s)
        assert s["actions"][0]["strategy"] == s["type"]
    assert report["target"]["reduction_pct"] == 10
    assert report["target"]["verdict"] in {"reachable", "reachable_combined", "not_reachable"}
    assert report["target"]["text"] in report["summary"]
    assert report["series"]["requests_by_hour"]
    assert report["data_request"] is None
    assert report["missing"] == []
    markdown = render(report)
    for heading in ("## Your data", "## Measurements", "### By model", "## Strategies", "## Your target",
                    "## Next steps", "## Notes"):  # fmt: skip
        assert heading in markdown
    assert "`litellm_spend_logs`" in markdown
    assert "".join(pieces(markdown)) == markdown


def test_a_failed_step_makes_it_partial_and_says_so(planted: Path) -> None:
    results = results_for(planted)
    results["optimization"] = {"failed": True, "code": "agent_failed", "message": "RuntimeError"}
    report = compose(results)
    assert report["report_type"] == "partial"
    assert report["strategies"] == []
    assert (
        report["notes"][0] == "The optimization step failed (agent_failed); this report is built without it."
    )
    assert report["measurements"]["requests"] > 0  # what was measured is still reported


def test_partial_data_lists_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "short.parquet"
    write(Workload(days=1, base_requests=800), path)  # under 1,000 rows, in one day
    report = compose(results_for(path))
    assert report["report_type"] == "partial"
    assert [m["field"] for m in report["missing"]] == ["period"]
    reasons = report["data"]["reasons"]
    assert "hours of traffic" in reasons[0]
    assert "below 1,000" in reasons[1]
    markdown = render(report)
    assert "## What is missing" in markdown
    assert "The data is **partial** for this question." in markdown


def test_triage_failed_the_data_agent_profile_judges(planted: Path) -> None:
    results = results_for(planted)
    results["triage"] = {"failed": True, "code": "agent_failed", "message": "RuntimeError"}
    report = compose(results)
    assert report["data"]["sufficiency"] == "sufficient"
    assert report["report_type"] == "partial"  # a step failed


def test_guidance_without_data() -> None:
    results = {
        "triage": {"category": "cost_optimization", "entities": {"models": ["gpt-4o"]}, "rows": 0,
                   "sufficiency": {"level": "insufficient", "reasons": ["No usage data"], "missing": []}},
        "data": {"has_data": False, "rows": 0, "datasets": 0, "datasets_info": []},
        "optimization": evaluate(None, None, {}),
        "actions": plan([], {}, has_data=False),
    }  # fmt: skip
    report = compose(results)
    assert report["report_type"] == "guidance"
    assert report["title"].endswith("the data needed")
    assert report["strategies"] == []
    assert report["data_request"]["fields"]
    assert report["measurements"]["requests"] == 0
    assert "Models named: gpt-4o." in report["summary"]
    markdown = render(report)
    assert "## Data needed" in markdown
    assert "## What the analysis will check" in markdown
    assert "saves **$" not in markdown
