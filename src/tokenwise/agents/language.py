"""The optional language model that phrases text: one small interface, off by default.

It only ever phrases (a one-line restatement of the question, the report's narrative): every figure comes
from a tool. `NoLanguageModel` is the default; `OpenAICompatible` speaks the OpenAI chat.completions wire
format to any compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM, ...).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx


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


class NoLanguageModel:
    """No language model: the agents use their built-in text."""

    enabled = False
    name = "built-in"

    async def complete(self, system: str, prompt: str, *, max_tokens: int = 300) -> str:
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
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
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
        return _content(response)


def _content(response: httpx.Response) -> str:
    try:
        payload: Any = response.json()
        text = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LanguageModelUnavailable("the reply is not a chat.completions response") from exc
    if not isinstance(text, str) or not text.strip():
        raise LanguageModelUnavailable("the reply has no text")
    return text.strip()


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
