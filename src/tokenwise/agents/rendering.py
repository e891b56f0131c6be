"""Markdown for a report. Figures are formatted from the structured report; names that come from the user's
data (datasets, models, features) are defanged, and the user's question never appears."""

from __future__ import annotations

import re

from tokenwise.agents.figures import count, days, fmt, pct, usd
from tokenwise.agents.tooling import JSON

_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "azure_openai": "Azure OpenAI",
    "aws_bedrock": "AWS Bedrock",
    "litellm": "LiteLLM",
    "gateway": "Helicone, Langfuse and other gateways",
}
_UNSAFE = re.compile(r"[<>|`\r\n]+")


def safe(value: object, limit: int = 120) -> str:
    """Text from the user's data as it may appear in Markdown: no markup, no table breaks, bounded."""
    return _UNSAFE.sub(" ", str(value)).strip()[:limit]


def render(report: JSON) -> str:
    """The report as markdown: blocks separated by blank lines, ending in a newline.

    A direct answer leads; a plain question's report is the answer and what it rests on, while a savings
    question's keeps every measurement and strategy below its answer.
    """
    answer = report.get("answer") if isinstance(report.get("answer"), dict) else None
    plan: JSON = report["plan"] if isinstance(report.get("plan"), dict) else {}
    if answer is not None and plan.get("intent") not in ("optimize", "overview", None):
        blocks = [f"# {report['title']}", *_answer(answer)]
        blocks += _data(report.get("data") or {})
        if report["notes"]:
            blocks += ["## Notes", "\n".join(f"- {safe(note, 600)}" for note in report["notes"])]
        return "\n\n".join(blocks) + "\n"
    blocks = [f"# {report['title']}", safe(report["summary"], 4000)]
    if answer is not None and plan.get("intent") == "overview":
        blocks[1:1] = _answer(answer)
    narrative = report.get("narrative") or {}
    if narrative.get("source") == "language_model":
        blocks.append(
            f"_Summary worded by the language model {safe(narrative.get('model'))}; its figures are "
            "checked against the analysis._"
        )
    blocks += _data(report.get("data") or {})
    blocks += _measurements(report["measurements"])
    blocks += _strategies(report["strategies"])
    for key, heading in (("target", "Your target"), ("latency", "Latency")):
        if isinstance(report.get(key), dict):
            blocks += [f"## {heading}", str(report[key]["text"])]
    blocks += _not_checked(report.get("not_checked") or [])
    if report.get("missing"):
        blocks.append("## What is missing")
        blocks.append(
            "\n".join(
                f"- **{m['field']}**: {m.get('why', '')}. How: {m.get('how', '')}" for m in report["missing"]
            )
        )
    if report["data_request"]:
        blocks += _data_request(report["data_request"])
    if report.get("candidates"):
        blocks.append("## What the analysis will check")
        blocks.append(
            "\n".join(f"- **{c['title']}** (`{c['type']}`): {c['finds']}." for c in report["candidates"])
        )
    blocks += _actions(report["actions"])
    if report["notes"]:
        blocks += ["## Notes", "\n".join(f"- {safe(note, 600)}" for note in report["notes"])]
    return "\n\n".join(blocks) + "\n"


def _answer(answer: JSON) -> list[str]:
    blocks = [f"**{safe(answer.get('text'), 4000)}**"]
    notes = [*answer.get("readings", []), *answer.get("assumptions", [])]
    if notes:
        blocks.append("\n".join(f"- _{safe(n, 600)}_" for n in notes))
    table = answer.get("table")
    if isinstance(table, dict) and table.get("rows"):
        columns = table["columns"]
        head = "| " + " | ".join(safe(c["label"], 80) for c in columns) + " |"
        rule = "| " + " | ".join("---" for _ in columns) + " |"
        body = "\n".join(
            "| " + " | ".join(_cell(v, c.get("unit")) for c, v in zip(columns, row, strict=False)) + " |"
            for row in table["rows"][:50]
        )
        blocks.append(f"{head}\n{rule}\n{body}")
    return blocks


def _cell(value: object, unit: str | None) -> str:
    if value is None:
        return "—"
    if unit is None or not isinstance(value, int | float):
        return safe(value, 80)
    return fmt(value, unit)


def _data(data: JSON) -> list[str]:
    datasets = data.get("datasets") or []
    if not datasets:
        return []
    rows = [
        f"| {safe(d.get('name'), 80)} | `{safe(d.get('detected_format'))}` | {count(d.get('rows'))} | "
        f"{_model(d)} | {_span(d.get('period') or {})} |"
        for d in datasets
    ]
    table = (
        "| Dataset | Detected format | Rows | Model | Period |\n| --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
    )
    blocks = ["## Your data", table]
    if data.get("sufficiency"):
        reasons = "".join(f"\n- {safe(r, 600)}" for r in data.get("reasons") or [])
        blocks.append(f"The data is **{data['sufficiency']}** for this question.{reasons}")
    return blocks


