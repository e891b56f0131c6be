"""Browser fixtures: Debian's Chromium, driven by Playwright, against a real server on a loopback port.

No browser is downloaded: Playwright's pip wheel brings its driver, and the browser is the system's
Chromium (`make system-deps` installs it), started with a fresh profile for every test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from support.live import LiveServer, test_settings

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "artifacts" / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
# The step delay that makes a run last a few seconds, so a test can watch (and reload) it mid-flight.
SLOW_STEP_MS = 200


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def context(playwright_driver: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A browser with a fresh profile directory, closed after the test."""
    browser = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 860},
        accept_downloads=True,
    )
    browser.set_default_timeout(15_000)
    yield browser
    browser.close()


@pytest.fixture
def page_problems() -> list[str]:
    """Uncaught script errors and CSP violations seen by `page` (a test may take out expected ones)."""
    return []


@pytest.fixture
def page(context: BrowserContext, page_problems: list[str]) -> Iterator[Page]:
    """The browser's page; the test fails on an uncaught script error or a CSP violation."""
    page = context.pages[0] if context.pages else context.new_page()
    page.on("pageerror", lambda error: page_problems.append(f"uncaught: {error}"))

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            page_problems.append(f"csp: {message.text} ({message.location.get('url')})")

    page.on("console", console)
    yield page
    assert not page_problems, page_problems


def _serve(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Iterator[LiveServer]:
    live = LiveServer(test_settings(tmp_path_factory.mktemp("web"), **overrides)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with default settings: runs finish in a blink."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose pipeline pauses at each step (TEST ONLY setting), so a run can be watched."""
    yield from _serve(tmp_path_factory, test_step_delay_ms=SLOW_STEP_MS)


@pytest.fixture
def snap(page: Page) -> Callable[..., Path]:
    """`snap(name)`: a screenshot in artifacts/screenshots (and docs/screenshots if UPDATE_SCREENSHOTS=1)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, target: Page | None = None) -> Path:
        path = ARTIFACTS / f"{name}.png"
        (target or page).screenshot(path=str(path), animations="disabled", caret="initial")
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
        return path

    return take
