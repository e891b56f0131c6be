"""response_caching (exact duplicates) and prompt_caching (repeated prefixes not already cached)."""

from __future__ import annotations

from tokenwise.analysis.sql import one
from tokenwise.analysis.strategies.strategy import Context, Strategy

# Each request of a shared-prefix group whose previous request came within the cache TTL would read the
# prefix from the provider's cache; what it already read from cache is not counted again. No row saves
# more than it cost (a reported cost may be below list price).
_PREFIX_HITS = """
WITH r AS (
    SELECT u.prefix_key, u.ts, u.cached_input_tokens, g.prefix_tokens, u.in_p, u.cached_p, u.cost,
        lag(u.ts) OVER (PARTITION BY u.prefix_key ORDER BY u.ts) AS prev_ts
    FROM usage u JOIN prefix_groups g USING (prefix_key)
    WHERE NOT u.is_error AND u.cached_p < u.in_p
), hits AS (
    SELECT *, prefix_tokens - cached_input_tokens AS uncached FROM r
    WHERE prev_ts IS NOT NULL AND ts <= prev_ts + to_seconds($ttl)
)
SELECT count(*), count(DISTINCT prefix_key), sum(uncached),
    sum(LEAST(uncached * (in_p - cached_p) / 1e6, cost)),
    min(prefix_tokens), max(prefix_tokens)
FROM hits WHERE uncached >= $min_tokens
"""


def response_caching(ctx: Context) -> Strategy | None:
    """Serve exact repeats of a successful request from a response cache."""
    dup = ctx.measurements.duplicates
    if dup is None or dup.repeat_requests == 0:
        return None
    return ctx.priced(
        "response_caching",
        f"Cache responses: {dup.repeat_requests:,} requests repeat an earlier prompt exactly",
        dup.repeat_spend_usd,
        assumptions=[
            "An exact duplicate has the same model and prompt hash as an earlier successful request; every "
            "occurrence after the first is served from a response cache.",
            "The cache keeps entries for the whole observed period and the answers may be reused "
            "(deterministic settings, no per-user context outside the prompt); cache storage is not costed.",
        ],
        confidence="medium",
        risk="Stale or wrong answers where the prompt does not capture all context: set a TTL, key on model "
        "and parameters, and exclude personalised prompts.",
        evidence={
            "repeated_prompts": dup.repeated_prompts,
            "repeat_requests": dup.repeat_requests,
            "repeat_share": dup.share,
            "repeat_input_tokens": dup.repeat_input_tokens,
            "repeat_output_tokens": dup.repeat_output_tokens,
        },
    )


def prompt_caching(ctx: Context) -> Strategy | None:
    """Read repeated prompt prefixes from the provider's prompt cache at the cached-input price."""
    if not ctx.measurements.prefixes or not ctx.measurements.prefixes.groups:
        return None
    t = ctx.thresholds
    hits, groups, tokens, saving, shortest, longest = one(
        ctx.con, _PREFIX_HITS, {"ttl": t.prompt_cache_ttl_s, "min_tokens": t.min_cacheable_prefix_tokens}
    )
    if not hits:
        return None
    return ctx.priced(
        "prompt_caching",
        f"Cache the shared prompt prefix of {groups:,} prompt families ({hits:,} requests)",
        saving,
        assumptions=[
            "Requests sharing a prefix hash (first 1,024 characters) with different prompts share a prefix; "
            "its length is estimated as the group's shortest prompt (an upper bound on the common part).",
            f"A request reads the prefix from cache when the previous one of its group came within "
            f"{t.prompt_cache_ttl_s:g} s (the cache TTL); the first request of a burst writes it.",
            f"Only uncached shared parts of at least {t.min_cacheable_prefix_tokens:,} tokens count (the "
            "providers' minimum cacheable prefix); tokens already read from cache are not counted again.",
            "Cached tokens cost the price book's cached-input price; no cache-write surcharge is counted "
            "(OpenAI-style automatic caching; Anthropic charges extra on writes).",
        ],
        confidence="medium",
        risk="Low: answers do not change; the shared part must open the prompt and stay byte-identical.",
        evidence={
            "prefix_groups": int(groups),
            "cache_hit_requests": int(hits),
            "uncached_prefix_tokens": int(tokens),
            "shortest_prefix_tokens": int(shortest),
            "longest_prefix_tokens": int(longest),
        },
    )
