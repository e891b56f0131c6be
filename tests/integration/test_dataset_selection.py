"""Choosing which datasets a question covers, over real HTTP and a real WebSocket: `PATCH /api/datasets/{id}`
`{"included"}`, and the next answer counts only the included datasets, names them, and says which were left
out. Every expected figure is computed here from the rows as written."""

from __future__ import annotations

import json
from typing import Any

import httpx

from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer


def client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60)


def log_rows(prefix: str, costs: list[float]) -> list[dict[str, Any]]:
    """Per-request rows with a reported cost, so the spend is their sum whatever the price book says."""
    return [
        {"timestamp": f"2025-06-0{1 + i % 5}T10:{i:02d}:00Z", "request_id": f"{prefix}-{i}",
         "model": "gpt-4o", "input_tokens": 1000 + i, "output_tokens": 100 + i, "cost_usd": cost}
        for i, cost in enumerate(costs)
    ]  # fmt: skip


async def upload(http: httpx.AsyncClient, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    response = await http.post("/api/datasets", files={"file": (name, content)})
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


async def report(server: LiveServer, account: Account, question: str) -> dict[str, Any]:
    """Ask over the WebSocket; the final event's report."""
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, question)
        events = await collect_run(ws, ack["run_id"], timeout=60)
    result: dict[str, Any] = events[-1]["data"]["result"]
    return result


def spend_of(result: dict[str, Any]) -> float:
    [figure] = [f for f in result["answer"]["figures"] if f["label"] == "Spend"]
    return float(figure["value"])


async def test_include_and_exclude_over_the_api(server: LiveServer) -> None:
    account, stranger = await signup(server.url), await signup(server.url)
    async with client(server, account) as http, client(server, stranger) as theirs:
        dataset = await upload(http, "gateway.jsonl", log_rows("g", [0.5, 0.25]))
        assert dataset["included"] is True
        assert (dataset["bucketed"], dataset["request_counts"]) == (False, True)

        excluded = await http.patch(f"/api/datasets/{dataset['id']}", json={"included": False})
        assert excluded.status_code == 200, excluded.text
        assert excluded.json()["included"] is False
        assert (await http.get(f"/api/datasets/{dataset['id']}")).json()["included"] is False
        assert [d["included"] for d in (await http.get("/api/datasets")).json()["datasets"]] == [False]

        # With a rename in the same request; only a real boolean is accepted.
        both = await http.patch(f"/api/datasets/{dataset['id']}", json={"included": True, "name": "June"})
        assert (both.json()["included"], both.json()["name"]) == (True, "June")
        for bad in ({"included": "no"}, {"included": None}, {"included": 0}):
            refused = await http.patch(f"/api/datasets/{dataset['id']}", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"]["field"] == "included"
        assert (await http.patch(f"/api/datasets/{dataset['id']}", json={})).json()["error"][
            "field"
        ] == "body"

        other = await theirs.patch(f"/api/datasets/{dataset['id']}", json={"included": False})
        assert other.status_code == 404
        assert (await http.get(f"/api/datasets/{dataset['id']}")).json()["included"] is True


async def test_answers_cover_only_the_included_datasets_and_name_them(server: LiveServer) -> None:
    account = await signup(server.url)
    march, april = [0.5, 1.25, 2.0], [10.0, 20.0]
    async with client(server, account) as http:
        first = await upload(http, "march-gateway.jsonl", log_rows("m", march))
        second = await upload(http, "april-gateway.jsonl", log_rows("a", april))

        everything = await report(server, account, "What did we spend?")
        assert abs(spend_of(everything) - sum(march + april)) < 0.005
        assert everything["data"]["covered"] == ["march-gateway.jsonl", "april-gateway.jsonl"]
        assert everything["data"]["excluded"] == []
        assert any("march-gateway.jsonl" in n and "april-gateway.jsonl" in n for n in everything["notes"])

        await http.patch(f"/api/datasets/{second['id']}", json={"included": False})
        chosen = await report(server, account, "What did we spend?")
        assert abs(spend_of(chosen) - sum(march)) < 0.005
        assert chosen["data"]["covered"] == ["march-gateway.jsonl"]
        assert chosen["data"]["excluded"] == ["april-gateway.jsonl"]
        assert [d["name"] for d in chosen["data"]["datasets"]] == ["march-gateway.jsonl"]
        # The answer card says it, and so does the report.
        assert any("april-gateway.jsonl" in r and "excluded" in r for r in chosen["answer"]["readings"])
        assert any("april-gateway.jsonl" in n and "Excluded" in n for n in chosen["notes"])

        # A savings question (the full analysis) reads only the included rows too.
        savings = await report(server, account, "How do I cut my LLM costs?")
        assert savings["measurements"]["requests"] == len(march)
        assert any("april-gateway.jsonl" in n for n in savings["notes"])

        # Nothing included: the answer says so, instead of asking for a first upload.
        await http.patch(f"/api/datasets/{first['id']}", json={"included": False})
        none = await report(server, account, "What did we spend?")
        text = none["answer"]["text"]
        for word in ("excluded", "march-gateway.jsonl", "april-gateway.jsonl"):
            assert word in text, text
        assert none["data"]["excluded"] == ["march-gateway.jsonl", "april-gateway.jsonl"]

        await http.patch(f"/api/datasets/{second['id']}", json={"included": True})
        back = await report(server, account, "What did we spend?")
        assert abs(spend_of(back) - sum(april)) < 0.005
        assert back["data"]["excluded"] == ["march-gateway.jsonl"]
