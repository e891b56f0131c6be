"""Questions that need per-request data, asked of bucketed usage reports, through the real server: with only
reports the answer says plainly that it cannot be given (which dataset, why) instead of a wrong figure; with
reports and a per-request log, it answers from the log and says the reports were left out; totals still
come from everything. Every expected figure is computed here, from the rows and pages as written."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import httpx
import pytest

from support import anthropic_admin_server as anthropic
from support import openai_admin_server as openai
from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer

DAY0 = datetime(2025, 6, 2, tzinfo=UTC)
OPENAI_RESULTS = [
    [openai.usage_result("gpt-4o", "proj_a", 40_000 + d, 8_000, 9_000, 20 + d),
     openai.usage_result("gpt-4o-mini", "proj_b", 90_000, 0, 12_000, 30)]
    for d in range(3)
]  # fmt: skip
ANTHROPIC_RESULTS = [
    [anthropic.usage_result("claude-sonnet-4-5", "wrkspc_1", 50_000, 8_000, 2_000, 30_000, 7_000 + d)]
    for d in range(3)
]


def openai_page() -> bytes:
    buckets = []
    for d, results in enumerate(OPENAI_RESULTS):
        start = int((DAY0 + timedelta(days=d)).timestamp())
        buckets.append(
            {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}
        )
    return json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None}).encode()


def anthropic_page() -> bytes:
    buckets = [
        {"starting_at": f"{DAY0 + timedelta(days=d):%Y-%m-%dT%H:%M:%SZ}",
         "ending_at": f"{DAY0 + timedelta(days=d + 1):%Y-%m-%dT%H:%M:%SZ}", "results": results}
        for d, results in enumerate(ANTHROPIC_RESULTS)
    ]  # fmt: skip
    return json.dumps({"data": buckets, "has_more": False, "next_page": None}).encode()


LATENCIES = [420.0 + 37 * i + (i % 7) * 211 for i in range(40)]


def request_log() -> bytes:
    """A per-request log of the same days, with a latency and a reported cost on every request."""
    rows = [
        {"timestamp": f"{DAY0 + timedelta(days=i % 3, minutes=7 * i):%Y-%m-%dT%H:%M:%SZ}",
         "request_id": f"r-{i}", "model": "gpt-4o", "input_tokens": 900 + i, "output_tokens": 120,
         "latency_ms": latency, "cost_usd": 0.01 + i / 1000}
        for i, latency in enumerate(LATENCIES)
    ]  # fmt: skip
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def price(model: str) -> dict[str, float]:
    book = json.loads(resources.files("tokenwise.usage").joinpath("prices.json").read_text())
    entry: dict[str, float] = book["models"][model]
    return entry


def openai_spend() -> float:
    """List price of every result: cached input at the cached rate (`input_tokens` includes it)."""
    total = 0.0
    for r in (r for day in OPENAI_RESULTS for r in day):
        p = price(r["model"])
        uncached = r["input_tokens"] - r["input_cached_tokens"]
        total += (uncached * p["input"] + r["input_cached_tokens"] * p["cached_input"]
                  + r["output_tokens"] * p["output"]) / 1e6  # fmt: skip
    return total


def log_spend() -> float:
    return sum(0.01 + i / 1000 for i in range(len(LATENCIES)))


async def upload(server: LiveServer, account: Account, name: str, content: bytes) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        response = await http.post("/api/datasets", files={"file": (name, content)})
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


async def answer(server: LiveServer, account: Account, question: str) -> dict[str, Any]:
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, question)
        events = await collect_run(ws, ack["run_id"], timeout=60)
    result: dict[str, Any] = events[-1]["data"]["result"]["answer"]
    return result


def figure(result: dict[str, Any], label: str) -> float:
    [value] = [f["value"] for f in result["figures"] if f["label"] == label]
    return float(value)


PER_REQUEST_QUESTIONS = [
    ("What are our p50, p95 and p99 latencies?", "latency percentiles need each request's own latency"),
    ("What were our 3 most expensive requests?", "the top requests need the requests themselves"),
    ("What is our peak requests per second?", "the peak per second needs the time of each request"),
    ("How many requests took over 2 s?", "each request's own figures"),
    ("What is the median number of input tokens per request?", "size percentiles"),
]


@pytest.fixture(scope="module")
def reports_only(server: LiveServer) -> Account:
    """A user whose only data is an OpenAI usage page and an Anthropic usage report."""
    import asyncio

    account = asyncio.run(signup(server.url))
    asyncio.run(upload(server, account, "openai-usage.json", openai_page()))
    asyncio.run(upload(server, account, "anthropic-usage.json", anthropic_page()))
    return account


@pytest.mark.parametrize(("question", "why"), PER_REQUEST_QUESTIONS)
async def test_reports_only_say_why_instead_of_a_wrong_figure(
    server: LiveServer, reports_only: Account, question: str, why: str
) -> None:
    result = await answer(server, reports_only, question)
    text = result["text"]
    assert result["answerable"] is False, text
    assert result["figures"] == [], text
    assert text.startswith("This cannot be answered from your data"), text
    assert why in text, text
    assert "'openai-usage.json' (an OpenAI usage report)" in text, text
    assert "'anthropic-usage.json' (an Anthropic usage report)" in text, text
    assert "time buckets" in text


async def test_request_counts_come_only_from_reports_that_count_them(server: LiveServer) -> None:
    counted, uncounted = await signup(server.url), await signup(server.url)
    await upload(server, counted, "openai-usage.json", openai_page())
    await upload(server, uncounted, "anthropic-usage.json", anthropic_page())
    requests = sum(r["num_model_requests"] for day in OPENAI_RESULTS for r in day)

    exact = await answer(server, counted, "How many requests did we make?")
    assert exact["answerable"] is True, exact["text"]
    assert figure(exact, "Requests") == requests
    unknown = await answer(server, uncounted, "How many requests did we make?")
    assert unknown["answerable"] is False, unknown["text"]
    assert "this needs a count of requests" in unknown["text"]
    assert (
        "'anthropic-usage.json' (an Anthropic usage report) holds time buckets that count no requests"
        in (unknown["text"])
    )

    # Totals are exact from either report; the one without request counts says what its rows are.
    spend = await answer(server, counted, "What did we spend?")
    assert figure(spend, "Spend") == pytest.approx(openai_spend(), rel=0.005)
    tokens = await answer(server, uncounted, "What did we spend?")
    results = [r for day in ANTHROPIC_RESULTS for r in day]
    p = price("claude-sonnet-4-5")
    truth = sum(
        (r["uncached_input_tokens"] * p["input"] + r["cache_read_input_tokens"] * p["cached_input"]
         + r["cache_creation"]["ephemeral_5m_input_tokens"] * p["cache_write"]
         + r["cache_creation"]["ephemeral_1h_input_tokens"] * p["cache_write_1h"]
         + r["output_tokens"] * p["output"]) / 1e6
        for r in results
    )  # fmt: skip
    assert figure(tokens, "Spend") == pytest.approx(truth, rel=0.005)
    assert any("counts no requests" in r for r in tokens["readings"]), tokens["readings"]


async def test_mixed_data_answers_per_request_questions_from_the_log_and_says_so(server: LiveServer) -> None:
    account = await signup(server.url)
    await upload(server, account, "openai-usage.json", openai_page())
    await upload(server, account, "gateway-log.jsonl", request_log())

    result = await answer(server, account, "What are our p50, p95 and p99 latencies?")
    text = result["text"]
    assert result["answerable"] is True, text
    cuts = statistics.quantiles(LATENCIES, n=100, method="inclusive")
    for label, p in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert figure(result, label) == pytest.approx(cuts[p - 1], rel=0.001), (label, text)
    assert f"({len(LATENCIES)} requests)" in text, text
    assert "Answered from 'gateway-log.jsonl' only" in text, text
    assert "'openai-usage.json' (an OpenAI usage report) holds only time buckets" in text, text
    assert "left out of this figure" in text

    top = await answer(server, account, "What were our 3 most expensive requests?")
    assert "r-39" in top["text"], top["text"]
    assert "Answered from 'gateway-log.jsonl' only" in top["text"], top["text"]

    # A total reads both, and says which part is which.
    spend = await answer(server, account, "What did we spend?")
    assert figure(spend, "Spend") == pytest.approx(openai_spend() + log_spend(), rel=0.005)
    assert "left out" not in spend["text"]
    [mixed] = [r for r in spend["readings"] if "per-request data" in r]
    assert "from 'gateway-log.jsonl'" in mixed, mixed
    assert "from 'openai-usage.json' (an OpenAI usage report)" in mixed, mixed
