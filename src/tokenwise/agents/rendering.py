"""Markdown for a report. Figures are formatted from the structured report; text that comes from the user's
data (datasets, models, features, values) is escaped where it enters the Markdown (`escape_md`) and the
CSV (`csv_cell`), and the user's question never appears."""

from __future__ import annotations

import csv
import io
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
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")
# Every character that opens inline Markdown or raw HTML (links and images need `[`, autolinks and HTML
# `<`, entities `&`), and the table separator. CommonMark shows a backslash-escaped one as itself.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#])")
_LIST_START = re.compile(r"^(\d{1,9})([.)])|^([-+])")
_BARE_LINK = re.compile(r"(?i)(?<=[a-z0-9])(:)(?=//)|(?<=\bwww)(\.)")


def code(value: object, limit: int = 120) -> str:
    """Text from the data as a code span: nothing in it is markup, so only what would end it (a backtick)
    or break a table row (`|`, a newline) is taken out."""
    return "`" + re.sub(r"[`|\s]+", " ", str(value)).strip()[:limit] + "`"


_UNSAFE = re.compile(r"[<>|`\r\n]+")


def safe(value: object, limit: int = 120) -> str:
    """Text from the user's data as it may appear in the structured report's plain text: one line, no
    angle brackets, backticks or table breaks, bounded. `render` escapes it again for Markdown."""
    return _UNSAFE.sub(" ", str(value)).strip()[:limit]


def escape_md(value: object, limit: int = 120) -> str:
    """Text (from the user's data) as it may appear in Markdown: every markup character escaped (no
    links, images or HTML, no table breaks, no bare URL a renderer would link), on one line, bounded."""
    text = _SPACE.sub(" ", str(value)).strip()[:limit]
    text = _MARKUP.sub(r"\\\1", text)
    text = _BARE_LINK.sub(lambda m: "\\" + m.group(0), text)
    return _LIST_START.sub(lambda m: (m.group(1) or "") + "\\" + (m.group(2) or m.group(3)), text)


# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(…)`, `@SUM(…)`).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """One CSV cell: numbers as they are; text that a spreadsheet would run as a formula behind a `'`."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def table_csv(report: JSON) -> str | None:
    """The report's table as CSV: the answer's table, else spend by model; None when it has neither."""
    answer = report.get("answer") if isinstance(report.get("answer"), dict) else {}
    table = answer.get("table") if isinstance(answer, dict) else None
    if isinstance(table, dict) and table.get("rows"):
        header = [c.get("label") if isinstance(c, dict) else c for c in table.get("columns", [])]
        rows = [row for row in table["rows"] if isinstance(row, list)]
    else:
        models = (report.get("measurements") or {}).get("models") or []
        if not models:
            return None
        keys = ("model", "requests", "input_tokens", "output_tokens", "spend_usd", "spend_share")
        header = list(keys)
        rows = [[m.get(k) for k in keys] for m in models if isinstance(m, dict)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue()


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
            blocks += ["## Notes", "\n".join(f"- {escape_md(note, 600)}" for note in report["notes"])]
        return "\n\n".join(blocks) + "\n"
    blocks = [f"# {report['title']}", escape_md(report["summary"], 4000)]
    if answer is not None and plan.get("intent") == "overview":
        blocks[1:1] = _answer(answer)
    narrative = report.get("narrative") or {}
    if narrative.get("source") == "language_model":
        blocks.append(
            f"_Summary worded by the language model {escape_md(narrative.get('model'))}; its figures are "
            "checked against the analysis._"
        )
    blocks += _data(report.get("data") or {})
    blocks += _measurements(report["measurements"])
    blocks += _strategies(report["strategies"])
    for key, heading in (("target", "Your target"), ("latency", "Latency")):
        if isinstance(report.get(key), dict):
            blocks += [f"## {heading}", escape_md(report[key]["text"], 2000)]
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
        blocks += ["## Notes", "\n".join(f"- {escape_md(note, 600)}" for note in report["notes"])]
    return "\n\n".join(blocks) + "\n"


def _answer(answer: JSON) -> list[str]:
    blocks = [f"**{escape_md(answer.get('text'), 4000)}**"]
    notes = [*answer.get("readings", []), *answer.get("assumptions", [])]
    if notes:
        blocks.append("\n".join(f"- _{escape_md(n, 600)}_" for n in notes))
    table = answer.get("table")
    if isinstance(table, dict) and table.get("rows"):
        columns = table["columns"]
        head = "| " + " | ".join(escape_md(c["label"], 80) for c in columns) + " |"
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
        return escape_md(value, 80)
    return fmt(value, unit)


def _data(data: JSON) -> list[str]:
    datasets = data.get("datasets") or []
    if not datasets:
        return []
    rows = [
        f"| {escape_md(d.get('name'), 80)} | {code(d.get('detected_format'))} | {count(d.get('rows'))} | "
        f"{_model(d)} | {_span(d.get('period') or {})} |"
        for d in datasets
    ]
    table = (
        "| Dataset | Detected format | Rows | Model | Period |\n| --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
    )
    blocks = ["## Your data", table]
    if data.get("sufficiency"):
        reasons = "".join(f"\n- {escape_md(r, 600)}" for r in data.get("reasons") or [])
        blocks.append(f"The data is **{data['sufficiency']}** for this question.{reasons}")
    return blocks


def _model(dataset: JSON) -> str:
    if dataset.get("model"):
        return escape_md(dataset["model"])
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
            f"| {escape_md(g['model']) if g['model'] else '(no model)'} | {count(g['requests'])} | "
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
        assumptions = "\n".join(f"- {escape_md(a, 600)}" for a in s.get("assumptions", []))
        blocks += [
            f"### {i}. {escape_md(s['title'], 200)}",
            f"`{s['type']}` · {saving} · {s.get('confidence')} confidence",
            f"Risk: {escape_md(s.get('risk'), 600)}",
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
        blocks.append(f"### {i}. {escape_md(a['title'], 200)} (effort {a.get('effort', 'medium')}{value})")
        if a.get("detail"):  # written by the agents (how to supply data), not taken from the data
            blocks.append(str(a["detail"]))
        if a.get("steps"):
            blocks.append("\n".join(f"- {escape_md(step, 600)}" for step in a["steps"]))
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
