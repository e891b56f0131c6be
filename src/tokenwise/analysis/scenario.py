"""What-ifs priced over a plan's scope: route traffic to another model, cap outputs, cache, batch, trim
contexts, a price change, traffic growth. Every result says what it assumed.

Savings are positive, extra cost negative; "a month" is the scope's observed figure x 30 days / the days
between its first and last request.
"""

# ruff: noqa: S608 - only this module's constant SQL fragments are interpolated

from __future__ import annotations

from typing import Any

import duckdb

from tokenwise.analysis.plan import QueryPlan, Scenario
from tokenwise.analysis.pricing import PriceBook
from tokenwise.analysis.query import Scope, totals
from tokenwise.analysis.sql import one

JSON = dict[str, Any]
MONTH_DAYS = 30
DEFAULT_PREFIX_TOKENS = 1024  # the smallest prompt the providers cache


def price_scenario(con: duckdb.DuckDBPyConnection, plan: QueryPlan, book: PriceBook) -> JSON:
    """The saving (or extra cost) of the plan's scenario, per period and per month."""
    scenario = plan.scenario
    assert scenario is not None
    scope = Scope(plan)
    base = totals(con, scope)
    out: JSON = {"kind": scenario.kind, "scenario": scenario.model_dump(exclude_none=True), "scope": base}
    if base["requests"] == 0:
        return {**out, "empty": True}
    where = scope.where
    if scenario.condition == "short":
        (median,) = one(
            con, f"SELECT quantile_cont(input_tokens + output_tokens, 0.5) FROM usage {where}", scope.params
        )
        out["short_threshold_tokens"] = float(median)
        where = scope.and_(f"input_tokens + output_tokens <= {float(median)!r}")
    priced = _PRICERS[scenario.kind](con, scenario, book, where, scope.params)
    if "missing" in priced:
        return {**out, **priced, "empty": False}
    share = scenario.share_pct / 100 if scenario.kind in ("route", "batch", "cache_hit") else 1.0
    saving = priced["saving"] * share
    factor = MONTH_DAYS / base["span_days"]
    spend = base["spend_usd"] or 0.0
    return {
        **out,
        "empty": False,
        "saving_period_usd": saving,
        "saving_monthly_usd": saving * factor,
        "baseline_period_usd": spend,
        "baseline_monthly_usd": spend * factor,
        "new_monthly_usd": (spend - saving) * factor,
        "saving_pct": 100 * saving / spend if spend else None,
        "affected_requests": round(priced["affected"] * share),
        "excluded_requests": priced.get("excluded", 0),
        "span_days": base["span_days"],
        "month_days": MONTH_DAYS,
        "assumptions": priced["assumptions"],
        **({"target": priced["target"]} if "target" in priced else {}),
    }


def _route(con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON) -> JSON:
    assert s.target_model is not None
    target = book.price(s.target_model)
    if target is None:
        return {"missing": "target_price", "target_model": s.target_model}
    new_cost = (
        "((input_tokens - cached_input_tokens) * $t_in + cached_input_tokens * $t_cached"
        " + output_tokens * $t_out) / 1e6"
    )
    saving, affected, excluded = one(
        con,
        f"""SELECT sum(cost - {new_cost}) FILTER (WHERE cost IS NOT NULL AND model IS DISTINCT FROM $t_model),
            count(*) FILTER (WHERE cost IS NOT NULL AND model IS DISTINCT FROM $t_model),
            count(*) FILTER (WHERE cost IS NULL)
            FROM usage {where}""",
        {
            **params,
            "t_in": target.input_per_mtok,
            "t_cached": target.cached_rate,
            "t_out": target.output_per_mtok,
            "t_model": target.model,
        },
    )
    return {
        **_counted(saving, affected, excluded),
        "target": {
            "model": target.model,
            "input_per_mtok": target.input_per_mtok,
            "cached_input_per_mtok": target.cached_rate,
            "output_per_mtok": target.output_per_mtok,
            "as_of": target.as_of,
        },
        "assumptions": [
            f"The same tokens at {target.model}'s list prices (${target.input_per_mtok:g} input, "
            f"${target.output_per_mtok:g} output per 1M tokens, as of {target.as_of or 'the price book'}).",
            "Answer quality on the cheaper model is not measured: try it on a sample of this traffic first.",
        ],
    }


def _cap(con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON) -> JSON:
    saving, affected, excluded = one(
        con,
        f"""SELECT sum(greatest(output_tokens - $cap, 0) * out_p) FILTER (WHERE out_p IS NOT NULL) / 1e6,
            count(*) FILTER (WHERE output_tokens > $cap), count(*) FILTER (WHERE out_p IS NULL)
            FROM usage {where}""",
        {**params, "cap": s.max_output_tokens},
    )
    return {
        **_counted(saving, affected, excluded),
        "assumptions": [
            f"Responses longer than {s.max_output_tokens:,} tokens stop at the cap; the tokens above it are "
            "saved at the model's output price.",
            "A capped answer may be cut short: check that the longest responses are waste, not content.",
        ],
    }


