"""output_cap: responses that run to an oversized output cap, which a tighter cap would stop sooner."""

from __future__ import annotations

from tokenwise.analysis.sql import one
from tokenwise.analysis.strategies.strategy import Context, Strategy

# Providers bill generated tokens, not the cap, so only responses that ran into the cap (truncated
# anyway) are counted: with a cap of `headroom` x the p95 of the responses that ended on their own they
# would have stopped there. Groups where many responses hit the cap need long outputs and are skipped.
_RUNAWAYS = """
WITH capped AS (
    SELECT *, output_tokens >= $hit * max_output_tokens AS at_cap FROM usage
    WHERE max_output_tokens IS NOT NULL AND NOT is_error AND out_p IS NOT NULL
), groups AS (
    SELECT feature, model, count(*) AS n, count(*) FILTER (WHERE at_cap) AS hits,
        quantile_cont(output_tokens, 0.95) FILTER (WHERE NOT at_cap) AS p95, median(max_output_tokens) AS cap
    FROM capped GROUP BY ALL
), tight AS (
    SELECT *, ceil($headroom * p95) AS proposed FROM groups
    WHERE n >= $min_requests AND hits > 0 AND hits <= $max_share * n AND ceil($headroom * p95) <= cap / 2
)
SELECT count(*), count(DISTINCT (t.feature, t.model)), sum(c.output_tokens - t.proposed),
    sum(LEAST((c.output_tokens - t.proposed) * c.out_p / 1e6, c.cost)),
    min(t.cap), max(t.cap), min(t.proposed), max(t.proposed)
FROM capped c JOIN tight t ON c.feature IS NOT DISTINCT FROM t.feature AND c.model = t.model
WHERE c.at_cap AND c.output_tokens > t.proposed
"""


def output_cap(ctx: Context) -> Strategy | None:
    """Output tokens billed beyond a tighter cap on responses that ran to the current cap."""
    t = ctx.thresholds
    hits, groups, tokens, saving, cap_lo, cap_hi, new_lo, new_hi = one(
        ctx.con,
        _RUNAWAYS,
        {
            "hit": t.cap_hit_ratio,
            "headroom": t.cap_headroom,
            "max_share": t.max_cap_hit_share,
            "min_requests": t.min_group_requests,
        },
    )
    if not hits:
        return None
    return ctx.priced(
        "output_cap",
        f"Lower max_output_tokens to about {int(new_hi):,}: {hits:,} responses ran to the current cap",
        saving,
        assumptions=[
            "Providers bill the output tokens generated, not the cap: an oversized cap costs nothing itself.",
            f"A response that reached {100 * t.cap_hit_ratio:g}% of its max_output_tokens ran to the cap "
            "(truncated anyway, typically runaway or repetitive output).",
            f"The proposed cap per feature and model is {t.cap_headroom:g}x the p95 output of the responses "
            "that ended on their own; the saving is the capped responses' output tokens above it.",
            f"Groups where over {100 * t.max_cap_hit_share:g}% of responses hit the cap are left out: they "
            "need long outputs. Latency of the capped calls falls as well (not priced).",
        ],
        confidence="medium",
        risk="Legitimate answers longer than the new cap are cut: watch finish_reason=length afterwards.",
        evidence={
            "capped_responses": int(hits),
            "groups": int(groups),
            "current_cap": int(cap_hi) if cap_lo == cap_hi else f"{int(cap_lo)}-{int(cap_hi)}",
            "proposed_cap": int(new_hi) if new_lo == new_hi else f"{int(new_lo)}-{int(new_hi)}",
            "output_tokens_saved": int(tokens),
        },
    )
