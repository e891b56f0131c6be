"""model_routing: short, simple requests sent to an expensive model could go to its cheaper sibling."""

from __future__ import annotations

from tokenwise.analysis.sql import rows
from tokenwise.analysis.strategies.strategy import Context, Strategy

_SHORT = """
SELECT model, alt_model, count(*), sum(cost) AS cost_now,
    sum(((input_tokens - cached_input_tokens) * alt_in + cached_input_tokens * alt_cached
        + output_tokens * alt_out) / 1e6) AS cheaper
FROM usage
WHERE alt_model IS NOT NULL AND cost IS NOT NULL AND NOT is_error
    AND input_tokens <= $max_in AND output_tokens <= $max_out
GROUP BY model, alt_model ORDER BY cost_now - cheaper DESC
"""


def model_routing(ctx: Context) -> Strategy | None:
    """Savings of pricing the short requests of each expensive model at its cheaper tier's prices."""
    t = ctx.thresholds
    routes = rows(ctx.con, _SHORT, {"max_in": t.short_input_tokens, "max_out": t.short_output_tokens})
    if not routes:
        return None
    saving = sum(float(cost) - float(alt) for *_, cost, alt in routes)
    requests = sum(int(n) for _, _, n, _, _ in routes)
    pairs = ", ".join(f"{m} -> {alt} ({n:,} requests)" for m, alt, n, _, _ in routes)
    first, first_alt = routes[0][0], routes[0][1]
    return ctx.priced(
        "model_routing",
        f"Route {requests:,} short requests from {first} to {first_alt}"
        + (" (and more pairs)" if len(routes) > 1 else ""),
        saving,
        assumptions=[
            f"A short request has at most {t.short_input_tokens:,} input and {t.short_output_tokens:,} "
            "output tokens; failed calls are left out.",
            "Each goes to the cheaper tier the price book names for its model, with the same token counts "
            "(cached input stays cached).",
        ],
        confidence="medium",
        risk="The cheaper model may answer some of these requests worse: evaluate a sample first and keep a "
        "fallback to the larger model.",
        evidence={
            "short_requests": requests,
            "routes": pairs,
            "cost_now_usd": sum(float(c) for *_, c, _ in routes),
            "cost_on_cheaper_usd": sum(float(a) for *_, a in routes),
        },
    )
