"""Keyboard only, screen-reader names, and a phone-sized screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.browser.webui import PASSWORD, fresh_email, open_details, upload_via_api, wait_finished
from support.data import AZURE_CODE, shared_data_path
from support.live import LiveServer

NAMES = ("Sign out", "New thread", "Send", "Upload data")


def test_keyboard_only_on_a_narrow_screen(page: Page, server: LiveServer, snap: Callable[..., Path]) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url)
    for label in ("Email", "Password"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    for name in ("Sign in", "Sign up"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()

    # Sign up without the mouse: the email field has the focus; Tab, type, Tab to the buttons.
    expect(page.get_by_label("Email")).to_be_focused()
    email = fresh_email()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign up", exact=True)).to_be_focused()
    page.keyboard.press("Enter")

    message = page.get_by_role("textbox", name="Message", exact=True)
    expect(message).to_be_focused()
    for name in NAMES:
        if name != "New thread":
            expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    upload_via_api(server.url, email, shared_data_path(AZURE_CODE), model="gpt-4o-mini")
    page.keyboard.type("How do I cut my LLM costs?")
    page.keyboard.press("Enter")
    run = page.locator("article.run")
    wait_finished(run)
    expect(page.get_by_role("region", name="Answer", exact=True)).to_be_visible()
    expect(run.locator(".answer.markdown")).to_contain_text("LLM")
    expect(run.locator("figure[data-chart=spend-by-model] rect.bar")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    open_details(run)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    run.locator("table.strategies").scroll_into_view_if_needed()
    snap("narrow-screen")

    # The threads live behind a button on a narrow screen.
    toggle = page.get_by_role("button", name="Threads", exact=True)
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    new_thread = page.get_by_role("button", name="New thread", exact=True)
    expect(new_thread).to_be_visible()
    new_thread.focus()
    page.keyboard.press("Enter")
    expect(message).to_be_focused()
    expect(page.locator("article.run")).to_have_count(0)
    expect(new_thread).to_be_hidden()


def test_live_regions_for_status_and_answer(page: Page, server: LiveServer) -> None:
    page.goto(server.url)
    page.get_by_label("Email").fill(fresh_email())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up", exact=True).click()
    page.get_by_label("Message", exact=True).fill("How do I cut my LLM costs?")
    page.get_by_role("button", name="Send", exact=True).click()
    run = page.locator("article.run")
    wait_finished(run)
    answer = run.locator("[aria-live=polite]")
    expect(answer).to_have_attribute("aria-busy", "false")
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#announcer")).to_have_text("The report is ready.")
    expect(page.locator("#connection")).to_have_attribute("role", "status")
