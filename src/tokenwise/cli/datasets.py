"""`tokenwise datasets list|rename|delete|set-model`: manage your imported usage files over the HTTP API.

A dataset is named by its id, or by a prefix of the id that only one dataset has (as `list` shows it).
"""

from __future__ import annotations

import asyncio
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

datasets_app = typer.Typer(
    help="List, rename, delete your datasets, or set their model.", no_args_is_help=True
)
app.add_typer(datasets_app, name="datasets")

Url = Annotated[str, typer.Option(help="the server's base URL")]
Email = Annotated[str, typer.Option(help="sign in as (default: the demo user)")]
Password = Annotated[str, typer.Option(help="password (default: the demo user's)")]
DatasetId = Annotated[str, typer.Argument(help="dataset id (or a prefix only one dataset's id has)")]
DEFAULT_URL = "http://127.0.0.1:8000"


class DatasetsFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Api:
    """The signed-in datasets API of one server."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DatasetsFailed(f"cannot reach {self.http.base_url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            code, message = error_body(response.content)
            raise DatasetsFailed(f"the server refused ({response.status_code} {code}): {message}")
        return response.json() if response.status_code != 204 else None

    async def resolve(self, ref: str) -> dict[str, Any]:
        """The dataset whose id is `ref`, or the only one whose id starts with it."""
        listed: list[dict[str, Any]] = (await self.call("GET", "/api/datasets"))["datasets"]
        exact = [d for d in listed if d["id"] == ref]
        matches = exact or [d for d in listed if ref and d["id"].startswith(ref)]
        if not matches:
            raise DatasetsFailed(f"no dataset {ref} (see `tokenwise datasets list`)")
        if len(matches) > 1:
            ids = ", ".join(d["id"] for d in matches)
            raise DatasetsFailed(f"{ref} is the start of several dataset ids ({ids}): give more of it")
        return matches[0]


async def _with_api(url: str, email: str, password: str, action: Any) -> Any:
    async with Client(url) as client:
        tokens = await client.sign_in(email, password)
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=30, trust_env=False
    ) as http:
        return await action(_Api(http))


def _run(url: str, email: str, password: str, action: Any) -> Any:
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return asyncio.run(_with_api(url, email, password, action))
    except (ClientError, DatasetsFailed) as exc:
        errors.print(Text(exc.message, style="red"))
        raise typer.Exit(1) from exc


def _path(dataset: dict[str, Any]) -> str:
    return f"/api/datasets/{quote(dataset['id'], safe='')}"


@datasets_app.command("list")
def list_datasets(
    url: Url = DEFAULT_URL, email: Email = DEMO_EMAIL, password: Password = DEMO_PASSWORD
) -> None:
    """Your datasets: id, name, format, rows, period and model."""

    async def action(api: _Api) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await api.call("GET", "/api/datasets"))["datasets"]
        return listed

    listed = _run(url, email, password, action)
    console = Console(highlight=False)
    if not listed:
        console.print("No datasets yet: upload one with `tokenwise ingest FILE`.")
        return
    table = Table("id", "name", "format", "rows", "period", "model", box=None, padding=(0, 2))
    for d in listed:
        period = d.get("period") or {}
        span = f"{(period.get('start') or '')[:10]} → {(period.get('end') or '')[:10]}" if period else ""
        table.add_row(
            d["id"], d["name"], d["detected_format"], f"{d['row_count']:,}", span, d.get("model") or "—"
        )
    console.print(table)


@datasets_app.command("rename")
def rename(
    dataset: DatasetId,
    name: Annotated[str, typer.Argument(help="the new name")],
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Give a dataset a new name."""

    async def action(api: _Api) -> dict[str, Any]:
        found = await api.resolve(dataset)
        changed: dict[str, Any] = await api.call("PATCH", _path(found), {"name": name})
        return changed

    changed = _run(url, email, password, action)
    Console(highlight=False).print(f"Renamed dataset {changed['id']} to {changed['name']!r}")


@datasets_app.command("delete")
def delete(
    dataset: DatasetId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Delete a dataset and its stored rows (answers no longer count them)."""

    async def find(api: _Api) -> dict[str, Any]:
        return await api.resolve(dataset)

    found = _run(url, email, password, find)
    if not yes:
        typer.confirm(
            f"Delete dataset {found['name']!r} ({found['id']}, {found['row_count']:,} rows)?", abort=True
        )

    async def action(api: _Api) -> None:
        await api.call("DELETE", _path(found))

    _run(url, email, password, action)
    Console(highlight=False).print(f"Deleted dataset {found['id']} ({found['name']!r})")


@datasets_app.command("set-model")
def set_model(
    dataset: DatasetId,
    model: Annotated[str | None, typer.Argument(help="the model of rows that name none")] = None,
    clear: Annotated[bool, typer.Option(help="clear the dataset's model instead")] = False,
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Name the model of a dataset's rows that have none (the analysis applies it; the file is unchanged)."""
    if (model is None) == (not clear):
        raise typer.BadParameter("name a model, or pass --clear", param_hint="MODEL")

    async def action(api: _Api) -> dict[str, Any]:
        found = await api.resolve(dataset)
        changed: dict[str, Any] = await api.call("PATCH", _path(found), {"model": None if clear else model})
        return changed

    changed = _run(url, email, password, action)
    what = f"model {changed['model']!r}" if changed.get("model") else "no model"
    Console(highlight=False).print(f"Dataset {changed['id']} ({changed['name']!r}) now has {what}")
