"""What the browser tests do on the page, and what they read back from the server to compare."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

PASSWORD = "correct-horse-battery-1"
CRITICAL = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")
RUN_TIMEOUT_MS = 60_000


def fresh_email() -> str:
    return f"web-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(page: Page, base_url: str, email: str | None = None) -> str:
    """Open the app, sign up with a new account, and wait until the chat is connected."""
    email = email or fresh_email()
    page.goto(base_url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    return email


def ask(page: Page, question: str = "How do I cut my LLM costs?") -> Locator:
    """Type a question, send it with the Send button, and return the run that appears for it."""
    runs = page.locator("article.run")
    before = runs.count()
    page.get_by_label("Message", exact=True).fill(question)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(runs).to_have_count(before + 1)
    return runs.nth(before)


def wait_finished(run: Locator) -> str:
    """Wait for the run's final event on the page; its run id."""
    expect(run).to_have_attribute("data-status", "completed", timeout=RUN_TIMEOUT_MS)
    run_id = run.get_attribute("data-run-id")
    assert run_id
    return run_id


def open_details(run: Locator) -> None:
    """Unfold the report behind the answer card ("Details"), when the report has an answer."""
    details = run.locator("details.report-details")
    if details.count() and details.get_attribute("open") is None:
        details.locator("> summary").click()
        expect(details).to_have_attribute("open", "")


def connection_state(page: Page) -> Locator:
    return page.locator("#connection")


def server_events(base_url: str, email: str, run_id: str) -> list[dict[str, Any]]:
    """The run's stored events, read over HTTP as the same user."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        login = http.post("/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        response = http.get(f"/api/runs/{run_id}/events", params={"after_seq": 0}, headers=headers)
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events


def assert_run_matches_server(run: Locator, events: list[dict[str, Any]]) -> None:
    """Every event line on the page appears exactly once and in order, none missing."""
    shown = run.locator("[data-seq]").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    expected = [e["seq"] for e in events if e["type"] != "partial_result"]
    assert sorted(shown) == expected, (sorted(shown), expected)
    thoughts = run.locator("[data-kind=agent_thinking]").all_inner_texts()
    assert thoughts == [e["data"]["thought"] for e in events if e["type"] == "agent_thinking"]
    calls = run.locator("li.tool").evaluate_all("els => els.map(e => e.dataset.callId)")
    assert calls == [e["data"]["tool_call_id"] for e in events if e["type"] == "tool_executing"]
    assert run.get_attribute("data-last-seq") == str(events[-1]["seq"])


def upload_via_api(base_url: str, email: str, path: Path, model: str | None = None) -> dict[str, Any]:
    """Import a usage file for the user over HTTP (when the test is about something else)."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        token = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        with path.open("rb") as file:
            response = http.post(
                "/api/datasets",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (path.name, file)},
                data={"model": model} if model else {},
            )
        response.raise_for_status()
        dataset: dict[str, Any] = response.json()
        return dataset
