"""The `tokenwise` command line: serve, migrate, user create, chat, ask."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from tokenwise.config import Role, Settings

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
    from tokenwise.app import create_app
    from tokenwise.server import make_server

    overrides = {k: v for k, v in {"role": role, "host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fastapi_app = create_app(settings)
    if demo_user or settings.demo_user:
        _ensure_demo_user(settings)
    listening = f"http://{settings.host}:{settings.port}"
    reached = f" (clients reach it at {settings.public_url})" if settings.public_url else ""
    console.print(f"[bold]Tokenwise[/] ({settings.role.value}) on {listening}{reached}")
    make_server(fastapi_app, settings, log_level=log_level).run()


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

    asyncio.run(create())
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
