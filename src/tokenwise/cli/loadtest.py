"""`tokenwise loadtest`: simulated users against one server process, and the figures they measured.

Unless `--url` is given, the driver starts its own server (`python -m tokenwise serve` after `migrate`, in
a temporary data directory, log level warning) as a separate process, so the figures are those of one
server process, and the load runs in this (other) process. Modes:

- users:   N users sign in, connect, send their messages, wait for each run's final event;
- ramp:    closed-loop concurrency 1, 2, 4 … until the throughput stops growing (saturation), then a
           fixed message rate at half the saturated throughput for the time to first event;
- connect: a burst of authenticated WebSocket connects (welcome frame included);
- idle:    K idle authenticated connections, and the server's memory (VmRSS) per connection;
- all:     ramp, users, connect and idle, with the targets of docs/performance.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenwise.cli import app
from tokenwise.client import ClientError, Connection, Method, ws_url_for
from tokenwise.client import load as scenarios
from tokenwise.client.harness import (
    ProcessProbe,
    ServerFailed,
    busy_cpu_s,
    local_server,
    machine,
    raise_fd_limit,
)

TARGETS = {
    "ttfe_p99_ms_at_half_saturation": (
        "time to first event p99 at half of saturation",
        "≤ 25 ms",
        25.0,
        "max",
    ),
    "events_per_s": ("delivered events/s", "≥ 3,000", 3000.0, "min"),
    "connects_per_s": ("authenticated WebSocket connects/s", "≥ 500", 500.0, "min"),
    "kib_per_idle_connection": ("server memory per idle authenticated connection", "≤ 20 KiB", 20.0, "max"),
}


class Mode(StrEnum):
    USERS = "users"
    RAMP = "ramp"
    CONNECT = "connect"
    IDLE = "idle"
    ALL = "all"


# ---- the phases ------------------------------------------------------------------------------------
@dataclass
class Bench:
    url: str
    probe: ProcessProbe | None
    say: Console

    @property
    def ws_url(self) -> str:
        return ws_url_for(self.url)

    async def measured(self, phase: Awaitable[scenarios.Tally]) -> dict[str, Any]:
        """Await a phase's Tally, adding the CPU (in cores) that the server, this client and every other
        process on the machine spent meanwhile: others busy means the figures are disturbed."""
        server_cpu, client_cpu, machine_cpu = (
            self.probe.cpu_s() if self.probe else 0.0,
            time.process_time(),
            busy_cpu_s(),
        )
        started = time.perf_counter()
        tally = await phase
        wall = time.perf_counter() - started
        result = tally.summary()
        server = (self.probe.cpu_s() - server_cpu) / wall if self.probe is not None else 0.0
        client = (time.process_time() - client_cpu) / wall
        if self.probe is not None:
            result["server_cpu_cores"] = round(server, 2)
            # CPU per unit of work hardly depends on what else the machine runs: the steadiest figure.
            if tally.runs:
                result["server_cpu_ms_per_run"] = round(server * wall / tally.runs * 1000, 2)
            if tally.connect_s:
                result["server_cpu_ms_per_connect"] = round(server * wall / len(tally.connect_s) * 1000, 3)
        result["client_cpu_cores"] = round(client, 2)
        result["other_cpu_cores"] = round(max(0.0, (busy_cpu_s() - machine_cpu) / wall - server - client), 2)
        return result

    async def ramp(
        self, tokens: list[str], max_concurrency: int, step_s: float, hold_s: float, rate: float | None = None
    ) -> dict[str, Any]:
        """Closed-loop concurrency ramp to saturation, then a fixed rate at half of it (or at `rate`)."""
        steps: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        concurrency, flat = 1, 0
        while concurrency <= min(max_concurrency, len(tokens)):
            step = await self.measured(
                scenarios.closed_loop(self.ws_url, tokens[:concurrency], duration_s=step_s)
            )
            step["concurrency"] = concurrency
            steps.append(step)
            self.say.print(
                f"  concurrency {concurrency:>3}: {step['runs_per_s']:>7} runs/s, {step['events_per_s']:>8} "
                f"events/s, ttfe p99 {step.get('time_to_first_event_ms', {}).get('p99')} ms"
            )
            if best is None or step["runs_per_s"] > best["runs_per_s"] * 1.05:
                best, flat = step, 0
            else:
                flat += 1
                if flat == 2:
                    break
            concurrency *= 2
        assert best is not None
        fixed = rate is not None
        rate = rate or best["runs_per_s"] / 2
        pool = tokens[: max(8, best["concurrency"])]
        self.say.print(
            f"  {'fixed rate' if fixed else 'half of saturation'}: {rate:.1f} messages/s for {hold_s:g} s"
        )
        latency = await self.measured(
            scenarios.open_loop(self.ws_url, pool, rate_per_s=rate, duration_s=hold_s)
        )
        latency["rate_per_s"] = rate
        return {"steps": steps, "saturation": best, "fixed_rate" if fixed else "half_saturation": latency}

    async def connect(
        self, tokens: list[str], count: int, concurrency: int, method: Method
    ) -> dict[str, Any]:
        connections: list[Connection] = []

        async def storm() -> scenarios.Tally:
            opened, tally = await scenarios.connect_all(
                self.ws_url, tokens, count, concurrency=concurrency, method=method, base_url=self.url
            )
            connections.extend(opened)
            return tally

        result = await self.measured(storm())
        await scenarios.close_all(connections)
        result["method"], result["concurrency"] = method.value, concurrency
        return result

    async def idle(self, tokens: list[str], count: int, concurrency: int, hold_s: float) -> dict[str, Any]:
        """Open `count` idle connections; the server's RSS growth per connection."""
        if self.probe is None:
            raise typer.BadParameter("reading server memory needs --server-pid with --url")
        warm, _ = await scenarios.connect_all(self.ws_url, tokens, 200, concurrency=concurrency)
        await scenarios.close_all(warm)
        await asyncio.sleep(2)
        before = self.probe.rss_bytes()
        connections, tally = await scenarios.connect_all(self.ws_url, tokens, count, concurrency=concurrency)
        opened = self.probe.rss_bytes()
        self.say.print(f"  {len(connections)} idle connections open; holding {hold_s:g} s (heartbeats)")
        await asyncio.sleep(hold_s)
        held = self.probe.rss_bytes()
        await scenarios.close_all(connections)
        await asyncio.sleep(2)
        after_close = self.probe.rss_bytes()
        grown = max(opened, held) - before
        per_connection = grown / max(1, len(connections))
        return {
            "connections": len(connections),
            "errors": dict(tally.errors),
            "connects_per_s": round(len(connections) / tally.elapsed_s, 1),
            "rss_before_mib": round(before / 2**20, 1),
            "rss_open_mib": round(opened / 2**20, 1),
            "rss_after_hold_mib": round(held / 2**20, 1),
            "rss_after_close_mib": round(after_close / 2**20, 1),
            "kib_per_connection": round(per_connection / 1024, 2),
        }