def _cache_hit(
    con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON
) -> JSON:
    assert s.hit_rate_pct is not None
    rate = s.hit_rate_pct / 100
    spend, n = _spend(con, where, params)
    return {
        "saving": spend * rate,
        "affected": int(n) * rate,
        "assumptions": [
            f"{s.hit_rate_pct:g}% of these requests are answered from a response cache at no model cost "
            "(the cache's own cost is not counted); hits are spread like the traffic.",
        ],
    }


def _prompt_cache(
    con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON
) -> JSON:
    prefix = s.prefix_tokens or DEFAULT_PREFIX_TOKENS
    saving, affected, excluded = one(
        con,
        f"""SELECT sum(greatest($prefix - cached_input_tokens, 0) * (in_p - cached_p))
                FILTER (WHERE in_p IS NOT NULL AND input_tokens >= $prefix) / 1e6,
            count(*) FILTER (WHERE in_p IS NOT NULL AND input_tokens >= $prefix),
            count(*) FILTER (WHERE in_p IS NULL)
            FROM usage {where}""",
        {**params, "prefix": prefix},
    )
    return {
        **_counted(saving, affected, excluded),
        "assumptions": [
            f"A shared prefix of {prefix:,} tokens{'' if s.prefix_tokens else ' (assumed: none was named)'} "
            "is read from the provider's prompt cache at its cached-input price on every request at least "
            "that long; the part of it already cached is not counted twice.",
            "Cache writes (Anthropic charges 1.25x for them) and expiry between requests are not counted: "
            "read the figure as an upper bound.",
        ],
    }


def _batch(con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON) -> JSON:
    saving, affected, excluded = one(
        con,
        f"""SELECT sum(cost * batch_discount) FILTER (WHERE batch_discount > 0),
            count(*) FILTER (WHERE batch_discount > 0),
            count(*) FILTER (WHERE COALESCE(batch_discount, 0) = 0)
            FROM usage {where}""",
        params,
    )
    return {
        **_counted(saving, affected, excluded),
        "assumptions": [
            "The provider's batch API discount (50% at OpenAI and Anthropic) on every request moved; results "
            "come back within 24 hours, so only work nobody waits on can move.",
        ],
    }


def _trim(con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON) -> JSON:
    saving, affected, excluded = one(
        con,
        # The prompt keeps its first `limit` tokens, cached prefix first: uncached and cached tokens beyond
        # the limit are saved at their own prices.
        f"""SELECT sum(((input_tokens - cached_input_tokens) - (least(input_tokens, $limit)
                - least(cached_input_tokens, $limit))) * in_p
                + (cached_input_tokens - least(cached_input_tokens, $limit)) * cached_p)
                FILTER (WHERE in_p IS NOT NULL) / 1e6,
            count(*) FILTER (WHERE input_tokens > $limit), count(*) FILTER (WHERE in_p IS NULL)
            FROM usage {where}""",
        {**params, "limit": s.max_input_tokens},
    )
    return {
        **_counted(saving, affected, excluded),
        "assumptions": [
            f"Contexts longer than {s.max_input_tokens:,} tokens keep their first {s.max_input_tokens:,} "
            "(the cached prefix first); the tokens removed are saved at the model's input (or cached) price.",
            "Whether answers stay as good with less context is not measured.",
        ],
    }


def _price_change(
    con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON
) -> JSON:
    assert s.price_change_pct is not None
    spend, n = _spend(con, where, params)
    return {
        "saving": -spend * s.price_change_pct / 100,
        "affected": int(n),
        "assumptions": [
            f"Every price of this traffic changes by {s.price_change_pct:+g}%; usage stays the same."
        ],
    }


def _growth(con: duckdb.DuckDBPyConnection, s: Scenario, book: PriceBook, where: str, params: JSON) -> JSON:
    assert s.growth_pct is not None
    spend, n = _spend(con, where, params)
    return {
        "saving": -spend * s.growth_pct / 100,
        "affected": int(n),
        "assumptions": [
            f"Traffic grows by {s.growth_pct:g}% with the same mix of models and request sizes, at today's "
            "prices."
        ],
    }


def _spend(con: duckdb.DuckDBPyConnection, where: str, params: JSON) -> tuple[float, int]:
    """The scope's spend and requests."""
    spend, n = one(con, f"SELECT sum(cost), count(*) FROM usage {where}", params)
    return float(spend or 0.0), int(n)


def _counted(saving: float | None, affected: int, excluded: int) -> JSON:
    """A pricer's figures from its one query: the saving, the requests it touches, those it cannot price."""
    return {"saving": float(saving or 0.0), "affected": int(affected), "excluded": int(excluded)}


_PRICERS = {
    "route": _route,
    "output_cap": _cap,
    "cache_hit": _cache_hit,
    "prompt_cache": _prompt_cache,
    "batch": _batch,
    "trim_context": _trim,
    "price_change": _price_change,
    "growth": _growth,
}
