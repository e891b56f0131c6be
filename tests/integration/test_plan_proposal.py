"""A query plan proposed through tool calling, against a real local chat.completions server.

The server speaks the OpenAI wire format (tool calls included); `OpenAICompatible` and `propose_plan` run
for real. Every way the model can fail to propose a valid plan comes back as (None, a specific reason).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from support.openai_server import Answer, ChatCompletionsServer, Failure, Raw, ToolCall
from support.servers import free_port
from tokenwise.agents.language import NoLanguageModel, OpenAICompatible
from tokenwise.agents.plan_proposal import MAX_WHY_CHARS, propose_plan
from tokenwise.analysis.plan import QueryPlan, plan_json_schema

TODAY = date(2025, 12, 1)
QUESTION = "top 5 users by spend last week"
VOCABULARY = {"feature": ["faq-bot", "assistant"], "user": [f"user-{i}" for i in range(80)]}
TOP_USERS = {
    "intent": "breakdown",
    "measure": "spend",
    "group_by": "user",
    "top_n": 5,
    "period": {"start": "2025-11-24T00:00:00Z", "end": "2025-12-01T00:00:00Z", "label": "last week"},
    "readings": ["reading 'last week' as 24-30 Nov 2025"],
    "source": "built-in",  # a model claiming to be the parser is credited as the model all the same
}


class Api:
    """The local server, answering with whatever the test sets in `answer`."""

    def __init__(self, **options: Any) -> None:
        self.answer: Answer = ToolCall("plan_query", TOP_USERS)
        self.server = ChatCompletionsServer(lambda _body: self.answer, **options).start()

    def model(self, *, timeout_s: float = 5.0) -> OpenAICompatible:
        return OpenAICompatible(self.server.url, "gpt-4o-mini", "sk-local-test", timeout_s=timeout_s)


@pytest.fixture
def api() -> Iterator[Api]:
    api = Api()
    yield api
    api.server.stop()


async def propose(
    model: Any, context: list[dict[str, Any]] | None = None
) -> tuple[QueryPlan | None, str | None]:
    return await propose_plan(model, QUESTION, context or [], VOCABULARY, TODAY)


async def test_a_valid_plan_is_returned_credited_to_the_language_model(api: Api) -> None:
    plan, why = await propose(api.model())

    assert why is None
    assert plan is not None
    assert plan.source == "language_model"
    assert (plan.intent, plan.measure, plan.group_by, plan.top_n) == ("breakdown", "spend", "user", 5)
    assert plan.period is not None
    assert plan.period.label == "last week"
    assert plan.readings == ["reading 'last week' as 24-30 Nov 2025"]


async def test_the_request_offers_the_plan_schema_as_a_forced_tool(api: Api) -> None:
    context = [{"question": f"question {i}", "plan": {"intent": "total", "top_n": i}} for i in range(7)]

    await propose(api.model(), context)

    [request] = api.server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-local-test"
    body = request.body
    assert body["model"] == "gpt-4o-mini"
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "plan_query",
                "description": body["tools"][0]["function"]["description"],
                "parameters": plan_json_schema(),
            },
        }
    ]
    assert body["tools"][0]["function"]["description"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "plan_query"}}
    assert body["max_tokens"] == 600
    system, user = body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert "Today is 2025-12-01" in system["content"]
    assert "plan_query" in system["content"]
    # the user's words and data travel in the user message, the newest 5 turns, 50 values a dimension
    assert user["content"].endswith(f"Question: {QUESTION}")
    assert "faq-bot" in user["content"]
    assert '"user-49"' in user["content"]
    assert '"user-50"' not in user["content"]
    assert [f"question {i}" in user["content"] for i in range(7)] == [False] * 2 + [True] * 5
    assert user["content"].index("question 2") < user["content"].index("question 6")  # newest last
    assert json.dumps({"question": "question 6", "plan": {"intent": "total", "top_n": 6}}) in user["content"]


async def test_the_first_of_several_tool_calls_is_the_plan(api: Api) -> None:
    api.answer = [ToolCall("plan_query", {"intent": "total"}), ToolCall("plan_query", {"intent": "trend"})]

    plan, why = await propose(api.model())

    assert why is None
    assert plan is not None
    assert plan.intent == "total"


async def test_arguments_sent_as_an_object_are_taken_too(api: Api) -> None:
    # Some compatible servers put the object itself where the API puts its JSON text.
    call = {"id": "call_1", "type": "function", "function": {"name": "plan_query", "arguments": TOP_USERS}}
    api.answer = Raw({"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [call]}}]})

    plan, why = await propose(api.model())

    assert why is None
    assert plan is not None
    assert plan.top_n == 5


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Failure(503), "answered HTTP 503"),
        (Failure(429, "rate limited"), "answered HTTP 429"),
        ("Here are your top users: ...", "the reply has no tool call (the model did not call plan_query)"),
        (
            ToolCall("delete_everything", {}),
            "the model called the tool 'delete_everything', not 'plan_query'",
        ),
        (ToolCall("plan_query", '{"intent": "total"'), "the arguments of plan_query are not valid JSON"),
        (ToolCall("plan_query", '["total"]'), "the arguments of plan_query are a JSON array, not an object"),
        (ToolCall("plan_query", "null"), "the arguments of plan_query are a JSON null, not an object"),
        (
            ToolCall("plan_query", {"intent": "total", "readings": ["x" * 70_000]}),
            "over the 64 KiB limit",
        ),
        (ToolCall("plan_query", nested(21)), "the arguments of plan_query are nested deeper than 20 levels"),
        (Raw({"choices": []}), "the reply is not a chat.completions response"),
        (Raw([1, 2]), "the reply is not a chat.completions response"),
        (Raw(b"<html>bad gateway</html>"), "the reply is not a chat.completions response"),
        # deep enough to exhaust the JSON parser's stack before any bound is checked
        (Raw(nested(100_000).encode()), "the reply is not a chat.completions response"),
    ],
)
async def test_each_failure_is_refused_with_its_reason(api: Api, answer: Answer, reason: str) -> None:
    api.answer = answer

    plan, why = await propose(api.model())

    assert plan is None
    assert why is not None
    assert why.startswith("language model unavailable: ")
    assert reason in why
    assert len(why) <= MAX_WHY_CHARS


async def test_twenty_levels_of_nesting_are_still_parsed(api: Api) -> None:
    # The depth limit refuses runaway nesting, not a plan: 20 levels reach the plan's validation.
    api.answer = ToolCall("plan_query", nested(20))

    plan, why = await propose(api.model())

    assert plan is None
    assert why == "the proposed plan is invalid: intent: Field required"


async def test_an_unreachable_model_is_refused() -> None:
    closed = free_port()  # nothing listens here
    model = OpenAICompatible(f"http://127.0.0.1:{closed}/v1", "gpt-4o-mini", timeout_s=2)

    plan, why = await propose(model)

    assert plan is None
    url = f"http://127.0.0.1:{closed}/v1/chat/completions"
    assert why == f"language model unavailable: cannot reach {url} (ConnectError)"


async def test_a_model_slower_than_the_timeout_is_refused() -> None:
    api = Api(delay_s=1.0)
    try:
        plan, why = await propose(api.model(timeout_s=0.2))
    finally:
        api.server.stop()

    assert plan is None
    assert why == f"language model unavailable: no answer from {api.server.url}/chat/completions within 0.2 s"


async def test_no_language_model_proposes_nothing() -> None:
    plan, why = await propose(NoLanguageModel())

    assert (plan, why) == (None, "language model unavailable: no language model is configured")


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"intent": "what_if"}, "plan: Value error, a what_if plan needs a scenario"),
        ({"intent": "total", "sql": "DROP TABLE usage"}, "sql: Extra inputs are not permitted"),
        ({"intent": "guess"}, "intent: Input should be 'total', 'breakdown',"),
        (
            {
                "intent": "what_if",
                "scenario": {"kind": "route", "target_model": "gpt-4o-mini", "share_pct": 150},
            },
            "scenario.share_pct: Input should be less than or equal to 100",
        ),
        (
            {"intent": "total", "filters": [{"dimension": "colour", "values": ["red"]}]},
            "filters.0.dimension: Input should be 'model', 'feature',",
        ),
    ],
)
async def test_an_invalid_plan_is_refused_naming_the_field(
    api: Api, arguments: dict[str, Any], reason: str
) -> None:
    api.answer = ToolCall("plan_query", arguments)

    plan, why = await propose(api.model())

    assert plan is None
    assert why is not None
    assert why.startswith(f"the proposed plan is invalid: {reason}")
    assert len(why) <= MAX_WHY_CHARS
