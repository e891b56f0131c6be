"""`analyze(period=...)` measures only the requests of that period."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from support.workload import Workload, write
from tokenwise.analysis import analyze
from tokenwise.analysis.pricing import PriceTable


def test_the_period_limits_every_figure(tmp_path: Path) -> None:
    path = tmp_path / "week.parquet"
    with duckdb.connect() as con:
        write(Workload(seed=11, days=7, base_requests=3_500), path, con)
        expected = con.execute(
            "SELECT count(*), sum(input_tokens) FROM read_parquet($p) "
            "WHERE ts >= TIMESTAMP '2025-03-05' AND ts < TIMESTAMP '2025-03-07'",
            {"p": str(path)},
        ).fetchone()
    bounds = (datetime(2025, 3, 5, tzinfo=UTC), datetime(2025, 3, 7, tzinfo=UTC))
    limited = analyze([path], PriceTable({}), period=bounds).measurements
    everything = analyze([path], PriceTable({}), period=(None, None)).measurements
    assert expected is not None
    assert (limited.requests, limited.input_tokens) == (expected[0], expected[1])
    assert 0 < limited.requests < everything.requests
    assert limited.period is not None
    assert limited.period.start >= "2025-03-05"
    assert limited.period.end < "2025-03-07"
