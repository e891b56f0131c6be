"""The `usage` table: all of a user's datasets read with one DuckDB scan, each row's model and cost resolved.

Every later query reads this one in-memory table, so the Parquet files are read once (after a cheap scan
of the model column that learns which prices to look up). A row's cost is its reported cost, else its
tokens priced from the price book, else NULL (unpriced: never guessed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from tokenwise.analysis.pricing import ModelPrice, PriceBook

# Costs are computed from $ per 1M tokens. Cache reads and writes are part of input_tokens (schema), so
# each input token is priced once: uncached at the input rate, reads at the cached rate, 5-minute and
# 1-hour writes at their write rates; the batch discount applies to all of it.
_LIST_COST = """(
    (GREATEST(input_tokens - cached_input_tokens - cache_write_tokens - cache_write_1h_tokens, 0) * in_p
    + cached_input_tokens * cached_p + cache_write_tokens * write_p + cache_write_1h_tokens * write_1h_p
    + output_tokens * out_p) / 1e6 * CASE WHEN batch THEN 1 - COALESCE(batch_discount, 0) ELSE 1 END)"""


def _key(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE hash({column}) END"


# Ids and hashes become 64-bit hashes (collisions are negligible at these sizes): grouping and windowing
# on integers is several times faster than on 32-character strings, and the table stays small.
# prompt_key / prefix_key add the model, since caches are per model.
_USAGE = f"""
CREATE OR REPLACE TEMP TABLE usage AS
WITH raw AS (
    SELECT r.ts,
        COALESCE(r.model, d.model) AS model,
        r.feature, {{optional}}, r.request_id AS request_ref,
        {_key("r.request_id")} AS request_id, {_key("r.prompt_hash")} AS prompt_hash,
        {_key("r.prefix_hash")} AS prefix_hash,
        COALESCE(r.input_tokens, 0) AS input_tokens,
        COALESCE(r.output_tokens, 0) AS output_tokens,
        LEAST(COALESCE(r.cached_input_tokens, 0), COALESCE(r.input_tokens, 0)) AS cached_input_tokens,
        r.latency_ms, COALESCE(r.is_error, false) AS is_error, r.max_output_tokens,
        r.cost_usd AS reported_cost
    FROM read_parquet($paths, filename = true, union_by_name = true) r LEFT JOIN defaults d USING (filename)
    WHERE ($start IS NULL OR r.ts >= $start) AND ($end IS NULL OR r.ts < $end)
)
SELECT raw.*, hash(model, prompt_hash) AS prompt_key, hash(model, prefix_hash) AS prefix_key,
    p.in_p, p.cached_p, p.out_p, p.batch_discount, p.write_p, p.write_1h_p,
    p.alt_model, p.alt_in, p.alt_cached, p.alt_out,
    COALESCE(reported_cost, {_LIST_COST}) AS cost
