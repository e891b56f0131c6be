"""Small helpers over a DuckDB connection shared by the measurement and strategy queries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

Params = Mapping[str, object] | None


def one(con: duckdb.DuckDBPyConnection, query: str, params: Params = None) -> tuple[Any, ...]:
    """The single row an aggregate query returns."""
    row = con.execute(query, params).fetchone()
    if row is None:  # an aggregate without GROUP BY always returns a row
        raise RuntimeError(f"query returned no row: {query[:80]}")
    return row


def rows(con: duckdb.DuckDBPyConnection, query: str, params: Params = None) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    return con.execute(query, params).fetchall()


def padded_quantile(con: duckdb.DuckDBPyConnection, table: str, column: str, buckets: int, q: float) -> float:
    """`quantile_cont` of `column` over `buckets` time buckets, where buckets absent from `table` count as 0.

    Computed from the non-empty buckets alone, so a year of per-second load never materialises 31M rows.
    """
    present, smallest = one(con, f"SELECT count(*), min({column}) FROM {table}")  # noqa: S608
    if present == 0 or buckets <= 0:
        return 0.0
    zeros = max(buckets - present, 0)
    pos = q * (buckets - 1)
    if pos <= zeros - 1:
        return 0.0
    if pos < zeros:
        return float((pos - (zeros - 1)) * smallest)
    fraction = (pos - zeros) / (present - 1) if present > 1 else 0.0
    (value,) = one(con, f"SELECT quantile_cont({column}, $q) FROM {table}", {"q": fraction})  # noqa: S608
    return float(value)
