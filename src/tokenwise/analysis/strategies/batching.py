"""batching: a feature whose traffic sits in one daily window is a scheduled job that can use a batch API."""

from __future__ import annotations

from tokenwise.analysis.sql import one
from tokenwise.analysis.strategies.strategy import Context, Strategy

# For every feature, the `hours`-long window of the day (UTC, wrapping at midnight) holding most of its
# requests; a feature qualifies when that window holds at least `share` of them on at least `days` days.
_JOBS = """
WITH hourly AS (
    SELECT feature, hour(ts) AS h, count(*) AS n FROM usage GROUP BY ALL
), windows AS (
    SELECT feature, s.start, sum(n) AS total,
        sum(n) FILTER (WHERE (h - s.start + 24) % 24 < $hours) AS in_window
    FROM hourly CROSS JOIN range(24) s(start) GROUP BY ALL
), best AS (
    SELECT feature, arg_max(start, in_window) AS start, max(in_window) AS in_window, any_value(total) AS total
    FROM windows GROUP BY feature
), jobs AS (
    SELECT * FROM best WHERE total >= $min_requests AND in_window >= $share * total
), job_rows AS (
    SELECT u.feature, u.ts, u.cost, u.batch_discount, j.start
    FROM usage u JOIN jobs j ON u.feature IS NOT DISTINCT FROM j.feature
    WHERE (hour(u.ts) - j.start + 24) % 24 < $hours AND u.cost IS NOT NULL AND u.batch_discount > 0
), qualified AS (
    SELECT feature FROM job_rows GROUP BY feature HAVING count(DISTINCT CAST(ts AS DATE)) >= $days
)
SELECT count(*), sum(cost * batch_discount), sum(cost),
    string_agg(DISTINCT COALESCE(job_rows.feature, '(no feature)') || ' at '
        || lpad(CAST(start AS VARCHAR), 2, '0') || ':00', ', '),
    count(DISTINCT job_rows.feature), min(batch_discount), max(batch_discount)
FROM job_rows JOIN qualified q ON job_rows.feature IS NOT DISTINCT FROM q.feature
"""


def batching(ctx: Context) -> Strategy | None:
    """Batch-API discount on the requests of features that run as a daily job."""
    t = ctx.thresholds
    requests, saving, cost, jobs, features, low, high = one(
        ctx.con,
        _JOBS,
        {
            "hours": t.batch_window_hours,
            "share": t.batch_window_share,
            "days": t.batch_min_days,
            "min_requests": t.min_group_requests,
        },
    )
    if not requests:
        return None
    discount = f"{100 * low:g}%" if low == high else f"{100 * low:g}-{100 * high:g}%"
    return ctx.priced(
        "batching",
        f"Run the daily job{'s' if features > 1 else ''} {jobs} through the batch API",
        saving,
        assumptions=[
            f"A feature is a scheduled job when at least {100 * t.batch_window_share:g}% of its requests "
            f"fall in one {t.batch_window_hours}-hour window of the day (UTC), on at least "
            f"{t.batch_min_days} days.",
            "Nobody waits on these requests, so they tolerate the batch API's turnaround (up to 24 h).",
            f"The batch API takes {discount} off input and output prices (price book) for those requests.",
        ],
        confidence="medium",
        risk="Results arrive later (up to 24 h): only for work nobody waits on. Needs a submit/poll step.",
        evidence={
            "jobs": jobs,
            "batchable_requests": int(requests),
            "batchable_cost_usd": float(cost),
        },
    )
