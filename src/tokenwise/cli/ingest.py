"""`tokenwise ingest FILE`: upload a usage file to a running server, with a progress bar, and show how it
was read (detected format, column mapping, rows)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.client import Client, ClientError
from tokenwise.client.errors import error_body

_CHUNK = 256 * 1024


class Multipart:
    """A multipart/form-data body streamed from disk: text fields, then the file, with known length."""

    def __init__(self, path: Path, fields: dict[str, str]) -> None:
        self.path = path
        self.boundary = uuid.uuid4().hex
        head = b"".join(self._part(name, value.encode()) for name, value in fields.items())
        filename = path.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.head, self.tail = head, f"\r\n--{self.boundary}--\r\n".encode()
        self.size = path.stat().st_size

    def _part(self, name: str, value: bytes) -> bytes:
        header = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        return header + value + b"\r\n"

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(len(self.head) + self.size + len(self.tail)),
        }

    async def stream(self, progress: Progress, task: TaskID) -> AsyncIterator[bytes]:
        yield self.head
        with self.path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                progress.update(task, advance=len(chunk))
                yield chunk
        yield self.tail
        progress.update(task, description="importing on the server")


async def _upload(url: str, email: str, password: str, path: Path, fields: dict[str, str]) -> dict[str, Any]:
    async with Client(url) as client:
        tokens = await client.sign_in(email, password)
    body = Multipart(path, fields)
    headers = {**body.headers, "Authorization": f"Bearer {tokens.access_token}"}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    timeout = httpx.Timeout(30.0, read=600.0)
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"uploading {path.name}", total=body.size)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            try:
                response = await http.post(
                    f"{url.rstrip('/')}/api/datasets", content=body.stream(progress, task), headers=headers
                )
            except httpx.HTTPError as exc:
                raise UploadFailed(f"cannot upload to {url}: {exc or type(exc).__name__}") from exc
    if response.status_code != 201:
        code, message = error_body(response.content)
        raise UploadFailed(f"the server refused the file ({response.status_code} {code}): {message}")
    result: dict[str, Any] = response.json()
    return result


class UploadFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def show(console: Console, dataset: dict[str, Any]) -> None:
    """Print how the server read the file: format, mapping, rows, period, notes."""
    console.print(
        Text.assemble(("✓ ", "bold green"), (dataset["name"], "bold"), (f"  dataset {dataset['id']}", "dim"))
    )
    console.print(f"  format   {dataset['detected_format']} ({dataset['source_format']})")
    console.print(f"  rows     {dataset['row_count']:,}")
    period = dataset.get("period") or {}
    if period.get("start"):
        console.print(f"  period   {period['start']} → {period['end']}")
    console.print(f"  model    {dataset.get('model') or '(from the file, or ask at analysis time)'}")
    table = Table("field", "source column", box=None, padding=(0, 2), show_edge=False)
    for field, column in dataset["mapping"].items():
        table.add_row(field, column)
    console.print("  mapping")
    console.print(table)
    for note in dataset.get("notes", []):
        console.print(Text(f"  note: {note}", style="dim"))


@app.command()
def ingest(
    file: Annotated[
        Path, typer.Argument(help="CSV, JSONL or Parquet usage file", exists=True, dir_okay=False)
    ],
    model: Annotated[str | None, typer.Option(help="model of rows that name none")] = None,
    url: Annotated[str, typer.Option(help="the server's base URL")] = "http://127.0.0.1:8000",
    email: Annotated[str, typer.Option(help="sign in as (default: the demo user)")] = DEMO_EMAIL,
    password: Annotated[str, typer.Option(help="password (default: the demo user's)")] = DEMO_PASSWORD,
    mapping: Annotated[
        str | None, typer.Option(help='column mapping override as JSON, e.g. \'{"ts": "when"}\'')
    ] = None,
    keep_prompt_text: Annotated[bool, typer.Option(help="store prompt text, not only its hash")] = False,
    name: Annotated[str | None, typer.Option(help="dataset name (default: the file name)")] = None,
) -> None:
    """Upload a usage log to the server and show the detected format, column mapping and row count."""
    fields: dict[str, str] = {}
    if mapping is not None:
        try:
            parsed = json.loads(mapping)
        except ValueError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--mapping") from exc
        if not isinstance(parsed, dict):
            raise typer.BadParameter('expected an object like {"ts": "when"}', param_hint="--mapping")
        fields["mapping"] = json.dumps(parsed)
    if model:
        fields["model"] = model
    if keep_prompt_text:
        fields["keep_prompt_text"] = "true"
    if name:
        fields["name"] = name
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        dataset = asyncio.run(_upload(url, email, password, file, fields))
    except (ClientError, UploadFailed) as exc:
        errors.print(Text(exc.message, style="red"))
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:
        errors.print(Text("interrupted", style="yellow"))
        raise typer.Exit(130) from exc
    show(Console(highlight=False), dataset)
