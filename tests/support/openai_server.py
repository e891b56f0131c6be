"""A local stand-in for a hosted OpenAI-compatible API: a real HTTP server speaking chat.completions.

It answers `POST /v1/chat/completions` in the OpenAI wire format (`choices[0].message.content`, `usage`,
...) and records every request, so tests check what Tokenwise sends as well as what it does with the
reply. Only the external hosted API is replaced; everything of ours runs for real.

What it answers is the test's `reply(request_body)`: text (a plain completion), a `ToolCall` or a list of
them (`message.tool_calls`, `finish_reason: "tool_calls"`), `Failure(status)` (an error status) or
`Raw(payload)` (any body at all, for replies no real server would send).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """A call to the function `name`. A dict of arguments is JSON-encoded as the API does; a string is sent
    as it is, so a test can send malformed arguments."""

    name: str
    arguments: dict[str, Any] | str


@dataclass(frozen=True)
class Failure:
    """An error status with the API's error body."""

    status: int
    message: str = "overloaded"


@dataclass(frozen=True)
class Raw:
    """This body with status 200: JSON-encoded, or bytes sent as they are (a body no JSON encoder makes)."""

    payload: Any


Answer = str | ToolCall | list[ToolCall] | Failure | Raw
Reply = Callable[[dict[str, Any]], Answer]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ChatCompletionsServer:
    """`reply(request_body)` decides the answer; `status` other than 200 fails every call; `delay_s` holds
    each answer back (to outlast a client's timeout)."""

    reply: Reply
    status: int = 200
    delay_s: float = 0.0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(Recorded(self.path, dict(self.headers), body))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                elif owner.status != 200:
                    self._send(owner.status, error_body("overloaded"))
                else:
                    time.sleep(owner.delay_s)
                    status, payload = response_for(body, owner.reply(body))
                    self._send(status, payload)

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test): nobody is left to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: stop() waits for it, and tests start and stop a server each.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL a client is configured with (OpenAI style, ending in /v1)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ChatCompletionsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def response_for(request: dict[str, Any], answer: Answer) -> tuple[int, Any]:
    """The (status, body) that answers `request` with `answer`."""
    if isinstance(answer, Failure):
        return answer.status, error_body(answer.message)
    if isinstance(answer, Raw):
        return 200, answer.payload
    if isinstance(answer, str):
        return 200, completion(request, answer)
    return 200, tool_completion(request, [answer] if isinstance(answer, ToolCall) else answer)


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error"}}


def completion(request: dict[str, Any], text: str) -> dict[str, Any]:
    """A chat.completion object as the OpenAI API returns it."""
    message = {"role": "assistant", "content": text, "refusal": None}
    return _envelope(request, message, "stop", len(text.split()))


def tool_completion(request: dict[str, Any], calls: list[ToolCall]) -> dict[str, Any]:
    """A chat.completion whose message calls tools: no content, `tool_calls`, `finish_reason: tool_calls`."""
    tool_calls = [
        {
            "id": f"call_local_{index}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(call.arguments),
            },
        }
        for index, call in enumerate(calls, start=1)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls, "refusal": None}
    size = sum(len(str(call["function"]["arguments"]).split()) for call in tool_calls)
    return _envelope(request, message, "tool_calls", size)


def _envelope(request: dict[str, Any], message: dict[str, Any], finish: str, answer: int) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    return {
        "id": "chatcmpl-local-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer},
        "system_fingerprint": "fp_local",
    }
