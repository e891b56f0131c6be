"""The normalized usage schema: every dataset, whatever its source format, is stored in these columns.

Each dataset is one Parquet file with exactly these columns (in this order), so the analysis reads all of
a user's datasets with one DuckDB scan. Only `ts`, `input_tokens` and `output_tokens` are required; every
other column may be NULL when the source does not have it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    required: bool
    meaning: str


COLUMNS: tuple[Column, ...] = (
    Column("ts", "TIMESTAMP", True, "request time, UTC"),
    Column("model", "VARCHAR", False, "model name (the dataset's model when the source has none)"),
    Column("provider", "VARCHAR", False, "provider or gateway (openai, anthropic, azure, ...)"),
    Column("input_tokens", "BIGINT", True, "prompt / context tokens, cache reads and cache writes included"),
    Column("output_tokens", "BIGINT", True, "completion / generated tokens"),
    Column("cached_input_tokens", "BIGINT", False, "input tokens served from the provider's prompt cache"),
    Column("latency_ms", "DOUBLE", False, "end-to-end request latency in milliseconds"),
    Column("cost_usd", "DOUBLE", False, "cost as reported by the source; NULL: priced from the price table"),
    Column("status", "VARCHAR", False, "status or error text as in the source"),
    Column("is_error", "BOOLEAN", False, "the request failed (derived from status)"),
    Column("user_tag", "VARCHAR", False, "end user the request was made for"),
    Column("feature", "VARCHAR", False, "feature, tag or route of the application that made the request"),
    Column("request_id", "VARCHAR", False, "request id (repeats link retries of one request)"),
    Column("prompt_hash", "VARCHAR", False, "hash of the full prompt (exact duplicates)"),
    Column("prefix_hash", "VARCHAR", False, "hash of the prompt's first 1,024 characters (shared prefixes)"),
    Column("max_output_tokens", "BIGINT", False, "the request's max_tokens / output cap"),
    Column("prompt_text", "VARCHAR", False, "prompt text, kept only when the user asks to keep it"),
    # Added after the first release: files written before them lack these columns, and every reader
    # uses `union_by_name` so that they read as NULL there.
    Column("team", "VARCHAR", False, "team (or team id) that owns the request"),
    Column("project", "VARCHAR", False, "project or workspace the request belongs to"),
    Column("api_key", "VARCHAR", False, "API key id or name the request was made with"),
    # Part of input_tokens, like cached_input_tokens: tokens written to the prompt cache, priced at the
    # provider's cache-write rate (5-minute or unspecified lifetime, and 1-hour lifetime).
    Column("cache_write_tokens", "BIGINT", False, "input tokens written to the prompt cache (5-minute)"),
    Column("cache_write_1h_tokens", "BIGINT", False, "input tokens written to the 1-hour prompt cache"),
    Column("batch", "BOOLEAN", False, "billed at the provider's batch rate (batch API, batch tier)"),
)
NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
REQUIRED: tuple[str, ...] = tuple(column.name for column in COLUMNS if column.required)


def select_list() -> str:
    """`CAST(NULL AS type) AS name` placeholders in schema order, for building normalizing queries."""
    return ", ".join(f"CAST(NULL AS {c.duckdb_type}) AS {c.name}" for c in COLUMNS)
