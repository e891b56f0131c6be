"""`tokenwise ask`, the installed command in its own process, against a real server.

The server is `target` (tests/e2e/conftest.py): one started by the tests, or the deployment at
TOKENWISE_E2E_URL. Until every server's report carries `answer`, the checks take the report's `summary`
where `answer` is absent, as the command itself does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from mission_critical.deployment import Target
from support.servers import free_port

# The console script installed beside the interpreter running the tests (.venv/bin/tokenwise).
TOKENWISE = Path(sys.executable).with_name("tokenwise")
QUESTION = "How much do we spend on LLMs?"
THREAD_LINE = re.compile(r"^thread: ([0-9a-f-]{36})$")


def tokenwise_ask(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `tokenwise ask ARGS` as a script would: no terminal, none of the checkout's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_")}
    return subprocess.run(
        [str(TOKENWISE), "ask", *args],
        env=env,
        cwd=Path(__file__).parent,  # no .env of the checkout is read
        capture_output=True,
        text=True,
        timeout=120,
    )


def signed_in(target: Target, *args: str) -> subprocess.CompletedProcess[str]:
    return tokenwise_ask("--url", target.url, "--email", target.email, "--password", target.password, *args)


def thread_of(result: subprocess.CompletedProcess[str]) -> str:
    """The thread id on stderr's last line."""
    match = THREAD_LINE.match(result.stderr.splitlines()[-1])
    assert match is not None, result.stderr
    return match.group(1)


def api_get(target: Target, path: str) -> Any:
    with httpx.Client(base_url=target.url, timeout=30) as http:
        login = http.post("/auth/login", json={"email": target.email, "password": target.password})
        response = http.get(path, headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert response.status_code == 200, response.text
        return response.json()


def test_json_prints_one_document_with_the_answer(target: Target) -> None:
    result = signed_in(target, "--json", QUESTION)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # one JSON document and nothing else
    assert set(document) >= {"run_id", "thread_id", "answer", "report_type"}
    assert thread_of(result) == document["thread_id"]
    report = api_get(target, f"/api/runs/{document['run_id']}")["report"]
    assert document["report_type"] == report["report_type"]
    if "answer" in report:
        assert document["answer"] == report["answer"]
        assert isinstance(document["answer"]["text"], str)
        assert document["answer"]["text"]
    else:
        assert document["answer"] is None
        assert document["summary"] == report["summary"]
        assert document["summary"]


def test_plain_output_is_only_the_answer(target: Target) -> None:
    result = signed_in(target, QUESTION)

    assert result.returncode == 0, result.stderr
    thread = thread_of(result)
    messages = api_get(target, f"/api/threads/{thread}/messages")["messages"]
    run_id = next(m["run_id"] for m in reversed(messages) if m.get("run_id"))
    report = api_get(target, f"/api/runs/{run_id}")["report"]
    expected = report["answer"]["text"] if "answer" in report else report["summary"]
    assert result.stdout.startswith(f"{expected}\n")
    if "answer" in report and not (report["answer"].get("table") or {}).get("rows"):
        assert result.stdout == f"{expected}\n"
    assert "\x1b[" not in result.stdout  # no colour codes without a terminal
    assert "▶" not in result.stdout  # no live trace: the answer only
    assert "Traceback" not in result.stderr


def test_thread_continues_the_conversation(target: Target) -> None:
    first = signed_in(target, "--json", "How much do we spend on LLMs?")
    assert first.returncode == 0, first.stderr
    thread = json.loads(first.stdout)["thread_id"]

    second = signed_in(target, "--json", "--thread", thread, "And which model costs the most?")

    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["thread_id"] == thread
    assert thread_of(second) == thread
    messages = api_get(target, f"/api/threads/{thread}/messages")["messages"]
    asked = [m["content"] for m in messages if m["role"] == "user"]
    assert asked == ["How much do we spend on LLMs?", "And which model costs the most?"]


def test_an_unknown_thread_is_a_usage_error(target: Target) -> None:
    result = signed_in(target, "--thread", "00000000-0000-4000-8000-000000000000", QUESTION)

    assert result.returncode == 2, result.stderr
    assert "not_found" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_a_wrong_password_exits_2_in_plain_words(target: Target) -> None:
    result = tokenwise_ask(
        "--url", target.url, "--email", target.email, "--password", "not-the-password", "hi"
    )

    assert result.returncode == 2
    assert "sign-in failed: the email or password is incorrect" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_an_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here

    result = tokenwise_ask("--url", url, "--json", "hi")

    assert result.returncode == 3
    assert f"cannot reach {url}" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_an_empty_question_is_a_usage_error() -> None:
    result = tokenwise_ask("--url", f"http://127.0.0.1:{free_port()}", "  ")

    assert result.returncode == 2
    assert "the question is empty" in result.stderr
