"""`tokenwise connectors list|add|sync|delete`: provider reports pulled on a schedule with an admin key.

The admin key is read from a hidden prompt, or from stdin with `--admin-key-stdin` (for scripts: never
put it on a command line, where other users' `ps` sees it). It is sent once, stored encrypted by the
server, and never shown again, here or anywhere.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.cli.api import DEFAULT_URL, Api, Email, Password, Url, run
from tokenwise.connectors.pulls import Kind

connectors_app = typer.Typer(
    help="Pull usage or cost reports from OpenAI and Anthropic with an admin key, on a schedule.",
    no_args_is_help=True,
)
app.add_typer(connectors_app, name="connectors")

ConnectorId = Annotated[str, typer.Argument(help="connector id (or a prefix only one connector's id has)")]
KIND_TITLES = {
    "openai_usage": "OpenAI usage",
    "openai_costs": "OpenAI costs",
    "anthropic_usage": "Anthropic usage",
    "anthropic_costs": "Anthropic costs",
}


def _path(connector: dict[str, Any], action: str = "") -> str:
    return f"/api/connectors/{quote(connector['id'], safe='')}{action}"


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") + " UTC" if iso else "never"


def _show(connector: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(
        f"Connector {connector['id']} ({connector['name']!r}, {KIND_TITLES.get(connector['kind'], '?')}): "
        f"{connector['status']}, last sync {_when(connector.get('last_sync_at'))}, "
        f"{connector.get('rows_imported', 0):,} rows"
    )
    if connector.get("last_error"):
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            Text(f"last error: {connector['last_error']}", style="red")
        )


@connectors_app.command("list")
def list_connectors(
    url: Url = DEFAULT_URL, email: Email = DEMO_EMAIL, password: Password = DEMO_PASSWORD
) -> None:
    """Your connectors: id, name, kind, status, last sync, rows imported and the last error."""

    async def action(api: Api) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await api.call("GET", "/api/connectors"))["connectors"]
        return listed

    listed = run(url, email, password, action)
    console = Console(highlight=False)
    if not listed:
        console.print("No connectors yet: add one with `tokenwise connectors add KIND NAME`.")
        return
    table = Table("id", "name", "kind", "status", "last sync", "rows", "last error", box=None, padding=(0, 2))
    for c in listed:
        kind = KIND_TITLES.get(c["kind"], c["kind"])
        table.add_row(
            c["id"], c["name"], kind, c["status"], _when(c.get("last_sync_at")),
            f"{c.get('rows_imported', 0):,}", c.get("last_error") or "—",
        )  # fmt: skip
    console.print(table)


@connectors_app.command("add")
def add(
    kind: Annotated[Kind, typer.Argument(help="which report to pull", case_sensitive=False)],
    name: Annotated[str, typer.Argument(help="a name; the connector's dataset has it too")],
    base_url: Annotated[
        str | None,
        typer.Option(help="the provider's API (default: https://api.openai.com or api.anthropic.com)"),
    ] = None,
    admin_key_stdin: Annotated[
        bool, typer.Option("--admin-key-stdin", help="read the admin key from stdin instead of a prompt")
    ] = False,
    sync: Annotated[bool, typer.Option("--sync", help="sync it at once")] = False,
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Add a connector with an organization admin key (OpenAI: sk-admin-…; Anthropic: sk-ant-admin…)."""
    if admin_key_stdin:
        admin_key = sys.stdin.readline().strip()
    else:
        admin_key = str(typer.prompt("Admin key (not shown)", hide_input=True)).strip()
    if not admin_key:
        raise typer.BadParameter("the admin key is empty", param_hint="admin key")
    body: dict[str, Any] = {"kind": kind.value, "name": name, "admin_key": admin_key}
    if base_url:
        body["base_url"] = base_url

    async def action(api: Api) -> dict[str, Any]:
        created: dict[str, Any] = await api.call("POST", "/api/connectors", body)
        if sync:
            created = await api.call("POST", _path(created, "/sync"))
        return created

    created = run(url, email, password, action)
    _show(created)
    if created["status"] == "error":
        raise typer.Exit(1)


@connectors_app.command("sync")
def sync_connector(
    connector: ConnectorId,
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Sync a connector now (exit 1 when the provider refused or failed: the error is printed)."""

    async def action(api: Api) -> dict[str, Any]:
        found = await api.resolve("connectors", connector)
        synced: dict[str, Any] = await api.call("POST", _path(found, "/sync"))
        return synced

    synced = run(url, email, password, action)
    _show(synced)
    if synced["status"] == "error":
        raise typer.Exit(1)


@connectors_app.command("delete")
def delete(
    connector: ConnectorId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    url: Url = DEFAULT_URL,
    email: Email = DEMO_EMAIL,
    password: Password = DEMO_PASSWORD,
) -> None:
    """Delete a connector, its stored admin key and its dataset."""

    async def find(api: Api) -> dict[str, Any]:
        return await api.resolve("connectors", connector)

    found = run(url, email, password, find)
    if not yes:
        rows = found.get("rows_imported", 0)
        typer.confirm(
            f"Delete connector {found['name']!r} ({found['id']}) and its {rows:,} rows?", abort=True
        )

    async def action(api: Api) -> None:
        await api.call("DELETE", _path(found))

    run(url, email, password, action)
    Console(highlight=False).print(f"Deleted connector {found['id']} ({found['name']!r}) and its dataset")
