"""The language-model client's wire format and failure modes, and the rule that it never supplies a figure."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from agent_doubles import check_stream, make_ctx, sink_of

from tokenwise.agents import run_pipeline
from tokenwise.agents.language import (
    LanguageModelUnavailable,
    NoLanguageModel,
    OpenAICompatible,
    language_model,
)
from tokenwise.agents.phrasing import clean, figures, unsupported_figures

REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": " Worded. "}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
}


def client(handler: Any) -> httpx.AsyncClient:
    """A client whose transport stands in for the hosted API (the external service, not our code)."""
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_request_and_reply_follow_the_openai_chat_completions_format() -> None:
    seen: list[httpx.Request] = []

    def hosted(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REPLY)

    async with client(hosted) as http:
        model = OpenAICompatible("https://llm.example/v1/", "gpt-4o-mini", "sk-1", http=http)
        assert await model.complete("be brief", "hello", max_tokens=50) == "Worded."
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "https://llm.example/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-1"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        "max_tokens": 50,
        "temperature": 0,
    }


async def test_no_key_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    def hosted(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REPLY)

    async with client(hosted) as http:
        await OpenAICompatible("http://localhost:11434/v1", "llama3", http=http).complete("s", "p")
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(500, json={"error": {"message": "boom"}}), "answered HTTP 500"),
        (httpx.Response(200, text="<html>proxy</html>"), "not a chat.completions response"),
        (httpx.Response(200, json={"choices": []}), "not a chat.completions response"),
        (httpx.Response(200, json={**REPLY, "choices": [{"message": {"content": "  "}}]}), "no text"),
    ],
)
async def test_bad_answers_are_unavailable(response: httpx.Response, reason: str) -> None:
    async with client(lambda request: response) as http:
        model = OpenAICompatible("https://llm.example/v1", "m", "k", http=http)
        with pytest.raises(LanguageModelUnavailable, match=reason):
            await model.complete("s", "p")


@pytest.mark.parametrize(
    ("error", "reason"),
    [(httpx.ConnectError("refused"), "cannot reach"), (httpx.ReadTimeout("slow"), "no answer from")],
)
async def test_transport_failures_are_unavailable(error: Exception, reason: str) -> None:
    def hosted(request: httpx.Request) -> httpx.Response:
        raise error

    async with client(hosted) as http:
        with pytest.raises(LanguageModelUnavailable, match=reason):
            await OpenAICompatible("https://llm.example/v1", "m", http=http).complete("s", "p")


def test_off_unless_base_url_and_model_are_set() -> None:
    assert isinstance(language_model(None, None), NoLanguageModel)
    assert isinstance(language_model("https://llm.example/v1", None), NoLanguageModel)
    assert isinstance(language_model(None, "gpt-4o"), NoLanguageModel)
    on = language_model("https://llm.example/v1", "gpt-4o", "k")
    assert on.enabled
    assert on.name == "gpt-4o"
    assert not NoLanguageModel().enabled


def test_figures_and_the_invented_figure_check() -> None:
    assert figures("$1,234.50 a month, 30% of 8,819 requests, p95") == {1234.5, 30.0, 8819.0, 95.0}
    facts = "8,819 requests cost $152.41 ($653.60 a month); batching saves 6.8%."
    assert unsupported_figures("Spend is $653.60 a month over 8,819 requests.", facts) == []
    assert unsupported_figures("You could save 40% ($261.44).", facts) == [40.0, 261.44]
    assert clean("<b>One line</b>\nsecond line", "restate_question") == "bOne line/b"


class Scripted:
    """A language model that answers from a script (the external service's stand-in)."""

    enabled = True
    name = "scripted"

    def __init__(self, narrative: str) -> None:
        self.narrative = narrative
        self.prompts: list[str] = []

    async def complete(self, system: str, prompt: str, *, max_tokens: int = 300) -> str:
        self.prompts.append(prompt)
        return "Cut LLM spend." if system.startswith("Restate") else self.narrative


async def test_a_narrative_with_an_invented_figure_is_refused() -> None:
    ctx = make_ctx("how do I cut my LLM costs?", rows=5000)
    outcome = await run_pipeline(ctx, language=Scripted("You will save 37% next month."))
    events = sink_of(ctx).events
    check_stream(events)
    report = outcome.report
    assert report["narrative"] == {"source": "built-in"}
    assert "37%" not in outcome.markdown
    assert report["notes"][0].startswith("the language model's text had figures not in the analysis (37)")
    assert any("figures not in the analysis" in e.data.get("thought", "") for e in events)


async def test_a_narrative_that_copies_the_figures_is_used() -> None:
    ctx = make_ctx("how do I cut my LLM costs?", rows=5000)
    model = Scripted("5,000 requests were measured; nothing to save.")
    outcome = await run_pipeline(ctx, language=model)
    check_stream(sink_of(ctx).events)
    assert outcome.report["summary"] == "5,000 requests were measured; nothing to save."
    assert outcome.report["narrative"] == {"source": "language_model", "model": "scripted"}
    assert "5,000 requests" in model.prompts[-1]  # the facts it was given
