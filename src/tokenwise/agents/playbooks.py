"""How to carry out each strategy: steps and config snippets, filled in with the user's measured numbers.

Every number in a snippet comes from the strategy's evidence or the analysis thresholds, never a guess.
Templates use `$name` placeholders (string.Template), so the braces of JSON and Python stay literal.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from string import Template
from typing import Any

from tokenwise.agents.figures import count
from tokenwise.agents.tooling import JSON

# Work for a team to roll the change out: savings per effort point orders the actions.
EFFORT = {
    "prompt_caching": "low",
    "output_cap": "low",
    "retry_waste": "low",
    "response_caching": "medium",
    "model_routing": "medium",
    "batching": "medium",
    "capacity": "medium",
    "context_trimming": "high",
}
EFFORT_POINTS = {"low": 1, "medium": 2, "high": 3}
_ROUTE = re.compile(r"(\S+) -> (\S+) \(")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._:/@+-]")
Steps = tuple[list[str], list[JSON]]


def _name(value: str) -> str:
    """A model name from the data as it may appear in a snippet: nothing that could end a code block."""
    return _NOT_NAME.sub("", value)[:100] or "model"


def _snippet(title: str, language: str, template: str, **values: object) -> JSON:
    code = Template(textwrap.dedent(template)).substitute({k: str(v) for k, v in values.items()})
    return {"title": title, "language": language, "code": code.strip("\n") + "\n"}


_LITELLM_ROUTES = """
    model_list:
      - model_name: $large
        litellm_params:
          model: $large
      - model_name: $small
        litellm_params:
          model: $small
    router_settings:
      fallbacks:
        - $small: ["$large"]
"""
_ROUTING_RULE = """
    SHORT_INPUT, SHORT_OUTPUT = $max_in, $max_out


    def pick_model(input_tokens: int, max_tokens: int) -> str:
        short = input_tokens <= SHORT_INPUT and max_tokens <= SHORT_OUTPUT
        return "$small" if short else "$large"
"""


def _routing(e: JSON, t: JSON) -> Steps:
    pairs = _ROUTE.findall(str(e.get("routes", ""))) or [("expensive-model", "cheaper-model")]
    large, small = (_name(m) for m in pairs[0])
    max_in, max_out = t.get("short_input_tokens", 1000), t.get("short_output_tokens", 200)
    steps = [
        f"Replay a sample of the {count(e.get('short_requests'))} short requests on {small} and compare "
        "the answers with the current ones before switching.",
        f"Send requests with at most {max_in:,} input tokens and a cap of at most {max_out:,} output "
        f"tokens to {small}; keep the rest on {large}.",
        f"Fall back to {large} when {small} fails or its answer fails validation.",
    ]
    values = {"large": large, "small": small, "max_in": max_in, "max_out": max_out}
    return steps, [
        _snippet(
            "LiteLLM proxy (config.yaml): the large tier as fallback", "yaml", _LITELLM_ROUTES, **values
        ),
        _snippet("The routing rule in your client", "python", _ROUTING_RULE, **values),
    ]


_OPENAI_PREFIX = """
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": SHARED_INSTRUCTIONS},  # identical in every request
            {"role": "user", "content": user_text},  # what varies comes last
        ],
        prompt_cache_key="$family",  # one key per prompt family
    )
"""
_ANTHROPIC_PREFIX = """
    client.messages.create(
        model=MODEL,
        max_tokens=1024,
        system=[
            {"type": "text", "text": SHARED_INSTRUCTIONS, "cache_control": {"type": "ephemeral"}},
        ],
        messages=[{"role": "user", "content": user_text}],
    )
"""


def _prompt_caching(e: JSON, t: JSON) -> Steps:
    shortest = e.get("shortest_prefix_tokens", t.get("min_cacheable_prefix_tokens", 1024))
    steps = [
        f"Put the shared part ({count(shortest)}+ tokens: system prompt, tool definitions, documents) "
        "first in every prompt, byte for byte identical; move per-request text (user input, dates, ids) "
        "after it.",
        "OpenAI caches prefixes of 1,024+ tokens automatically; Anthropic needs a cache_control breakpoint.",
        "Check the cached token counts in responses (usage.prompt_tokens_details.cached_tokens, "
        "usage.cache_read_input_tokens) after the change.",
    ]
    return steps, [
        _snippet("OpenAI: the stable prefix first", "python", _OPENAI_PREFIX, family="support-bot-v3"),
        _snippet("Anthropic: mark the end of the shared prefix", "python", _ANTHROPIC_PREFIX),
    ]


_CACHE_KEY = """
    import hashlib
    import json

    SHAPING = ("model", "messages", "tools", "temperature", "response_format", "max_tokens")


    def cache_key(request: dict) -> str:
        shaping = {k: request.get(k) for k in SHAPING}
        blob = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
        return "llm:v1:" + hashlib.sha256(blob.encode()).hexdigest()
