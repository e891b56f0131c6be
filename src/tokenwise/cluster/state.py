"""The cluster's state file (`<dir>/cluster.json`): what runs, so another shell can find and stop it.

The launcher rewrites the file whenever a process starts or restarts and deletes it once everything has
stopped. `tokenwise cluster --stop` sends SIGTERM to the launcher, which stops the rest in order; if the
launcher itself is gone (killed with SIGKILL), the processes it recorded are stopped directly, in the
same order. A process is recognised by its pid and start time, never by its name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokenwise.cluster.processes import STOP_RANK, Child, alive, start_time

STATE_FILE = "cluster.json"


@dataclass(frozen=True)
class Entry:
    """One recorded process."""

    name: str
    role: str
    port: int
    pid: int
    started: int | None
    log: str
    stop_signal: int = int(signal.SIGTERM)

    @classmethod
    def of(cls, child: Child) -> Entry:
        assert child.pid is not None
        log, stop = str(child.log), int(child.stop_signal)
        return cls(child.name, child.role, child.port, child.pid, child.started, log, stop)

    def alive(self) -> bool:
        return alive(self.pid, self.started)


@dataclass
class State:
    """The launcher (pid, start time), the URL and the processes, as written to the state file."""

    launcher_pid: int
    launcher_started: int | None
    url: str
    ready: bool = False
    database_url: str = ""
    bus_url: str = ""
    processes: list[Entry] = field(default_factory=list)

    @classmethod
    def mine(cls, url: str) -> State:
        """The state of this process as the launcher."""
        return cls(os.getpid(), start_time(os.getpid()), url)

    def launcher_alive(self) -> bool:
        return alive(self.launcher_pid, self.launcher_started)

    def save(self, directory: Path) -> None:
        path = directory / STATE_FILE
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(asdict(self), indent=2) + "\n")
        scratch.replace(path)  # atomic: a reader never sees half a file

    @classmethod
    def load(cls, directory: Path) -> State | None:
        try:
            raw: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
            raw["processes"] = [Entry(**entry) for entry in raw.get("processes", [])]
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    @staticmethod
    def remove(directory: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            (directory / STATE_FILE).unlink()


def stop_entries(entries: list[Entry], say: Callable[[str], None], timeout_s: float = 30.0) -> None:
    """Stop recorded processes (not our children) rank by rank: signal, wait, then SIGKILL."""
    for rank in sorted({STOP_RANK.get(e.role, 0) for e in entries}):
        group = [e for e in entries if STOP_RANK.get(e.role, 0) == rank and e.alive()]
        for entry in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(entry.pid, entry.stop_signal)
        deadline = time.monotonic() + timeout_s
        while any(e.alive() for e in group) and time.monotonic() < deadline:
            time.sleep(0.1)
        for entry in group:
            if entry.alive():
                say(f"{entry.name} (pid {entry.pid}) did not stop within {timeout_s:g} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry.pid, signal.SIGKILL)
            else:
                say(f"stopped {entry.name} (pid {entry.pid})")


def stop_cluster(directory: Path, say: Callable[[str], None], timeout_s: float = 90.0) -> bool:
    """Stop the cluster recorded in `directory`; False when none was running there."""
    state = State.load(directory)
    if state is None:
        return False
    was_running = state.launcher_alive()
    if was_running:
        say(f"stopping the cluster of launcher pid {state.launcher_pid} ({state.url})")
        os.kill(state.launcher_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while state.launcher_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if state.launcher_alive():
            say(f"the launcher did not exit within {timeout_s:g} s: stopping its processes directly")
        else:
            say("the launcher stopped its processes and exited")
    leftovers = [entry for entry in state.processes if entry.alive()]
    if leftovers:
        stop_entries(leftovers, say)
    elif not was_running:
        say(f"nothing of the cluster in {directory} was still running (a stale state file)")
    if not state.launcher_alive():
        State.remove(directory)
    return True
