"""Small helpers over a DuckDB connection shared by the measurement and strategy queries."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import duckdb

Params = Mapping[str, object] | None


class Engine:
    """One in-memory DuckDB database for a process's queries.

    Opening a database costs tens of milliseconds, a cursor on it next to nothing, and a question runs
    three or four queries on its way to the answer. Each cursor is a connection of its own: the temp
    tables and views one query creates are invisible to the others, so concurrent runs do not meet.
    """

    def __init__(self) -> None:
        self._db = duckdb.connect()
        self._lock = threading.Lock()  # a DuckDB connection is not thread-safe, cursor() included

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._db.cursor()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def connect(engine: Engine | None) -> duckdb.DuckDBPyConnection:
    """A cursor of `engine`, or a database of its own when there is none (scripts, tests)."""
    return engine.cursor() if engine is not None else duckdb.connect()


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
