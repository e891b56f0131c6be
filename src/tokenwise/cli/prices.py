"""`tokenwise prices [list|set|unset]`: your own prices of models, over the server's price book.

Prices are $ per 1M tokens. A price you set applies to your next question; `unset` returns the model to
the server's price.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.client import Client, ClientError
from tokenwise.client.errors import error_body

prices_app = typer.Typer(
    help="Your prices of models ($ per 1M tokens), over the server's price book.",
    invoke_without_command=True,
)
app.add_typer(prices_app, name="prices")

Url = Annotated[str, typer.Option(help="the server's base URL")]
Email = Annotated[str, typer.Option(help="sign in as (default: the demo user)")]
Password = Annotated[str, typer.Option(help="password (default: the demo user's)")]
DEFAULT_URL = "http://127.0.0.1:8000"


class PricesFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _request(
    url: str, email: str, password: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Sign in, send one request to the prices API; its JSON body (None for 204)."""
    async with Client(url) as client:
        tokens = await client.sign_in(email, password)
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=30, trust_env=False) as http:
        try:
            response = await http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise PricesFailed(f"cannot reach {url}: {exc or type(exc).__name__}") from exc
    if response.status_code >= 400:
        code, message = error_body(response.content)
        raise PricesFailed(f"the server refused ({response.status_code} {code}): {message}")
    result: dict[str, Any] | None = response.json() if response.status_code != 204 else None
    return result


def _run(url: str, email: str, password: str, method: str, path: str, body: Any = None) -> Any:
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return asyncio.run(_request(url, email, password, method, path, body))
    except (ClientError, PricesFailed) as exc:
        errors.print(Text(exc.message, style="red"))
        raise typer.Exit(1) from exc


def _money(value: Any) -> str:
    return "—" if value is None else f"{float(value):g}"


def show(console: Console, book: dict[str, Any], only: set[str] | None = None, mine: bool = False) -> None:
    """The book as a table: $ per 1M input / cached input / output tokens, and whose price it is."""
    table = Table("model", "input", "cached input", "output", "batch discount", "price", box=None)
    for name, entry in sorted(book.get("models", {}).items()):
        ours = entry.get("origin") == "user"
        if (only is not None and name not in only) or (mine and not ours):
            continue
        discount = entry.get("batch_discount")
        table.add_row(
            Text(name, style="bold" if ours else ""),
            _money(entry.get("input")),
            _money(entry.get("cached_input")),
            _money(entry.get("output")),
            f"{float(discount):.0%}" if discount else "—",
            "yours" if ours else str(entry.get("source") or ""),
        )
    console.print(f"$ per 1M tokens, price book of {book.get('as_of', '?')}")
    console.print(table)


@prices_app.callback()
def prices(ctx: typer.Context) -> None:
    """Your prices of models ($ per 1M tokens); with no command, list them all."""
    if ctx.invoked_subcommand is None:
        list_prices(DEFAULT_URL, DEMO_EMAIL, DEMO_PASSWORD, mine=False, as_json=False)


@prices_app.command("list")
def list_prices(
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
    mine: Annotated[bool, typer.Option("--mine", help="only the models you set a price of")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the book as GET /api/prices returns it")] = False,
) -> None:
    """List the prices your questions use: the server's book with yours on top."""
    book = _run(url, email, password, "GET", "/api/prices")
    if as_json:
        typer.echo(json.dumps(book, indent=2))
    else:
        show(Console(highlight=False), book, mine=mine)


@prices_app.command("set")
def set_price(
    model: Annotated[str, typer.Argument(help="model name, e.g. gpt-4o")],
    input_price: Annotated[float, typer.Option("--input", help="$ per 1M input tokens", min=0)],
    output_price: Annotated[float, typer.Option("--output", help="$ per 1M output tokens", min=0)],
    cached_input: Annotated[
        float | None, typer.Option(help="$ per 1M cached input tokens (default: the book's)", min=0)
    ] = None,
    cache_write: Annotated[
        float | None, typer.Option(help="$ per 1M tokens written to the prompt cache (default: the book's)")
    ] = None,
    cache_write_1h: Annotated[
        float | None, typer.Option("--cache-write-1h", help="$ per 1M tokens written to the 1-hour cache")
    ] = None,
    batch_discount: Annotated[
        float | None, typer.Option(help="fraction off with the batch API, 0-1 (default: the book's)")
    ] = None,
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Set your price of MODEL; your next question uses it."""
    entry: dict[str, float] = {"input": input_price, "output": output_price}
    optional = {
        "cached_input": cached_input,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
        "batch_discount": batch_discount,
    }
    entry.update({k: v for k, v in optional.items() if v is not None})
    book = _run(url, email, password, "PUT", "/api/prices", {"models": {model: entry}})
    show(Console(highlight=False), book, only={model.strip().lower()})


@prices_app.command("unset")
def unset_price(
    model: Annotated[str, typer.Argument(help="model name")],
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Remove your price of MODEL: the server's book prices it again."""
    _run(url, email, password, "DELETE", f"/api/prices/{quote(model.strip(), safe='')}")
    Console(highlight=False).print(f"Removed your price of {model.strip().lower()}.")
