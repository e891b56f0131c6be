"""`tokenwise datasets list|rename|set-model|include|exclude|delete`, the real CLI in its own process, against
a real server process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Account, signup
from support.live import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("e2e-datasets")).start()
    yield process
    process.stop()


def tokenwise(server: ServerProcess, account: Account, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m tokenwise datasets ARGS` signed in as `account`, the way a user would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_")}
    env["COLUMNS"] = "200"
    login = ["--url", server.url, "--email", account.email, "--password", account.password]
    return subprocess.run(
        [sys.executable, "-m", "tokenwise", "datasets", *args, *login],
        env=env, cwd=Path(__file__).parent, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def api(server: ServerProcess, account: Account) -> httpx.Client:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def upload(http: httpx.Client, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    response = http.post("/api/datasets", files={"file": (name, content)})
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


def rows(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"timestamp": f"2025-03-01T10:00:{i:02d}Z", "input_tokens": 10 + i, "output_tokens": 1, **extra}
            for i in range(count)]  # fmt: skip


def test_list_rename_set_model_and_delete(server: ServerProcess) -> None:
    account = asyncio.run(signup(server.url))
    with api(server, account) as http:
        first = upload(http, "gateway-march.jsonl", rows(12))
        second = upload(http, "gateway-april.jsonl", rows(5, model="gpt-4o"))

        listed = tokenwise(server, account, "list")
        assert listed.returncode == 0, listed.stderr
        for dataset, count in ((first, "12"), (second, "5")):
            line = next(line for line in listed.stdout.splitlines() if dataset["id"] in line)
            assert dataset["name"] in line
            assert count in line.split()

        # A unique prefix of the id is enough.
        renamed = tokenwise(server, account, "rename", first["id"][:8], "March (gateway)")
        assert renamed.returncode == 0, renamed.stderr
        assert "March (gateway)" in renamed.stdout
        assert http.get(f"/api/datasets/{first['id']}").json()["name"] == "March (gateway)"

        modelled = tokenwise(server, account, "set-model", first["id"], "llama-3-70b")
        assert modelled.returncode == 0, modelled.stderr
        assert http.get(f"/api/datasets/{first['id']}").json()["model"] == "llama-3-70b"
        assert "llama-3-70b" in tokenwise(server, account, "list").stdout
        cleared = tokenwise(server, account, "set-model", first["id"], "--clear")
        assert cleared.returncode == 0, cleared.stderr
        assert http.get(f"/api/datasets/{first['id']}").json()["model"] is None

        unknown = tokenwise(server, account, "rename", "ffffffff-no-such", "x")
        assert unknown.returncode == 1
        assert "no dataset ffffffff-no-such" in unknown.stderr
        bad_name = tokenwise(server, account, "rename", first["id"], "   ")
        assert bad_name.returncode == 1
        assert "422 invalid_input" in bad_name.stderr
        assert "name" in bad_name.stderr
        neither = tokenwise(server, account, "set-model", first["id"])
        assert neither.returncode == 2
        assert "name a model, or pass --clear" in neither.stderr

        # Questions cover every dataset until one is excluded; `list` says which.
        excluded = tokenwise(server, account, "exclude", second["id"][:8])
        assert excluded.returncode == 0, excluded.stderr
        assert "left out of your questions" in excluded.stdout
        assert http.get(f"/api/datasets/{second['id']}").json()["included"] is False
        lines = [line.split() for line in tokenwise(server, account, "list").stdout.splitlines()]
        ids = (first["id"], second["id"])
        covered = {words[0]: words[-1] for words in lines if words and words[0] in ids}
        assert covered == {first["id"]: "included", second["id"]: "excluded"}
        included = tokenwise(server, account, "include", second["id"])
        assert included.returncode == 0, included.stderr
        assert "now covered by your questions" in included.stdout
        assert http.get(f"/api/datasets/{second['id']}").json()["included"] is True

        deleted = tokenwise(server, account, "delete", second["id"], "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert http.get(f"/api/datasets/{second['id']}").status_code == 404
        assert [d["id"] for d in http.get("/api/datasets").json()["datasets"]] == [first["id"]]
        again = tokenwise(server, account, "delete", second["id"], "--yes")
        assert again.returncode == 1
        assert f"no dataset {second['id']}" in again.stderr

    stranger = asyncio.run(signup(server.url))
    empty = tokenwise(server, stranger, "list")
    assert empty.returncode == 0, empty.stderr
    assert "No datasets yet" in empty.stdout
    assert first["id"] not in empty.stdout
    theirs = tokenwise(server, stranger, "delete", first["id"], "--yes")
    assert theirs.returncode == 1
    assert "no dataset" in theirs.stderr