"""
_LITELLM_CACHE = """
    litellm_settings:
      cache: true
      cache_params:
        type: redis
        ttl: 86400  # seconds: match how fast the answers go stale
"""


def _response_caching(e: JSON, t: JSON) -> Steps:
    steps = [
        f"{count(e.get('repeat_requests'))} requests repeat an earlier prompt exactly "
        f"({count(e.get('repeated_prompts'))} distinct prompts): answer them from a cache.",
        "Key the cache on everything that shapes the answer: model, messages, tools, temperature, "
        "response format; never on per-user data outside the prompt.",
        "Cache only deterministic calls (temperature 0) and give entries a TTL that matches how fast the "
        "answers go stale.",
    ]
    return steps, [
        _snippet("Cache key scheme", "python", _CACHE_KEY),
        _snippet("Or in the LiteLLM proxy (config.yaml)", "yaml", _LITELLM_CACHE),
    ]


_OPENAI_BATCH = """
    # batch.jsonl, one line per request:
    # {"custom_id": "job-1", "method": "POST", "url": "/v1/chat/completions",
    #  "body": {"model": MODEL, "messages": [...]}}
    batch_file = client.files.create(file=open("batch.jsonl", "rb"), purpose="batch")
    batch = client.batches.create(
        input_file_id=batch_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    # later: client.batches.retrieve(batch.id).output_file_id
"""
_ANTHROPIC_BATCH = """
    batch = client.messages.batches.create(
        requests=[
            {"custom_id": "job-1", "params": {"model": MODEL, "max_tokens": 1024, "messages": [...]}},
        ]
    )
    # later: client.messages.batches.results(batch.id)
"""


def _batching(e: JSON, t: JSON) -> Steps:
    steps = [
        f"Move the scheduled job(s) {e.get('jobs', '')} ({count(e.get('batchable_requests'))} requests in "
        "the period) to the provider's batch API: half price, results within 24 h.",
        "Write the job's requests to a JSONL file, submit it, poll until it completes, then read the "
        "output file by custom_id.",
        "Keep interactive traffic on the normal API: only work nobody waits on belongs in a batch.",
    ]
    return steps, [
        _snippet("OpenAI Batch API", "python", _OPENAI_BATCH),
        _snippet("Anthropic Message Batches", "python", _ANTHROPIC_BATCH),
    ]


_CAP = """
    client.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=$cap)
    client.messages.create(model=MODEL, messages=messages, max_tokens=$cap)
"""


def _output_cap(e: JSON, t: JSON) -> Steps:
    cap, current = e.get("proposed_cap", "<cap>"), e.get("current_cap", "<current>")
    steps = [
        f"{count(e.get('capped_responses'))} responses ran to the current cap of {current} tokens: lower "
        f"max_tokens to about {cap} for the features concerned.",
        "Ask for a short format in the prompt as well (a word limit, bullet points, JSON only).",
        'Watch finish_reason == "length" (OpenAI) / stop_reason == "max_tokens" (Anthropic) afterwards.',
    ]
    return steps, [_snippet("The cap per request", "python", _CAP, cap=cap)]


_BUDGET = """
    MEDIAN_INPUT = $median
    BUDGET = int($target * MEDIAN_INPUT)


    def fit(chunks: list[str], history: list[str], count_tokens) -> list[str]:
        kept, used = [], 0
        for piece in chunks + history[-6:]:  # best chunks first, then recent turns
            used += count_tokens(piece)
            if used > BUDGET:
                break
            kept.append(piece)
        return kept
"""


def _context_trimming(e: JSON, t: JSON) -> Steps:
    median = e.get("median_input_tokens", "the median")
    target = float(t.get("trim_target_ratio", 2.0))
    steps = [
        f"{count(e.get('oversized_requests'))} requests sent over {t.get('bloat_ratio', 4.0):g}x their "
        f"feature's median input ({median} tokens) and got short answers.",
        f"Budget the context at about {target:g}x the median: fewer retrieved chunks, older turns "
        "summarised, tool output truncated.",
        "Compare answers on a sample before and after.",
    ]
    number = median if isinstance(median, int | float) else 2000
    return steps, [
        _snippet("A token budget for the context", "python", _BUDGET, median=number, target=target)
    ]


_LITELLM_RETRIES = """
    router_settings:
      num_retries: 3
      timeout: 60
      retry_policy:
        RateLimitErrorRetries: 3
        TimeoutErrorRetries: 2
        InternalServerErrorRetries: 2
        BadRequestErrorRetries: 0
        AuthenticationErrorRetries: 0
        ContentPolicyViolationErrorRetries: 0
