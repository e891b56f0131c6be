"""Markdown for a report; only text the agents wrote goes in, never the user's own words."""

from __future__ import annotations

from tokenwise.agents.tooling import JSON

_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "azure_openai": "Azure OpenAI",
    "aws_bedrock": "AWS Bedrock",
    "litellm": "LiteLLM",
    "gateway": "Helicone, Langfuse and other gateways",
}


def render(report: JSON) -> str:
    """The report as markdown: blocks separated by blank lines, ending in a newline."""
    blocks = [f"# {report['title']}", report["summary"]]
    blocks += _measurements(report["measurements"])
    blocks += _strategies(report["strategies"])
    if report["data_request"]:
        blocks += _data_request(report["data_request"])
    if report["actions"]:
        blocks.append("## Next steps")
        blocks.append(
            "\n".join(f"{i}. **{a['title']}**: {a['detail']}" for i, a in enumerate(report["actions"], 1))
        )
    if report["notes"]:
        blocks += ["## Notes", "\n".join(f"- {note}" for note in report["notes"])]
    return "\n\n".join(blocks) + "\n"


def _measurements(measurements: JSON) -> list[str]:
    if not measurements.get("rows"):
        return ["## Measurements", "Nothing measured yet."]
    return [
        "## Measurements",
        f"- Datasets: {measurements['datasets']}\n- Usage rows: {measurements['rows']}",
    ]


def _strategies(strategies: list[JSON]) -> list[str]:
    if not strategies:
        return []
    lines = []
    for i, s in enumerate(strategies, 1):
        needs = ", ".join(f"`{field}`" for field in s["needs"])
        saving = (
            f"estimated saving {s['estimated_savings_pct']}%"
            if s["estimated_savings_pct"] is not None
            else "not quantified yet"
        )
        lines.append(f"{i}. **{s['title']}**: {s['how']} Needs {needs}; {saving}.")
    return ["## Strategies to check", "\n".join(lines)]


def _data_request(request: JSON) -> list[str]:
    rows = [f"| `{f['name']}` | {'yes' if f['required'] else 'no'} | {f['why']} |" for f in request["fields"]]
    table = "| Column | Required | Why it matters |\n| --- | --- | --- |\n" + "\n".join(rows)
    guides = "\n".join(
        f"- **{_PROVIDERS.get(name, name)}**: {text}" for name, text in request["export_guides"].items()
    )
    return [
        "## Data needed",
        f"{request['minimum']} {request['privacy']}",
        table,
        "CSV template:",
        f"```csv\n{request['csv_template'].rstrip()}\n```",
        "### How to export it",
        guides,
    ]
