"""Properties of the analysis on arbitrary small datasets, and the rules behind single measurements."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.workload import PRICES
from tokenwise.analysis import Analysis, ModelPrice, PriceTable, Thresholds, analyze
from tokenwise.analysis.sql import padded_quantile
from tokenwise.usage.schema import COLUMNS

START = datetime(2025, 5, 1)
FIELDS = ("ts", "model", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd", "is_error")
FIELDS += ("feature", "request_id", "prompt_hash", "prefix_hash", "max_output_tokens")
Row = tuple[object, ...]


def write_rows(path: Path, rows: list[Row]) -> Path:
    """Rows given as FIELDS tuples, written as a normalized Parquet file (other columns NULL)."""
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (" + ", ".join(f"{c.name} {c.duckdb_type}" for c in COLUMNS) + ")")
        if rows:
            marks = ", ".join("?" for _ in FIELDS)
            con.executemany(f"INSERT INTO t ({', '.join(FIELDS)}) VALUES ({marks})", rows)  # noqa: S608
        con.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    return path


def row(seconds: float, model: str | None = "acme-large", inp: int = 100, out: int = 10, **kw: object) -> Row:
    values: dict[str, object] = {"cached_input_tokens": 0, "is_error": False, **kw}
    ts = START + timedelta(seconds=seconds)
    return (ts, model, inp, out, *(values.get(f) for f in FIELDS[4:]))


rows_strategy = st.lists(
    st.builds(
        row,
        st.one_of(st.floats(0, 900, allow_nan=False), st.floats(0, 3 * 86400, allow_nan=False)),
        st.sampled_from(["acme-large", "acme-small", "unknown", None]),
        st.one_of(st.integers(0, 1_000), st.integers(1_000, 40_000)),
        st.one_of(st.integers(0, 200), st.integers(200, 5_000), st.just(4096)),
        cost_usd=st.one_of(st.none(), st.floats(0, 5, allow_nan=False)),
        is_error=st.booleans(),
        feature=st.sampled_from(["a", "b", None]),
        request_id=st.one_of(st.none(), st.sampled_from(["r1", "r2", "r3"])),
        prompt_hash=st.one_of(st.none(), st.sampled_from(["p1", "p2", "p3", "p4"])),
        prefix_hash=st.one_of(st.none(), st.sampled_from(["x1", "x2"])),
        max_output_tokens=st.one_of(st.none(), st.just(4096)),
    ),
    min_size=1,
    max_size=60,
)


@st.composite
def bursts(draw: st.DrawFn) -> list[Row]:
    """One feature's burst on one model: shared prefix, a cap, outputs at or far below it, reported costs
    that may be below list price: the shape that prompt_caching, output_cap and context_trimming need."""
    n = draw(st.integers(3, 30))
    gap = draw(st.floats(1, 400))
    model = draw(st.sampled_from(["acme-large", "acme-small"]))
    return [
        row(
            i * gap,
            model,
            draw(st.one_of(st.integers(1_000, 3_000), st.integers(10_000, 40_000))),
            draw(st.one_of(st.integers(1, 300), st.just(4096))),
            cached_input_tokens=draw(st.sampled_from([0, 0, 1_000])),
            cost_usd=draw(st.one_of(st.none(), st.floats(0, 0.01))),
            feature="burst",
            prompt_hash=f"p{i}",
            prefix_hash="shared",
            max_output_tokens=4096,
        )
        for i in range(n)
    ]


def spend(analysis: Analysis) -> float:
    return analysis.measurements.spend_usd or 0.0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=rows_strategy, second=rows_strategy)
def test_spend_and_volumes_add_up_across_datasets(first: list[Row], second: list[Row]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = write_rows(Path(tmp) / "a.parquet", first), write_rows(Path(tmp) / "b.parquet", second)
        alone_a, alone_b, both = analyze([a], PRICES), analyze([b], PRICES), analyze([a, b], PRICES)
    assert spend(both) == pytest.approx(spend(alone_a) + spend(alone_b), rel=1e-9, abs=1e-12)
    for field in ("requests", "input_tokens", "output_tokens", "unpriced_requests"):
        total = getattr(alone_a.measurements, field) + getattr(alone_b.measurements, field)
        assert getattr(both.measurements, field) == total


# Small groups qualify, so that every finder gets to run on these small datasets (with the bursts below,
# each of the eight strategy types shows up within a run's examples).
LOOSE = Thresholds(min_group_requests=3, batch_min_days=1, batch_window_share=0.5, max_cap_hit_share=0.9)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, burst=bursts())
def test_no_strategy_saves_more_than_the_spend(rows: list[Row], burst: list[Row]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        analysis = analyze([write_rows(Path(tmp) / "a.parquet", rows + burst)], PRICES, thresholds=LOOSE)
    monthly_spend = spend(analysis) * (
        30 / analysis.measurements.period.days if analysis.measurements.period else 0
    )
    for s in analysis.strategies:
        if s.monthly_savings_usd is None:
            assert s.type == "capacity"
            continue
        assert 0 < s.monthly_savings_usd <= monthly_spend * (1 + 1e-9)
        assert s.savings_pct is not None
        assert s.savings_pct <= 100 * (1 + 1e-9)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.integers(1, 1000), min_size=1, max_size=30),
    idle=st.integers(0, 200),
    q=st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]),
)
def test_padded_quantile_equals_the_quantile_of_the_zero_padded_series(
    values: list[int], idle: int, q: float
) -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE present (x BIGINT)")
        con.executemany("INSERT INTO present VALUES (?)", [(v,) for v in values])
        con.execute(
            "CREATE TABLE padded AS SELECT x FROM present UNION ALL SELECT 0 FROM range($n)", {"n": idle}
        )
        (expected,) = con.execute("SELECT quantile_cont(x, $q) FROM padded", {"q": q}).fetchone() or (None,)
        assert padded_quantile(con, "present", "x", len(values) + idle, q) == pytest.approx(expected)


def test_retries_are_linked_by_request_id_or_by_prompt_within_the_window(tmp_path: Path) -> None:
    rows = [
        row(0, is_error=True, request_id="a", prompt_hash="pa"),
        row(600, request_id="a", prompt_hash="pa2"),  # same request id: a retry, however late
        row(1000, is_error=True, prompt_hash="pb"),
        row(1010, prompt_hash="pb"),  # same prompt 10 s later: a retry
        row(2000, is_error=True, prompt_hash="pc"),
        row(2000 + 301, prompt_hash="pc"),  # outside the 300 s window: a new request
        row(3000, is_error=True, prompt_hash="pd"),  # never retried
    ]
    m = analyze([write_rows(tmp_path / "r.parquet", rows)], PRICES).measurements
    assert m.errors.failed_requests == 4
    assert m.errors.retried_failures == m.errors.retries == 2
    assert m.errors.retry_waste_input_tokens == 200
    assert m.errors.retry_waste_usd == pytest.approx(2 * (100 * 2.5 + 10 * 10.0) / 1e6)


def test_unpriced_models_are_reported_not_invented(tmp_path: Path) -> None:
    rows = [row(0), row(60, model="mystery"), row(120, model="mystery"), row(180, model=None)]
    rows.append(row(240, model="mystery", cost_usd=0.5))  # a reported cost prices the row
    analysis = analyze([write_rows(tmp_path / "u.parquet", rows)], PRICES)
    m = analysis.measurements
    assert m.unpriced_requests == 3
    assert m.spend_usd == pytest.approx((100 * 2.5 + 10 * 10.0) / 1e6 + 0.5)
    by_model = {g.key: g for g in m.models}
    assert by_model["mystery"].unpriced_requests == 2
    assert by_model["mystery"].spend_usd == 0.5
    assert "2 requests from model mystery were unpriced (no price and no reported cost)." in analysis.notes
    assert any(note.startswith("1 requests have no model name") for note in analysis.notes)


def test_default_model_applies_to_its_own_dataset_only(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.parquet", [row(0, model=None), row(10, model="acme-small")])
    b = write_rows(tmp_path / "b.parquet", [row(20, model=None)])
    m = analyze([a, b], PRICES, {str(a): "acme-small"}).measurements
    assert {g.key: g.requests for g in m.models} == {"acme-small": 2, None: 1}
    assert m.unpriced_requests == 1


def test_a_cheaper_tier_that_is_not_cheaper_is_not_a_route(tmp_path: Path) -> None:
    book = PriceTable(
        [
            ModelPrice("big", 1.0, 4.0, cheaper_tier="other"),
            ModelPrice("other", 1.0, 8.0),
        ]
    )
    rows = [row(i * 60, model="big") for i in range(100)]
    assert analyze([write_rows(tmp_path / "x.parquet", rows)], book).strategies == []


def test_empty_dataset(tmp_path: Path) -> None:
    analysis = analyze([write_rows(tmp_path / "e.parquet", [])], PRICES)
    assert analysis.measurements.requests == 0
    assert analysis.measurements.period is None
    assert analysis.strategies == []
    assert analysis.measurements.spend_usd is None
    assert analysis.notes == ["The datasets hold no requests: there is nothing to measure."]
