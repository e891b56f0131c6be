"""The answer card in the browser: the direct answer leads, its chart and table under it, the rest of the
report behind "Details", and a finished run's trace folded to one line.

The first tests feed a RunView a hand-written report (the shape of the report's `answer`); the others
ask real questions of a real server about a small usage log written here, spanning ten days.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from e2e.browser.webui import ask, sign_up, upload_via_api, wait_finished
from support.live import LiveServer

FEATURES = ("faq-bot", "summarizer", "classifier")
MODELS = ("gpt-4o", "gpt-4o-mini")
DAYS = 10


def _event(seq: int, type: str, agent: str, **data: Any) -> dict[str, Any]:
    return {
        "type": type,
        "run_id": "r1",
        "thread_id": "t1",
        "seq": seq,
        "event_id": f"r1:{seq}",
        "timestamp": f"2026-11-21T14:21:26.{seq * 40:03d}Z",
        "agent_name": agent,
        "data": data,
    }


def _run(report: dict[str, Any], markdown: str = "# Spend\n\nThe details.\n") -> list[dict[str, Any]]:
    return [
        _event(1, "agent_started", "supervisor", description="Runs the sub-agents."),
        _event(2, "agent_started", "triage", description="Reads the question."),
        _event(3, "tool_executing", "triage", tool_call_id="c1", args={"question": "spend per day"}),
        _event(
            4, "tool_completed", "triage", tool_call_id="c1", result={"intent": "series"}, duration_ms=2.5
        ),
        _event(5, "agent_completed", "triage", result={"intent": "series"}),
        _event(6, "agent_started", "data", description="Measures."),
        _event(7, "tool_executing", "data", tool_call_id="c2", args={"plan": {}}),
        _event(8, "tool_completed", "data", tool_call_id="c2", result={"rows": 10}, duration_ms=12),
        _event(9, "agent_completed", "data", result={}),
        _event(10, "partial_result", "reporting", delta=markdown),
        _event(11, "agent_completed", "supervisor", final=True, result=report),
    ]


ANSWER = {
    "text": "You spent $1,234.56 over 24-30 Nov 2025; faq-bot cost the most.",
    "figures": [{"label": "Spend", "value": 1234.56, "unit": "usd"}],
    "table": {
        "columns": [
            {"key": "feature", "label": "Feature", "unit": None},
            {"key": "spend_usd", "label": "Spend (24-30 Nov 2025)", "unit": "usd"},
            {"key": "monthly", "label": "Monthly spend", "unit": "usd_per_month"},
            {"key": "share", "label": "Share", "unit": "pct"},
            {"key": "p95", "label": "Latency p95", "unit": "ms"},
            {"key": "unit_cost", "label": "Cost per request", "unit": "usd_per_request"},
            {"key": "requests", "label": "Requests", "unit": "requests"},
        ],
        "rows": [
            ["faq-bot", 1000.5, 4288.0, 81.04, 1234.4, 0.004123, 242000],
            ["summarizer", 234.06, 1003.1, 18.96, 870, 0.0123, 19000],
        ],
    },
    "series": {
        "kind": "line",
        "label": "Spend per day",
        "unit": "usd",
        "points": [{"label": f"2025-11-{d:02d}", "value": 100 + d * 7.5} for d in range(24, 31)],
    },
    "readings": ["Read 'last week' as 24-30 Nov 2025."],
    "unknown": [{"text": "chatbot-x", "dimension": "feature", "suggestions": ["faq-bot"]}],
    "answerable": True,
    "missing": [],
}
REPORT = {
    "title": "Spend",
    "strategies": [],
    "series": {"spend_by_model": [{"label": "gpt-4o", "value": 9.5}]},
}

RENDER = """async (events) => {
    const { RunView } = await import("/static/js/run_view.js");
    const hooks = { offsetMs: () => 0, announce: () => {}, onStop: () => {}, onGap: () => {} };
    const view = new RunView("r1", hooks);
    document.querySelector("article.run")?.remove();
    document.body.append(view.el);
    for (const event of events) view.apply(event);
}"""


def _render(page: Page, server: LiveServer, report: dict[str, Any]) -> Locator:
    page.goto(server.url)
    page.evaluate(RENDER, _run(report))
    run = page.locator("article.run[data-run-id=r1]")
    expect(run).to_have_attribute("data-status", "completed")
    return run


def test_units_are_formatted_as_people_read_them(page: Page, server: LiveServer) -> None:
    page.goto(server.url)
    cases = [
        [1234.56, "usd"],
        [1234.5, "usd"],
        [0.004123, "usd"],
        [0.5, "usd"],
        [0, "usd"],
        [-12.3, "usd"],
        [12.3, "usd_per_month"],
        [0.0041, "usd_per_request"],
        [1.5, "usd_per_1k_requests"],
        [12.34, "pct"],
        [100, "pct"],
        [1234.4, "ms"],
        [5.25, "ms"],
        [1234, "requests"],
        [1, "requests"],
        [1234567, "tokens"],
        [12.34, "requests_per_s"],
        [3, "days"],
        [1234, "count"],
        [12.5, None],
        ["faq-bot", None],
        [None, "usd"],
    ]
    got = page.evaluate(
        """async (cases) => {
            const { value, unitNote, noteFor } = await import("/static/js/units.js");
            return {
                values: cases.map(([v, u]) => value(v, u)),
                bare: value(12.3, "usd_per_month", { bare: true }),
                notes: ["usd", "usd_per_month", "pct", "ms", "tokens", null].map(unitNote),
                needed: [noteFor("Latency (ms)", "ms"), noteFor("Requests", "requests"),
                         noteFor("Spend", "usd"), noteFor("Monthly saving", "usd_per_month")],
            };
        }""",
        cases,
    )
    assert got["values"] == [
        "$1,234.56",
        "$1,234.50",
        "$0.00412",
        "$0.50",
        "$0.00",
        "-$12.30",
        "$12.30 a month",
        "$0.0041 per request",
        "$1.50 per 1k requests",
        "12.3%",
        "100%",
        "1,234 ms",
        "5.3 ms",
        "1,234 requests",
        "1 request",
        "1,234,567 tokens",
        "12.3 requests/s",
        "3 days",
        "1,234",
        "12.5",
        "faq-bot",
        "—",
    ]
    assert got["bare"] == "$12.30"
    assert got["notes"] == ["$", "$ a month", "%", "ms", "tokens", ""]
    assert got["needed"] == ["", "", "$", "$ a month"]


def test_the_answer_card_leads_with_its_notes_chart_and_table(page: Page, server: LiveServer) -> None:
    run = _render(page, server, {**REPORT, "answer": ANSWER})
    card = run.get_by_role("region", name="Answer", exact=True)
    expect(card.locator(".answer-text")).to_have_text(ANSWER["text"])
    expect(card.locator(".answer-notes .reading")).to_have_text("Read 'last week' as 24-30 Nov 2025.")
    unknown = "“chatbot-x” is not a feature in your data. Closest: faq-bot."
    expect(card.locator(".answer-notes .unknown")).to_have_text(unknown)
    # The card comes before the rest of the report, which is folded behind "Details".
    order = run.evaluate("el => [...el.children].map(c => c.className)")
    assert order.index("answer-card") < order.index("report-details"), order
    details = run.locator("details.report-details")
    expect(details).not_to_have_attribute("open", "")
    expect(details.locator(".answer h1")).to_have_text("Spend")
    expect(details.locator("figure[data-chart=spend-by-model] rect.bar")).to_have_count(1)
    expect(run.get_by_role("button", name="Download Markdown")).to_be_visible()
    details.locator("summary").click()
    expect(details.locator(".answer h1")).to_be_visible()

    # A line chart: a polyline through every point, axis ticks in dollars, the unit named.
    figure = card.locator("figure[data-kind=line]")
    expect(figure.locator("figcaption")).to_have_text("Spend per day ($)")
    line = figure.locator("svg.line-chart polyline.line")
    expect(line).to_have_count(1)
    assert len((line.get_attribute("points") or "").split()) == 7
    expect(figure.locator("circle.dot")).to_have_count(7)
    expect(figure.locator("text.y-title")).to_have_text("US dollars")
    expect(figure.locator("text.x-title")).to_have_text("Day")
    expect(figure.locator("text.x-tick").first).to_have_text("24 Nov")
    ticks = figure.locator("text.tick:not(.x-tick)").evaluate_all("els => els.map(e => e.textContent)")
    assert ticks
    assert all(t.startswith("$") for t in ticks), ticks

    # The table: headers state units, so a period's dollars and monthly dollars are told apart.
    headers = card.locator(".answer-table thead th").all_inner_texts()
    assert headers == [
        "Feature",
        "Spend (24-30 Nov 2025) ($)",
        "Monthly spend ($ a month)",
        "Share",
        "Latency p95 (ms)",
        "Cost per request ($ per request)",
        "Requests",
    ]
    first = card.locator(".answer-table tbody tr").first
    assert [c.strip() for c in first.locator("th, td").all_inner_texts()] == [
        "faq-bot",
        "$1,000.50",
        "$4,288.00",
        "81%",
        "1,234",
        "$0.00412",
        "242,000",
    ]
    wrap = card.get_by_role("region", name=re.compile("figures behind the answer"))
    expect(wrap).to_have_attribute("tabindex", "0")


def test_bars_for_a_breakdown_and_figures_without_a_table(page: Page, server: LiveServer) -> None:
    answer = {
        **ANSWER,
        "table": None,
        "series": {
            "kind": "bar",
            "label": "Monthly spend by feature",
            "unit": "usd_per_month",
            "points": [{"label": "faq-bot", "value": 4288.0}, {"label": "summarizer", "value": 1003.1}],
        },
        "readings": [],
        "unknown": [],
    }
    run = _render(page, server, {**REPORT, "answer": answer})
    figure = run.locator(".answer-card figure[data-kind=bar]")
    expect(figure.locator("figcaption")).to_have_text("Monthly spend by feature ($ a month)")
    expect(figure.locator("rect.bar")).to_have_count(2)
    expect(figure.locator("text.chart-value").first).to_have_text("$4,288.00 a month")
    expect(run.locator(".answer-card .answer-notes")).to_have_count(0)

    # No chart and no table: the figures are shown as tiles instead.
    page.evaluate(RENDER, _run({**REPORT, "answer": {**answer, "series": None}}))
    expect(page.locator(".answer-card .figure-item")).to_have_text("Spend$1,234.56")


def test_a_report_without_an_answer_renders_as_before(page: Page, server: LiveServer) -> None:
    run = _render(page, server, REPORT)
    expect(run.locator(".answer-card")).to_have_count(0)
    expect(run.locator("details.report-details")).to_have_count(0)
    expect(run.get_by_role("region", name="Answer", exact=True).locator("h1")).to_have_text("Spend")
    expect(run.locator("figure[data-chart=spend-by-model] rect.bar")).to_have_count(1)
    expect(run.get_by_role("button", name="Download Markdown")).to_be_visible()
    # The data's dollars and monthly dollars side by side: each caption says which.
    expect(run.locator("figure[data-chart] figcaption")).to_have_text(
        ["Spend by model ($, over the data's period)", "Savings by strategy ($ a month)"]
    )


def test_the_finished_trace_folds_to_one_line(page: Page, server: LiveServer) -> None:
    run = _render(page, server, {**REPORT, "answer": ANSWER})
    toggle = run.locator("button.trace-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_text("2 steps, 2 tool calls, 400 ms")
    expect(run.locator(".timeline")).to_be_hidden()


# ---- against a real server, with a real upload ------------------------------------------------------


def _usage_csv(path: Path) -> Path:
    """Ten days of traffic: three features on two models, a little more each day, one error in twenty."""
    with path.open("w", newline="", encoding="utf-8") as file:
        out = csv.writer(file)
        out.writerow(
            [
                "timestamp",
                "request_id",
                "model",
                "feature",
                "user",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "latency_ms",
                "status",
            ]
        )
        n = 0
        for day in range(DAYS):
            for i in range(30 + 4 * day):
                n += 1
                feature = FEATURES[i % 3]
                model = MODELS[(i // 3) % 2]
                tokens_in, tokens_out = 400 + 37 * (i % 11), 120 + 13 * (i % 7)
                price = (2.5, 10.0) if model == "gpt-4o" else (0.15, 0.6)
                cost = (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
                out.writerow(
                    [
                        f"2025-11-{day + 1:02d}T{(i * 7) % 24:02d}:{(i * 13) % 60:02d}:00Z",
                        f"req-{n:05d}",
                        model,
                        feature,
                        f"user-{i % 5}",
                        tokens_in,
                        tokens_out,
                        f"{cost:.6f}",
                        300 + 41 * (i % 17),
                        "error" if n % 20 == 0 else "ok",
                    ]
                )
    return path


@pytest.fixture
def asker(page: Page, server: LiveServer, tmp_path: Path) -> Callable[[str], Locator]:
    """Sign up, upload the ten-day log, and return `ask(question)` -> the finished run."""
    email = sign_up(page, server.url)
    upload_via_api(server.url, email, _usage_csv(tmp_path / "usage.csv"))

    def run(question: str) -> Locator:
        view = ask(page, question)
        wait_finished(view)
        expect(view.locator(".answer-card")).to_be_visible()
        return view

    return run


def test_spend_per_day_is_a_line_chart(asker: Callable[[str], Locator], snap: Callable[..., Path]) -> None:
    run = asker("spend per day")
    chart = run.locator(".answer-card figure[data-kind=line] svg")
    expect(chart.locator("polyline.line, path.line")).to_have_count(1)
    shown = run.locator(".answer-card figure[data-kind=line]").get_attribute("data-points")
    assert int(shown or 0) >= DAYS - 1
    snap("answer-line-chart")


def test_spend_by_feature_is_bars(asker: Callable[[str], Locator], snap: Callable[..., Path]) -> None:
    run = asker("spend by feature")
    bars = run.locator(".answer-card figure[data-kind=bar] rect.bar")
    expect(bars).to_have_count(len(FEATURES))
    labels = bars.evaluate_all("els => els.map(e => e.dataset.label)")
    assert sorted(labels) == sorted(FEATURES)
    snap("answer-bars")


def test_a_table_scrolls_sideways_on_a_phone_with_its_first_column_fixed(
    page: Page, asker: Callable[[str], Locator], snap: Callable[..., Path]
) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    run = asker("our 3 most expensive requests")
    wrap = run.locator(".answer-card .answer-table-wrap")
    expect(wrap).to_have_attribute("role", "region")
    expect(wrap).to_have_attribute("tabindex", "0")
    assert wrap.get_attribute("aria-label")
    wrap.scroll_into_view_if_needed()
    assert wrap.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth"), "the table fits: nothing to scroll"
    first = wrap.locator("tbody tr").first.locator("th, td").first
    assert first.evaluate("el => getComputedStyle(el).position") == "sticky"
    # Scrolled sideways, the first column stays where it was; the page itself never scrolls sideways.
    before = first.bounding_box()
    wrap.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    after = first.bounding_box()
    assert before
    assert after
    assert abs(before["x"] - after["x"]) < 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    snap("answer-table-narrow")


def test_after_the_run_the_trace_is_one_line_that_opens(page: Page, asker: Callable[[str], Locator]) -> None:
    run = asker("spend per day")
    toggle = run.locator("button.trace-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_text(re.compile(r"^\d+ steps?, \d+ tool calls?, [\d.]+ (ms|s)$"))
    expect(run.locator(".timeline")).to_be_hidden()
    box = toggle.bounding_box()
    assert box
    assert box["height"] < 48  # one line
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(run.locator("li.step[data-agent=triage]")).to_be_visible()
    toggle.click()
    expect(run.locator(".timeline")).to_be_hidden()
    # From the keyboard: focus it, Enter opens, Enter folds.
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(run.locator("li.tool").first).to_be_visible()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
