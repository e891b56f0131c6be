"""Named source formats: each recognised by a signature of (normalised) columns, with the mapping it fixes.

The first format whose signature the columns match wins, so the more specific shapes come first: report
pages and spans (whose columns `reports.py` and `otlp_files.py` name), then gateway and tracing exports,
then the providers' per-request logs. Each format's notes say which units it assumed; they are shown in
the preview and the dataset's record. A mapping given with the upload overrides any of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# Relative timestamps (seconds from the start of a trace, as in BurstGPT) are placed on this clock:
# durations, rates and peaks are exact, wall-clock hours and weekdays are not the original ones.
RELATIVE_TIME_BASE = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Format:
    """A named source format: recognised when all columns of one signature are present."""

    name: str
    title: str
    signatures: tuple[tuple[str, ...], ...]
    # field -> source column (normalised), or candidates of which the first present one is used
    fixed: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    provider: str | None = None  # the provider of every row, when the format implies one
    relative_time: bool = False  # `ts` holds seconds from the start of the trace
    zero_output_is_error: bool = False  # a row with no output tokens is a failed request
    usage_rows_only: bool = False  # rows without any token count (spans, events) are not requests
    cost_may_be_nano: bool = False  # a `cost` column can be integer USD x 1e9 (Helicone's ClickHouse)
    # A usage or cost report: rows are time buckets per grouping, not requests (see `bucketed`).
    bucketed: bool = False
    request_counts: bool = True  # a bucketed format that still counts its requests exactly
    notes: tuple[str, ...] = ()

    def matches(self, normalized: set[str]) -> bool:
        return any(all(column in normalized for column in sig) for sig in self.signatures)


# fmt: off
FORMATS: tuple[Format, ...] = (
    Format(
        "azure_llm_inference_2023",
        "Azure LLM inference trace (2023)",
        (("timestamp", "contexttokens", "generatedtokens"),),
        {"ts": "timestamp", "input_tokens": "contexttokens", "output_tokens": "generatedtokens"},
        provider="azure",
        notes=(
            "The trace has no model column: name the model, or the analysis asks for it.",
            "Azure LLM inference trace 2023, Azure Public Dataset (CC-BY 4.0): Patel et al., "
            '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.',
        ),
    ),
    Format(
        "burstgpt",
        "BurstGPT trace",
        (
            ("timestamp", "requesttokens", "responsetokens", "logtype"),
            ("timestamp", "requesttokens", "responsetokens", "totaltokens"),
        ),
        {
            "ts": "timestamp",
            "model": "model",
            "input_tokens": "requesttokens",
            "output_tokens": "responsetokens",
            "feature": "logtype",
        },
        provider="azure",
        relative_time=True,
        zero_output_is_error=True,
        notes=(
            f"Timestamp is seconds from the start of the trace, placed on a clock starting at "
            f"{RELATIVE_TIME_BASE.isoformat()}: rates and peaks are exact, wall-clock hours are not.",
            "Rows with 0 response tokens are counted as failed requests (BurstGPT's failure marker).",
            "`Log Type` (Conversation log / API log) is kept as the feature: it separates the channels.",
        ),
    ),
    Format(
        "openai_usage_api",
        "OpenAI Usage API (completions buckets)",
        (("bucketstart", "timestamp", "inputtokens", "outputtokens", "apikeyid", "projectid"),),
        {"ts": "timestamp", "api_key": "apikeyid", "project": "projectid", "user_tag": "userid",
         "batch": "batch"},
        provider="openai",
        bucketed=True,
        notes=(
            "Usage API buckets are aggregates: each bucket's requests are spread evenly over the bucket, "
            "with equal shares of its tokens: totals and request counts are exact, request sizes averages.",
            "input_tokens includes input_cached_tokens; batch results are priced at the batch discount; "
            "audio tokens are not priced apart.",
        ),
    ),
    Format(
        "openai_costs_api",
        "OpenAI Costs API (daily cost buckets)",
        (("bucketstart", "amountusd", "lineitem"),),
        {"ts": "bucketstart", "cost_usd": "amountusd", "feature": "lineitem", "project": "projectid",
         "api_key": "apikeyid"},
        provider="openai",
        bucketed=True,
        request_counts=False,
        notes=(
            "`amount.value` is the cost in USD (currency `usd`); each row is one line item of a bucket, not "
            "a request: spend, trends and breakdowns are exact, request counts and tokens are not known.",
        ),
    ),
    Format(
        "anthropic_usage_report",
        "Anthropic Admin API usage report (messages buckets)",
        (("bucketstart", "uncachedinputtokens", "cachecreation5minputtokens"),),
        {"ts": "bucketstart", "uncached_input_tokens": "uncachedinputtokens",
         "cached_input_tokens": "cachereadinputtokens", "cache_write_tokens": "cachecreation5minputtokens",
         "cache_write_1h_tokens": "cachecreation1hinputtokens", "output_tokens": "outputtokens",
         "project": "workspaceid", "api_key": "apikeyid", "batch": "servicetier"},
        provider="anthropic",
        bucketed=True,
        request_counts=False,
        notes=(
            "Input = uncached_input_tokens + cache_read_input_tokens + cache_creation (5-minute and 1-hour "
            "writes, each priced at its own rate).",
            "Each row is one bucket and grouping, not a request (the report has no request count): spend, "
            "tokens, trends and breakdowns are exact, request counts and sizes are not.",
            "service_tier `batch` is priced at the batch discount; workspace_id is the project (null: the "
            "default workspace). Web search requests are not priced.",
        ),
    ),
    Format(
        "anthropic_cost_report",
        "Anthropic Admin API cost report",
        (("bucketstart", "amountcents", "amountusd"),),
        {"ts": "bucketstart", "cost_usd": "amountusd", "feature": "description", "project": "workspaceid"},
        provider="anthropic",
        bucketed=True,
        request_counts=False,
        notes=(
            "`amount` is a decimal string in cents: divided by 100 into USD.",
            "Each row is one cost line of a day, not a request: spend, trends and breakdowns are exact, "
            "request counts and tokens are not known. Priority Tier costs never appear in this report.",
        ),
    ),
    Format(
        "otel_genai_spans",
        "OpenTelemetry GenAI spans (OTLP/JSON)",
        (("spansource", "ts", "requestid"),),
        {"ts": "ts", "latency_ms": "latencyms", "user_tag": "user"},
        notes=(
            "One row per GenAI span (gen_ai.request.model / gen_ai.usage.*); other spans are left out.",
            "ts is the span start; latency = end - start (nanoseconds to milliseconds); "
            "gen_ai.usage.input_tokens includes cache reads (gen_ai.usage.cache_read.input_tokens) and "
            "writes (gen_ai.usage.cache_creation.input_tokens), priced at the cached and cache-write rates.",
        ),
    ),
    Format(
        "litellm_spend_logs",
        "LiteLLM spend logs",
        (("starttime", "spend"), ("starttime", "endtime", "requestid", "model")),
        {"ts": "starttime", "end_ts": "endtime", "cost_usd": "spend",
         "team": "teamid", "api_key": "apikey", "feature": "requesttags",
         "cached_input_tokens": ("metadata.usageobject.prompttokensdetails.cachedtokens",
                                 "metadata.usageobject.cachereadinputtokens"),
         "cache_write_total_tokens": "metadata.usageobject.cachecreationinputtokens"},
        notes=(
            "spend is the cost in USD; latency is request_duration_ms, else endTime - startTime.",
            "prompt_tokens includes cached tokens (OpenAI convention, also for Anthropic models).",
            "user is the user (map user_tag to end_user for your customers); team_id the team; api_key "
            "(hashed) the key; request_tags the feature. cache_hit marks LiteLLM's own response cache "
            "(spend 0), not prompt caching.",
        ),
    ),
    Format(
        "langfuse_observations",
        "Langfuse observations (API v1 / v2 or export)",
        (
            ("traceid", "starttime", "usagedetails.input"),
            ("traceid", "starttime", "usagedetails.output"),
            ("traceid", "starttime", "calculatedtotalcost"),
            ("traceid", "starttime", "totalcost"),
            ("traceid", "starttime", "latency"),
            ("traceid", "starttime", "providedmodelname"),
        ),
        {"ts": "starttime", "end_ts": "endtime", "latency_s": "latency",
         "model": ("providedmodelname", "model"),
         "uncached_input_tokens": "usagedetails.input",
         "output_tokens": ("usagedetails.output", "usage.output", "completiontokens"),
         "cached_input_tokens": ("usagedetails.inputcachedtokens", "usagedetails.inputcacheread",
                                 "usagedetails.cachereadinputtokens"),
         "cache_write_total_tokens": ("usagedetails.inputcachecreation",
                                      "usagedetails.cachecreationinputtokens",
                                      "usagedetails.cachewriteinputtokens"),
         "cost_usd": ("calculatedtotalcost", "totalcost", "costdetails.total"),
         "user_tag": "userid", "feature": "name", "project": "projectid", "request_id": "id",
         "status": "level"},
        usage_rows_only=True,
        notes=(
            "`latency` is in seconds: multiplied by 1,000 into milliseconds.",
            "usageDetails.input excludes the cache: input = input + cache reads + cache writes "
            "(input_cached_tokens / input_cache_read, input_cache_creation).",
            "The cost is calculatedTotalCost (v1) or totalCost (v2), in USD; observations without usage "
            "(spans, events) are not requests and are left out. level ERROR marks a failure.",
        ),
    ),
    Format(
        "helicone_requests",
        "Helicone request export",
        (
            ("requestcreatedat", "delayms"),
            ("requestcreatedat", "prompttokens", "completiontokens"),
            ("requestcreatedat", "costusd"),
        ),
        {"ts": "requestcreatedat", "latency_ms": "delayms",
         "model": ("model", "responsemodel", "requestmodel"),
         "uncached_input_tokens": "prompttokens", "output_tokens": "completiontokens",
         "cached_input_tokens": "promptcachereadtokens", "cache_write_total_tokens": "promptcachewritetokens",
         "cost_usd": ("costusd", "cost"), "status": "responsestatus",
         "user_tag": ("requestuserid", "heliconeuser"), "provider": "provider", "request_id": "requestid"},
        cost_may_be_nano=True,
        notes=(
            "delay_ms is the latency in milliseconds; costUSD (else cost) is the cost in USD, and a `cost` "
            "column of integers from Helicone's ClickHouse (USD x 1e9) is divided by 1e9.",
            "prompt_tokens is taken to exclude prompt_cache_read_tokens and prompt_cache_write_tokens "
            "(Helicone prices them apart): input = their sum. Map input_tokens to prompt_tokens otherwise.",
            "request_properties.* (Helicone-Property-*) feature, team, project and app are kept.",
        ),
    ),
    Format(
        "bedrock_invocation_logs",
        "AWS Bedrock model invocation logs",
        (
            ("schematype", "input.inputtokencount"),
            ("modelid", "input.inputtokencount", "output.outputtokencount"),
        ),
        {"ts": "timestamp", "model": "modelid", "uncached_input_tokens": "input.inputtokencount",
         "output_tokens": "output.outputtokencount", "cached_input_tokens": "input.cachereadinputtokencount",
         "cache_write_total_tokens": "input.cachewriteinputtokencount", "request_id": "requestid",
         "api_key": "identity.arn", "latency_ms": "output.outputbodyjson.metrics.latencyms"},
        provider="bedrock",
        notes=(
            "The log has no cost: every row is priced from the price book (a model ARN or a cross-region "
            "profile such as us.anthropic.claude-... prices as the model it names).",
            "inputTokenCount excludes cache reads and writes: input = their sum. The caller's IAM identity "
            "(identity.arn) is kept as the API key; requestMetadata tags feed feature, team and project.",
        ),
    ),
    Format(
        "openrouter_generations",
        "OpenRouter generation records",
        (("totalcost", "nativetokensprompt"), ("totalcost", "tokensprompt"), ("totalcost", "cachediscount")),
        {"ts": "createdat", "model": "model", "input_tokens": ("nativetokensprompt", "tokensprompt"),
         "output_tokens": ("nativetokenscompletion", "tokenscompletion"),
         "cached_input_tokens": "nativetokenscached", "cost_usd": "totalcost", "latency_ms": "latency",
         "provider": "providername", "user_tag": "externaluser", "request_id": "id"},
        notes=(
            "total_cost is what was billed, in USD, after cache_discount; latency is in milliseconds.",
            "Native (the provider's) token counts are used; native_tokens_prompt includes "
            "native_tokens_cached.",
        ),
    ),
    Format(
        "anthropic_messages",
        "Anthropic Messages API usage (per request)",
        (
            ("inputtokens", "outputtokens", "cachereadinputtokens"),
            ("inputtokens", "outputtokens", "cachecreationinputtokens"),
            ("usage.inputtokens", "usage.outputtokens", "usage.cachereadinputtokens"),
            ("usage.inputtokens", "usage.outputtokens", "usage.cachecreationinputtokens"),
            ("usage.inputtokens", "usage.outputtokens", "stopreason"),
        ),
        {"uncached_input_tokens": ("usage.inputtokens", "inputtokens"),
         "output_tokens": ("usage.outputtokens", "outputtokens"),
         "cached_input_tokens": ("usage.cachereadinputtokens", "cachereadinputtokens"),
         "cache_write_total_tokens": ("usage.cachecreationinputtokens", "cachecreationinputtokens"),
         "cache_write_tokens": ("usage.cachecreation.ephemeral5minputtokens",
                                "cachecreation.ephemeral5minputtokens"),
         "cache_write_1h_tokens": ("usage.cachecreation.ephemeral1hinputtokens",
                                   "cachecreation.ephemeral1hinputtokens"),
         "batch": ("usage.servicetier", "servicetier"), "request_id": "id"},
        provider="anthropic",
        notes=(
            "input_tokens excludes the cache: input = input_tokens + cache_read_input_tokens + "
            "cache_creation_input_tokens.",
            "Cache writes are split into 5-minute and 1-hour ones where cache_creation gives the split "
            "(else all are 5-minute writes), each priced at its own rate.",
        ),
    ),
    Format(
        "openai_usage",
        "OpenAI-style usage export",
        (
            ("model", "prompttokens", "completiontokens"),
            ("model", "inputtokens", "outputtokens"),
            ("model", "usage.prompttokens", "usage.completiontokens"),
            ("model", "usage.inputtokens", "usage.outputtokens"),
        ),
        notes=(
            "prompt_tokens (input_tokens) include the cached ones (usage.prompt_tokens_details."
            "cached_tokens): uncached = prompt - cached.",
        ),
    ),
)
# fmt: on


def grain(format_name: str | None) -> tuple[bool, bool]:
    """(bucketed, request counts known) of a detected format; unknown names are per-request logs."""
    found = next((f for f in FORMATS if f.name == format_name), None)
    return (found.bucketed, found.request_counts) if found is not None else (False, True)
