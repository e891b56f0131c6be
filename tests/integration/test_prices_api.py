"""Prices per user over real HTTP and the WebSocket: a price set with PUT /api/prices prices the user's next
question (no restart), never another user's; validation; DELETE; `tokenwise prices` against the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer

MODEL = "gpt-4o"
UNKNOWN = "acme-llm-1"  # a model the shipped book does not know: only a user's price prices it
# (input tokens, output tokens) per request, per model: an upload without a cost column
ROWS = {MODEL: [(1200, 300), (800, 150), (2000, 550)], UNKNOWN: [(500, 100), (1500, 400)]}
TOKENWISE = Path(sys.executable).with_name("tokenwise")


def client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60)


def write_log(path: Path, models: list[str]) -> Path:
    lines = ["timestamp,model,input_tokens,output_tokens"]
    for model in models:
        for i, (tokens_in, tokens_out) in enumerate(ROWS[model]):
            lines.append(f"2025-03-0{i + 1}T10:00:00Z,{model},{tokens_in},{tokens_out}")
    path.write_text("\n".join(lines) + "\n")
    return path


def dollars(model: str, input_per_mtok: float, output_per_mtok: float) -> float:
    """The model's spend in the log at these prices, computed here (no cached tokens, no batch)."""
    tokens_in = sum(i for i, _ in ROWS[model])
    tokens_out = sum(o for _, o in ROWS[model])
    return (tokens_in * input_per_mtok + tokens_out * output_per_mtok) / 1e6


async def upload(server: LiveServer, account: Account, path: Path) -> None:
    async with client(server, account) as http:
        with path.open("rb") as handle:
            response = await http.post("/api/datasets", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text


async def spend(server: LiveServer, account: Account) -> float:
    """Ask "what did we spend?" over the WebSocket; the answer's Spend figure."""
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "What did we spend?")
        events = await collect_run(ws, ack["run_id"], timeout=60)
    figures = events[-1]["data"]["result"]["answer"]["figures"]
    [figure] = [f for f in figures if f["label"] == "Spend"]
    assert figure["unit"] == "usd"
    return float(figure["value"])


async def put(server: LiveServer, account: Account, models: dict[str, Any]) -> httpx.Response:
    async with client(server, account) as http:
        return await http.put("/api/prices", json={"models": models})


