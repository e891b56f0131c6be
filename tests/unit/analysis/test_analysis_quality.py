"""Quality bar: every planted inefficiency is named with the right strategy type, its monthly saving within
±10% of the generator's truth, alone and all together; clean data gets no strategy at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.workload import PRICES, Truth, Workload, write
from tokenwise.analysis import Analysis, analyze

KNOBS = {
    "response_caching": {"duplicates": 1200},
    "model_routing": {"short_on_large": 1500},
    "batching": {"nightly_job": 1400},
    "output_cap": {"runaway_outputs": 100},
    "retry_waste": {"retries": 400},
    "prompt_caching": {"shared_prefix": 2000},
    "context_trimming": {"bloated_contexts": 150},
}


def run(tmp_path: Path, workload: Workload) -> tuple[Analysis, Truth]:
    path = tmp_path / "usage.parquet"
    truth = write(workload, path)
    return analyze([path], PRICES), truth


def savings(analysis: Analysis) -> dict[str, float]:
    found = {s.type: s.monthly_savings_usd for s in analysis.strategies}
    assert all(v is not None for v in found.values())
    return {k: float(v or 0.0) for k, v in found.items()}


@pytest.mark.parametrize("kind", sorted(KNOBS))
def test_each_planted_inefficiency_alone_is_found_within_ten_percent(tmp_path: Path, kind: str) -> None:
    analysis, truth = run(tmp_path, Workload(**KNOBS[kind]))
    found = savings(analysis)
    assert set(found) == {kind}
    assert found[kind] == pytest.approx(truth.monthly_savings[kind], rel=0.10)


@pytest.mark.parametrize("report_cost", [False, True])
def test_all_planted_inefficiencies_together(tmp_path: Path, report_cost: bool) -> None:
    knobs = {k: v for knob in KNOBS.values() for k, v in knob.items()}
    analysis, truth = run(tmp_path, Workload(seed=11, report_cost=report_cost, **knobs))
    found = savings(analysis)
    assert set(found) == set(truth.monthly_savings) == set(KNOBS)
    for kind, expected in truth.monthly_savings.items():
        assert found[kind] == pytest.approx(expected, rel=0.10), kind
    ordered = [s.monthly_savings_usd or 0.0 for s in analysis.strategies]
    assert ordered == sorted(ordered, reverse=True)
    monthly_spend = truth.spend_usd * 30 / 7
    for s in analysis.strategies:
        assert s.savings_pct == pytest.approx(100 * (s.monthly_savings_usd or 0) / monthly_spend, rel=0.01)
        assert s.assumptions
        assert s.risk
        assert s.evidence
        assert s.confidence in {"high", "medium", "low"}


def test_clean_workload_gets_no_strategy(tmp_path: Path) -> None:
    analysis, truth = run(tmp_path, Workload(seed=3))
    assert truth.monthly_savings == {}
    assert analysis.strategies == []
    assert analysis.series.savings_by_strategy == []
    m = analysis.measurements
    assert m.requests == truth.rows
    assert m.spend_usd == pytest.approx(truth.spend_usd, rel=1e-9)
    # the shared prefix of the clean workload is measured, but it is already cached
    assert m.prefixes is not None
    assert m.prefixes.groups == 5
    assert m.duplicates is not None
    assert m.duplicates.repeat_requests == 0
    assert m.errors.failed_requests == 0


def test_measurements_of_a_planted_workload(tmp_path: Path) -> None:
    analysis, truth = run(tmp_path, Workload(duplicates=1200, retries=400, shared_prefix=2000))
    m = analysis.measurements
    assert m.requests == truth.rows
    assert m.period is not None
    assert m.period.days == pytest.approx(7, rel=0.01)
    assert m.duplicates is not None
    assert m.duplicates.repeat_requests == 1200
    assert m.duplicates.share == pytest.approx(1200 / truth.rows)
    assert m.errors.failed_requests == m.errors.retried_failures == m.errors.retries == 400
    assert m.errors.error_rate == pytest.approx(400 / truth.rows)
    assert m.errors.retry_waste_usd == pytest.approx(truth.monthly_savings["retry_waste"] * 7 / 30)
    assert m.prefixes is not None
    assert m.prefixes.groups == 5 + 10
    assert {g.key for g in m.models} == {"acme-large", "acme-small"}
    assert sum(g.spend_share or 0 for g in m.models) == pytest.approx(1)
    assert sum(g.requests for g in m.by_day) == sum(g.requests for g in m.by_hour) == m.requests
    assert len(m.by_day) == 7
    assert len(m.by_hour) == 7 * 24
    assert m.latency_ms is not None
    assert m.latency_ms.p50 > 0
    assert m.rate.peak_per_minute >= m.rate.mean_per_minute > 0
    document = json.loads(json.dumps(analysis.to_json()))
    assert set(document) == {"measurements", "strategies", "series", "notes", "generated_at", "thresholds"}
    assert document["measurements"]["period"]["start"].startswith("2025-03-03")
    assert {p["label"] for p in document["series"]["savings_by_strategy"]} == {
        "response_caching",
        "retry_waste",
        "prompt_caching",
    }
    assert any("Prices as of 2025-01-15" in note for note in analysis.notes)
