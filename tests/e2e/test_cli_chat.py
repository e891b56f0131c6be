"""`tokenwise chat`, the real CLI in its own process, against a real server process.

Set TOKENWISE_E2E_URL to run against a deployment instead (with TOKENWISE_E2E_EMAIL and
TOKENWISE_E2E_PASSWORD for an existing user; otherwise a fresh user is registered there).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.clients import signup
from support.live import ServerProcess
from support.servers import free_port

# Read at import: the autouse fixture of tests/conftest.py clears TOKENWISE_* before each test.
E2E_URL = os.environ.get("TOKENWISE_E2E_URL")
E2E_EMAIL = os.environ.get("TOKENWISE_E2E_EMAIL")
E2E_PASSWORD = os.environ.get("TOKENWISE_E2E_PASSWORD")
QUESTION = "Where is our LLM spend going, and how do we cut it by 30%?"
AGENTS = ("triage", "data", "optimization", "actions", "reporting")


@dataclass
class Target:
    url: str
    email: str
    password: str


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The server the CLI talks to, and a user on it."""
    if E2E_URL:
        url, server = E2E_URL.rstrip("/"), None
    else:
        server = ServerProcess(tmp_path_factory.mktemp("e2e-chat")).start()
        url = server.url
    try:
        if E2E_EMAIL and E2E_PASSWORD:
            yield Target(url, E2E_EMAIL, E2E_PASSWORD)
        else:
            account = asyncio.run(signup(url))
            yield Target(url, account.email, account.password)
    finally:
        if server is not None:
            server.stop()


def tokenwise_chat(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m tokenwise chat ARGS` the way a user would, without a terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_")}
    env["COLUMNS"] = "200"  # Rich wraps at 80 columns without a terminal; keep one event per line
    return subprocess.run(
        [sys.executable, "-m", "tokenwise", "chat", *args],
        env=env,
        cwd=Path(__file__).parent,  # no .env of the checkout is read
        capture_output=True,
        text=True,
        timeout=120,
    )


def signed_in(target: Target, *args: str) -> subprocess.CompletedProcess[str]:
    return tokenwise_chat("--url", target.url, "--email", target.email, "--password", target.password, *args)


def report_of(target: Target, thread_id: str) -> dict[str, object]:
    """The report of the thread's latest run, read over HTTP."""
    with httpx.Client(base_url=target.url, timeout=30) as http:
        login = http.post("/auth/login", json={"email": target.email, "password": target.password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        messages = http.get(f"/api/threads/{thread_id}/messages", headers=headers).json()["messages"]
        run_id = next(m["run_id"] for m in reversed(messages) if m.get("run_id"))
        report: dict[str, object] = http.get(f"/api/runs/{run_id}", headers=headers).json()["report"]
        return report


def test_chat_shows_live_agent_steps_then_the_report(target: Target) -> None:
    result = signed_in(target, QUESTION)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    started = [line.strip().split()[1] for line in lines if line.strip().startswith("▶ ")]
    assert started[0] == "supervisor"
    assert [name for name in started if name in AGENTS] == list(AGENTS)  # the pipeline's order
    for agent in AGENTS:
        assert re.search(rf"^\s*✓ {agent}\s+(<1|\d+) ms", out, re.MULTILINE), f"{agent} never completed"
    assert re.search(r"^✓ supervisor", out, re.MULTILINE)
    assert re.search(r"^\s+· \S", out, re.MULTILINE), "no thinking line"
    assert re.search(r"^\s+⚙ \w+\(", out, re.MULTILINE), "no tool call"
    assert re.search(r"^\s+↳ \d+\.\d ms", out, re.MULTILINE), "no tool result"
    assert "the answer is streaming in" in out  # partial_result deltas arrived

    _steps, _, report = out.partition(" report · ")
    assert report, "no report section"
    thread_id = re.search(r"thread ([0-9a-f-]{36}) \(pass --thread", report)
    assert thread_id is not None
    expected = report_of(target, thread_id.group(1))
    assert str(expected["title"]) in report  # the report, rendered as Markdown (the heading)
    assert not re.search(r"^#+ ", report, re.MULTILINE)  # rendered, not the raw Markdown source
    assert "Traceback" not in result.stderr


def test_chat_continues_a_thread(target: Target) -> None:
    first = signed_in(target, "How much do we spend on LLMs?")
    assert first.returncode == 0, first.stderr
    thread = re.search(r"thread ([0-9a-f-]{36})", first.stdout)
    assert thread is not None

    second = signed_in(target, "--thread", thread.group(1), "And which model costs the most?")

    assert second.returncode == 0, second.stderr
    assert f"thread {thread.group(1)}" in second.stdout


@pytest.mark.parametrize("method", ["subprotocol", "ticket", "first_message"])
def test_chat_with_each_credential_method(target: Target, method: str) -> None:
    result = signed_in(target, "--method", method, QUESTION)

    assert result.returncode == 0, result.stderr
    assert re.search(r"^✓ supervisor", result.stdout, re.MULTILINE)


def test_wrong_password_fails_in_plain_words(target: Target) -> None:
    result = tokenwise_chat(
        "--url", target.url, "--email", target.email, "--password", "not-the-password", "hi"
    )

    assert result.returncode != 0
    assert "sign-in failed: the email or password is incorrect" in result.stderr
    assert "Traceback" not in result.stderr
    assert "▶" not in result.stdout


def test_server_down_fails_in_plain_words() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = tokenwise_chat("--url", url, "hi")

    assert result.returncode != 0
    assert f"cannot reach {url}" in result.stderr
    assert "Traceback" not in result.stderr
