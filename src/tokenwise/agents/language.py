"""The optional language model that phrases text and proposes plans: one small interface, off by default.

It phrases (a one-line restatement of the question, the report's narrative) and may propose a query plan
through tool calling (`call_tool`), which the caller validates: every figure still comes from a tool.
`NoLanguageModel` is the default; `OpenAICompatible` speaks the OpenAI chat.completions wire format to any
compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM, ...).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx

# Bounds on a tool call's arguments, checked before they are parsed: a plan is a few hundred bytes, so
# anything near these is a runaway reply, and deep nesting is how a small reply exhausts the parser's stack.
MAX_ARGUMENTS_BYTES = 64 * 1024
MAX_ARGUMENTS_DEPTH = 20


class LanguageModelUnavailable(Exception):
    """The language model could not answer (unreachable, timed out, an error status or a malformed reply)."""


class LanguageModel(Protocol):
    """Anything that completes a system + user prompt into text."""

    @property
    def enabled(self) -> bool:
        """False for the built-in text only: no call is made."""
        ...

    @property
    def name(self) -> str:
        """The model's name, as reports credit it."""
        ...

    async def complete(self, system: str, prompt: str, *, max_tokens: int = 300) -> str:
        """The model's reply; raises LanguageModelUnavailable when there is none."""
        ...

    async def call_tool(
        self,
        system: str,
        prompt: str,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        max_tokens: int = 600,
    ) -> dict[str, Any]:
        """The arguments of the model's call to the tool `name`; raises LanguageModelUnavailable if none."""
        ...


class NoLanguageModel:
    """No language model: the agents use their built-in text."""

    enabled = False
    name = "built-in"

    async def complete(self, system: str, prompt: str, *, max_tokens: int = 300) -> str:
        raise LanguageModelUnavailable("no language model is configured")

    async def call_tool(
        self,
        system: str,
        prompt: str,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        max_tokens: int = 600,
    ) -> dict[str, Any]:
        raise LanguageModelUnavailable("no language model is configured")


class OpenAICompatible:
    """`POST {base_url}/chat/completions` with a Bearer key, in the OpenAI wire format."""

    enabled = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model, self._key, self._timeout = model, api_key, timeout_s
        self._http = http

    @property
    def name(self) -> str:
        return self.model

    async def complete(self, system: str, prompt: str, *, max_tokens: int = 300) -> str:
        return _content(await self._post(_body(self.model, system, prompt, max_tokens)))

    async def call_tool(
        self,
        system: str,
        prompt: str,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        max_tokens: int = 600,
    ) -> dict[str, Any]:
        body = _body(self.model, system, prompt, max_tokens)
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": name, "description": description, "parameters": parameters},
            }
        ]
        # Forced, not "auto": a reply in prose instead of a plan is a failure the caller falls back from.
        body["tool_choice"] = {"type": "function", "function": {"name": name}}
        return _tool_arguments(await self._post(body), name)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            if self._http is not None:
                response = await self._http.post(self.url, json=body, headers=headers, timeout=self._timeout)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as http:
                    response = await http.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise LanguageModelUnavailable(f"no answer from {self.url} within {self._timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise LanguageModelUnavailable(f"cannot reach {self.url} ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise LanguageModelUnavailable(f"{self.url} answered HTTP {response.status_code}")
        return response


def _body(model: str, system: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }


def _message(response: httpx.Response) -> dict[str, Any]:
    try:
        payload: Any = response.json()
        message = payload["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        raise LanguageModelUnavailable("the reply is not a chat.completions response") from exc
    if not isinstance(message, dict):
        raise LanguageModelUnavailable("the reply is not a chat.completions response")
    return message


def _content(response: httpx.Response) -> str:
    text = _message(response).get("content")
    if not isinstance(text, str) or not text.strip():
        raise LanguageModelUnavailable("the reply has no text")
    return text.strip()


def _tool_arguments(response: httpx.Response, name: str) -> dict[str, Any]:
    calls = _message(response).get("tool_calls")
    if not isinstance(calls, list) or not calls:
        raise LanguageModelUnavailable(f"the reply has no tool call (the model did not call {name})")
    function = calls[0].get("function") if isinstance(calls[0], dict) else None
    if not isinstance(function, dict):
        raise LanguageModelUnavailable("the reply's tool call has no function")
    called = function.get("name")
    if called != name:
        raise LanguageModelUnavailable(f"the model called the tool {str(called)[:60]!r}, not {name!r}")
    arguments = function.get("arguments")
    # The wire format carries a JSON string; some compatible servers send the object itself.
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    if not isinstance(arguments, str):
        raise LanguageModelUnavailable(f"the arguments of {name} are not a JSON string")
    size = len(arguments.encode())
    if size > MAX_ARGUMENTS_BYTES:
        raise LanguageModelUnavailable(
            f"the arguments of {name} are {size:,} bytes, over the {MAX_ARGUMENTS_BYTES // 1024} KiB limit"
        )
    if _depth(arguments) > MAX_ARGUMENTS_DEPTH:
        raise LanguageModelUnavailable(
            f"the arguments of {name} are nested deeper than {MAX_ARGUMENTS_DEPTH} levels"
        )
    try:
        parsed: Any = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise LanguageModelUnavailable(f"the arguments of {name} are not valid JSON ({exc.msg})") from exc
    if not isinstance(parsed, dict):
        kind = _JSON_TYPES.get(type(parsed), type(parsed).__name__)
        raise LanguageModelUnavailable(f"the arguments of {name} are a JSON {kind}, not an object")
    return parsed


_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _depth(text: str) -> int:
    """The deepest nesting of JSON arrays and objects in `text`, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def language_model(
    base_url: str | None,
    model: str | None,
    api_key: str | None = None,
    *,
    timeout_s: float = 10.0,
    http: httpx.AsyncClient | None = None,
) -> LanguageModel:
    """`OpenAICompatible` when both a base URL and a model are set, else `NoLanguageModel`."""
    if not base_url or not model:
        return NoLanguageModel()
    return OpenAICompatible(base_url, model, api_key, timeout_s=timeout_s, http=http)
