"""The agents' reports through the product: upload a usage file over HTTP, ask over the WebSocket, read the
report live and from `GET /api/reports/{id}`. Figures are checked against truths computed apart from
Tokenwise: the workload generator's planted savings, and the standard library's count of the real traces.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from support import evaluation_log
from support.clients import Account, collect_run, open_ws, send_message, signup
from support.data import AZURE_CODE, AZURE_CONV, AZURE_ROWS, shared_data_path
from support.live import LiveServer, test_settings
from support.usage_uploads import write_burstgpt, write_price_file, write_upload_csv
from support.workload import Workload
from tokenwise.session.contract import missing_critical, violations
from tokenwise.usage.prices import load_prices

QUESTION = "how do I cut my LLM costs?"
PLANTED = {
    "duplicates": 1200,
    "short_on_large": 1500,
    "nightly_job": 1400,
    "runaway_outputs": 100,
    "retries": 400,
    "shared_prefix": 2000,
    "bloated_contexts": 150,
}


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose price table also knows the workload generator's models (a user prices file)."""
    root = tmp_path_factory.mktemp("priced")
    settings = test_settings(root / "data", prices_file=write_price_file(root / "prices.json"))
    live = LiveServer(settings).start()
    yield live
    live.stop()


def client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {account.access_token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60)


async def upload(server: LiveServer, account: Account, path: Path, **fields: str) -> dict[str, Any]:
    async with client(server, account) as http:
        with path.open("rb") as handle:
            response = await http.post("/api/datasets", files={"file": (path.name, handle)}, data=fields)
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


async def ask(server: LiveServer, account: Account, question: str = QUESTION) -> list[dict[str, Any]]:
    """Ask over the WebSocket and return the run's events, checked against the ordering contract."""
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, question)
        events = await collect_run(ws, ack["run_id"], timeout=60)
    assert violations(events) == []
    assert missing_critical(events) == []
    for event in events:
        if event["type"] == "tool_completed":  # compact: the full analysis stays out of the stream
            assert len(json.dumps(event["data"]["result"])) < 6000, event["tool_name"]
    assert events[-1]["type"] == "agent_completed"
    return events


def markdown_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["delta"] for e in events if e["type"] == "partial_result")


def thoughts(events: list[dict[str, Any]], agent: str) -> str:
    return "\n".join(
        e["data"]["thought"] for e in events if e["type"] == "agent_thinking" and e["agent_name"] == agent
    )


async def stored_report(server: LiveServer, account: Account, events: list[dict[str, Any]]) -> dict[str, Any]:
    """GET /api/reports/{id} (and its .md) for the run's report; both must match what was streamed."""
    report = events[-1]["data"]["result"]
    report_id = report["report_id"]
    assert report_id == events[-1]["run_id"]
    async with client(server, account) as http:
        stored = (await http.get(f"/api/reports/{report_id}")).json()
        download = await http.get(f"/api/reports/{report_id}.md")
        run = (await http.get(f"/api/runs/{report_id}")).json()
    assert stored["id"] == stored["run_id"] == report_id
    assert stored["thread_id"] == events[-1]["thread_id"]
    assert stored["report_type"] == report["report_type"]
    assert stored["report"] == report
    assert stored["markdown"] == markdown_of(events)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/markdown")
    assert (
        download.headers["content-disposition"] == f'attachment; filename="tokenwise-report-{report_id}.md"'
    )
    assert download.text == stored["markdown"]
    assert run["report_id"] == report_id
    return stored


