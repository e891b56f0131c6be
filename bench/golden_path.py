"""Benchmark: the golden path (sign in → WebSocket → agents → live events → report) under load.

First the floor beside Tokenwise (bench/floor.py: the shared closed-loop driver against a bare
`websockets` server and against one `tokenwise serve` process, one right after the other, with issue 13's
targets); then the same load driver as `tokenwise loadtest`, with `--mode all` unless another mode is
given: a ramp to saturation and the time to first event at half of it, N users, a connect burst and
10,000 idle connections, against one server process that it starts (or `--url`). See bench/README.md
and docs/performance.md.

    .venv/bin/python bench/golden_path.py [--no-floor] [--floor-dir DIR] [tokenwise loadtest options]
"""

from __future__ import annotations

import sys

import floor  # bench/floor.py: the script's own directory is on the path

import tokenwise.cli.loadtest  # noqa: F401 - registers the loadtest command
from tokenwise.cli import app


def main(argv: list[str]) -> None:
    args = list(argv)
    floor_args: list[str] = []
    if "--floor-dir" in args:
        at = args.index("--floor-dir")
        floor_args, args = args[at : at + 2], args[:at] + args[at + 2 :]
    if "--no-floor" in args:
        args.remove("--no-floor")
    elif floor.main(floor_args) != 0:
        sys.exit(2)
    if not any(arg == "--mode" or arg.startswith("--mode=") for arg in args):
        args = ["--mode", "all", *args]
    app(["loadtest", *args], prog_name="golden_path.py")


if __name__ == "__main__":
    main(sys.argv[1:])
