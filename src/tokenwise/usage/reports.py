"""Bucketed usage and cost reports (`{"data": [{bucket, "results": [...]}]}` pages) as flat rows.

The providers' admin APIs answer in time buckets, each with a list of results (one per grouping: model,
project, API key, ...). Each page shape becomes a relation with fixed column names that `mapping.py`
recognises; every row keeps its bucket start in `bucket_start`, which identifies it with its grouping
columns (see `overlap.py`). Measures carry a measure word in their names (tokens, requests, amount).

  openai_usage     `/v1/organization/usage/completions`: each result's `num_model_requests` become that
                   many rows spread evenly over the bucket, with equal shares of its tokens.
  openai_costs     `/v1/organization/costs`: one row per line item, `amount.value` in USD, no tokens.
  anthropic_usage  `/v1/organizations/usage_report/messages`: one row per result (the report has no
                   request count); uncached input, cache reads and 5-minute / 1-hour cache writes apart.
  anthropic_cost   `/v1/organizations/cost_report`: one row per result, `amount` a string in cents.
"""

from __future__ import annotations

from typing import Any

PageRelation = tuple[str, tuple[str, ...]]  # (relation for FROM, its column names)


def page_kind(structure: dict[str, Any]) -> str | None:
    """Which report a JSON structure (DuckDB's `json_group_structure`) is a page of, if any."""
    data = structure.get("data")
    if not (isinstance(data, list) and data and isinstance(data[0], dict) and "results" in data[0]):
        return None
    bucket = data[0]
    results = bucket.get("results")
    result = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else {}
    anthropic = "starting_at" in bucket
    if "uncached_input_tokens" in result or (anthropic and "cache_read_input_tokens" in result):
        return "anthropic_usage"
    if "amount" in result:
        return "openai_costs" if isinstance(result["amount"], dict) else "anthropic_cost"
    if anthropic:
        return "anthropic_cost" if not result or "currency" in result else "anthropic_usage"
    return "openai_usage"


def open_page(relation: str, structure: dict[str, Any]) -> PageRelation | None:
    """The flat relation of a report page read by `relation` (one JSON document per row), or None."""
    kind = page_kind(structure)
    if kind is None:
        return None
    return _BUILDERS[kind](relation)


def _results(relation: str, fields: str) -> str:
    unnested = (
        f"{relation} t, unnest(CAST(json_extract(t.json, '$.data') AS JSON[])) AS u(b), "
        "unnest(CAST(json_extract(b, '$.results') AS JSON[])) AS v(r)"
    )
    return f"(SELECT {fields} FROM {unnested})"  # noqa: S608


def _text_columns(names: tuple[str, ...]) -> str:
    return ", ".join(f"r->>'{name}' AS {name}" for name in names)


OPENAI_USAGE_COLUMNS = ("timestamp", "bucket_start", "model", "input_tokens", "output_tokens",
                        "cached_input_tokens", "user_id", "api_key_id", "project_id", "batch",
                        "service_tier")  # fmt: skip


def _openai_usage(relation: str) -> PageRelation:
    fields = (
        "TRY_CAST(b->>'start_time' AS DOUBLE) AS st, TRY_CAST(b->>'end_time' AS DOUBLE) AS et, "
        "r->>'model' AS model, TRY_CAST(r->>'input_tokens' AS BIGINT) AS inp, "
        "TRY_CAST(r->>'output_tokens' AS BIGINT) AS outp, "
        "TRY_CAST(r->>'input_cached_tokens' AS BIGINT) AS cached, "
        "GREATEST(COALESCE(TRY_CAST(r->>'num_model_requests' AS BIGINT), 1), 1) AS n, "
        + _text_columns(("user_id", "api_key_id", "project_id", "batch", "service_tier"))
    )

    def share(total: str) -> str:  # the i-th of n requests gets an equal share, the remainder to the first
        return f"CAST({total} // n + CAST(i < {total} % n AS INTEGER) AS VARCHAR)"

    expanded = (
        "(SELECT CAST(to_timestamp(st + (et - st) * i / n) AS VARCHAR) AS timestamp, "  # noqa: S608
        "CAST(to_timestamp(st) AS VARCHAR) AS bucket_start, model, "
        f"{share('inp')} AS input_tokens, {share('outp')} AS output_tokens, "
        f"{share('cached')} AS cached_input_tokens, user_id, api_key_id, project_id, batch, service_tier "
        f"FROM (SELECT *, unnest(range(n)) AS i FROM {_results(relation, fields)}))"
    )
    return expanded, OPENAI_USAGE_COLUMNS


OPENAI_COSTS_COLUMNS = ("bucket_start", "amount_usd", "currency", "line_item", "project_id", "api_key_id",
                        "input_tokens", "output_tokens")  # fmt: skip


def _openai_costs(relation: str) -> PageRelation:
    fields = (
        "CAST(to_timestamp(TRY_CAST(b->>'start_time' AS DOUBLE)) AS VARCHAR) AS bucket_start, "
        "r->'amount'->>'value' AS amount_usd, r->'amount'->>'currency' AS currency, "
        + _text_columns(("line_item", "project_id", "api_key_id"))
        + ", '0' AS input_tokens, '0' AS output_tokens"
    )
    return _results(relation, fields), OPENAI_COSTS_COLUMNS


ANTHROPIC_USAGE_COLUMNS = ("bucket_start", "model", "service_tier", "workspace_id", "api_key_id",
                           "context_window", "uncached_input_tokens", "cache_read_input_tokens",
                           "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens",
                           "output_tokens", "web_search_requests")  # fmt: skip


def _anthropic_usage(relation: str) -> PageRelation:
    fields = (
        "b->>'starting_at' AS bucket_start, "
        + _text_columns(("model", "service_tier", "workspace_id", "api_key_id", "context_window"))
        + ", r->>'uncached_input_tokens' AS uncached_input_tokens, "
        "r->>'cache_read_input_tokens' AS cache_read_input_tokens, "
        "r->'cache_creation'->>'ephemeral_5m_input_tokens' AS cache_creation_5m_input_tokens, "
        "r->'cache_creation'->>'ephemeral_1h_input_tokens' AS cache_creation_1h_input_tokens, "
        "r->>'output_tokens' AS output_tokens, "
        "r->'server_tool_use'->>'web_search_requests' AS web_search_requests"
    )
    return _results(relation, fields), ANTHROPIC_USAGE_COLUMNS


ANTHROPIC_COST_COLUMNS = ("bucket_start", "amount_cents", "amount_usd", "currency", "description",
                          "workspace_id", "model", "cost_type", "token_type", "service_tier",
                          "context_window", "input_tokens", "output_tokens")  # fmt: skip


_COST_TEXT = ("currency", "description", "workspace_id", "model", "cost_type", "token_type", "service_tier",
              "context_window")  # fmt: skip


def _anthropic_cost(relation: str) -> PageRelation:
    # `amount` is a decimal string in cents (the provider's cookbook divides it by 100)
    fields = (
        "b->>'starting_at' AS bucket_start, r->>'amount' AS amount_cents, "
        "COALESCE(CAST(TRY_CAST(r->>'amount' AS DECIMAL(38, 9)) / 100 AS VARCHAR), r->>'amount') "
        "AS amount_usd, " + _text_columns(_COST_TEXT) + ", '0' AS input_tokens, '0' AS output_tokens"
    )
    return _results(relation, fields), ANTHROPIC_COST_COLUMNS


_BUILDERS = {
    "openai_usage": _openai_usage,
    "openai_costs": _openai_costs,
    "anthropic_usage": _anthropic_usage,
    "anthropic_cost": _anthropic_cost,
}
