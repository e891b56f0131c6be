"""retry_waste: failed calls that were retried were paid for and produced nothing."""

from __future__ import annotations

from tokenwise.analysis.sql import one
from tokenwise.analysis.strategies.strategy import Context, Strategy


def retry_waste(ctx: Context) -> Strategy | None:
    """The cost of failed attempts that a later call retried."""
    failed, cost, inputs, outputs = one(
        ctx.con, "SELECT count(*), sum(cost), sum(input_tokens), sum(output_tokens) FROM retried_failures"
    )
    errors = ctx.measurements.errors
    window = ctx.thresholds.retry_window_s
    return ctx.priced(
        "retry_waste",
        f"Stop paying for {failed:,} failed calls that were retried",
        cost,
        assumptions=[
            "A failed call counts as retried when a later call has the same request id, or the same prompt "
            f"hash within {window:g} s.",
            "Failed calls are billed for the tokens recorded for them (the reported cost when present).",
            "Removing the cause (rate-limit aware backoff, longer client timeouts, context-length checks "
            "before sending) removes the failed attempt; the successful retry is still paid for.",
        ],
        confidence="medium",
        risk="Low: the fix changes error handling, not answers; some failures (provider outages) stay.",
        evidence={
            "retried_failures": int(failed),
            "retries": errors.retries,
            "failed_input_tokens": int(inputs or 0),
            "failed_output_tokens": int(outputs or 0),
            "error_rate": errors.error_rate,
        },
    )