"""
_SDK_RETRIES = """
    client = OpenAI(max_retries=3, timeout=60.0)  # retries 429, 5xx and timeouts with backoff
"""


def _retry_waste(e: JSON, t: JSON) -> Steps:
    steps = [
        f"{count(e.get('retried_failures'))} failed calls were paid for and then retried (error rate "
        f"{100 * float(e.get('error_rate') or 0):.2f}%).",
        "Retry only what can succeed: 429, 5xx and timeouts, with exponential backoff and jitter, "
        "honouring Retry-After; never a 400 (check the context length before sending instead).",
        "Give the client a timeout longer than your p99 latency, and cap retries with a budget.",
    ]
    return steps, [
        _snippet("LiteLLM router: retries by error type", "yaml", _LITELLM_RETRIES),
        _snippet("OpenAI SDK: backoff is built in; set its bounds", "python", _SDK_RETRIES),
    ]


_PLAN = """
    capacity:
      provision_tokens_per_s: $p99  # p99 of per-second load
      peak_tokens_per_s: $peak
      mean_tokens_per_s: $mean
      rate_limit_tokens_per_minute: $tpm
      p99_input_tokens_per_s: $p99_in
      p99_output_tokens_per_s: $p99_out
      peak_requests_per_s: $peak_requests
      replicas: ceil($p99 / tokens_per_s_of_one_replica)  # benchmark one replica first
"""


def _capacity(e: JSON, t: JSON) -> Steps:
    p99 = float(e.get("p99_tokens_per_s") or 0.0)
    mean = float(e.get("mean_tokens_per_s") or 0.0)
    headroom = float(e.get("batching_headroom") or 0.0)
    steps = [
        f"Provision for about {p99:,.0f} tokens/s (p99 of per-second load); the peak second reached "
        f"{count(e.get('peak_tokens_per_s'))} tokens/s and the mean is {mean:,.0f} tokens/s.",
        f"As a rate limit: about {p99 * 60:,.0f} tokens per minute; peak "
        f"{count(e.get('peak_requests_per_s'))} requests/s.",
        f"Queueing and batching latency-tolerant requests would free about {100 * headroom:.0f}% of that "
        "capacity; keep interactive traffic on reserved capacity.",
    ]
    values = {
        "p99": f"{p99:.0f}",
        "peak": e.get("peak_tokens_per_s"),
        "mean": f"{mean:.0f}",
        "tpm": f"{p99 * 60:.0f}",
        "p99_in": f"{float(e.get('p99_input_tokens_per_s') or 0):.0f}",
        "p99_out": f"{float(e.get('p99_output_tokens_per_s') or 0):.0f}",
        "peak_requests": e.get("peak_requests_per_s"),
    }
    return steps, [_snippet("Provisioning plan (from the measured load)", "yaml", _PLAN, **values)]


PLAYBOOKS: dict[str, Callable[[JSON, JSON], Steps]] = {
    "model_routing": _routing,
    "prompt_caching": _prompt_caching,
    "response_caching": _response_caching,
    "batching": _batching,
    "output_cap": _output_cap,
    "context_trimming": _context_trimming,
    "retry_waste": _retry_waste,
    "capacity": _capacity,
}


def playbook(strategy: dict[str, Any], thresholds: JSON) -> JSON | None:
    """The action for one measured strategy: effort, steps and snippets; None for an unknown type."""
    build = PLAYBOOKS.get(str(strategy.get("type")))
    if build is None:
        return None
    steps, snippets = build(dict(strategy.get("evidence") or {}), thresholds)
    effort = EFFORT[str(strategy["type"])]
    saving = strategy.get("monthly_savings_usd")
    return {
        "id": f"do_{strategy['type']}",
        "strategy": strategy["type"],
        "title": str(strategy.get("title") or strategy["type"]),
        "effort": effort,
        "monthly_savings_usd": saving,
        "savings_per_effort": None if saving is None else saving / EFFORT_POINTS[effort],
        "steps": steps,
        "snippets": snippets,
    }
