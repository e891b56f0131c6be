"""`tokenwise datasets list|rename|delete|set-model|include|exclude`: manage your imported usage files over
the HTTP API.

A dataset is named by its id, or by a prefix of the id that only one dataset has (as `list` shows it).
Questions cover the included datasets only; `exclude` leaves one out of them (its rows stay stored).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.cli.api import DEFAULT_URL, Api, Email, Password, Url, run

datasets_app = typer.Typer(
    help="List, rename, delete your datasets, set their model, choose which ones questions cover.",
    no_args_is_help=True,
)
app.add_typer(datasets_app, name="datasets")

DatasetId = Annotated[str, typer.Argument(help="dataset id (or a prefix only one dataset's id has)")]


def _path(dataset: dict[str, Any]) -> str:
    return f"/api/datasets/{quote(dataset['id'], safe='')}"


@datasets_app.command("list")
def list_datasets(
    url: Url = DEFAULT_URL, email: Email = DEMO_EMAIL, password: Password = DEMO_PASSWORD
) -> None:
    """Your datasets: id, name, format, rows, period, model, and whether questions cover them."""

    async def action(api: Api) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await api.call("GET", "/api/datasets"))["datasets"]
        return listed

    listed = run(url, email, password, action)
    console = Console(highlight=False)
    if not listed:
        console.print("No datasets yet: upload one with `tokenwise ingest FILE`.")
        return
    table = Table("id", "name", "format", "rows", "period", "model", "questions", box=None, padding=(0, 2))
    for d in listed:
        period = d.get("period") or {}
        span = f"{(period.get('start') or '')[:10]} → {(period.get('end') or '')[:10]}" if period else ""
        fmt = d["detected_format"] + (" (buckets)" if d.get("bucketed") else "")
        covered = "included" if d.get("included", True) else "excluded"
        table.add_row(d["id"], d["name"], fmt, f"{d['row_count']:,}", span, d.get("model") or "—", covered)
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

    async def action(api: Api) -> dict[str, Any]:
        found = await api.resolve("datasets", dataset)
        changed: dict[str, Any] = await api.call("PATCH", _path(found), {"name": name})
        return changed

    changed = run(url, email, password, action)
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

    async def find(api: Api) -> dict[str, Any]:
        return await api.resolve("datasets", dataset)

    found = run(url, email, password, find)
    if not yes:
        typer.confirm(
            f"Delete dataset {found['name']!r} ({found['id']}, {found['row_count']:,} rows)?", abort=True
        )

    async def action(api: Api) -> None:
        await api.call("DELETE", _path(found))

    run(url, email, password, action)
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

    async def action(api: Api) -> dict[str, Any]:
        found = await api.resolve("datasets", dataset)
        changed: dict[str, Any] = await api.call("PATCH", _path(found), {"model": None if clear else model})
        return changed

    changed = run(url, email, password, action)
    what = f"model {changed['model']!r}" if changed.get("model") else "no model"
    Console(highlight=False).print(f"Dataset {changed['id']} ({changed['name']!r}) now has {what}")


def _set_included(dataset: str, included: bool, url: str, email: str, password: str) -> None:
    async def action(api: Api) -> dict[str, Any]:
        found = await api.resolve("datasets", dataset)
        changed: dict[str, Any] = await api.call("PATCH", _path(found), {"included": included})
        return changed

    changed = run(url, email, password, action)
    if included:
        what = "now covered by your questions"
    else:
        what = "left out of your questions (its rows stay stored; `include` brings it back)"
    Console(highlight=False).print(f"Dataset {changed['id']} ({changed['name']!r}) is {what}")


@datasets_app.command("include")
def include(
    dataset: DatasetId, url: Url = DEFAULT_URL, email: Email = DEMO_EMAIL, password: Password = DEMO_PASSWORD
) -> None:
    """Count a dataset in your questions again (every dataset is, until excluded)."""
    _set_included(dataset, True, url, email, password)


@datasets_app.command("exclude")
def exclude(
    dataset: DatasetId, url: Url = DEFAULT_URL, email: Email = DEMO_EMAIL, password: Password = DEMO_PASSWORD
) -> None:
    """Leave a dataset out of your questions; its rows stay stored, and answers say it was left out."""
    _set_included(dataset, False, url, email, password)
