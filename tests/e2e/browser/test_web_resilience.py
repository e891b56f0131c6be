"""A run survives a reload, a dropped connection, and a network that blocks WebSockets."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from e2e.browser.webui import (
    ask,
    assert_run_matches_server,
    open_details,
    server_events,
    sign_up,
    wait_finished,
)
from support.live import LiveServer

WS_PATH = re.compile(r"/ws(\?|$)")


def test_reload_in_the_middle_of_a_run_continues_it_without_duplicates(
    page: Page, slow_server: LiveServer
) -> None:
    email = sign_up(page, slow_server.url)
    run = ask(page)
    expect(run.locator("li.step[data-agent=triage]")).to_have_attribute("data-status", "completed")
    expect(run).to_have_attribute("data-status", "running")

    page.reload()
    # The refresh token in sessionStorage signs the tab back in; the URL names the thread; the run is
    # rebuilt from its stored events and followed live from its last seq.
    run = page.locator("article.run")
    expect(run).to_have_count(1)
    expect(run).to_have_attribute("data-status", "running")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    run_id = wait_finished(run)
    assert_run_matches_server(run, server_events(slow_server.url, email, run_id))
    expect(run.locator("figure[data-chart] figcaption")).to_have_count(2)


def test_a_dropped_connection_reconnects_and_resumes_from_the_last_seq(
    page: Page, slow_server: LiveServer
) -> None:
    opened: list[WebSocketRoute] = []

    def relay(route: WebSocketRoute) -> None:
        """Pass the socket through; cut the first one off in the middle of the run."""
        opened.append(route)
        first = len(opened) == 1
        upstream = route.connect_to_server()
        forwarded = 0

        def to_page(message: str | bytes) -> None:
            nonlocal forwarded
            forwarded += 1
            route.send(message)
            if first and forwarded == 12:  # welcome, ack, then events 1-10
                route.close(code=1001, reason="network change")
                upstream.close()

        upstream.on_message(to_page)

    page.route_web_socket(WS_PATH, relay)
    email = sign_up(page, slow_server.url)
    run = ask(page)
    expect(page.locator("#connection")).to_have_attribute("data-connections", "2")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    run_id = wait_finished(run)
    assert len(opened) == 2
    assert_run_matches_server(run, server_events(slow_server.url, email, run_id))


def test_blocked_websocket_falls_back_to_server_sent_events(
    page: Page, server: LiveServer, snap: Callable[..., Path]
) -> None:
    attempts: list[str] = []

    def refuse(route: WebSocketRoute) -> None:
        """A proxy that lets the upgrade through and then kills it, every time."""
        attempts.append(route.url)
        route.close(code=1008, reason="blocked by proxy")

    page.route_web_socket(WS_PATH, refuse)
    email = sign_up(page, server.url)
    state = page.locator("#connection")
    expect(state).to_have_attribute("data-state", "fallback")
    expect(state).to_have_attribute("data-transport", "sse")
    expect(page.locator("#connection-note")).to_contain_text("Server-Sent Events")
    assert "?ticket=" in attempts[0]
    assert "token" not in attempts[0].split("?ticket=")[0]

    run = ask(page)
    run_id = wait_finished(run)
    assert_run_matches_server(run, server_events(server.url, email, run_id))
    open_details(run)
    expect(run.locator("table.strategies, figure[data-chart]").first).to_be_visible()
    tries = len(attempts)
    assert tries >= 2
    snap("sse-fallback")

    # A second question goes over HTTP too, and the thread keeps both.
    wait_finished(ask(page, "Which model costs the most?"))
    expect(page.locator(".msg.user")).to_have_count(2)
    assert len(attempts) == tries  # no new WebSocket attempts once fallen back


def test_offline_and_back_online_shows_the_connection_state(
    page: Page, context: BrowserContext, server: LiveServer
) -> None:
    sign_up(page, server.url)
    state = page.locator("#connection")
    expect(state).to_have_attribute("data-state", "connected")
    expect(state).to_have_text("Connected")
    context.set_offline(True)
    expect(state).to_have_attribute("data-state", "offline")
    expect(state).to_have_text("Offline")
    context.set_offline(False)
    expect(state).to_have_attribute("data-state", "connected")
    wait_finished(ask(page))
