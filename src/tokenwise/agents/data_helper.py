"""Data helper: when there is no usage data, say exactly which data to send and how to export it."""

from __future__ import annotations

from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool

# (CSV column, why it matters). Strategies name the columns they need with the same names.
FIELDS: tuple[tuple[str, str], ...] = (
    ("timestamp", "Daily and hourly patterns, peaks for capacity, and trends over time."),
    ("model", "Prices differ per model; routing and downgrade savings are computed per model."),
    ("input_tokens", "Input tokens usually dominate spend; context trimming targets them."),
    ("output_tokens", "Output tokens cost several times more; output caps target them."),
    ("cost_usd", "The billed amount per request; without it cost is estimated from list prices."),
    ("cached_input_tokens", "Shows how much prompt caching already saves and what is left."),
    ("latency_ms", "Needed for p50/p95/p99 and for checking that a change keeps the SLO."),
    ("status", "Errors and retries are paid for twice; this measures retry waste."),
    ("feature", "A feature or team tag splits spend by owner, so savings land where they matter."),
    ("user_id", "Finds heavy users and per-user limits; hash it if it is personal data."),
    ("request_id", "Deduplicates rows and links retries of the same request."),
    ("prompt_hash", "A hash of the prompt finds repeated requests that response caching serves."),
)
REQUIRED = ("timestamp", "model", "input_tokens", "output_tokens")
# Fields that become required for a particular kind of question.
_REQUIRED_FOR = {
    "latency_performance": ("latency_ms",),
    "capacity_planning": ("latency_ms", "status"),
    "workload_analysis": ("feature",),
}

CSV_TEMPLATE = (
    ",".join(name for name, _ in FIELDS)
    + "\n2025-01-15T09:30:12Z,gpt-4o,1850,320,0.0065,1024,1240,ok,support-bot,u_1a2b,req_001,9f2c4e\n"
)

EXPORT_GUIDES: dict[str, str] = {
    "openai": (
        "Usage dashboard > Export for daily totals, or the organization Usage and Costs APIs (admin key). "
        "Neither has per-request latency: log each response's `usage` block and timing in your app."
    ),
    "anthropic": (
        "Console > Usage / Cost for totals, or the Admin API usage and cost reports. For per-request rows, "
        "log each response's `usage` (input, output, cache read/creation tokens) with its latency."
    ),
    "azure_openai": (
        "Enable diagnostic settings on the resource to send request logs and token metrics to Log "
        "Analytics, and export costs from Cost Management; join them by deployment and day."
    ),
    "aws_bedrock": (
        "Turn on model invocation logging (CloudWatch Logs or S3); each record has model id and token "
        "counts. Costs come from Cost Explorer or the Cost and Usage Report."
    ),
    "litellm": (
        "The proxy's spend logs already hold model, tokens, cost, latency and metadata tags per request; "
        "export them from its database or spend-logs endpoint as CSV."
    ),
    "gateway": (
        "Gateways such as Helicone and Langfuse record every request with tokens, cost and latency; use "
        "their CSV or API export for the period to analyse, with custom properties as feature tags."
    ),
}


def data_request(category: str = "general_question") -> JSON:
    """The structured request for usage data: fields, why each matters, a CSV template, export steps."""
    required = set(REQUIRED) | set(_REQUIRED_FOR.get(category, ()))
    fields = [{"name": name, "required": name in required, "why": why} for name, why in FIELDS]
    return {
        "fields": fields,
        "csv_template": CSV_TEMPLATE,
        "export_guides": dict(EXPORT_GUIDES),
        "minimum": "At least two weeks of traffic, ideally one row per request.",
        "privacy": "Prompts and responses are not needed; send a hash of the prompt instead of its text.",
    }


def _compact(request: JSON) -> JSON:
    return {
        "fields": [f["name"] for f in request["fields"]],
        "required": [f["name"] for f in request["fields"] if f["required"]],
        "export_guides": sorted(request["export_guides"]),
    }


async def _build_data_request(ctx: RunContext, args: JSON) -> JSON:
    return data_request(str(args.get("category", "general_question")))


BUILD_DATA_REQUEST = Tool(
    name="build_data_request",
    description="Build the usage data request: fields and why, a CSV template, export steps per provider.",
    args_schema={
        "type": "object",
        "properties": {"category": {"type": "string", "description": "The triage category."}},
        "additionalProperties": False,
    },
    fn=_build_data_request,
    compact=_compact,
)


async def run_data_helper(ctx: RunContext, scope: AgentScope) -> JSON:
    """Ask for the usage data the question needs."""
    category = ctx.results.get("triage", {}).get("category", "general_question")
    scope.think("There is no usage data yet; preparing a request for exactly the data needed.")
    return {"data_request": await scope.call(BUILD_DATA_REQUEST, {"category": category})}


DATA_HELPER = Agent(
    name="data_helper",
    description="When usage data is missing, says which fields to send, why, and how to export them.",
    tools=(BUILD_DATA_REQUEST,),
    run=run_data_helper,
    compact=lambda result: {"data_request": _compact(result["data_request"])},
)
