"""The stated rules of the analysis: every threshold a measurement or strategy uses, in one value object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Defaults are what the reports state in their assumptions; tests and callers may override them."""

    month_days: float = 30.0
    # a failed call is "retried" when the same prompt hash is sent again within this many seconds
    retry_window_s: float = 300.0
    # model_routing: a "short" request has at most this many input and output tokens
    short_input_tokens: int = 1000
    short_output_tokens: int = 200
    # prompt_caching: provider caches expire after ~5 minutes idle and only hold prefixes of >= 1,024 tokens
    prompt_cache_ttl_s: float = 300.0
    min_cacheable_prefix_tokens: int = 1024
    # batching: >= share of a feature's requests inside a window of this many hours of the day, on >= N days
    batch_window_hours: int = 4
    batch_window_share: float = 0.9
    batch_min_days: int = 2
    # the smallest feature/model group whose distribution the strategies trust
    min_group_requests: int = 50
    # output_cap: a response "hit the cap" at >= this share of max_output_tokens; proposed cap = k x p95
    cap_hit_ratio: float = 0.95
    cap_headroom: float = 2.0
    max_cap_hit_share: float = 0.2
    # context_trimming: input > ratio x the group's median input with output <= its median; trim to k x median
    bloat_ratio: float = 4.0
    trim_target_ratio: float = 2.0
    # capacity: provision at this multiple of mean load when latency-tolerant work is queued and batched
    capacity_headroom: float = 1.2
    # strategies saving less than this per month are not reported
    min_monthly_savings_usd: float = 0.01
