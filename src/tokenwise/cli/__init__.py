"""The `tokenwise` command line: serve, migrate, user create, chat, ask."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from tokenwise.config import Role, Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(help="Tokenwise: chat with agents about your team's AI/LLM spend.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
console = Console()

DEMO_EMAIL = "demo@tokenwise.dev"
DEMO_PASSWORD = "tokenwise-demo"  # noqa: S105 - the documented demo account of a local `make run`


@app.command()
def serve(
    role: Annotated[Role | None, typer.Option(help="all, auth, api or worker")] = None,
    host: Annotated[str | None, typer.Option(help="interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port (also PORT / TOKENWISE_PORT)")] = None,
    demo_user: Annotated[bool, typer.Option(help="create the demo user and print its credentials")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the server (auth service, API and a run worker in one process by default)."""
    from tokenwise.server import make_server

    overrides = {k: v for k, v in {"role": role, "host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fastapi_app = _start_up(settings, demo_user=demo_user or settings.demo_user)
    listening = f"http://{settings.host}:{settings.port}"
    reached = f" (clients reach it at {settings.public_url})" if settings.public_url else ""
    console.print(f"[bold]Tokenwise[/] ({settings.role.value}) on {listening}{reached}")
    make_server(fastapi_app, settings, log_level=log_level, freeze_heap=True).run()


def _start_up(settings: Settings, *, demo_user: bool) -> FastAPI:
    """The app, and the demo user if asked for. An expected fault (the database file missing, not
    migrated or read-only, the database refusing writes, a file the server cannot write) ends the command
    with exit code 1 and one message naming its cause: no traceback."""
    from tokenwise.app import create_app
    from tokenwise.db.database import startup_problem
    from tokenwise.errors import TokenwiseError
    from tokenwise.security.keys import KeyConfigurationError

    problem = startup_problem(settings.resolved_database_url)
    try:
        if problem is not None:
            raise _CannotStart(problem)
        fastapi_app = create_app(settings)
        if demo_user:
            _ensure_demo_user(settings)
    except _CannotStart as exc:
        _fail(str(exc))
    except OSError as exc:  # a file of the data directory: keys, blobs
        where = f" {exc.filename}" if exc.filename else ""
        _fail(f"cannot write or read{where}: {exc.strerror or exc}; check the path and its permissions")
    except TokenwiseError as exc:
        _fail(f"{exc.message}{_root_cause(exc)}")
    except KeyConfigurationError as exc:  # names the key file and what is wrong with it
        _fail(str(exc))
    return fastapi_app


class _CannotStart(Exception):
    pass


def _fail(message: str) -> NoReturn:
    from rich.markup import escape

    Console(stderr=True).print(
        f"[red]tokenwise serve cannot start:[/] {escape(message)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


def _root_cause(exc: BaseException) -> str:
    """`: <the driver's own words>` from the end of the exception's cause chain, or ``."""
    cause = exc.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if cause is None:
        return ""
    words = str(getattr(cause, "orig", None) or cause).strip().splitlines()
    return f": {words[0]}" if words else ""


def _ensure_demo_user(settings: Settings) -> None:
    from tokenwise.services.container import Services

    if not settings.serves_auth:
        return

    async def create() -> None:
        services = Services.build(settings)
        try:
            assert services.accounts is not None
            await services.accounts.ensure_user(DEMO_EMAIL, DEMO_PASSWORD, "Demo user")
        finally:
            await services.http.aclose()
            await services.db.dispose()

    from sqlalchemy.engine import make_url

    from tokenwise.errors import ServiceUnavailable

    try:
        asyncio.run(create())
    except ServiceUnavailable as exc:
        database = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        raise _CannotStart(
            f"the demo user could not be written to the database {database}: {exc.message}{_root_cause(exc)}"
            " (a read-only file or directory, a full disk, or the database down: check /health/ready"
            " once it runs without --demo-user)"
        ) from exc
    console.print(f"Demo user: [bold]{DEMO_EMAIL}[/] / [bold]{DEMO_PASSWORD}[/]")


@app.command()
def worker(
    host: Annotated[str | None, typer.Option(help="interface for /health and /metrics")] = None,
    port: Annotated[int | None, typer.Option(help="port for /health and /metrics")] = None,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Run a run worker: claims queued runs and executes them (`serve --role worker`)."""
    serve(role=Role.WORKER, host=host, port=port, demo_user=False, log_level=log_level)


@app.command()
def migrate() -> None:
    """Apply database migrations (SQLite file in the data directory, or TOKENWISE_DATABASE_URL)."""
    from tokenwise.db.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url)
    console.print(f"Database is up to date: {settings.resolved_database_url.split('@')[-1]}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user."""
    from tokenwise.errors import TokenwiseError
    from tokenwise.services.container import Services

    settings = Settings()
    if len(password) < 8:
        raise typer.BadParameter("at least 8 characters", param_hint="--password")

    async def create() -> None:
        services = Services.build(settings)
        try:
            assert services.accounts is not None
            user = await services.accounts.register(email, password, name)
            console.print(f"Created user {user.email} ({user.id})")
        finally:
            await services.http.aclose()
            await services.db.dispose()

    try:
        asyncio.run(create())
    except TokenwiseError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc


def main() -> None:
    # Importing them registers their commands.
    import tokenwise.cli.cluster  # noqa: F401
    from tokenwise.cli import ask, chat, connectors, datasets, doctor, ingest, loadtest, prices  # noqa: F401

    app()
