"""The cluster's child processes: how one is started, recognised later by another shell, and stopped.

Every child runs in a session of its own, so a Ctrl-C in the terminal reaches only the launcher, which
then stops the children in its own order. A pid alone could name a recycled process by the time
`tokenwise cluster --stop` runs, so a child is recorded as its pid plus its start time (Linux, /proc).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Stop order: the Tokenwise processes first (APIs and workers together, then auth), then the load
# balancer, then the bus, then the database, which everything before may still write to while it stops.
STOP_RANK = {"api": 0, "worker": 0, "auth": 1, "nginx": 2, "redis": 3, "postgres": 4}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:`port`, or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def listening(port: int) -> bool:
    """True when a connection to 127.0.0.1:`port` opens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when no such live process exists."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":  # exited, not yet reaped: as good as gone
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """True when `pid` is still the process that started at `started`."""
    return started is not None and start_time(pid) == started


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class StartupFailed(RuntimeError):
    """A child did not start or did not become ready."""


@dataclass
class Child:
    """One process of the cluster: what to run, where it logs, how to tell it is ready and to stop it."""

    name: str  # "api-1", "worker-2", "postgres", ...
    role: str  # a key of STOP_RANK
    port: int
    argv: list[str]
    log: Path
    cwd: Path
    env: dict[str, str] | None = None
    ready: Callable[[], bool] = lambda: True
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 15.0
    popen_options: dict[str, Any] = field(default_factory=dict)  # user/group for PostgreSQL as root
    process: subprocess.Popen[bytes] | None = None
    started: int | None = None
    exits: list[float] = field(default_factory=list)  # monotonic times of unexpected exits

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self) -> None:
        """Start the process, its output appended to its log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            out.write(f"\n=== {self.name} started {stamp}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own argv, never a shell
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.popen_options,
            )
        self.started = start_time(self.process.pid)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def wait_ready(self, timeout_s: float, interrupted: Callable[[], bool]) -> None:
        """Poll `ready` until it answers; StartupFailed (with the log's tail) if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while True:
            if interrupted():
                raise KeyboardInterrupt
            if not self.running():
                raise StartupFailed(
                    f"{self.name} exited ({describe_exit(self.returncode())}) while starting; "
                    f"the end of {self.log}:\n{tail(self.log)}"
                )
            if self.ready():
                return
            if time.monotonic() > deadline:
                raise StartupFailed(
                    f"{self.name} was not ready after {timeout_s:g} s; "
                    f"the end of {self.log}:\n{tail(self.log)}"
                )
            time.sleep(0.2)

    def send(self, sig: signal.Signals | None = None) -> None:
        """Send the stop signal (or `sig`), if the process still runs."""
        if self.running():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig or self.stop_signal)

    def wait(self, timeout_s: float) -> bool:
        """Wait for the process to exit; True when it did (it is then reaped)."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        self.send(signal.SIGKILL)
        self.wait(10)


def stop_all(children: list[Child], say: Callable[[str], None]) -> None:
    """Stop children rank by rank (STOP_RANK); each rank is signalled at once, then waited for."""
    for rank in sorted({STOP_RANK[child.role] for child in children}):
        group = [child for child in children if STOP_RANK[child.role] == rank and child.running()]
        for child in group:
            child.send()
        for child in group:
            if not child.wait(child.stop_timeout_s):
                say(f"{child.name} (pid {child.pid}) did not stop within {child.stop_timeout_s:g} s: killed")
                child.kill()
        if group:
            say("stopped " + ", ".join(f"{c.name} ({describe_exit(c.returncode())})" for c in group))


def describe_exit(code: int | None) -> str:
    """`status 0`, `status 1`, `killed by SIGKILL`, ... for a returncode."""
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"status {code}"
