"""`tokenwise cluster`: a local cluster (PostgreSQL, Redis, nginx, auth, APIs, workers), in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app, console
from tokenwise.config import Settings


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command()
def cluster(
    api: Annotated[int, typer.Option("--api", min=1, help="API processes behind nginx")] = 2,
    workers: Annotated[int, typer.Option("--workers", min=1, help="run workers")] = 2,
    port: Annotated[
        int, typer.Option(envvar=["TOKENWISE_PORT", "PORT"], help="nginx's port (also PORT / TOKENWISE_PORT)")
    ] = 8000,
    directory: Annotated[Path, typer.Option("--dir", help="state, data and logs")] = Path("var/cluster"),
    stop: Annotated[bool, typer.Option("--stop", help="stop the cluster running from --dir")] = False,
    log_level: Annotated[str, typer.Option(help="the processes' log level")] = "info",
) -> None:
    """Run a local cluster in the foreground: nginx round-robin over API processes, workers, auth,
    PostgreSQL and Redis. Ctrl-C stops it all; `--stop` stops one started in another shell."""
    from tokenwise.cluster import Launcher, Plan, stop_cluster

    if stop:
        if not stop_cluster(directory, _say):
            _say(f"no cluster is running from {directory}")
        return
    plan = Plan(directory, port=port, apis=api, workers=workers, log_level=log_level, project=Path.cwd())
    code = Launcher(plan, Settings(), _say).run(on_ready=_show)
    raise typer.Exit(code)


def _show(launcher: object) -> None:
    from tokenwise.cluster import Launcher

    assert isinstance(launcher, Launcher)
    plan, state = launcher.plan, launcher.state
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "role", "port", "pid", "log"):
        table.add_column(column, overflow="fold")
    for child in launcher.children:
        table.add_row(child.name, child.role, str(child.port), str(child.pid), _shown(child.log))
    console.print(
        f"\n[bold]Tokenwise cluster[/] on [bold]{plan.url}[/]: nginx round-robin over {plan.apis} API "
        f"process(es), {plan.workers} worker(s)"
    )
    console.print(f"Demo user: [bold]{DEMO_EMAIL}[/] / [bold]{DEMO_PASSWORD}[/]")
    console.print(table)
    _say(f"Database: {state.database_url}")
    _say(f"Bus: {state.bus_url}")
    _say(f"State and data: {_shown(plan.directory)}")
    _say("Ctrl-C stops everything; from another shell: tokenwise cluster --stop (make cluster-stop)")