async def test_planted_inefficiencies_are_named_with_their_monthly_savings(
    priced: LiveServer, tmp_path: Path
) -> None:
    truth = write_upload_csv(Workload(seed=11, **PLANTED), tmp_path / "gateway-export.csv")
    account = await signup(priced.url)
    dataset = await upload(priced, account, tmp_path / "gateway-export.csv")
    assert dataset["row_count"] == truth.rows

    events = await ask(priced, account)
    report = events[-1]["data"]["result"]
    assert report["report_type"] == "full"
    found = {s["type"]: s for s in report["strategies"]}
    assert set(found) == set(truth.monthly_savings) == {
        "response_caching", "model_routing", "batching", "output_cap", "retry_waste", "prompt_caching",
        "context_trimming",
    }  # fmt: skip
    monthly_spend = truth.spend_usd * 30 / 7
    for kind, expected in truth.monthly_savings.items():
        strategy = found[kind]
        assert strategy["monthly_savings_usd"] == pytest.approx(expected, rel=0.10), kind
        assert strategy["savings_pct"] == pytest.approx(100 * expected / monthly_spend, rel=0.10), kind
        assert strategy["confidence"] in {"high", "medium", "low"}
        assert strategy["assumptions"]
        [action] = strategy["actions"]
        assert action["steps"]
        assert action["snippets"]
    m = report["measurements"]
    assert (m["requests"], m["spend_usd"]) == (truth.rows, pytest.approx(truth.spend_usd, rel=1e-6))
    assert {row["model"] for row in m["models"]} == {"acme-large", "acme-small"}
    assert m["period"]["start"].startswith("2025-03-03")
    assert {p["label"] for p in report["series"]["savings_by_strategy"]} == set(found)
    assert report["series"]["requests_by_hour"]

    # actions: ordered by savings per effort point; routing comes with a LiteLLM router config
    per_effort = [a["savings_per_effort"] for a in report["actions"] if a.get("savings_per_effort")]
    assert per_effort == sorted(per_effort, reverse=True)
    routing = found["model_routing"]["actions"][0]
    assert any(s["language"] == "yaml" and "model_list:" in s["code"] for s in routing["snippets"])
    assert "acme-small" in routing["snippets"][0]["code"]
    markdown = markdown_of(events)
    for kind in found:
        assert f"`{kind}`" in markdown
    # the live run went through the analysis tool, off the event loop, and said what it measured
    [measure] = [e for e in events if e["type"] == "tool_executing" and e["tool_name"] == "measure_usage"]
    assert measure["agent_name"] == "data"
    assert measure["data"]["args"]["datasets"] == ["gateway-export.csv"]
    assert f"Measured {truth.rows:,} requests" in thoughts(events, "data")
    await stored_report(priced, account, events)


async def test_a_cut_target_is_checked_against_the_measured_strategies(
    priced: LiveServer, tmp_path: Path
) -> None:
    truth = write_upload_csv(Workload(seed=11, **PLANTED), tmp_path / "usage.csv")
    account = await signup(priced.url)
    await upload(priced, account, tmp_path / "usage.csv")
    report = (await ask(priced, account, "How do we cut our LLM spend by 30%?"))[-1]["data"]["result"]
    target = report["target"]
    combined = 100 * sum(truth.monthly_savings.values()) / (truth.spend_usd * 30 / 7)
    assert target["reduction_pct"] == 30
    assert target["combined_upper_bound_pct"] == pytest.approx(combined, rel=0.10)
    assert target["verdict"] == ("not_reachable" if combined < 30 else "reachable_combined")
    assert "30%" in report["summary"]


async def test_a_clean_workload_gets_no_invented_savings(priced: LiveServer, tmp_path: Path) -> None:
    truth = write_upload_csv(Workload(seed=3), tmp_path / "clean.csv")
    assert truth.monthly_savings == {}
    account = await signup(priced.url)
    await upload(priced, account, tmp_path / "clean.csv")
    events = await ask(priced, account)
    report = events[-1]["data"]["result"]
    assert report["report_type"] == "full"
    assert report["strategies"] == []
    assert report["series"]["savings_by_strategy"] == []
    assert report["measurements"]["spend_usd"] == pytest.approx(truth.spend_usd, rel=1e-6)
    assert "no saving is claimed" in report["summary"]
    assert "saves **$" not in markdown_of(events)


