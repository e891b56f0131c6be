"""The floor beside Tokenwise: the same closed-loop driver against bare `websockets` and against `make run`.

The floor (`floor_server.py`) and the driver (`drive.py`) are the team's shared reference in
`../shared/bench/` (or `--floor-dir`): a bare `websockets` server that speaks the golden-path protocol
with no auth, storage or agents, and a driver that measures runs/s, events/s and the time to the first
and final event. Each load runs against the floor and then against one `tokenwise serve` process (the
embedded default, started here in a temporary data directory), one right after the other, and the
ratios are checked against issue 13's targets:

- events/s at 50 users x 10 runs: Tokenwise >= 0.5 x the floor;
- first event p99 at 5 users x 20 runs: Tokenwise <= max(25 ms, 2 x the floor's).

    .venv/bin/python bench/floor.py [--floor-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tokenwise.client.api import Client
from tokenwise.client.harness import local_server, machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench"
PASSWORD = "correct-horse-battery-1"


@dataclass(frozen=True)
class Load:
    name: str
    users: int
    runs: int


THROUGHPUT = Load("throughput", 50, 10)
LATENCY = Load("first event", 5, 20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drive(floor_dir: Path, ws_url: str, tokens: Path, load: Load) -> dict[str, Any]:
    """One run of the shared driver; its JSON line."""
    command = [sys.executable, str(floor_dir / "drive.py"), ws_url, str(tokens), str(load.users)]
    done = subprocess.run([*command, str(load.runs)], capture_output=True, text=True, check=True, timeout=900)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure_floor(floor_dir: Path, work: Path, loads: list[Load]) -> list[dict[str, Any]]:
    port = _free_port()
    tokens = work / "floor-tokens.txt"
    tokens.write_text("\n".join(f"floor-user-{i:08d}" for i in range(max(load.users for load in loads))))
    server = subprocess.Popen([sys.executable, str(floor_dir / "floor_server.py"), str(port)])
    try:
        _wait_port(port)
        return [drive(floor_dir, f"ws://127.0.0.1:{port}/", tokens, load) for load in loads]
    finally:
        server.terminate()
        server.wait(timeout=10)


def measure_tokenwise(floor_dir: Path, work: Path, loads: list[Load]) -> list[dict[str, Any]]:
    with local_server() as (url, _pid):
        tokens = work / "tokenwise-tokens.txt"
        tokens.write_text("\n".join(asyncio.run(_sign_up(url, max(load.users for load in loads)))))
        ws_url = url.replace("http://", "ws://") + "/ws"
        return [drive(floor_dir, ws_url, tokens, load) for load in loads]


async def _sign_up(url: str, users: int) -> list[str]:
    tokens = []
    for i in range(users):
        async with Client(url) as client:
            email = f"floor-{i}-{uuid.uuid4().hex[:8]}@bench.tokenwise.dev"
            await client.sign_up(email, PASSWORD)
            tokens.append((await client.sign_in(email, PASSWORD)).access_token)
    return tokens


def _wait_port(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the floor did not listen on {port}")


def verdicts(floor: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of issue 13, from the two runs of each load."""
    (f_thr, f_lat), (t_thr, t_lat) = floor, ours
    ratio = t_thr["events_per_s"] / f_thr["events_per_s"]
    bound = max(25.0, 2 * f_lat["first_event_ms_p99"])
    return [
        {
            "target": "events/s, 50 users x 10 runs",
            "floor": f_thr["events_per_s"],
            "tokenwise": t_thr["events_per_s"],
            "ratio": round(ratio, 3),
            "bound": ">= 0.5 x floor",
            "met": ratio >= 0.5,
        },
        {
            "target": "first event p99 (ms), 5 users x 20 runs",
            "floor": f_lat["first_event_ms_p99"],
            "tokenwise": t_lat["first_event_ms_p99"],
            "ratio": round(t_lat["first_event_ms_p99"] / f_lat["first_event_ms_p99"], 2),
            "bound": f"<= {bound:.1f} ms",
            "met": t_lat["first_event_ms_p99"] <= bound,
        },
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor-dir", type=Path, default=SHARED)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (args.floor_dir / "floor_server.py").exists():
        print(f"no floor_server.py in {args.floor_dir}: pass --floor-dir", file=sys.stderr)
        return 2
    loads = [THROUGHPUT, LATENCY]
    with tempfile.TemporaryDirectory(prefix="tokenwise-floor-") as work:
        floor = measure_floor(args.floor_dir, Path(work), loads)
        ours = measure_tokenwise(args.floor_dir, Path(work), loads)
    targets_met = verdicts(floor, ours)
    report = {"machine": machine(), "floor": floor, "tokenwise": ours, "targets": targets_met}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    console = Console()
    runs = Table(title="the same driver, floor then Tokenwise (ms: p50 / p99)")
    for column in ("load", "server", "runs/s", "events/s", "first event", "final event", "errors", "bad seq"):
        runs.add_column(column)
    for load, f, t in zip(loads, floor, ours, strict=True):
        for name, figures in (("floor", f), ("tokenwise", t)):
            runs.add_row(
                f"{load.users} users x {load.runs}",
                name,
                str(figures["runs_per_s"]),
                f"{figures['events_per_s']:,.0f}",
                f"{figures['first_event_ms_p50']} / {figures['first_event_ms_p99']}",
                f"{figures['final_event_ms_p50']} / {figures['final_event_ms_p99']}",
                str(figures["errors"]),
                str(figures["runs_with_bad_seq"]),
            )
    console.print(runs)
    targets = Table(title="issue 13 targets (embedded mode)")
    for column in ("target", "floor", "tokenwise", "ratio", "bound", "met"):
        targets.add_column(column)
    for row in targets_met:
        targets.add_row(*(str(row[k]) if k != "met" else ("yes" if row[k] else "no") for k in row))
    console.print(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
