"""`tokenwise doctor URL`: is a broken chat connection the infrastructure's fault or the application's?"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tokenwise.cli import app
from tokenwise.doctor import Layer, Options, Report, TargetError, diagnose
from tokenwise.doctor.render import layer_tree, verdict_panel


@app.command()
def doctor(
    url: Annotated[str, typer.Argument(help="the deployment's base URL, e.g. https://tokenwise.example.com")],
    email: Annotated[
        str | None, typer.Option(help="sign in as this existing user (never registered)")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="the user's password", envvar="TOKENWISE_DOCTOR_PASSWORD")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="an access token instead of --email/--password", envvar="TOKENWISE_DOCTOR_TOKEN"),
    ] = None,
    idle: Annotated[
        float,
        typer.Option(min=0, help="seconds of silence on an open connection, to catch proxy idle timeouts"),
    ] = 35.0,
    ca: Annotated[
        Path | None, typer.Option(help="PEM file of the CA to trust instead of the system's (a private CA)")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="print the report as JSON (tokenwise.doctor/1)")
    ] = False,
    timeout: Annotated[float, typer.Option(min=0.5, help="seconds to wait for each answer")] = 10.0,
) -> None:
    """Check a deployment layer by layer and name the first failing layer and its class.

    Exit 0 healthy, 10 infrastructure, 20 configuration, 30 application, 2 usage, 3 incomplete.
    """
    if token and (email or password):
        raise typer.BadParameter("give --email and --password, or --token, not both", param_hint="--token")
    if bool(email) != bool(password):
        raise typer.BadParameter("--email and --password go together", param_hint="--email/--password")
    options = Options(
        url, email=email, password=password, token=token, idle_s=idle, ca_file=ca, timeout_s=timeout
    )
    try:
        report = _run(options, json_output)
    except TargetError as exc:
        raise typer.BadParameter(str(exc), param_hint="URL/--ca") from exc
    except KeyboardInterrupt as exc:
        Console(stderr=True).print("interrupted", style="yellow")
        raise typer.Exit(130) from exc
    if json_output:
        print(json.dumps(report.to_json(), indent=2))
    raise typer.Exit(report.verdict.exit_code)


def _run(options: Options, json_output: bool) -> Report:
    if json_output:
        return asyncio.run(diagnose(options))
    console = Console(highlight=False)
    console.print(f"[bold]tokenwise doctor[/] {options.url}")
    with console.status("starting…", spinner="dots") as status:

        def show(layer: Layer) -> None:
            console.print(layer_tree(layer))

        report = asyncio.run(diagnose(options, progress=lambda text: status.update(text), on_layer=show))
    console.print(verdict_panel(report.verdict))
    return report