def independent(path: Path) -> dict[str, Any]:
    """The trace's figures with the standard library only."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    inputs = [int(r["ContextTokens"]) for r in rows]
    outputs = [int(r["GeneratedTokens"]) for r in rows]

    def q(values: list[int], p: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[p - 1]  # DuckDB's quantile_cont

    return {
        "requests": len(rows),
        "input_tokens": sum(inputs),
        "output_tokens": sum(outputs),
        "input": {"p50": q(inputs, 50), "p95": q(inputs, 95)},
        "output": {"p50": q(outputs, 50), "p95": q(outputs, 95)},
        "peak_per_second": max(Counter(r["TIMESTAMP"][:19] for r in rows).values()),
        "peak_per_minute": max(Counter(r["TIMESTAMP"][:16] for r in rows).values()),
    }


def check_measured(report: dict[str, Any], expected: dict[str, Any]) -> None:
    m = report["measurements"]
    assert m["requests"] == expected["requests"]
    assert m["input_tokens"] == expected["input_tokens"]
    assert m["output_tokens"] == expected["output_tokens"]
    for side in ("input", "output"):
        for p in ("p50", "p95"):
            assert m[f"{side}_tokens_per_request"][p] == pytest.approx(expected[side][p]), (side, p)
    assert m["rate"]["peak_per_second"] == expected["peak_per_second"]
    assert m["rate"]["peak_per_minute"] == expected["peak_per_minute"]


@pytest.mark.parametrize("name", [AZURE_CODE, AZURE_CONV])
async def test_azure_trace_without_a_model(server: LiveServer, name: str) -> None:
    path = shared_data_path(name)
    account = await signup(server.url)
    dataset = await upload(server, account, path)
    events = await ask(server, account)
    report = events[-1]["data"]["result"]

    assert report["report_type"] == "partial"
    check_measured(report, independent(path))
    assert report["measurements"]["spend_usd"] is None
    [capacity] = [s for s in report["strategies"] if s["type"] == "capacity"]
    assert capacity["monthly_savings_usd"] is None
    assert "tokens/s" in capacity["title"]
    assert capacity["evidence"]["p99_tokens_per_s"] > 0
    assert "tokens/s" in capacity["actions"][0]["steps"][0]
    # no model was given: triage asks for it, the report says what is missing and how to supply it
    [missing] = [m for m in report["missing"] if m["field"] == "model"]
    assert missing["ids"] == [dataset["id"]]
    assert f"`PATCH /api/datasets/{dataset['id']}` with" in missing["how"]
    assert f"Which model served the rows without one ({name})?" in thoughts(events, "triage")
    assert report["data"]["datasets"][0]["detected_format"] == "azure_llm_inference_2023"
    markdown = markdown_of(events)
    assert f"{AZURE_ROWS[name]:,} rows have no model" in markdown
    assert "`azure_llm_inference_2023`" in markdown
    assert "## What is missing" in markdown
    await stored_report(server, account, events)


@pytest.mark.parametrize("name", [AZURE_CODE, AZURE_CONV])
async def test_azure_trace_with_the_model_named_at_upload(server: LiveServer, name: str) -> None:
    path = shared_data_path(name)
    account = await signup(server.url)
    await upload(server, account, path, model="llama-3-70b")
    events = await ask(server, account)
    report = events[-1]["data"]["result"]
    expected = independent(path)

    assert report["report_type"] == "partial"  # an hour of traffic: under a day
    check_measured(report, expected)
    price = load_prices().price("llama-3-70b")
    assert price is not None
    spend = (
        expected["input_tokens"] * price.input_per_mtok + expected["output_tokens"] * price.output_per_mtok
    ) / 1e6
    assert report["measurements"]["spend_usd"] == pytest.approx(spend)
    assert [row["model"] for row in report["measurements"]["models"]] == ["llama-3-70b"]
    assert "model" not in {m["field"] for m in report["missing"]}
    assert "Which model" not in thoughts(events, "triage")
    assert report["data"]["datasets"][0]["model"] == "llama-3-70b"
    assert "have no model" not in markdown_of(events)


async def test_burstgpt_log_reports_per_model_rows(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "BurstGPT_sample.csv"
    rows = write_burstgpt(path)
    account = await signup(server.url)
    dataset = await upload(server, account, path)
    assert dataset["detected_format"] == "burstgpt"
    events = await ask(server, account)
    report = events[-1]["data"]["result"]

    by_model = {row["model"]: row for row in report["measurements"]["models"]}
    assert {name: row["requests"] for name, row in by_model.items()} == Counter(r["Model"] for r in rows)
    for name, row in by_model.items():
        mine = [r for r in rows if r["Model"] == name]
        assert row["input_tokens"] == sum(int(r["Request tokens"]) for r in mine)
        assert row["output_tokens"] == sum(int(r["Response tokens"]) for r in mine)
    assert by_model["GPT-4"]["spend_usd"] > 0  # priced as gpt-4
    assert by_model["ChatGPT"]["spend_usd"] is None  # no price: named as missing, never guessed
    assert report["report_type"] == "partial"
    assert [m["models"] for m in report["missing"] if m["field"] == "price"] == [["ChatGPT"]]
    failures = sum(1 for r in rows if r["Response tokens"] == "0")
    assert report["measurements"]["errors"]["failed_requests"] == failures
    assert "| GPT-4 |" in markdown_of(events)
    assert "| ChatGPT |" in markdown_of(events)


async def test_no_data_gets_guidance_with_a_clear_data_request(server: LiveServer) -> None:
    account = await signup(server.url)
    events = await ask(server, account)
    report = events[-1]["data"]["result"]
    assert report["report_type"] == "guidance"
    assert report["strategies"] == []
    request = report["data_request"]
    assert {"timestamp", "model", "input_tokens", "output_tokens"} <= {
        f["name"] for f in request["fields"] if f["required"]
    }
    assert request["csv_template"].startswith("timestamp,model,")
    markdown = markdown_of(events)
    assert "## Data needed" in markdown
    assert "Upload usage data" in markdown
    stored = await stored_report(server, account, events)

    # another user's report does not exist for them; nor does an unknown one
    other = await signup(server.url)
    async with client(server, other) as http:
        for url in (f"/api/reports/{stored['id']}", f"/api/reports/{stored['id']}.md", "/api/reports/nope"):
            response = await http.get(url)
            assert response.status_code == 404, url
            assert response.json()["error"]["code"] == "not_found"


async def test_the_period_asked_about_limits_the_figures(priced: LiveServer, tmp_path: Path) -> None:
    write_upload_csv(Workload(seed=5, days=7, base_requests=7_000), tmp_path / "week.csv")
    with duckdb.connect() as con:  # the independent count, straight from the uploaded file
        # The log is old: "today" is the day after its newest request, so "the last 2 days" are the
        # newest request's day and the day before, whole days.
        total, in_period = con.execute(
            "WITH t AS (SELECT CAST(timestamp AS TIMESTAMP) AS ts FROM read_csv($p)) "
            "SELECT count(*), count(*) FILTER (WHERE ts >= date_trunc('day', (SELECT max(ts) FROM t)) "
            "- INTERVAL 1 DAY) FROM t",
            {"p": str(tmp_path / "week.csv")},
        ).fetchone()
    account = await signup(priced.url)
    await upload(priced, account, tmp_path / "week.csv")
    events = await ask(priced, account, "How do I cut my LLM costs over the last 2 days?")
    report = events[-1]["data"]["result"]
    measured = next(e for e in events if e["type"] == "tool_completed" and e["tool_name"] == "measure_usage")
    assert measured["data"]["result"]["window"]["applied"] is True
    assert report["measurements"]["requests"] == in_period < total
    assert any("the figures cover the requests of that period" in note for note in report["notes"])


async def test_a_period_without_data_is_said_to_be_empty(priced: LiveServer, tmp_path: Path) -> None:
    write_upload_csv(Workload(seed=5, days=7, base_requests=7_000), tmp_path / "week.csv")
    account = await signup(priced.url)
    await upload(priced, account, tmp_path / "week.csv")
    events = await ask(priced, account, "What did we spend on 2019-01-01?")
    answer = events[-1]["data"]["result"]["answer"]
    assert answer["answerable"] is False
    assert answer["text"].startswith("No request matches all traffic on 1 Jan 2019.")
    assert "Your data covers 2025-03-03 to 2025-03-09." in answer["text"]
    assert answer["figures"] == [{"label": "Requests", "value": 0, "unit": "requests"}]


async def test_a_complete_log_answers_a_cost_question_in_full(server: LiveServer, tmp_path: Path) -> None:
    # model, cost, status, latency, feature and prompt hash per request: enough for a full report; the
    # columns that would let more strategies be checked are suggested in the answer instead
    path = tmp_path / "complete.csv"
    written = evaluation_log.write_csv(path, evaluation_log.iter_rows(scale=0.2))
    account = await signup(server.url)
    await upload(server, account, path)
    events = await ask(server, account, "How do we cut our LLM cost by 30%?")
    report = events[-1]["data"]["result"]
    assert report["report_type"] == "full", report["data"]["reasons"]
    assert report["plan"]["intent"] == "optimize"
    assert report["plan"]["reduction_pct"] == 30
    assert report["measurements"]["requests"] == written
    answer = report["answer"]
    assert answer["answerable"] is True
    assert "would let output_cap be checked" in answer["text"]
    assert report["target"]["reduction_pct"] == 30


async def test_a_follow_up_reads_its_own_thread_only(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rows = list(evaluation_log.iter_rows(scale=0.2))
    evaluation_log.write_csv(path, rows)
    on_oct_12 = [r for r in rows if r["timestamp"].startswith("2025-10-12")]
    account = await signup(server.url)
    await upload(server, account, path)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        first = await send_message(ws, "How many requests did the classifier make on October 12?")
        await collect_run(ws, first["run_id"])
        same = await send_message(ws, "and for faq-bot?", thread_id=first["thread_id"])
        followed = (await collect_run(ws, same["run_id"]))[-1]["data"]["result"]
        other = await send_message(ws, "and for faq-bot?")  # a new thread: nothing to follow
        fresh = (await collect_run(ws, other["run_id"]))[-1]["data"]["result"]
    # in its thread, the follow-up keeps the period and the measure and changes the feature
    faq_bot = sum(1 for r in on_oct_12 if r["feature"] == "faq-bot")
    assert followed["plan"]["measure"] == "requests"
    assert followed["plan"]["period"]["start"].startswith("2025-10-12")
    assert f"{faq_bot:,} requests" in followed["answer"]["text"]
    assert any("follow-up" in r for r in followed["answer"]["readings"])
    # elsewhere it is a question of its own: faq-bot's spend over all the data, no period
    assert fresh["plan"].get("period") is None
    assert not any("follow-up" in r for r in fresh["answer"]["readings"])
    other_user = await signup(server.url)
    async with client(server, other_user) as http:  # and another user cannot continue the thread
        response = await http.post(f"/api/threads/{first['thread_id']}/messages", json={"content": "why?"})
    assert response.status_code == 404
