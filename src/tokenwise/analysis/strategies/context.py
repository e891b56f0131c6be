"""context_trimming: long contexts far above their feature's median that produce short answers."""

from __future__ import annotations

from tokenwise.analysis.sql import one
from tokenwise.analysis.strategies.strategy import Context, Strategy

# Trimmed tokens come off the uncached part of the input first, then off the cached part; no row saves
# more than it cost.
_BLOATED = """
WITH groups AS (
    SELECT feature, model, median(input_tokens) AS mi, median(output_tokens) AS mo FROM usage
    WHERE NOT is_error AND in_p IS NOT NULL GROUP BY ALL HAVING count(*) >= $min_requests
), bloated AS (
    SELECT u.input_tokens - u.cached_input_tokens AS uncached, u.input_tokens - $target * g.mi AS trim,
        u.in_p, u.cached_p, u.cost, g.mi
    FROM usage u JOIN groups g ON u.feature IS NOT DISTINCT FROM g.feature AND u.model = g.model
    WHERE NOT u.is_error AND u.input_tokens > $ratio * g.mi AND u.output_tokens <= g.mo
)
SELECT count(*), sum(trim),
    sum(LEAST((LEAST(trim, uncached) * in_p + GREATEST(trim - uncached, 0) * cached_p) / 1e6, cost)),
    min(mi), max(mi)
FROM bloated
"""


def context_trimming(ctx: Context) -> Strategy | None:
    """Input-token savings of trimming bloated contexts to a multiple of their feature's median."""
    t = ctx.thresholds
    requests, tokens, saving, median_lo, median_hi = one(
        ctx.con,
        _BLOATED,
        {"min_requests": t.min_group_requests, "target": t.trim_target_ratio, "ratio": t.bloat_ratio},
    )
    if not requests:
        return None
    return ctx.priced(
        "context_trimming",
        f"Trim {requests:,} oversized contexts to {t.trim_target_ratio:g}x their feature's median input",
        saving,
        assumptions=[
            f"A context is oversized when its input exceeds {t.bloat_ratio:g}x the median input of its "
            "feature and model while its output is at or below their median output (long context, short "
            "answer).",
            f"It is trimmed to {t.trim_target_ratio:g}x that median (e.g. fewer retrieved chunks, older "
            "turns summarised); trimmed tokens are priced at the input price, cached ones at the cached "
            "price.",
        ],
        confidence="low",
        risk="Answers may get worse where the extra context was needed: trim retrieval and history first, "
        "and compare answers on a sample.",
        evidence={
            "oversized_requests": int(requests),
            "input_tokens_trimmed": int(tokens),
            "median_input_tokens": float(median_hi)
            if median_lo == median_hi
            else f"{median_lo:g}-{median_hi:g}",
        },
    )
