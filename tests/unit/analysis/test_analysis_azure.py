"""Measurements on the two real Azure LLM inference traces agree with an independent csv + statistics count.

Data: Azure LLM inference trace 2023 (Azure/AzurePublicDataset), CC-BY 4.0. Patel, Choukse, Zhang, Shah,
Goiri, Maleki, Bianchini. "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from support.data import shared_data_path
from tokenwise.analysis import NO_PRICES, ModelPrice, PriceTable, analyze
from tokenwise.usage.schema import COLUMNS

TRACES = {"code": 8819, "conv": 19366}
MAPPED = {
    "ts": "CAST(TIMESTAMP AS TIMESTAMP)",
    "input_tokens": "ContextTokens",
    "output_tokens": "GeneratedTokens",
}


def trace(name: str) -> Path:
    # Never skipped: a checkout without the shared data fails here, saying where it looked.
    return shared_data_path(f"azure_llm_inference_2023_{name}.csv")


def to_parquet(source: Path, target: Path) -> Path:
    """The trace in the normalized schema: TIMESTAMP -> ts, ContextTokens/GeneratedTokens, model NULL."""
    columns = ", ".join(f"CAST({MAPPED.get(c.name, 'NULL')} AS {c.duckdb_type}) AS {c.name}" for c in COLUMNS)
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT {columns} FROM read_csv($source)) TO $target (FORMAT parquet)",  # noqa: S608
            {"source": str(source), "target": str(target)},
        )
    return target


@dataclass
class Independent:
    requests: int
    inputs: list[int]
    outputs: list[int]
    per_second: Counter[str]
    per_minute: Counter[str]
    tokens_per_second: Counter[str]


def count(source: Path) -> Independent:
    """The same figures from the CSV with the standard library only."""
    with source.open(newline="") as f:
        rows = list(csv.DictReader(f))
    tokens: Counter[str] = Counter()
    for r in rows:
        tokens[r["TIMESTAMP"][:19]] += int(r["ContextTokens"]) + int(r["GeneratedTokens"])
    return Independent(
        requests=len(rows),
        inputs=[int(r["ContextTokens"]) for r in rows],
        outputs=[int(r["GeneratedTokens"]) for r in rows],
        per_second=Counter(r["TIMESTAMP"][:19] for r in rows),
        per_minute=Counter(r["TIMESTAMP"][:16] for r in rows),
        tokens_per_second=tokens,
    )


def percentile(values: list[int], p: int) -> float:
    # 'inclusive' interpolates at p * (n - 1), as DuckDB's quantile_cont does
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@pytest.mark.parametrize("name", sorted(TRACES))
def test_measurements_match_an_independent_count(tmp_path: Path, name: str) -> None:
    source = trace(name)
    expected = count(source)
    analysis = analyze([to_parquet(source, tmp_path / f"{name}.parquet")], NO_PRICES)
    m = analysis.measurements

    assert m.requests == expected.requests == TRACES[name]
    assert m.input_tokens == sum(expected.inputs)
    assert m.output_tokens == sum(expected.outputs)
    for p in (50, 95, 99):
        assert getattr(m.input_sizes, f"p{p}") == pytest.approx(percentile(expected.inputs, p))
        assert getattr(m.output_sizes, f"p{p}") == pytest.approx(percentile(expected.outputs, p))
    assert m.input_sizes.mean == pytest.approx(statistics.fmean(expected.inputs))
    assert m.rate.peak_per_second == max(expected.per_second.values())
    assert m.rate.peak_per_minute == max(expected.per_minute.values())
    assert m.latency_ms is None
    assert m.duplicates is None
    assert m.prefixes is None

    # no model, no price: measured volumes, no spend, and no $ invented anywhere
    assert m.spend_usd is None
    assert m.unpriced_requests == m.requests
    assert any(f"{m.requests:,} requests have no model name" in note for note in analysis.notes)
    [capacity] = analysis.strategies
    assert capacity.type == "capacity"
    assert capacity.monthly_savings_usd is None
    assert capacity.savings_pct is None
    evidence = capacity.evidence
    assert evidence["peak_tokens_per_s"] == max(expected.tokens_per_second.values())
    assert evidence["peak_requests_per_s"] == m.rate.peak_per_second
    mean = evidence["mean_tokens_per_s"]
    p99 = evidence["p99_tokens_per_s"]
    assert isinstance(mean, float)
    assert isinstance(p99, float)
    assert 0 < mean < p99 <= evidence["peak_tokens_per_s"]


def test_p99_load_counts_idle_seconds(tmp_path: Path) -> None:
    """The p99 of per-second tokens over every second of the trace, idle ones as 0, done the long way."""
    source = trace("code")
    expected = count(source)
    analysis = analyze([to_parquet(source, tmp_path / "code.parquet")], NO_PRICES)
    with duckdb.connect() as con:
        (first, last) = con.execute(
            "SELECT date_trunc('second', min(ts)), date_trunc('second', max(ts)) FROM read_parquet($p)",
            {"p": str(tmp_path / "code.parquet")},
        ).fetchone() or (None, None)
    seconds = int((last - first).total_seconds()) + 1
    load = list(expected.tokens_per_second.values()) + [0] * (seconds - len(expected.tokens_per_second))
    assert analysis.strategies[0].evidence["p99_tokens_per_s"] == pytest.approx(percentile(load, 99))
    assert analysis.strategies[0].evidence["mean_tokens_per_s"] == pytest.approx(statistics.fmean(load))


def test_a_named_model_prices_the_trace(tmp_path: Path) -> None:
    """With the model named for the dataset, spend is priced and capacity (a no-price strategy) goes."""
    path = to_parquet(trace("conv"), tmp_path / "conv.parquet")
    expected = count(trace("conv"))
    book = PriceTable([ModelPrice("m", input_per_mtok=1.0, output_per_mtok=4.0, as_of="2025-01-01")])
    analysis = analyze([path], book, {str(path): "m"})
    m = analysis.measurements
    assert m.spend_usd == pytest.approx((sum(expected.inputs) * 1.0 + sum(expected.outputs) * 4.0) / 1e6)
    assert m.unpriced_requests == 0
    assert [g.key for g in m.models] == ["m"]
    assert "capacity" not in {s.type for s in analysis.strategies}