def verdicts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target that the report has a figure for: the figure and whether it is met."""
    figures: dict[str, float | None] = {
        "ttfe_p99_ms_at_half_saturation": _dig(
            report, "ramp", "half_saturation", "time_to_first_event_ms", "p99"
        ),
        "events_per_s": _dig(report, "ramp", "saturation", "events_per_s"),
        "connects_per_s": _dig(report, "connect", "connects_per_s"),
        "kib_per_idle_connection": _dig(report, "idle", "kib_per_connection"),
    }
    result = {}
    for key, value in figures.items():
        if value is None:
            continue
        _label, _text, bound, kind = TARGETS[key]
        result[key] = {
            "measured": value,
            "target": bound,
            "met": value <= bound if kind == "max" else value >= bound,
        }
    return result


def _dig(report: dict[str, Any], *keys: str) -> float | None:
    node: Any = report
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


# ---- the report ------------------------------------------------------------------------------------
def _ms(phase: dict[str, Any], key: str) -> str:
    values = phase.get(key)
    return "-" if not values else f"{values['p50']:g} / {values['p95']:g} / {values['p99']:g}"


def _phases(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    phases: list[tuple[str, dict[str, Any]]] = []
    if ramp := report.get("ramp"):
        phases += [(f"closed loop, concurrency {step['concurrency']}", step) for step in ramp["steps"]]
        for key, label in (("half_saturation", "half of saturation"), ("fixed_rate", "fixed rate")):
            if phase := ramp.get(key):
                phases.append((f"{label}, {phase['rate_per_s']:.1f} messages/s", phase))
    if users := report.get("users"):
        config = report["config"]
        phases.append((f"{config['users']} users x {config['messages_per_user']} messages", users))
    return phases


def render(report: dict[str, Any], console: Console) -> None:
    """The report as Rich tables."""
    if phases := _phases(report):
        runs = Table(title="runs (latencies in ms: p50 / p95 / p99; CPU in cores)")
        columns = ("phase", "runs", "events/s", "first event", "final event", "lost/dup", "errors")
        for column in (*columns, "CPU srv/cli/other", "srv CPU ms/run"):
            runs.add_column(column, justify="left" if column in ("phase", "errors") else "right")
        for name, phase in phases:
            runs.add_row(
                name,
                str(phase["runs"]),
                f"{phase['events_per_s']:,.0f}",
                _ms(phase, "time_to_first_event_ms"),
                _ms(phase, "time_to_final_event_ms"),
                f"{phase['lost_events']}/{phase['duplicated_events']}",
                _errors(phase["errors"]),
                _cpu(phase),
                str(phase.get("server_cpu_ms_per_run", "-")),
            )
        console.print(runs)
    if connect := report.get("connect"):
        table = Table(title=f"authenticated connects ({connect['method']}, {connect['concurrency']} at once)")
        for column in ("connects", "connects/s", "connect → welcome ms", "errors", "CPU srv/cli/other"):
            table.add_column(column, justify="right")
        table.add_row(
            str(connect.get("connects", 0)),
            f"{connect.get('connects_per_s', 0):,.0f}",
            _ms(connect, "connect_ms"),
            _errors(connect["errors"]),
            _cpu(connect),
        )
        console.print(table)
    if idle := report.get("idle"):
        table = Table(title="idle authenticated connections (server VmRSS)")
        for column in (
            "connections",
            "before MiB",
            "open MiB",
            "after hold MiB",
            "after close MiB",
            "KiB/conn",
        ):
            table.add_column(column, justify="right")
        table.add_row(
            str(idle["connections"]),
            str(idle["rss_before_mib"]),
            str(idle["rss_open_mib"]),
            str(idle["rss_after_hold_mib"]),
            str(idle["rss_after_close_mib"]),
            str(idle["kib_per_connection"]),
        )
        console.print(table)
    if report["targets"]:
        table = Table(title="targets (one server process)")
        for column in ("target", "bound", "measured", "met"):
            table.add_column(column)
        for key, verdict in report["targets"].items():
            label, bound, *_ = TARGETS[key]
            met = "[green]yes[/]" if verdict["met"] else "[red]no[/]"
            table.add_row(label, bound, f"{verdict['measured']:,.2f}", met)
        console.print(table)


def _cpu(phase: dict[str, Any]) -> str:
    return "/".join(str(phase.get(f"{who}_cpu_cores", "-")) for who in ("server", "client", "other"))


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(errors.items())) or "none"


# ---- the command -----------------------------------------------------------------------------------
async def _run(bench: Bench, phases: set[Mode], options: dict[str, Any]) -> dict[str, Any]:
    needed = options["users"]
    if Mode.RAMP in phases:
        needed = max(needed, options["max_concurrency"], 8)
    bench.say.print(f"signing up {needed} users …")
    tokens = await scenarios.provision(bench.url, needed)
    report: dict[str, Any] = {}
    if Mode.RAMP in phases:
        bench.say.print("ramp to saturation …")
        report["ramp"] = await bench.ramp(
            tokens, options["max_concurrency"], options["step_s"], options["hold_s"], options["rate"]
        )
    if Mode.USERS in phases:
        bench.say.print(
            f"{options['users']} users, {options['concurrency']} at once, "
            f"{options['messages_per_user']} messages each …"
        )
        report["users"] = await bench.measured(
            scenarios.users(
                bench.ws_url,
                tokens[: options["users"]],
                concurrency=options["concurrency"],
                messages_per_user=options["messages_per_user"],
            )
        )
    if Mode.CONNECT in phases:
        bench.say.print(f"{options['connects']} connects …")
        report["connect"] = await bench.connect(
            tokens, options["connects"], options["connect_concurrency"], options["method"]
        )
    if Mode.IDLE in phases:
        bench.say.print(f"{options['idle_connections']} idle connections …")
        report["idle"] = await bench.idle(
            tokens, options["idle_connections"], options["connect_concurrency"], options["idle_hold_s"]
        )
    return report


def _measure(
    url: str | None, server_pid: int | None, phases: set[Mode], options: dict[str, Any], say: Console
) -> dict[str, Any]:
    """Run the phases against `url`, or against a server process started for them."""
    with contextlib.ExitStack() as stack:
        if url is None:
            say.print("starting a server process …")
            url, server_pid = stack.enter_context(local_server())
        probe = ProcessProbe(server_pid) if server_pid is not None else None
        return asyncio.run(_run(Bench(url.rstrip("/"), probe, say), phases, options))


@app.command()
def loadtest(
    url: Annotated[str | None, typer.Option(help="a running server (default: start one)")] = None,
    mode: Annotated[Mode, typer.Option(help="users, ramp, connect, idle or all")] = Mode.USERS,
    users: Annotated[int, typer.Option(min=1, help="simulated users")] = 50,
    concurrency: Annotated[int, typer.Option(min=1, help="users active at once")] = 10,
    messages_per_user: Annotated[int, typer.Option(min=1, help="messages each user sends")] = 5,
    max_concurrency: Annotated[int, typer.Option(min=1, help="ramp: highest concurrency")] = 64,
    step_s: Annotated[float, typer.Option(help="ramp: seconds per concurrency step")] = 5.0,
    hold_s: Annotated[float, typer.Option(help="ramp: seconds at half of saturation")] = 20.0,
    rate: Annotated[
        float | None, typer.Option(help="ramp: messages/s of the latency phase (default: half of saturation)")
    ] = None,
    connects: Annotated[int, typer.Option(min=1, help="connect: connections to open")] = 2000,
    connect_concurrency: Annotated[int, typer.Option(min=1, help="handshakes in flight")] = 100,
    method: Annotated[Method, typer.Option(help="connect: credential method")] = Method.HEADER,
    idle_connections: Annotated[int, typer.Option(min=1, help="idle: connections to hold")] = 10_000,
    idle_hold_s: Annotated[float, typer.Option(help="idle: seconds to hold them (≥ one heartbeat)")] = 25.0,
    server_pid: Annotated[
        int | None, typer.Option(help="with --url: the server's pid, for CPU/memory")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Drive simulated users against one server process and report latency, throughput and memory."""
    say = Console(stderr=True, highlight=False)
    fd_limit = raise_fd_limit()
    if mode in (Mode.IDLE, Mode.ALL) and idle_connections + 200 > fd_limit:
        say.print(f"[yellow]the open-file limit is {fd_limit}; {idle_connections} connections may not fit[/]")
    options = {
        k: v for k, v in locals().items() if k not in ("say", "fd_limit", "url", "server_pid", "json_output")
    }
    started_here = url is None
    if mode in (Mode.IDLE, Mode.ALL) and url is not None and server_pid is None:
        raise typer.BadParameter(
            "reading the server's memory needs its --server-pid", param_hint="--server-pid"
        )
    phases: set[Mode] = {m for m in Mode if m is not Mode.ALL} if mode is Mode.ALL else {mode}
    try:
        if started_here and Mode.IDLE in phases and len(phases) > 1:
            # Memory per idle connection is read on a fresh server: the memory that earlier phases freed
            # would otherwise be reused by the new connections and hide part of their cost.
            report = _measure(None, None, phases - {Mode.IDLE}, options, say)
            report |= _measure(None, None, {Mode.IDLE}, options, say)
        else:
            report = _measure(url, server_pid, phases, options, say)
    except (ServerFailed, ClientError) as exc:
        say.print(Text(str(exc), style="red"))
        raise typer.Exit(1) from exc
    report = {
        "machine": machine(),
        "config": {k: (v.value if isinstance(v, StrEnum) else v) for k, v in options.items()},
        "server": "one process started by the driver (a fresh one for idle)" if started_here else url,
        **report,
    }
    report["targets"] = verdicts(report)
    if json_output:
        print(json.dumps(report, indent=2))
    else:
        console = Console()
        render(report, console if console.is_terminal else Console(width=190))
