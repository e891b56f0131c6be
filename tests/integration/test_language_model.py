"""The optional language model through the product, against a real local chat.completions server.

Reachable: it restates the question in triage and words the report's summary (figures stay the tools').
Unreachable (a closed port): the run still completes with the built-in text and says so in an event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import evaluation_log
from support.clients import collect_run, open_ws, send_message, signup
from support.data import AZURE_CODE, shared_data_path
from support.live import LiveServer
from support.openai_server import ChatCompletionsServer, ToolCall
from support.servers import free_port
from tokenwise.session.contract import missing_critical, violations

QUESTION = "How do I cut my LLM costs by 30%?"
RESTATED = "The user wants to lower their LLM spend by 30%."
WORDING = ("restate_question", "write_narrative")


def answer(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    if system.startswith("Restate"):
        return RESTATED
    return "Most of the traffic cannot be priced yet; naming the model unlocks the savings figures."


@pytest.fixture
def model_api() -> Iterator[ChatCompletionsServer]:
    api = ChatCompletionsServer(answer).start()
    yield api
    api.stop()


async def run(
    server: LiveServer, *, upload: Path | None = None, question: str = QUESTION
) -> list[dict[str, Any]]:
    account = await signup(server.url)
    if upload is not None:
        headers = {"Authorization": f"Bearer {account.access_token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
            with upload.open("rb") as handle:
                created = await http.post("/api/datasets", files={"file": (upload.name, handle)})
            assert created.status_code == 201, created.text
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, question)
        events = await collect_run(ws, ack["run_id"], timeout=60)
    assert violations(events) == []
    assert missing_critical(events) == []
    assert events[-1]["type"] == "agent_completed"
    return events


def thoughts(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["thought"] for e in events if e["type"] == "agent_thinking"]


async def test_a_reachable_model_words_triage_and_the_narrative(
    start_server: Callable[..., LiveServer], model_api: ChatCompletionsServer
) -> None:
    server = start_server(llm_base_url=model_api.url, llm_model="gpt-4o-mini", llm_api_key="sk-local-test")
    events = await run(server, upload=shared_data_path(AZURE_CODE))
    report = events[-1]["data"]["result"]

    # the wire format: POST {base}/chat/completions, Bearer key, model, system + user messages
    assert [r.path for r in model_api.requests] == ["/v1/chat/completions"] * 3
    for request in model_api.requests:
        assert request.headers["Authorization"] == "Bearer sk-local-test"
        assert request.headers["Content-Type"] == "application/json"
        assert request.body["model"] == "gpt-4o-mini"
        assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
        assert request.body["max_tokens"] > 0
    proposal, restate, narrative = model_api.requests
    # asked to plan by calling plan_query; it answered with text, so the built-in parser planned
    assert proposal.body["tool_choice"]["function"]["name"] == "plan_query"
    assert any("no tool call" in t for t in thoughts(events))
    planned = next(e for e in events if e["type"] == "tool_completed" and e["tool_name"] == "plan_query")
    assert planned["data"]["result"]["source"] == "built-in"
    assert restate.body["messages"][1]["content"] == QUESTION
    # the narrative is worded from the tools' figures, which the prompt carries
    assert "8,819 requests" in narrative.body["messages"][1]["content"]

    assert f"Restated: {RESTATED}" in thoughts(events)
    assert report["narrative"] == {"source": "language_model", "model": "gpt-4o-mini"}
    assert report["summary"] == answer({"messages": [{"content": "narrative"}]})
    markdown = "".join(e["data"]["delta"] for e in events if e["type"] == "partial_result")
    assert "_Summary worded by the language model gpt-4o-mini" in markdown
    # the figures stay the analysis' own
    assert report["measurements"]["requests"] == 8819
    calls = [e for e in events if e["type"] == "tool_executing" and e["tool_name"] in WORDING]
    assert [(c["agent_name"], c["tool_name"], c["data"]["args"]["model"]) for c in calls] == [
        ("triage", "restate_question", "gpt-4o-mini"),
        ("reporting", "write_narrative", "gpt-4o-mini"),
    ]


async def test_an_unreachable_model_leaves_the_built_in_text_and_says_so(
    start_server: Callable[..., LiveServer],
) -> None:
    closed = free_port()  # nothing listens here
    server = start_server(
        llm_base_url=f"http://127.0.0.1:{closed}/v1", llm_model="gpt-4o-mini", llm_timeout_s=2
    )
    events = await run(server)
    report = events[-1]["data"]["result"]

    said = [t for t in thoughts(events) if "language model unavailable" in t]
    assert said
    assert said[0].endswith("the built-in parser did.")
    assert f"127.0.0.1:{closed}" in said[0]
    assert report["report_type"] == "guidance"
    assert report["narrative"] == {"source": "built-in"}
    assert report["summary"].startswith("There is no usage data yet")
    assert report["notes"][0].startswith("language model unavailable")
    # one failed attempt per run (planning the question): nothing else waits for a second timeout
    calls = [e for e in events if e["type"] == "tool_executing" and e["tool_name"] in WORDING]
    assert calls == []


async def test_a_model_answering_with_an_error_status_is_unavailable_too(
    start_server: Callable[..., LiveServer],
) -> None:
    api = ChatCompletionsServer(answer, status=503).start()
    try:
        server = start_server(llm_base_url=api.url, llm_model="gpt-4o-mini")
        events = await run(server)
    finally:
        api.stop()
    assert any("answered HTTP 503" in t for t in thoughts(events))
    assert events[-1]["data"]["result"]["narrative"] == {"source": "built-in"}


async def test_a_plan_proposed_by_tool_calling_is_validated_and_used(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    proposals: list[dict[str, Any]] = []

    def reply(body: dict[str, Any]) -> Any:
        if body.get("tools"):  # the planning call: offered the plan schema, forced to call plan_query
            proposals.append(body)
            plan = {"intent": "breakdown", "measure": "requests", "group_by": "feature", "top_n": 2}
            return ToolCall("plan_query", plan)
        return answer(body)

    api = ChatCompletionsServer(reply).start()
    try:
        server = start_server(llm_base_url=api.url, llm_model="gpt-4o-mini")
        path = tmp_path / "log.csv"
        rows = list(evaluation_log.iter_rows(scale=0.1))
        evaluation_log.write_csv(path, rows)
        events = await run(server, upload=path, question="which two features are the busiest?")
    finally:
        api.stop()
    [proposal] = proposals
    parameters = proposal["tools"][0]["function"]["parameters"]
    assert "intent" in parameters["properties"]  # the plan's own JSON schema
    report = events[-1]["data"]["result"]
    assert report["plan"]["source"] == "language_model"
    counts = Counter(r["feature"] for r in rows).most_common(2)
    for feature, n in counts:
        assert f"{feature} {n:,}" in report["answer"]["text"]


async def test_an_invalid_proposed_plan_falls_back_to_the_built_in_parser(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    def reply(body: dict[str, Any]) -> Any:
        if body.get("tools"):  # a what-if without its scenario: the schema refuses it
            return ToolCall("plan_query", {"intent": "what_if", "sql": "DROP TABLE usage"})
        return answer(body)

    api = ChatCompletionsServer(reply).start()
    try:
        server = start_server(llm_base_url=api.url, llm_model="gpt-4o-mini")
        path = tmp_path / "log.csv"
        rows = list(evaluation_log.iter_rows(scale=0.1))
        evaluation_log.write_csv(path, rows)
        events = await run(server, upload=path, question="How many requests did we make?")
    finally:
        api.stop()
    report = events[-1]["data"]["result"]
    assert report["plan"]["source"] == "built-in"
    assert f"{len(rows):,} requests" in report["answer"]["text"]
    assert any("the proposed plan is invalid" in t for t in thoughts(events))
