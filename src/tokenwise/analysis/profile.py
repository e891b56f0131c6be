"""A cheap look at a user's datasets before the analysis: rows, period, which columns hold values, pricing.

Two aggregate scans over a few columns of the Parquet files (no `usage` table is built), so triage can
judge whether the data answers the question in milliseconds, even for millions of rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from tokenwise.analysis.pricing import PriceBook
from tokenwise.analysis.source import columns_of
from tokenwise.analysis.sql import Engine, connect, one, rows

# Optional schema columns whose presence decides which strategies can be checked.
OPTIONAL = (
    "model",
    "cost_usd",
    "cached_input_tokens",
    "latency_ms",
    "is_error",
    "feature",
    "request_id",
    "prompt_hash",
    "prefix_hash",
    "max_output_tokens",
    "user_tag",
    "team",
    "project",
    "api_key",
)


def _totals(present: set[str]) -> str:
    counts = ", ".join(f"count({c})" if c in present else "0" for c in OPTIONAL)
    # only the constant column names above are interpolated
    return f"SELECT count(*), min(ts), max(ts), {counts} FROM read_parquet($paths, union_by_name = true)"  # noqa: S608


_MODELS = """
SELECT COALESCE(r.model, d.model) AS m, count(*), count(r.cost_usd)
FROM read_parquet($paths, filename = true, union_by_name = true) r LEFT JOIN defaults d USING (filename)
GROUP BY 1 ORDER BY 2 DESC
"""


@dataclass(frozen=True)
class ModelRows:
    """Rows of one model (None: no model, in the rows nor named for their dataset)."""

    model: str | None
    rows: int
    # rows that carry a reported cost (priced without the price book)
    costed_rows: int
    # whether the price book knows the model
    priced: bool

    @property
    def unpriced_rows(self) -> int:
        """Rows with neither a reported cost nor a price: their spend cannot be measured."""
        return 0 if self.priced else self.rows - self.costed_rows


@dataclass(frozen=True)
class Profile:
    """What the datasets hold: volume, period, non-null values per optional column, rows per model."""

    rows: int
    start: str | None
    end: str | None
    days: float
    columns: dict[str, int]
    models: list[ModelRows]

    @property
    def unpriced_rows(self) -> int:
        return sum(m.unpriced_rows for m in self.models)

    def has(self, column: str) -> bool:
        """Whether any row has a value in `column`."""
        return self.columns.get(column, 0) > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


EMPTY = Profile(rows=0, start=None, end=None, days=0.0, columns={}, models=[])


def profile(
    paths: Sequence[str | os.PathLike[str]],
    prices: PriceBook,
    default_models: Mapping[str, str] | None = None,
    *,
    engine: Engine | None = None,
) -> Profile:
    """Profile normalized Parquet datasets; `default_models` maps a path to the model its rows lack."""
    if not paths:
        return EMPTY
    files = [os.fspath(p) for p in paths]
    with connect(engine) as con:
        count, start, end, *present = one(con, _totals(columns_of(con, files)), {"paths": files})
        con.execute("CREATE TEMP TABLE defaults (filename VARCHAR, model VARCHAR)")
        if default_models:
            con.executemany(
                "INSERT INTO defaults VALUES (?, ?)", [(os.fspath(k), v) for k, v in default_models.items()]
            )
        models = [
            ModelRows(
                model=None if m is None else str(m),
                rows=int(n),
                costed_rows=int(c),
                priced=m is not None and prices.price(str(m)) is not None,
            )
            for m, n, c in rows(con, _MODELS, {"paths": files})
        ]
    return Profile(
        rows=int(count),
        start=_iso(start),
        end=_iso(end),
        days=max((end - start).total_seconds(), 1.0) / 86400 if start and end else 0.0,
        columns={name: int(n) for name, n in zip(OPTIONAL, present, strict=True)},
        models=models,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
