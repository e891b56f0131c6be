"""A Tokenwise server seen from a client: sign up and in over HTTP, then open chat connections."""

from __future__ import annotations

from typing import Any

import httpx

from tokenwise.client.connection import Connection, connect, ws_url_for
from tokenwise.client.errors import RequestFailed, SignInFailed, Unreachable, error_body
from tokenwise.client.types import Tokens, User
from tokenwise.session.handshake import Method


class Client:
    """One server: `sign_in` keeps the tokens that `connect` then uses.

    Pass `http` to share one connection pool between many clients (the load driver does).
    """

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, http: httpx.AsyncClient | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = ws_url_for(self.base_url)
        self.tokens: Tokens | None = None
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _post(
        self, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            return await self._http.post(f"{self.base_url}{path}", json=body, headers=headers)
        except httpx.ConnectError as exc:
            raise Unreachable(self.base_url, "connection refused (is the server running?)") from exc
        except httpx.TimeoutException as exc:
            raise Unreachable(self.base_url, "timed out") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(self.base_url, str(exc) or type(exc).__name__) from exc

    async def sign_up(self, email: str, password: str, name: str | None = None) -> User:
        """Register a user (POST /auth/register)."""
        body: dict[str, Any] = {"email": email, "password": password}
        if name is not None:
            body["name"] = name
        response = await self._post("/auth/register", body)
        if response.status_code != 201:
            raise _failed(RequestFailed, "sign-up failed", response)
        return User.from_json(response.json()["user"])

    async def sign_in(self, email: str, password: str) -> Tokens:
        """Sign in (POST /auth/login); the tokens are kept for `connect`."""
        response = await self._post("/auth/login", {"email": email, "password": password})
        if response.status_code != 200:
            raise _failed(SignInFailed, "sign-in failed", response)
        self.tokens = Tokens.from_json(response.json())
        return self.tokens

    async def ticket(self, token: str | None = None) -> str:
        """A single-use WebSocket ticket (POST /api/ws/ticket)."""
        response = await self._post("/api/ws/ticket", token=token or self._access_token())
        if response.status_code != 200:
            raise _failed(RequestFailed, "could not get a WebSocket ticket", response)
        return str(response.json()["ticket"])

    async def thread(self, thread_id: str) -> dict[str, Any]:
        """One of the signed-in user's threads (GET /api/threads/{id}); RequestFailed (not_found) else."""
        try:
            response = await self._http.get(
                f"{self.base_url}/api/threads/{thread_id}",
                headers={"Authorization": f"Bearer {self._access_token()}"},
            )
        except httpx.HTTPError as exc:
            raise Unreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        if response.status_code != 200:
            raise _failed(RequestFailed, "thread lookup failed", response)
        found: dict[str, Any] = response.json()
        return found

    async def connect(
        self, method: Method | str = Method.HEADER, *, token: str | None = None, **options: Any
    ) -> Connection:
        """Open a chat connection with the signed-in token (or `token`) and read its welcome frame."""
        token = token or self._access_token()
        method = Method(method)
        ticket = await self.ticket(token) if method is Method.TICKET else None
        return await connect(self.ws_url, token, method, ticket=ticket, **options)

    def _access_token(self) -> str:
        if self.tokens is None:
            raise RuntimeError("sign in first")
        return self.tokens.access_token


def _failed(kind: type[RequestFailed], what: str, response: httpx.Response) -> RequestFailed:
    code, message = error_body(response.content)
    return kind(
        f"{what}: {message or f'HTTP {response.status_code}'}", status=response.status_code, code=code
    )
