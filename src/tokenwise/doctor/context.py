"""What the layers share: the options, the target, one HTTP client, and what earlier layers learnt."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tokenwise.client import Client, Method
from tokenwise.doctor.target import Target

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """What `tokenwise doctor` was asked."""

    url: str
    email: str | None = None
    password: str | None = None
    token: str | None = None
    idle_s: float = 35.0
    ca_file: Path | None = None
    timeout_s: float = 10.0

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or (self.email and self.password))


@dataclass(frozen=True)
class Answer:
    """One HTTP response, read whole."""

    status: int
    headers: httpx.Headers
    body: bytes
    elapsed_ms: float

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def error(self) -> dict[str, Any]:
        """The `error` object of a Tokenwise error body, or {} when the body is something else."""
        body = self.json()
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) and "code" in error else {}

    def snippet(self, limit: int = 160) -> str:
        return self.body.decode(errors="replace").strip()[:limit]


@dataclass
class Context:
    options: Options
    target: Target
    tls_context: ssl.SSLContext
    http: httpx.AsyncClient
    progress: Progress
    client: Client = field(init=False)
    token: str | None = None  # an access token that the auth service issued (layer 4)
    token_verified: bool = False  # the API accepted it
    methods: list[Method] = field(default_factory=list)  # credential methods that opened a connection
    halted: str | None = None  # set by a layer after which nothing else can be examined

    def __post_init__(self) -> None:
        self.client = Client(self.target.base_url, http=self.http)

    @property
    def ws_ssl(self) -> ssl.SSLContext | None:
        return self.tls_context if self.target.tls else None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """GET `path` under the base URL; raises httpx.HTTPError when no answer comes."""
        return await self.request("GET", path, headers=headers)

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
    ) -> Answer:
        started = time.perf_counter()
        response = await self.http.request(
            method, f"{self.target.base_url}{path}", headers=headers, json=body
        )
        return Answer(
            response.status_code,
            response.headers,
            response.content,
            (time.perf_counter() - started) * 1000,
        )


def why(exc: BaseException) -> str:
    """An HTTP or socket failure in plain words."""
    if isinstance(exc, httpx.ConnectTimeout | TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "no answer in time (read timeout)"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: {cause.verify_message}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
