"""Shared steps of the per-format tests: write a fixture, ingest it, analyse it, read what was stored.

The prices here are the providers' published list prices in $ per 1M tokens, written out by hand so that
each test's expected spend is computed without the code under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tokenwise.analysis import analyze
from tokenwise.analysis.measurements import Measurements
from tokenwise.usage.ingest import IngestResult, ingest
from tokenwise.usage.prices import load_prices

# input, cache read, 5-minute cache write, 1-hour cache write, output ($ per 1M tokens)
SONNET_4_5 = (3.0, 0.30, 3.75, 6.0, 15.0)
HAIKU_4_5 = (1.0, 0.10, 1.25, 2.0, 5.0)
GPT_4O = (2.5, 1.25, 2.5, 2.5, 10.0)
GPT_4O_MINI = (0.15, 0.075, 0.15, 0.15, 0.6)


def list_cost(
    rates: tuple[float, ...], uncached: int, read: int, write_5m: int, write_1h: int, out: int
) -> float:
    """Dollars of one request, every token type at its own rate."""
    return (
        uncached * rates[0] + read * rates[1] + write_5m * rates[2] + write_1h * rates[3] + out * rates[4]
    ) / 1e6


@dataclass(frozen=True)
class Stored:
    result: IngestResult
    measurements: Measurements
    rows: list[dict[str, Any]]

    def total(self, column: str) -> int:
        return sum(int(row[column] or 0) for row in self.rows)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run(source: Path) -> Stored:
    """Ingest `source`, analyse the dataset with the shipped price book, and read the stored rows."""
    out = source.with_name("out.parquet")
    result = ingest(source, out)
    analysis = analyze([out], load_prices())
    con = duckdb.connect()
    try:
        cursor = con.execute("SELECT * FROM read_parquet(?)", [str(out)])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    finally:
        con.close()
    return Stored(result, analysis.measurements, rows)


def close(value: float | None, truth: float, tolerance: float = 0.005) -> bool:
    """Within `tolerance` (relative) of the truth."""
    return value is not None and abs(value - truth) <= tolerance * abs(truth)
