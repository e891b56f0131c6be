"""Property: any valid rows written as CSV come back from ingest with the same totals, row for row."""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenwise.usage.ingest import ingest

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama, 70b", 'quoted "model"']
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1))
rows = st.lists(
    st.tuples(
        times,
        st.sampled_from(MODELS),
        st.integers(min_value=0, max_value=2_000_000),
        st.integers(min_value=0, max_value=100_000),
        st.one_of(st.none(), st.integers(min_value=0, max_value=1_000)),
        st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows)
def test_csv_round_trip_keeps_totals(
    rows: list[tuple[datetime, str, int, int, int | None, str, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "usage.csv", Path(tmp) / "usage.parquet"
        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["timestamp", "model", "prompt_tokens", "completion_tokens", "cached_tokens", "feature"]
            )
            for ts, model, tokens_in, tokens_out, cached, feature, epoch in rows:
                when = str(int(ts.replace(tzinfo=UTC).timestamp())) if epoch else ts.isoformat()
                writer.writerow(
                    [when, model, tokens_in, tokens_out, "" if cached is None else cached, feature]
                )
        result = ingest(source, out)
        assert result.row_count == len(rows)
        con = duckdb.connect()
        stored = con.execute(
            "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), "
            "count(cached_input_tokens), min(ts), max(ts) FROM read_parquet(?)",
            [str(out)],
        ).fetchone()
        assert stored is not None
        cached_values = [r[4] for r in rows if r[4] is not None]
        stamps = [r[0].replace(microsecond=0) if r[6] else r[0] for r in rows]
        assert stored[:5] == (
            len(rows),
            sum(r[2] for r in rows),
            sum(r[3] for r in rows),
            sum(cached_values) if cached_values else None,
            len(cached_values),
        )
        assert (stored[5], stored[6]) == (min(stamps), max(stamps))
        query = "SELECT model, sum(output_tokens) FROM read_parquet(?) GROUP BY model"
        by_model = dict(con.execute(query, [str(out)]).fetchall())
        con.close()
        expected: dict[str, int] = {}
        for r in rows:
            expected[r[1]] = expected.get(r[1], 0) + r[3]
        assert by_model == expected
