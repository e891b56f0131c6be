"""Ingest benchmark: generate a 1,000,000-row usage CSV in a temporary directory and time its ingest.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--repeat 3]

Target (issue 3): 1,000,000 rows in at most 10 s on the 2-core reference machine. The CSV is an
OpenAI-style per-request export with ten columns (timestamps, model, tokens, latency, status, user, ...),
and the timing covers the whole import: detection, validation of every value and the Parquet write.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from tokenwise.usage.ingest import ingest
from tokenwise.usage.normalize import Options


def generate(path: Path, rows: int) -> None:
    """Write `rows` synthetic requests as CSV with DuckDB (seconds, not minutes, for a million rows)."""
    duckdb.sql(
        f"""
        COPY (
          SELECT
            strftime(TIMESTAMP '2025-03-01' + to_milliseconds(i * 2500 + (hash(i) % 1000)::BIGINT),
                     '%Y-%m-%dT%H:%M:%S.%fZ') AS timestamp,
            ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet-20241022', 'o4-mini'][1 + (i % 4)::INT] AS model,
            100 + hash(i * 7) % 4000 AS prompt_tokens,
            1 + hash(i * 13) % 800 AS completion_tokens,
            (hash(i * 7) % 4000) // 3 AS cached_tokens,
            round(200 + (hash(i * 17) % 50000) / 10.0, 1) AS latency_ms,
            CASE WHEN i % 97 = 0 THEN '429' ELSE '200' END AS status,
            'user-' || (i % 500)::VARCHAR AS user,
            ['chat', 'search', 'summarize', 'classify'][1 + (i % 3)::INT] AS feature,
            'req-' || i::VARCHAR AS request_id
          FROM range({rows}) AS t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')
        """  # noqa: S608
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tokenwise-bench-") as tmp:
        source = Path(tmp) / "usage.csv"
        started = time.perf_counter()
        generate(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows, {size_mb:.1f} MB CSV in {time.perf_counter() - started:.2f} s")
        timings: list[float] = []
        for attempt in range(args.repeat):
            out = Path(tmp) / f"out-{attempt}.parquet"
            started = time.perf_counter()
            result = ingest(source, out, options=Options(), work_dir=Path(tmp) / "work")
            timings.append(time.perf_counter() - started)
            assert result.row_count == args.rows, result.row_count
            print(
                f"run {attempt + 1}: {timings[-1]:.2f} s  ({args.rows / timings[-1]:,.0f} rows/s, "
                f"format {result.detection.format_name}, parquet {result.bytes / 1e6:.1f} MB)"
            )
        print(
            f"ingest of {args.rows:,} rows on {os.cpu_count()} CPU(s): "
            f"median {statistics.median(timings):.2f} s, best {min(timings):.2f} s (target <= 10 s)"
        )


if __name__ == "__main__":
    main()
