"""Measured waste: failed calls and their retries, exact duplicate requests, repeated prompt prefixes.

Each measurement also leaves a temp table (`retried_failures`, `prefix_groups`) that the strategies read.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from tokenwise.analysis.sql import one

# A failed call counts as retried when a later call carries the same request id, or the same prompt hash
# within the retry window. Windows run only over keys that had an error, which keeps them small.
_RETRIES = """
CREATE OR REPLACE TEMP TABLE retry_links AS
WITH by_id AS (
    SELECT rowid AS id, ts, is_error,
        lead(ts) OVER w AS next_ts, lag(is_error) OVER w AS prev_error, lag(ts) OVER w AS prev_ts
    FROM usage WHERE request_id IN (SELECT request_id FROM usage WHERE is_error)
    WINDOW w AS (PARTITION BY request_id ORDER BY ts)
), by_prompt AS (
    SELECT rowid AS id, ts, is_error,
        lead(ts) OVER w AS next_ts, lag(is_error) OVER w AS prev_error, lag(ts) OVER w AS prev_ts
    FROM usage WHERE prompt_hash IN (SELECT prompt_hash FROM usage WHERE is_error)
    WINDOW w AS (PARTITION BY prompt_hash ORDER BY ts)
)
SELECT id, bool_or(failed_retried) AS failed_retried, bool_or(is_retry) AS is_retry FROM (
    SELECT id, is_error AND next_ts IS NOT NULL AS failed_retried, COALESCE(prev_error, false) AS is_retry
    FROM by_id
    UNION ALL
    SELECT id, is_error AND next_ts <= ts + to_seconds($window) AS failed_retried,
        COALESCE(prev_error AND ts <= prev_ts + to_seconds($window), false) AS is_retry
    FROM by_prompt
) GROUP BY id
"""

# Counting per key first keeps the heavier aggregate to the keys that repeat.
_DUPLICATES = """
WITH candidates AS (
    SELECT prompt_key, ts, input_tokens, output_tokens, cost FROM usage
    WHERE prompt_hash IS NOT NULL AND NOT is_error
), repeated AS (
    SELECT prompt_key FROM candidates GROUP BY prompt_key HAVING count(*) > 1
), groups AS (
    SELECT count(*) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cost) AS c,
        arg_min(input_tokens, ts) AS first_i, arg_min(output_tokens, ts) AS first_o,
        arg_min(cost, ts) AS first_c
    FROM candidates SEMI JOIN repeated USING (prompt_key) GROUP BY prompt_key
)
SELECT count(*), sum(n - 1), sum(i - first_i), sum(o - first_o), sum(c - first_c) FROM groups
"""

_PREFIX_GROUPS = """
CREATE OR REPLACE TEMP TABLE prefix_groups AS
WITH candidates AS (
    SELECT prefix_key, model, prompt_hash, input_tokens FROM usage
    WHERE prefix_hash IS NOT NULL AND prompt_hash IS NOT NULL AND NOT is_error
), repeated AS (
    SELECT prefix_key FROM candidates GROUP BY prefix_key HAVING count(*) > 1
)
SELECT prefix_key, any_value(model) AS model, count(*) AS requests, min(input_tokens) AS prefix_tokens
FROM candidates SEMI JOIN repeated USING (prefix_key)
GROUP BY prefix_key HAVING min(prompt_hash) <> max(prompt_hash)
"""


@dataclass(frozen=True)
class Errors:
    """Failed calls, and the failed calls that were retried (their tokens and spend are the retry waste)."""

    failed_requests: int
    error_rate: float
    failed_spend_usd: float | None
    retried_failures: int
    retries: int
    retry_waste_input_tokens: int
    retry_waste_output_tokens: int
    retry_waste_usd: float | None


@dataclass(frozen=True)
class Duplicates:
    """Exact repeats of a successful request (same model and prompt hash), all but the first occurrence."""

    repeated_prompts: int
    repeat_requests: int
    share: float
    repeat_input_tokens: int
    repeat_output_tokens: int
    repeat_spend_usd: float | None


@dataclass(frozen=True)
class Prefixes:
    """Prompt prefixes (prefix hash) shared by requests with different prompts, per model.

    The shared length of a group is estimated as its shortest prompt: an upper bound on the common prefix.
    """

    groups: int
    requests: int
    repeated_prefix_tokens: int
    share_of_input_tokens: float


def errors(con: duckdb.DuckDBPyConnection, retry_window_s: float) -> Errors:
    """Error rate and retry waste; leaves `retried_failures` (the usage rows of failed, retried calls)."""
    con.execute(_RETRIES, {"window": retry_window_s})
    con.execute(
        "CREATE OR REPLACE TEMP TABLE retried_failures AS SELECT * FROM usage "
        "WHERE rowid IN (SELECT id FROM retry_links WHERE failed_retried)"
    )
    total, failed, failed_spend = one(
        con, "SELECT count(*), count(*) FILTER (WHERE is_error), sum(cost) FILTER (WHERE is_error) FROM usage"
    )
    retried, waste_in, waste_out, waste_usd = one(
        con, "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cost) FROM retried_failures"
    )
    (retries,) = one(con, "SELECT count(*) FROM retry_links WHERE is_retry")
    return Errors(
        failed_requests=int(failed),
        error_rate=failed / total if total else 0.0,
        failed_spend_usd=_money(failed_spend),
        retried_failures=int(retried),
        retries=int(retries),
        retry_waste_input_tokens=int(waste_in or 0),
        retry_waste_output_tokens=int(waste_out or 0),
        retry_waste_usd=_money(waste_usd),
    )


def duplicates(con: duckdb.DuckDBPyConnection, requests: int) -> Duplicates | None:
    """Exact duplicates by (model, prompt hash); None when the data has no prompt hashes."""
    (hashed,) = one(con, "SELECT count(prompt_hash) FROM usage")
    if not hashed:
        return None
    prompts, repeats, rep_in, rep_out, rep_usd = one(
        con,
        _DUPLICATES,
    )
    return Duplicates(
        repeated_prompts=int(prompts),
        repeat_requests=int(repeats or 0),
        share=(repeats or 0) / requests if requests else 0.0,
        repeat_input_tokens=int(rep_in or 0),
        repeat_output_tokens=int(rep_out or 0),
        repeat_spend_usd=_money(rep_usd),
    )


def prefixes(con: duckdb.DuckDBPyConnection, input_tokens: int) -> Prefixes | None:
    """Repeated prompt prefixes; leaves `prefix_groups`. None when the data has no prefix hashes."""
    con.execute(_PREFIX_GROUPS)
    (hashed,) = one(con, "SELECT count(prefix_hash) FROM usage")
    if not hashed:
        return None
    groups, requests, repeated = one(
        con, "SELECT count(*), sum(requests), sum((requests - 1) * prefix_tokens) FROM prefix_groups"
    )
    return Prefixes(
        groups=int(groups),
        requests=int(requests or 0),
        repeated_prefix_tokens=int(repeated or 0),
        share_of_input_tokens=(repeated or 0) / input_tokens if input_tokens else 0.0,
    )


def _money(value: float | None) -> float | None:
    return None if value is None else float(value)
