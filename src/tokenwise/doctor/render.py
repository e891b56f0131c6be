"""The report for people: a tree per layer with ✓/✗, timings and evidence, then the verdict."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text
from rich.tree import Tree

from tokenwise.doctor.model import Check, Layer, Report, Status, Verdict

SYMBOLS = {
    Status.PASS: ("✓", "green"),
    Status.WARN: ("!", "yellow"),
    Status.FAIL: ("✗", "bold red"),
    Status.SKIP: ("-", "dim"),
}
_EVIDENCE_WIDTH = 140


def layer_tree(layer: Layer) -> Tree:
    """One layer: its status, then each check with its summary; evidence and fix under failures."""
    symbol, style = SYMBOLS[layer.status]
    label = Text(f"{symbol} {layer.number}. {layer.title}", style=style)
    if layer.duration_ms:
        label.append(f"  {_duration(layer.duration_ms)}", style="dim")
    tree = Tree(label, guide_style="dim")
    for check in layer.checks:
        node = tree.add(_check_line(check))
        if check.status is Status.FAIL:
            node.add(Text(f"class: {check.fault.value if check.fault else '?'}", style="red"))
            for key, value in check.evidence.items():
                if isinstance(value, dict) and value:
                    branch = node.add(Text(f"{key}:", style="dim"))
                    for inner, item in value.items():
                        branch.add(Text(f"{inner}: {_brief(item)}", style="dim"))
                else:
                    node.add(Text(f"{key}: {_brief(value)}", style="dim"))
            if check.fix:
                node.add(Text(f"fix: {check.fix}", style="cyan"))
        elif check.status is Status.WARN and check.fix:
            node.add(Text(f"fix: {check.fix}", style="dim cyan"))
    return tree


def _check_line(check: Check) -> Text:
    symbol, style = SYMBOLS[check.status]
    line = Text(f"{symbol} ", style=style).append(check.name, style="bold")
    line.append(f"  {check.summary}", style="dim" if check.status is Status.SKIP else "")
    if check.duration_ms is not None:
        line.append(f"  {_duration(check.duration_ms)}", style="dim")
    return line


def verdict_panel(verdict: Verdict) -> Panel:
    style = {"healthy": "green", "incomplete": "yellow"}.get(verdict.status, "red")
    heading = Text(verdict.status.upper(), style=f"bold {style}")
    if verdict.fault is not None:
        heading.append(f"  {verdict.fault.value}", style="bold")
    if verdict.layer is not None:
        heading.append(f"  (layer {verdict.layer.number}, {verdict.layer.title})")
    lines: list[RenderableType] = [heading, Text(verdict.summary)]
    if verdict.fix:
        lines.append(Text(f"likely fix: {verdict.fix}", style="cyan"))
    for warning in verdict.warnings:
        lines.append(Text(f"warning: {warning}", style="yellow"))
    lines.append(Text(f"exit code {verdict.exit_code}", style="dim"))
    return Panel(Group(*lines), title="verdict", border_style=style, expand=False)


def report_view(report: Report) -> Group:
    """The whole report (for a terminal that was not following along)."""
    return Group(*(layer_tree(layer) for layer in report.layers), verdict_panel(report.verdict))


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _EVIDENCE_WIDTH else text[: _EVIDENCE_WIDTH - 1] + "…"


def _duration(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"
