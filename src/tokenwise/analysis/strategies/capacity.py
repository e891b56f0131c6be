"""capacity: for self-hosted traffic without prices, the load to provision for and what batching frees."""

from __future__ import annotations

from tokenwise.analysis.sql import one, padded_quantile
from tokenwise.analysis.strategies.strategy import Context, Strategy
from tokenwise.analysis.traffic import buckets

_SECONDS = """
CREATE OR REPLACE TEMP TABLE load_seconds AS
SELECT date_trunc('second', ts) AS b, count(*) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o,
    sum(input_tokens + output_tokens) AS t
FROM usage WHERE cost IS NULL GROUP BY 1
"""


def capacity(ctx: Context) -> Strategy | None:
    """Per-second token load of the unpriced requests: mean, p99 and peak; no $ without a price."""
    if ctx.measurements.unpriced_requests < ctx.thresholds.min_group_requests:
        return None
    con = ctx.con
    con.execute(_SECONDS)
    total_in, total_out, peak_tokens, peak_requests, span = one(
        con,
        "SELECT sum(i), sum(o), max(t), max(n), date_diff('second', min(b), max(b)) + 1 FROM load_seconds",
    )
    seconds = int(span)
    mean_tokens = (total_in + total_out) / seconds
    p99_tokens = padded_quantile(con, "load_seconds", "t", seconds, 0.99)
    p99_input = padded_quantile(con, "load_seconds", "i", seconds, 0.99)
    p99_output = padded_quantile(con, "load_seconds", "o", seconds, 0.99)
    minutes = buckets(con, "minute", "WHERE cost IS NULL")
    headroom = ctx.thresholds.capacity_headroom
    freed = max(0.0, 1 - headroom * mean_tokens / p99_tokens) if p99_tokens else 0.0
    return Strategy(
        type="capacity",
        title=f"Provision about {p99_tokens:,.0f} tokens/s (p99 of per-second load); batching could free "
        f"{100 * freed:.0f}% of it",
        monthly_savings_usd=None,
        savings_pct=None,
        assumptions=[
            "These requests have no price and no reported cost (self-hosted or unknown model): no $ claimed.",
            "Load is input + output tokens per second over every second of the period, idle seconds "
            "included; percentiles are linear (DuckDB quantile_cont).",
            f"Queueing and batching latency-tolerant requests lets capacity follow {headroom:g}x the mean "
            "load instead of the p99; the freed share is 1 - that / p99.",
        ],
        confidence="medium",
        risk="Below the p99, requests queue at peaks: keep interactive traffic on reserved capacity.",
        evidence={
            "requests": ctx.measurements.unpriced_requests,
            "mean_tokens_per_s": mean_tokens,
            "p99_tokens_per_s": p99_tokens,
            "peak_tokens_per_s": int(peak_tokens),
            "p99_input_tokens_per_s": p99_input,
            "p99_output_tokens_per_s": p99_output,
            "peak_requests_per_s": int(peak_requests),
            "peak_to_mean_per_minute": minutes.peak / minutes.mean if minutes.mean else 0.0,
            "cv_per_minute": minutes.cv,
            "batching_headroom": freed,
        },
    )
