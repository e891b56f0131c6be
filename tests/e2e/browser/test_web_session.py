"""Signing in and out, a session renewed in the background, and one that cannot be renewed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from e2e.browser.webui import PASSWORD, ask, fresh_email, sign_up, wait_finished
from support.live import LiveServer, test_settings

EXPIRED = "Your session has expired. Please sign in again."


@pytest.fixture(scope="module")
def short_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Access tokens live 2 s, so renewals (and their failure) happen within a test."""
    live = LiveServer(test_settings(tmp_path_factory.mktemp("short"), access_token_ttl_s=2)).start()
    yield live
    live.stop()


def test_sign_in_errors_in_plain_words_then_sign_in_and_out(page: Page, server: LiveServer) -> None:
    email = fresh_email()
    page.goto(server.url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("That email and password do not match an account.")

    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Use a password of at least 8 characters.")

    sign_up(page, server.url, email)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="You have signed out.")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        "An account with this email already exists. Sign in instead."
    )
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    expect(page.locator("#user-email")).to_have_text(email)


def test_the_session_is_renewed_in_the_background_on_the_same_connection(
    page: Page, short_session_server: LiveServer
) -> None:
    sign_up(page, short_session_server.url)
    state = page.locator("#connection")
    expect(state).to_have_attribute("data-state", "connected")
    # Four renewals take longer than the first access token lives: without `auth_refresh` on the live
    # socket the server would have closed it (4401) and the page would be on its second connection.
    renewals = re.compile(r"^([4-9]|\d{2,})$")
    expect(page.locator("body")).to_have_attribute("data-token-refreshes", renewals, timeout=20_000)
    expect(state).to_have_attribute("data-state", "connected")
    expect(state).to_have_attribute("data-connections", "1")
    wait_finished(ask(page))
    assert page.evaluate("Object.keys(sessionStorage)") == ["tokenwise.refresh_token"]
    assert page.evaluate("localStorage.length") == 0


def test_an_expired_session_asks_to_sign_in_again(
    page: Page, short_session_server: LiveServer, snap: Callable[..., Path]
) -> None:
    sign_up(page, short_session_server.url)
    refresh_token = page.evaluate("sessionStorage.getItem('tokenwise.refresh_token')")
    revoked = httpx.post(f"{short_session_server.url}/auth/logout", json={"refresh_token": refresh_token})
    assert revoked.status_code == 204

    # The next renewal is refused and the access token runs out: the user is asked to sign in again.
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(EXPIRED, timeout=15_000)
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_label("Email")).to_be_focused()
    assert "4401" not in page.locator("body").inner_text()
    snap("session-expired")

    # After a reload too (the stored refresh token is gone or dead), sign-in is what the page offers.
    page.reload()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
