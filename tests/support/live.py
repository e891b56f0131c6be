"""The real server for tests: in a thread of the test process, or as a `tokenwise serve` subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from support.servers import free_port
from tokenwise.app import create_app
from tokenwise.config import Settings
from tokenwise.db.migrate import upgrade
from tokenwise.server import Server, make_server


def test_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a server on a free loopback port with its own data directory."""
    values: dict[str, Any] = {"data_dir": data_dir, "host": "127.0.0.1", "port": free_port()}
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def wait_healthy(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} did not become healthy")


class LiveServer:
    """`create_app(settings)` under our uvicorn Server, in a background thread with its own loop."""

    def __init__(self, settings: Settings, *, migrate: bool = True, ssl_certfile: Path | None = None) -> None:
        """`ssl_certfile` (a PEM of the key and certificate chain) serves https/wss instead of http/ws."""
        self.settings = settings
        self.scheme = "https" if ssl_certfile else "http"
        if migrate:
            upgrade(settings.resolved_database_url)
        self.app = create_app(settings)
        tls = {"ssl_certfile": str(ssl_certfile)} if ssl_certfile else {}
        self.server: Server = make_server(self.app, settings, log_level="warning", **tls)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.settings.host}:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"{self.scheme.replace('http', 'ws')}://{self.settings.host}:{self.settings.port}/ws"

    @property
    def services(self) -> Any:
        return self.app.state.services

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's own loop (to read its services' state)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)


class ServerProcess:
    """`python -m tokenwise serve` as its own process, configured through TOKENWISE_* variables."""

    def __init__(self, data_dir: Path, *, role: str = "all", migrate: bool = True, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "TOKENWISE_DATA_DIR": str(data_dir),
            "TOKENWISE_PORT": str(self.port),
            "TOKENWISE_HOST": "127.0.0.1",
            **env,
        }
        self.role = role
        self.log_path = data_dir / f"server-{role}-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        if migrate:
            subprocess.run(
                [sys.executable, "-m", "tokenwise", "migrate"], env=self.env, check=True, capture_output=True
            )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, *, wait: bool = True) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tokenwise", "serve", "--role", self.role, "--log-level", "warning"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            wait_healthy(self.url)
        return self

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def spawn(started: list[ServerProcess], data_dir: Path, role: str, **env: str) -> ServerProcess:
    """Start a process on the database migrated in `data_dir`, without waiting for it (the processes of a
    test boot in parallel; wait with `wait_healthy`). It joins `started`, which the `processes` fixture
    stops after the test."""
    process = ServerProcess(data_dir, role=role, migrate=False, **env)
    started.append(process)
    return process.start(wait=False)