async def book(server: LiveServer, account: Account) -> dict[str, Any]:
    async with client(server, account) as http:
        response = await http.get("/api/prices")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_price_set_prices_the_next_question_and_only_that_users(
    server: LiveServer, tmp_path: Path
) -> None:
    shipped = (await book(server, await signup(server.url)))["models"][MODEL]
    log = write_log(tmp_path / "usage.csv", [MODEL])
    mine, theirs = await signup(server.url), await signup(server.url)
    for account in (mine, theirs):
        await upload(server, account, log)
    at_list_price = dollars(MODEL, shipped["input"], shipped["output"])
    assert await spend(server, mine) == pytest.approx(at_list_price, abs=0.005)

    response = await put(server, mine, {"GPT-4o": {"input": 7.0, "output": 21.0}})
    assert response.status_code == 200, response.text
    entry = response.json()["models"][MODEL]
    assert entry["origin"] == "user"
    assert (entry["input"], entry["output"]) == (7.0, 21.0)
    assert entry["cached_input"] == shipped["cached_input"]  # left out: the book's
    assert (await book(server, mine))["models"][MODEL] == entry

    # the next question, same process, no restart
    assert await spend(server, mine) == pytest.approx(dollars(MODEL, 7.0, 21.0), abs=0.005)
    # another user's book and answers are untouched
    assert "origin" not in (await book(server, theirs))["models"][MODEL]
    assert await spend(server, theirs) == pytest.approx(at_list_price, abs=0.005)

    # a change replaces the override; removing it brings back the book's price
    assert (await put(server, mine, {MODEL: {"input": 3.5, "output": 9.0}})).status_code == 200
    assert await spend(server, mine) == pytest.approx(dollars(MODEL, 3.5, 9.0), abs=0.005)
    async with client(server, mine) as http:
        assert (await http.delete(f"/api/prices/{MODEL}")).status_code == 204
        again = await http.delete(f"/api/prices/{MODEL}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
    assert "origin" not in (await book(server, mine))["models"][MODEL]
    assert await spend(server, mine) == pytest.approx(at_list_price, abs=0.005)


async def test_a_model_the_book_lacks_is_priced_by_the_users_price(
    server: LiveServer, tmp_path: Path
) -> None:
    account = await signup(server.url)
    await upload(server, account, write_log(tmp_path / "usage.csv", [UNKNOWN]))
    assert UNKNOWN not in (await book(server, account))["models"]
    price = {"input": 4.0, "cached_input": 1.0, "output": 12.0, "cache_write": 5.0, "cache_write_1h": 8.0}
    response = await put(server, account, {UNKNOWN: {**price, "provider": "acme", "source": "our contract"}})
    assert response.status_code == 200, response.text
    entry = response.json()["models"][UNKNOWN]
    assert entry["origin"] == "user"
    assert entry["source"] == "our contract"
    assert (entry["cache_write"], entry["cache_write_1h"]) == (5.0, 8.0)
    price = server.call(server.services.price_overrides.book_for(account.user_id)).price(UNKNOWN)
    assert (price.cache_write_per_mtok, price.cache_write_1h_per_mtok) == (5.0, 8.0)
    assert await spend(server, account) == pytest.approx(dollars(UNKNOWN, 4.0, 12.0), abs=0.005)
    # names with a provider prefix can be removed too (a slash in the path)
    assert (await put(server, account, {"openai/gpt-x": {"input": 1, "output": 2}})).status_code == 200
    async with client(server, account) as http:
        assert (await http.delete("/api/prices/openai%2Fgpt-x")).status_code == 204


@pytest.mark.parametrize(
    ("models", "field"),
    [
        ({MODEL: {"input": -1, "output": 2}}, f"models.{MODEL}.input"),
        ({MODEL: {"input": 1}}, f"models.{MODEL}.output"),
        ({MODEL: {"input": 1, "output": 2, "inptu": 3}}, f"models.{MODEL}.inptu"),
        ({MODEL: {"input": 1, "output": "cheap"}}, f"models.{MODEL}.output"),
        ({MODEL: {"input": 1, "output": 2, "batch_discount": 1.5}}, f"models.{MODEL}.batch_discount"),
        ({MODEL: {"input": 1e300, "output": 2}}, f"models.{MODEL}.input"),
        ({"x" * 101: {"input": 1, "output": 2}}, "models." + "x" * 101 + ".[key]"),
        ({f"m{i}": {"input": 1, "output": 2} for i in range(501)}, "models"),
        ({}, "models"),
    ],
)
async def test_invalid_prices_get_422_naming_the_field(
    server: LiveServer, models: dict[str, Any], field: str
) -> None:
    account = await signup(server.url)
    response = await put(server, account, models)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert not any(m.get("origin") == "user" for m in (await book(server, account))["models"].values())


async def test_not_a_number_is_refused(server: LiveServer) -> None:
    account = await signup(server.url)
    body = '{"models": {"gpt-4o": {"input": NaN, "output": 2}}}'
    async with client(server, account) as http:
        response = await http.put("/api/prices", content=body, headers={"Content-Type": "application/json"})
        unauthenticated = await http.put("/api/prices", json={"models": {}}, headers={"Authorization": ""})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in ("invalid_input", "invalid_json")
    assert unauthenticated.status_code == 401


def tokenwise_prices(server: LiveServer, account: Account, *args: str) -> subprocess.CompletedProcess[str]:
    """`tokenwise prices ARGS` in its own process, signed in as `account`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_")}
    sign_in = ("--url", server.url, "--email", account.email, "--password", account.password)
    return subprocess.run(
        [str(TOKENWISE), "prices", *args, *sign_in],
        env={**env, "COLUMNS": "200"},
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_cli_lists_sets_and_unsets_prices(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    listed = tokenwise_prices(server, account, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["models"][MODEL]["input"] > 0

    options = ["--input", "7", "--output", "21", "--cached-input", "2", "--cache-write-1h", "6"]
    changed = tokenwise_prices(server, account, "set", MODEL, *options, "--batch-discount", "0.25")
    assert changed.returncode == 0, changed.stderr
    assert MODEL in changed.stdout
    assert "yours" in changed.stdout
    entry = (await book(server, account))["models"][MODEL]
    assert (entry["input"], entry["cached_input"], entry["output"]) == (7.0, 2.0, 21.0)
    assert (entry["batch_discount"], entry["cache_write_1h"], entry["origin"]) == (0.25, 6.0, "user")

    mine = tokenwise_prices(server, account, "list", "--mine")
    assert mine.returncode == 0, mine.stderr
    assert [line.split()[0] for line in mine.stdout.splitlines()[2:] if line.strip()] == [MODEL]

    refused = tokenwise_prices(server, account, "set", MODEL, "--input", "1", "--output", "1",
                               "--batch-discount", "2")  # fmt: skip
    assert refused.returncode == 1
    assert "422" in refused.stderr
    assert "batch_discount" in refused.stderr

    removed = tokenwise_prices(server, account, "unset", MODEL)
    assert removed.returncode == 0, removed.stderr
    assert "origin" not in (await book(server, account))["models"][MODEL]
    missing = tokenwise_prices(server, account, "unset", MODEL)
    assert missing.returncode == 1
    assert "no price override for gpt-4o" in missing.stderr
