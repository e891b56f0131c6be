"""The signed-in HTTP API for the commands that manage a user's things (`datasets`, `connectors`): sign in
like `tokenwise ingest` (`--url`, `--email`, `--password`), call the API, print a refusal in plain words.

A thing is named by its id, or by a prefix of the id that only one of them has (as `list` shows it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.text import Text

from tokenwise.client import Client, ClientError
from tokenwise.client.errors import error_body

Url = Annotated[str, typer.Option(help="the server's base URL")]
Email = Annotated[str, typer.Option(help="sign in as (default: the demo user)")]
Password = Annotated[str, typer.Option(help="password (default: the demo user's)")]
DEFAULT_URL = "http://127.0.0.1:8000"
T = TypeVar("T")


class ApiFailed(Exception):
    """A request the server refused or could not receive; the message is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Api:
    """The signed-in API of one server."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer (None for 204); ApiFailed for a refusal or an unreachable server."""
        try:
            response = await self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ApiFailed(f"cannot reach {self.http.base_url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            code, message = error_body(response.content)
            raise ApiFailed(f"the server refused ({response.status_code} {code}): {message}")
        return response.json() if response.status_code != 204 else None

    async def resolve(self, collection: str, ref: str) -> dict[str, Any]:
        """The item of `GET /api/<collection>` whose id is `ref`, or the only one whose id starts with it."""
        listed: list[dict[str, Any]] = (await self.call("GET", f"/api/{collection}"))[collection]
        noun = collection.removesuffix("s")
        exact = [d for d in listed if d["id"] == ref]
        matches = exact or [d for d in listed if ref and d["id"].startswith(ref)]
        if not matches:
            raise ApiFailed(f"no {noun} {ref} (see `tokenwise {collection} list`)")
        if len(matches) > 1:
            ids = ", ".join(d["id"] for d in matches)
            raise ApiFailed(f"{ref} is the start of several {noun} ids ({ids}): give more of it")
        return matches[0]


async def _with_api(url: str, email: str, password: str, action: Callable[[Api], Awaitable[T]]) -> T:
    async with Client(url) as client:
        tokens = await client.sign_in(email, password)
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    # A sync of a connector waits for the provider: allow it more than a plain call.
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=httpx.Timeout(30, read=300), trust_env=False
    ) as http:
        return await action(Api(http))


def run(url: str, email: str, password: str, action: Callable[[Api], Awaitable[T]]) -> T:
    """Sign in and run `action`; a refusal is printed on stderr and exits with 1."""
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return asyncio.run(_with_api(url, email, password, action))
    except (ClientError, ApiFailed) as exc:
        errors.print(Text(exc.message, style="red"))
        raise typer.Exit(1) from exc