def _model(dataset: JSON) -> str:
    if dataset.get("model"):
        return safe(dataset["model"])
    return "from the data" if dataset.get("model_column") else "not given"


def _span(period: JSON) -> str:
    start, end = period.get("start"), period.get("end")
    return f"{str(start)[:16]} to {str(end)[:16]}" if start and end else "—"


def _measurements(m: JSON) -> list[str]:
    if not m.get("requests"):
        return ["## Measurements", "Nothing measured yet."]
    period = m.get("period") or {}
    rate, errors = m.get("rate") or {}, m.get("errors") or {}
    lines = [
        ("Requests", count(m["requests"])),
        ("Input tokens", count(m["input_tokens"])),
        ("Output tokens", count(m["output_tokens"])),
        ("Cached input tokens", count(m.get("cached_input_tokens"))),
        ("Spend in the period", usd(m["spend_usd"]) if m["spend_usd"] is not None else "not priced"),
        (
            "Spend per month (30 days)",
            usd(m["monthly_spend_usd"]) if m["monthly_spend_usd"] is not None else "—",
        ),
        (
            "Period",
            f"{str(period.get('start'))[:19]} to {str(period.get('end'))[:19]} ({days(period.get('days'))})",
        ),
        (
            "Peak rate",
            f"{count(rate.get('peak_per_second'))} requests/s, {count(rate.get('peak_per_minute'))} "
            "requests/min",
        ),
        (
            "Mean rate",
            f"{rate.get('mean_per_minute', 0):,.2f} requests/min "
            f"(peak/mean {rate.get('burstiness', 0):.1f}x)",
        ),
        ("Error rate", pct(100 * float(errors.get("error_rate") or 0), 2)),
    ]
    table = "| Measure | Value |\n| --- | --- |\n" + "\n".join(f"| {k} | {v} |" for k, v in lines)
    sizes = [
        ("Input tokens", m.get("input_tokens_per_request")),
        ("Output tokens", m.get("output_tokens_per_request")),
        ("Latency (ms)", m.get("latency_ms")),
    ]
    size_rows = "\n".join(
        f"| {name} | {count(s['p50'])} | {count(s['p95'])} | {count(s['p99'])} | {count(s['mean'])} |"
        for name, s in sizes
        if s
    )
    blocks = [
        "## Measurements",
        table,
        "| Per request | p50 | p95 | p99 | mean |\n| --- | --- | --- | --- | --- |\n" + size_rows,
    ]
    if m.get("models"):
        model_rows = "\n".join(
            f"| {safe(g['model']) if g['model'] else '(no model)'} | {count(g['requests'])} | "
            f"{count(g['input_tokens'])} | {count(g['output_tokens'])} | "
            f"{usd(g['spend_usd']) if g['spend_usd'] is not None else 'not priced'} | "
            f"{pct(100 * g['spend_share']) if g['spend_share'] is not None else '—'} |"
            for g in m["models"]
        )
        blocks += [
            "### By model",
            "| Model | Requests | Input tokens | Output tokens | Spend | Share of spend |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + model_rows,
        ]
    return blocks


def _strategies(strategies: list[JSON]) -> list[str]:
    if not strategies:
        return []
    blocks = ["## Strategies"]
    for i, s in enumerate(strategies, 1):
        saving = (
            f"saves **{usd(s['monthly_savings_usd'])} a month** ({pct(s.get('savings_pct'))} of spend)"
            if s.get("monthly_savings_usd") is not None
            else "no $ figure: this traffic has no price"
        )
        assumptions = "\n".join(f"- {safe(a, 600)}" for a in s.get("assumptions", []))
        blocks += [
            f"### {i}. {safe(s['title'], 200)}",
            f"`{s['type']}` · {saving} · {s.get('confidence')} confidence",
            f"Risk: {safe(s.get('risk'), 600)}",
            f"Assumptions:\n{assumptions}",
        ]
    return blocks


def _not_checked(items: list[JSON]) -> list[str]:
    if not items:
        return []
    lines = [
        f"- **{g['strategy']}** ({g.get('finds', '')}) needs "
        f"{', '.join(f'`{n}`' for n in g.get('needs', []))}: {g.get('how', '')}."
        for g in items
    ]
    return ["## Not checked", "\n".join(lines)]


def _actions(actions: list[JSON]) -> list[str]:
    if not actions:
        return []
    blocks = ["## Next steps"]
    for i, a in enumerate(actions, 1):
        value = f", saves {usd(a['monthly_savings_usd'])} a month" if a.get("monthly_savings_usd") else ""
        blocks.append(f"### {i}. {safe(a['title'], 200)} (effort {a.get('effort', 'medium')}{value})")
        if a.get("detail"):  # written by the agents (how to supply data), not taken from the data
            blocks.append(str(a["detail"]))
        if a.get("steps"):
            blocks.append("\n".join(f"- {safe(step, 600)}" for step in a["steps"]))
        for snippet in a.get("snippets", []):
            blocks.append(f"{snippet['title']}:\n\n```{snippet['language']}\n{snippet['code'].rstrip()}\n```")
    return blocks


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
