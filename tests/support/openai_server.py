"""A local stand-in for a hosted OpenAI-compatible API: a real HTTP server speaking chat.completions.

It answers `POST /v1/chat/completions` in the OpenAI wire format (`choices[0].message.content`, `usage`,
...) and records every request, so tests check what Tokenwise sends as well as what it does with the
reply. Only the external hosted API is replaced; everything of ours runs for real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], str]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ChatCompletionsServer:
    """`reply(request_body) -> text` decides the assistant's answer; `status` other than 200 fails calls."""

    reply: Reply
    status: int = 200
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
                    self._send(owner.status, {"error": {"message": "overloaded", "type": "server_error"}})
                else:
                    self._send(200, completion(body, owner.reply(body)))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

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


def completion(request: dict[str, Any], text: str) -> dict[str, Any]:
    """A chat.completion object as the OpenAI API returns it."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    answer = len(text.split())
    return {
        "id": "chatcmpl-local-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer},
        "system_fingerprint": "fp_local",
    }
