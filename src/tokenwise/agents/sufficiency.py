"""Whether the user's data can answer the question: sufficient, partial (and what is missing) or insufficient.

Judged from a `Profile` of the datasets (rows, period, which columns hold values, which rows can be
priced), never from row counts alone.
"""

from __future__ import annotations

from typing import Any

from tokenwise.agents.tooling import JSON
from tokenwise.analysis.profile import Profile

# Rows below which percentiles and per-model splits are too noisy to quote.
SUFFICIENT_ROWS = 1_000

# What each column adds and how to supply it (the wording of the partial report's "what is missing").
SUPPLY: dict[str, str] = {
    "model": 'name the model of the dataset: `PATCH /api/datasets/{id}` with `{"model": "gpt-4o"}`, '
    "`tokenwise ingest FILE --model NAME`, or a `model` column",
    "price": "add the model's $ per 1M input/output tokens in a prices file (`TOKENWISE_PRICES_FILE`, same "
    "shape as `GET /api/prices`), or send a `cost` column",
    "prompt_hash": "a `prompt_hash` column (SHA-256 of each prompt), or `prompt_text`, hashed on arrival",
    "prefix_hash": "a `prompt_text` column: hashed on arrival, its first 1,024 characters hashed apart to "
    "find shared prefixes (the text itself is not kept)",
    "feature": "a `feature` (or tag, route) column naming the feature or job behind each request",
    "max_output_tokens": "a `max_tokens` column: the output cap each request was sent with",
    "is_error": "a `status` or `error` column for each request",
    "request_id": "a `request_id` column (a repeated id links a retry to its failed call)",
    "latency_ms": "a `latency_ms` column (or `latency_s`, or an end time)",
    "period": "upload at least a day of traffic, ideally two weeks, so daily patterns and monthly figures "
    "are real",
}

# strategy -> columns it needs (any one of each inner tuple) and what it cannot see without them.
GAPS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "response_caching": ((("prompt_hash",),), "exact duplicate requests"),
    "prompt_caching": ((("prefix_hash",),), "shared prompt prefixes"),
    "batching": ((("feature",),), "scheduled jobs that could use a batch API"),
    "output_cap": ((("max_output_tokens",),), "responses that run to an oversized output cap"),
    "retry_waste": ((("is_error",), ("request_id", "prompt_hash")), "failed calls that were retried"),
}
_COST_CATEGORIES = ("cost_optimization",)


def gaps(profile: Profile) -> list[JSON]:
    """The strategies the data cannot check, with the columns each needs."""
    found = []
    for strategy, (groups, sees) in GAPS.items():
        missing = [group[0] for group in groups if not any(profile.has(c) for c in group)]
        if missing:
            found.append(
                {
                    "strategy": strategy,
                    "needs": missing,
                    "finds": sees,
                    "how": "; ".join(SUPPLY[column] for column in missing),
                }
            )
    return found


def judge(profile: Profile, datasets: list[dict[str, Any]], category: str = "general_question") -> JSON:
    """The sufficiency verdict, with every reason it is not `sufficient` and how to supply what is missing."""
    base: JSON = {
        "datasets": len(datasets),
        "rows": profile.rows,
        "formats": sorted({str(d.get("detected_format")) for d in datasets if d.get("detected_format")}),
        "period": {"start": profile.start, "end": profile.end, "days": profile.days}
        if profile.start
        else None,
    }
    if profile.rows <= 0:
        reason = "No usage data has been uploaded, so nothing can be measured."
        return {
            **base,
            "level": "insufficient",
            "reasons": [reason],
            "reason": reason,
            "missing": [],
            "gaps": [],
            "suggestions": [],
            "unpriced": [],
        }
    reasons: list[str] = []
    missing: list[JSON] = []
    unpriced = [{"model": m.model, "rows": m.unpriced_rows} for m in profile.models if m.unpriced_rows]
    nameless = next((m for m in unpriced if m["model"] is None), None)
    if nameless:
        names = [str(d.get("name")) for d in datasets if not d.get("model") and not _model_column(d)]
        ids = _ids(datasets, names)
        reasons.append(
            f"{nameless['rows']:,} rows have no model and no reported cost, so their spend cannot be priced."
        )
        missing.append(
            {
                "field": "model",
                "datasets": names,
                "ids": ids,
                "why": "prices are per model: without it spend and savings stay unmeasured",
                # one dataset to fix: name it in the request, ready to run
                "how": SUPPLY["model"].replace("{id}", ids[0]) if len(ids) == 1 else SUPPLY["model"],
            }
        )
    named = [m for m in unpriced if m["model"] is not None]
    if named:
        listing = ", ".join(f"{m['model']} ({m['rows']:,} rows)" for m in named)
        reasons.append(f"No price for {listing}: their spend cannot be priced.")
        missing.append(
            {
                "field": "price",
                "models": [m["model"] for m in named],
                "why": "spend is tokens x price",
                "how": SUPPLY["price"],
            }
        )
    if profile.days < 1:
        reasons.append(
            f"Only {profile.days * 24:.1f} hours of traffic: monthly figures extrapolate them to 30 days "
            "and daily patterns are not visible."
        )
        missing.append(
            {
                "field": "period",
                "why": "monthly figures and daily jobs need days of traffic",
                "how": SUPPLY["period"],
            }
        )
    if profile.rows < SUFFICIENT_ROWS:
        reasons.append(f"{profile.rows:,} rows is below {SUFFICIENT_ROWS:,}: percentiles would be noisy.")
    if category == "latency_performance" and not profile.has("latency_ms"):
        reasons.append("The data has no latency, which a latency question needs.")
        missing.append(
            {"field": "latency_ms", "why": "latency percentiles and SLO checks", "how": SUPPLY["latency_ms"]}
        )
    blind = gaps(profile)
    # Columns that would let more strategies be checked are a suggestion, not a reason to call the data
    # partial: what the data holds is measured in full, and the report says what more it could check.
    suggestions = (
        [
            f"{', '.join(f'`{n}`' for n in g['needs'])} would let {g['strategy']} be checked ({g['finds']})"
            for g in blind
        ]
        if category in _COST_CATEGORIES
        else []
    )
    level = "partial" if reasons else "sufficient"
    summary = (
        reasons[0]
        if reasons
        else f"{profile.rows:,} rows across {len(datasets)} dataset(s) over {profile.days:.1f} days."
    )
    return {
        **base,
        "level": level,
        "reasons": reasons,
        "reason": summary,
        "missing": missing,
        "gaps": blind,
        "suggestions": suggestions,
        "unpriced": unpriced,
    }


def _model_column(dataset: dict[str, Any]) -> bool:
    return bool(dataset.get("model_column")) or "model" in (dataset.get("mapping") or {})


def _ids(datasets: list[dict[str, Any]], names: list[str]) -> list[str]:
    return [str(d["id"]) for d in datasets if str(d.get("name")) in names and d.get("id")]