FROM raw LEFT JOIN prices p USING (model)
"""  # noqa: S608 - only constant SQL fragments are interpolated


# Columns added to the schema later: files written before them do not have them (read as the default).
_LATER = {
    "user_tag": "NULL",
    "team": "NULL",
    "project": "NULL",
    "api_key": "NULL",
    "provider": "NULL",
    "cache_write_tokens": "0",
    "cache_write_1h_tokens": "0",
    "batch": "false",
}
_LATER_TYPES = {"cache_write_tokens": "BIGINT", "cache_write_1h_tokens": "BIGINT", "batch": "BOOLEAN"}


def _optional(present: set[str]) -> str:
    """The later columns, from the files where they exist (NULL counts and flags read as 0 / false)."""
    items = []
    for column, default in _LATER.items():
        kind = _LATER_TYPES.get(column, "VARCHAR")
        value = f"COALESCE(r.{column}, {default})" if default != "NULL" else f"r.{column}"
        items.append(f"{value if column in present else f'CAST({default} AS {kind})'} AS {column}")
    return ", ".join(items)


def columns_of(con: duckdb.DuckDBPyConnection, files: list[str]) -> set[str]:
    """The columns any of the Parquet files has (older files lack the columns added since)."""
    described = con.execute(
        "DESCRIBE SELECT * FROM read_parquet($paths, union_by_name = true)", {"paths": files}
    ).fetchall()
    return {str(row[0]) for row in described}


def _usage_sql(con: duckdb.DuckDBPyConnection, files: list[str]) -> str:
    return _USAGE.replace("{optional}", _optional(columns_of(con, files)))


@dataclass(frozen=True)
class Loaded:
    """What loading learned: the prices used, and the requests no price or reported cost covers."""

    prices: Mapping[str, ModelPrice]
    unpriced: Mapping[str | None, int]


def _prepare(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | os.PathLike[str]],
    book: PriceBook,
    default_models: Mapping[str, str] | None,
) -> tuple[list[str], dict[str, ModelPrice]]:
    """The `defaults` and `prices` tables both ways of reading the files join: returns the file paths and
    the prices of the models the files hold."""
    files = [os.fspath(p) for p in paths]
    con.execute("CREATE OR REPLACE TEMP TABLE defaults (filename VARCHAR, model VARCHAR)")
    if default_models:
        con.executemany(
            "INSERT INTO defaults VALUES (?, ?)", [(os.fspath(k), v) for k, v in default_models.items()]
        )
    models = con.execute(
        "SELECT DISTINCT COALESCE(r.model, d.model) "
        "FROM read_parquet($paths, filename = true, union_by_name = true) r "
        "LEFT JOIN defaults d USING (filename)",
        {"paths": files},
    ).fetchall()
    return files, _price_table(con, book, [m for (m,) in models if m is not None])


def load(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | os.PathLike[str]],
    book: PriceBook,
    default_models: Mapping[str, str] | None = None,
    period: tuple[datetime | None, datetime | None] = (None, None),
) -> Loaded:
    """Create the `usage` table on `con` from normalized Parquet files, limited to `period` [start, end)."""
    files, prices = _prepare(con, paths, book, default_models)
    start, end = (_naive_utc(bound) for bound in period)
    con.execute(_usage_sql(con, files), {"paths": files, "start": start, "end": end})
    unpriced = con.execute("SELECT model, count(*) FROM usage WHERE cost IS NULL GROUP BY model").fetchall()
    return Loaded(prices=prices, unpriced={model: int(n) for model, n in unpriced})


def _naive_utc(moment: datetime | None) -> datetime | None:
    # The stored `ts` is a naive UTC TIMESTAMP; compare like with like.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None and moment.tzinfo else moment


def _price_table(con: duckdb.DuckDBPyConnection, book: PriceBook, models: list[str]) -> dict[str, ModelPrice]:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE prices (model VARCHAR, in_p DOUBLE, cached_p DOUBLE, out_p DOUBLE, "
        "batch_discount DOUBLE, alt_model VARCHAR, alt_in DOUBLE, alt_cached DOUBLE, alt_out DOUBLE, "
        "write_p DOUBLE, write_1h_p DOUBLE)"
    )
    used: dict[str, ModelPrice] = {}
    rows = []
    for model in models:
        price = book.price(model)
        if price is None:
            continue
        used[model] = price
        alt = book.price(price.cheaper_tier) if price.cheaper_tier else None
        cheaper = alt is not None and _cheaper(alt, price)
        rows.append(
            (
                model,
                price.input_per_mtok,
                price.cached_rate,
                price.output_per_mtok,
                price.batch_discount,
                alt.model if alt and cheaper else None,
                alt.input_per_mtok if alt and cheaper else None,
                alt.cached_rate if alt and cheaper else None,
                alt.output_per_mtok if alt and cheaper else None,
                price.cache_write_rate,
                price.cache_write_1h_rate,
            )
        )
    if rows:
        con.executemany("INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return used


def _cheaper(alt: ModelPrice, price: ModelPrice) -> bool:
    no_dearer = alt.input_per_mtok <= price.input_per_mtok and alt.output_per_mtok <= price.output_per_mtok
    return no_dearer and (alt.input_per_mtok, alt.output_per_mtok) != (
        price.input_per_mtok,
        price.output_per_mtok,
    )


_VIEW = f"""
CREATE OR REPLACE TEMP VIEW usage AS
SELECT *, COALESCE(reported_cost, {_LIST_COST}) AS cost FROM (
    SELECT r.ts, COALESCE(r.model, d.model) AS model, r.feature, {{optional}}, r.request_id AS request_ref,
        COALESCE(r.input_tokens, 0) AS input_tokens, COALESCE(r.output_tokens, 0) AS output_tokens,
        LEAST(COALESCE(r.cached_input_tokens, 0), COALESCE(r.input_tokens, 0)) AS cached_input_tokens,
        r.latency_ms, COALESCE(r.is_error, false) AS is_error, r.max_output_tokens,
        r.cost_usd AS reported_cost, p.in_p, p.cached_p, p.out_p, p.batch_discount, p.write_p, p.write_1h_p
    FROM read_parquet({{files}}, filename = true, union_by_name = true) r
    LEFT JOIN defaults d USING (filename) LEFT JOIN prices p ON p.model = COALESCE(r.model, d.model)
)
"""  # noqa: S608 - only constant SQL fragments are interpolated


def attach(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | os.PathLike[str]],
    book: PriceBook,
    default_models: Mapping[str, str] | None = None,
) -> Loaded:
    """Create `usage` on `con` as a view over the Parquet files: nothing is copied, each query scans only
    the columns it reads (a question's query takes tens of milliseconds on a million rows)."""
    files, prices = _prepare(con, paths, book, default_models)
    optional = _optional(columns_of(con, files))
    # A view cannot take parameters: the paths are our own files, quoted as SQL literals.
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    con.execute(_VIEW.replace("{optional}", optional).replace("{files}", listed))
    return Loaded(prices=prices, unpriced={})
