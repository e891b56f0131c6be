"""nginx (the Debian package) in front of a test server, from a configuration generated per test.

Each instance runs in the foreground (`daemon off;`) as a child process, with its pid file, logs and temp
directories in its own directory, on a free loopback port. As root, `user root;` lets the workers use
that (0700) directory. `Proxy` describes how the proxy treats the traffic: a correct WebSocket proxy by
default, or one of the broken ones that the doctor must recognise.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support.servers import SYSTEM_DEPS_HINT, MissingBinaryError, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Proxy:
    """How the proxy forwards requests (the defaults are the nginx block of docs/operations.md)."""

    upgrade: bool = True  # HTTP/1.1 upstream with Upgrade and Connection forwarded
    strip: tuple[str, ...] = ()  # request headers cleared on the way
    read_timeout_s: float = 75.0  # idle time after which nginx cuts a connection (WebSockets too)
    forward_host: bool = True  # Host as the client sent it


def _location(prefix: str, upstream: str, proxy: Proxy) -> str:
    lines = [f"proxy_pass {upstream};"]
    if proxy.upgrade:
        lines += [
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection $connection_upgrade;",
        ]
    if proxy.forward_host:
        lines.append("proxy_set_header Host $http_host;")
    lines += [
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        f"proxy_read_timeout {proxy.read_timeout_s:g}s;",
        f"proxy_send_timeout {max(proxy.read_timeout_s, 75):g}s;",
    ]
    lines += [f'proxy_set_header {header} "";' for header in proxy.strip]
    body = "\n            ".join(lines)
    return f"        location {prefix} {{\n            {body}\n        }}"


class Nginx:
    """`routes` maps a location prefix to an upstream URL, e.g. {"/auth/": auth.url, "/": api.url}."""

    def __init__(self, directory: Path, routes: dict[str, str], proxy: Proxy | None = None) -> None:
        if not Path(NGINX).exists():
            raise MissingBinaryError(f"nginx is not installed. {SYSTEM_DEPS_HINT}")
        self.directory, self.routes, self.proxy = directory, routes, proxy or Proxy()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        d = self.directory
        locations = "\n".join(
            _location(prefix, upstream, self.proxy) for prefix, upstream in self.routes.items()
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""daemon off;
{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{self.port};
{locations}
    }}
}}
"""

    def start(self, timeout: float = 10.0) -> Nginx:
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.directory), "-c", str(conf), "-e", str(self.directory / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "stderr.log").open("wb"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nginx did not listen on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown: open WebSockets are cut
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        parts = [self.directory / "stderr.log", self.directory / "error.log"]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in parts if p.exists())

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
