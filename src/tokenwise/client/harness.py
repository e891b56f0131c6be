"""The server under test, for the load driver: start one process, read its CPU time and memory.

Linux only (/proc). The server runs as its own process, so what it spends is told apart from the load.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

# A local server is configured so that only the machine limits the load, not per-user or per-address
# policy (the driver signs up and signs in every simulated user from one address).
LOAD_SERVER_ENV = {
    "TOKENWISE_MAX_CONNECTIONS_PER_USER": "1000000",
    "TOKENWISE_MAX_CONNECTIONS_PER_ADDRESS": "0",
    "TOKENWISE_MESSAGES_PER_SECOND": "1000000",
    "TOKENWISE_MESSAGE_BURST": "1000000",
    "TOKENWISE_REGISTER_BURST_PER_ADDRESS": "1000000",
    "TOKENWISE_REGISTER_PER_HOUR_PER_ADDRESS": "1000000",
    "TOKENWISE_LOGIN_PER_MINUTE_PER_ADDRESS": "1000000",
    "TOKENWISE_TICKETS_PER_MINUTE_PER_USER": "1000000",
    "TOKENWISE_RUNS_PER_MINUTE_PER_USER": "1000000",
}


class ServerFailed(Exception):
    """The server the driver started did not come up."""


@dataclass
class ProcessProbe:
    """CPU time and resident memory of the server process, from /proc (Linux)."""

    pid: int

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def local_server() -> Iterator[tuple[str, int]]:
    """A `tokenwise serve` process in a temporary data directory; yields its URL and pid."""
    data_dir = Path(tempfile.mkdtemp(prefix="tokenwise-bench-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_") and k != "PORT"}
    env |= {**LOAD_SERVER_ENV, "TOKENWISE_DATA_DIR": str(data_dir), "TOKENWISE_HOST": "127.0.0.1"}
    env |= {k: v for k, v in os.environ.items() if k in LOAD_SERVER_ENV}  # the caller's own limits win
    env["TOKENWISE_PORT"] = str(port)
    log = data_dir / "server.log"
    try:
        migrated = subprocess.run(
            [sys.executable, "-m", "tokenwise", "migrate"], env=env, capture_output=True, check=False
        )
        if migrated.returncode != 0:
            raise ServerFailed(
                f"tokenwise migrate failed:\n{migrated.stderr.decode(errors='replace')[-2000:]}"
            )
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tokenwise", "serve", "--log-level", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log)
            yield url, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers /health; ServerFailed if it exits or takes over 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"the server exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise ServerFailed(f"the server at {url} did not become healthy:\n{log.read_text()[-2000:]}")


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit (a started server inherits it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
