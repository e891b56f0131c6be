"""The "Prices" settings: the user's price book in a dialog, a price changed from the keyboard and saved,
the next answer priced with it, and reset to the book's price."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from e2e.browser.webui import PASSWORD, ask, sign_up, upload_via_api, wait_finished
from support.live import LiveServer

MODEL = "gpt-4o"


def _book(base_url: str, email: str) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        book: dict[str, Any] = http.get("/api/prices", headers={"Authorization": f"Bearer {token}"}).json()
        return book


def test_change_a_price_from_the_keyboard_then_reset_it(
    page: Page, server: LiveServer, tmp_path: Path, snap: Callable[..., Path]
) -> None:
    email = sign_up(page, server.url)
    log = tmp_path / "usage.csv"
    log.write_text("timestamp,model,input_tokens,output_tokens\n2025-03-01T10:00:00Z,gpt-4o,1000000,500000\n")
    upload_via_api(server.url, email, log)

    button = page.get_by_role("button", name="Prices", exact=True)
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Prices")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Find a model")).to_be_focused()
    page.keyboard.type(MODEL)
    row = dialog.locator(f"tr[data-model='{MODEL}']")
    expect(row).to_be_visible()
    expect(dialog.locator("tr[data-model='gpt-5']")).to_be_hidden()
    shipped = _book(server.url, email)["models"][MODEL]
    expect(row.get_by_label(f"Input price of {MODEL}", exact=True)).to_have_value(f"{shipped['input']:g}")

    # Tab goes from the filter to the first price shown (chatgpt-4o-latest matches too); type, Enter saves
    page.keyboard.press("Tab")
    expect(dialog.locator("tr[data-model] input[data-field=input]:visible").first).to_be_focused()
    row.get_by_label(f"Input price of {MODEL}", exact=True).focus()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("-1")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text(
        f"The input price of {MODEL} must be a number of 0 or more"
    )
    expect(row.get_by_label(f"Input price of {MODEL}", exact=True)).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("4")
    row.get_by_label(f"Output price of {MODEL}", exact=True).fill("10")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("status").last).to_contain_text(
        f"Saved your price of {MODEL}. Your next question uses it."
    )
    expect(dialog.locator(f"tr[data-model='{MODEL}']")).to_have_attribute("data-origin", "user")
    entry = _book(server.url, email)["models"][MODEL]
    assert (entry["input"], entry["output"], entry["origin"]) == (4.0, 10.0, "user")
    snap("prices-dialog")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    run = ask(page, "What did we spend?")
    wait_finished(run)
    expect(run.locator(".answer-text")).to_contain_text("$9")  # 1M x $4 + 0.5M x $10

    button.click()
    reset = dialog.get_by_role("button", name=f"Reset {MODEL} to the book's price", exact=True)
    reset.click()
    expect(dialog.get_by_role("status").last).to_contain_text(f"{MODEL} is priced from the book again.")
    expect(dialog.locator(f"tr[data-model='{MODEL}']")).to_have_attribute("data-origin", "book")
    assert "origin" not in _book(server.url, email)["models"][MODEL]
    dialog.get_by_role("button", name="Close", exact=True).click()
    expect(dialog).to_be_hidden()
