"""`tokenwise connectors list|add|sync|delete`, the real CLI in its own process, against a real server process
that pulls from a local stand-in of the OpenAI admin API (its wire format and paging). The admin key goes in
through stdin and never comes out: not in any output, not in the server's log."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from support import openai_admin_server as openai
from support.clients import Account, signup
from support.live import ServerProcess
from support.report_server import DAY, midnight


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("e2e-connectors")).start()
    yield process
    process.stop()


@pytest.fixture
def stand_in() -> Iterator[openai.OpenAIAdminServer]:
    api = openai.OpenAIAdminServer(f"sk-admin-{secrets.token_urlsafe(24)}", page_size=2).start()
    yield api
    api.stop()


def tokenwise(
    server: ServerProcess, account: Account, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m tokenwise connectors ARGS` signed in as `account`, the way a user would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_")}
    env["COLUMNS"] = "250"
    login = ["--url", server.url, "--email", account.email, "--password", account.password]
    return subprocess.run(
        [sys.executable, "-m", "tokenwise", "connectors", *args, *login], input=stdin,
        env=env, cwd=Path(__file__).parent, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_add_sync_list_and_delete(server: ServerProcess, stand_in: openai.OpenAIAdminServer) -> None:
    account = asyncio.run(signup(server.url))
    today = midnight(datetime.now(UTC))
    for d in range(1, 4):
        stand_in.cost_days[today - d * DAY] = [
            openai.cost_result("gpt-4o, input", "proj_a", 1.5 * d),
            openai.cost_result("gpt-4o, output", "proj_a", 4.0 + d),
        ]
    outputs: list[str] = []

    empty = tokenwise(server, account, "list")
    assert empty.returncode == 0, empty.stderr
    assert "No connectors yet" in empty.stdout

    added = tokenwise(
        server, account, "add", "openai_costs", "Org costs", "--base-url", stand_in.url, "--admin-key-stdin",
        stdin=stand_in.admin_key + "\n",
    )  # fmt: skip
    outputs += [added.stdout, added.stderr]
    assert added.returncode == 0, added.stderr
    assert "'Org costs', OpenAI costs): new, last sync never, 0 rows" in added.stdout
    headers = {"Authorization": f"Bearer {account.access_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        [connector] = http.get("/api/connectors").json()["connectors"]
    assert connector["base_url"] == stand_in.url

    synced = tokenwise(server, account, "sync", connector["id"][:8])
    outputs += [synced.stdout, synced.stderr]
    assert synced.returncode == 0, synced.stderr
    assert ": ok, last sync " in synced.stdout
    assert "6 rows" in synced.stdout
    assert len(stand_in.requests) >= 2  # paged, two buckets a page

    listed = tokenwise(server, account, "list")
    outputs += [listed.stdout, listed.stderr]
    line = next(line for line in listed.stdout.splitlines() if connector["id"] in line)
    words = line.split()
    assert " ".join(words[1:6]) == "Org costs OpenAI costs ok", line
    assert "6" in words
    assert "never" not in line

    # A key the provider refuses: the sync exits 1 and says why, without the key.
    wrong = f"sk-admin-{secrets.token_urlsafe(24)}"
    refused = tokenwise(
        server, account, "add", "openai_usage", "Wrong key", "--base-url", stand_in.url, "--admin-key-stdin",
        "--sync", stdin=wrong + "\n",
    )  # fmt: skip
    outputs += [refused.stdout, refused.stderr]
    assert refused.returncode == 1
    assert "last error: the admin key was refused (HTTP 401 from the provider)" in refused.stderr
    ambiguous = tokenwise(server, account, "sync", "")
    assert ambiguous.returncode == 1

    deleted = tokenwise(server, account, "delete", connector["id"], "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleted connector" in deleted.stdout
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        left = http.get("/api/connectors").json()["connectors"]
        assert [c["name"] for c in left] == ["Wrong key"]
        assert http.get(f"/api/datasets/{connector['dataset_id']}").status_code == 404
    gone = tokenwise(server, account, "sync", connector["id"])
    assert gone.returncode == 1
    assert f"no connector {connector['id']}" in gone.stderr

    stranger = asyncio.run(signup(server.url))
    theirs = tokenwise(server, stranger, "list")
    assert "No connectors yet" in theirs.stdout

    for key in (stand_in.admin_key, wrong):
        assert all(key not in text for text in outputs)
        assert key not in server.log()
