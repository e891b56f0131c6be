"""Benchmark: the golden path (sign in → WebSocket → agents → live events → report) under load.

The same load driver as `tokenwise loadtest`, with `--mode all` unless another mode is given: a ramp to
saturation and the time to first event at half of it, N users, a connect burst and 10,000 idle connections,
against one server process that it starts (or `--url`). See bench/README.md and docs/performance.md.

    .venv/bin/python bench/golden_path.py [--json] [tokenwise loadtest options]
"""

from __future__ import annotations

import sys

import tokenwise.cli.loadtest  # noqa: F401 - registers the loadtest command
from tokenwise.cli import app


def main(argv: list[str]) -> None:
    args = list(argv)
    if not any(arg == "--mode" or arg.startswith("--mode=") for arg in args):
        args = ["--mode", "all", *args]
    app(["loadtest", *args], prog_name="golden_path.py")


if __name__ == "__main__":
    main(sys.argv[1:])
