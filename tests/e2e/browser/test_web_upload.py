"""Uploading usage data from the chat: drag-and-drop, the detected mapping, confirm or cancel."""

from __future__ import annotations

import httpx
from playwright.sync_api import JSHandle, Page, expect

from e2e.browser.webui import PASSWORD, sign_up
from support.data import AZURE_CODE, AZURE_ROWS, shared_data_path
from support.live import LiveServer


def _file_drop(page: Page, name: str, text: str) -> JSHandle:
    """A DataTransfer holding one file, as a drag from the desktop carries it."""
    return page.evaluate_handle(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/csv" }));
            return transfer;
        }""",
        [name, text],
    )


def _datasets(base_url: str, email: str) -> list[dict[str, object]]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        response = http.get("/api/datasets", headers={"Authorization": f"Bearer {token}"})
        datasets: list[dict[str, object]] = response.json()["datasets"]
        return datasets


def test_drop_a_trace_see_the_mapping_cancel_then_import(page: Page, server: LiveServer) -> None:
    email = sign_up(page, server.url)
    main = page.locator("#main")
    transfer = _file_drop(page, AZURE_CODE, shared_data_path(AZURE_CODE).read_text())

    main.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(page.locator("#dropzone")).to_be_visible()
    main.dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator("#dropzone")).to_be_hidden()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Check the columns")).to_be_visible()
    expect(dialog.locator("tr[data-field=input_tokens]")).to_have_attribute("data-column", "ContextTokens")
    expect(dialog.get_by_label("Column for Output tokens")).to_have_value("GeneratedTokens")
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog).to_be_hidden()
    assert _datasets(server.url, email) == []

    main.dispatch_event("drop", {"dataTransfer": transfer})
    expect(dialog.locator("tr[data-field=ts]")).to_have_attribute("data-column", "TIMESTAMP")
    dialog.get_by_role("button", name="Import", exact=True).click()
    note = page.locator(".system-note")
    expect(note).to_contain_text(f"Imported {AZURE_ROWS[AZURE_CODE]:,} rows from {AZURE_CODE}")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    [dataset] = _datasets(server.url, email)
    assert dataset["row_count"] == AZURE_ROWS[AZURE_CODE]


def test_a_file_without_token_columns_is_not_imported(page: Page, server: LiveServer) -> None:
    email = sign_up(page, server.url)
    transfer = _file_drop(page, "notes.csv", "when,who\n2024-01-01T00:00:00Z,alice\n")
    page.locator("#main").dispatch_event("drop", {"dataTransfer": transfer})
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("alert").first).to_contain_text("Choose the column for")
    expect(dialog.get_by_role("button", name="Import", exact=True)).to_be_disabled()

    # Pointing the fields at columns re-checks the file: still no token counts, still no import.
    dialog.get_by_label("Column for Input tokens").select_option("who")
    expect(dialog.get_by_role("alert").first).to_be_visible()
    expect(dialog.get_by_role("button", name="Import", exact=True)).to_be_disabled()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert _datasets(server.url, email) == []
