"""The golden path in a real browser: sign up, upload a trace, ask, watch the agents, read the report."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.browser.webui import (
    CRITICAL,
    ask,
    assert_run_matches_server,
    open_details,
    server_events,
    sign_up,
    wait_finished,
)
from support.data import AZURE_CONV, AZURE_ROWS, shared_data_path
from support.live import LiveServer


def test_sign_up_upload_ask_and_read_the_report(
    page: Page, slow_server: LiveServer, snap: Callable[..., Path]
) -> None:
    page.goto(slow_server.url)
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    page.get_by_label("Email").fill("you@example.com")
    snap("sign-in")
    email = sign_up(page, slow_server.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")

    # Upload the Azure trace with the file picker: the mapping is shown before anything is imported.
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload data", exact=True).click()
    chooser.value.set_files(shared_data_path(AZURE_CONV))
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("tr[data-field=ts]")).to_have_attribute("data-column", "TIMESTAMP")
    expect(dialog.locator("tr[data-field=input_tokens]")).to_have_attribute("data-column", "ContextTokens")
    expect(dialog.locator("tr[data-field=output_tokens]")).to_have_attribute("data-column", "GeneratedTokens")
    expect(dialog).to_contain_text("Azure LLM inference trace")
    dialog.get_by_label("Model these requests ran on").fill("gpt-4o")
    snap("upload-mapping")
    dialog.get_by_role("button", name="Import", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".system-note")).to_contain_text(f"Imported {AZURE_ROWS[AZURE_CONV]:,} rows")

    # Ask: every critical event kind shows up as a UI element while the run is still going.
    run = ask(page)
    for kind in CRITICAL:
        expect(run.locator(f"[data-kind={kind}]").first).to_be_attached()
    expect(run.locator("li.step[data-agent=triage]")).to_have_attribute("data-status", "completed")
    expect(run.locator("li.tool").first.locator("summary")).to_contain_text("done")
    expect(run.locator("li.step[data-agent=optimization]")).to_be_attached()
    expect(run).to_have_attribute("data-status", "running")
    snap("live-run")
    tool = run.locator("li.tool").first
    tool.locator("summary").click()  # a tool call opens to its arguments and result
    expect(tool.locator(".tool-body pre").first).to_be_visible()
    expect(tool.locator(".tool-result pre")).to_be_visible()

    run_id = wait_finished(run)
    for agent in ("triage", "data", "optimization", "actions", "reporting"):
        step = run.locator(f"li.step[data-agent={agent}]")
        expect(step).to_have_attribute("data-status", "completed")
        expect(step.locator(".step-elapsed")).to_have_text(re.compile(r"\d"))
    events = server_events(slow_server.url, email, run_id)
    assert_run_matches_server(run, events)

    # The report: markdown, the strategies with their savings, both charts with bars (behind "Details"
    # when the answer card leads).
    report = events[-1]["data"]["result"]
    open_details(run)
    markdown = "".join(e["data"]["delta"] for e in events if e["type"] == "partial_result")
    expect(run.locator(".answer h1").first).to_have_text(report["title"])
    rows = run.locator("table.strategies tbody tr")
    expect(rows).to_have_count(len(report["strategies"]))
    expect(rows.first.locator("td").first).to_contain_text("$")
    for chart, series in (
        ("spend-by-model", "spend_by_model"),
        ("savings-by-strategy", "savings_by_strategy"),
    ):
        bars = run.locator(f"figure[data-chart={chart}] svg rect.bar")
        expect(bars).to_have_count(len(report["series"][series]))
        assert float(bars.first.get_attribute("width") or 0) > 0
    run.locator("figure[data-chart=spend-by-model]").scroll_into_view_if_needed()
    snap("report")

    with page.expect_download() as download:
        run.get_by_role("button", name="Download Markdown").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename.endswith(".md")
    assert saved.read_text(encoding="utf-8") == markdown

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()


def test_threads_new_and_reopened_with_history(page: Page, server: LiveServer) -> None:
    sign_up(page, server.url)
    first = ask(page, "Which model costs the most?")
    wait_finished(first)
    expect(page.locator("#thread-list a")).to_have_count(1)
    first_url = page.url
    assert "/threads/" in first_url

    page.get_by_role("button", name="New thread", exact=True).click()
    expect(page.locator("article.run")).to_have_count(0)
    expect(page).to_have_url(f"{server.url}/")
    wait_finished(ask(page, "How do I cut my LLM costs?"))
    expect(page.locator("#thread-list a")).to_have_count(2)

    # Reopen the first thread: its question and its whole answer come back.
    page.locator("#thread-list a", has_text="Which model costs the most?").click()
    expect(page).to_have_url(first_url)
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator(".msg.user")).to_contain_text("Which model costs the most?")
    reopened = page.locator("article.run")
    expect(reopened).to_have_attribute("data-status", "completed")
    # the stored report comes back with its answer card first, the Markdown behind "Details"
    expect(reopened.locator(".answer-card .answer-text")).to_contain_text("no usage data")
    open_details(reopened)
    expect(reopened.locator(".answer h1")).to_be_visible()
    expect(page.locator("#thread-list a[aria-current=page]")).to_contain_text("Which model costs the most?")

    # Back and forward work like links.
    page.go_back()
    expect(page.locator(".msg.user")).to_contain_text("How do I cut my LLM costs?")


def test_stop_a_run_in_the_middle(page: Page, slow_server: LiveServer) -> None:
    sign_up(page, slow_server.url)
    run = ask(page)
    expect(run.locator("li.step[data-agent=triage]")).to_have_attribute("data-status", "completed")
    run.get_by_role("button", name="Stop", exact=True).click()
    expect(run).to_have_attribute("data-status", "cancelled")
    expect(run.get_by_role("alert")).to_have_text("This answer was stopped before it finished.")
    expect(run.get_by_role("button", name="Stop", exact=True)).to_be_hidden()
    # The composer still works: the next question gets its own, complete run.
    wait_finished(ask(page, "Which model costs the most?"))
