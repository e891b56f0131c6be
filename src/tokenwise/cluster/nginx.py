"""nginx (the Debian package) as the cluster's load balancer: round-robin, no affinity, WebSockets passed.

`/auth/` goes to the auth service and everything else (`/api/*`, `/ws`, SSE, the web app, health) to the
API processes in turn. Any API process serves any client, so there is no `ip_hash` or sticky cookie. The
server runs in the foreground (`daemon off;`) as a child of the launcher, with its configuration, pid
file and temp directories under `<dir>/nginx` and its logs under `<dir>/logs`. As root, `user root;` lets
its workers use that directory; otherwise nginx runs as the current user and cannot change it anyway.

The per-client connection cap is nginx's (`limit_conn`, 503 like the server's own): the API processes
see every client arrive from nginx's address, so theirs is off (`max_connections_per_address=0`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tokenwise.cluster.engines import INSTALL_HINT
from tokenwise.cluster.processes import Child, StartupFailed
from tokenwise.config import Settings

# The access log names the upstream that served each request: that is how to see the round-robin.
_LOG_FORMAT = (
    '$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time upstream=$upstream_addr'
)


def nginx_binary() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.isfile("/usr/sbin/nginx") else None)
    if binary is None:
        raise StartupFailed(f"nginx not found: {INSTALL_HINT}")
    return binary


@dataclass(frozen=True)
class Balancer:
    """What the configuration needs: where nginx listens and lives, and the upstreams' ports."""

    port: int
    home: Path  # nginx.conf, nginx.pid, temp directories
    logs: Path
    auth_port: int
    api_ports: tuple[int, ...]
    idle_timeout_s: int = 75  # above the 20 s heartbeat, so quiet WebSockets stay open
    max_body_bytes: int = 512 * 1024 * 1024
    # Open connections per client address, WebSockets included (0: no cap); the setting's own default.
    max_connections_per_address: int = Settings.model_fields["max_connections_per_address"].default

    def config(self) -> str:
        h, logs = self.home, self.logs
        user = "user root;\n" if os.geteuid() == 0 else ""
        # max_fails/fail_timeout: a killed API is skipped for 2 s, then tried again (it may be back).
        apis = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in self.api_ports)
        timeouts = f"proxy_read_timeout {self.idle_timeout_s}s; proxy_send_timeout {self.idle_timeout_s}s;"
        common = f"""proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            {timeouts}
            proxy_buffering off;"""
        cap = self.max_connections_per_address
        # The zone (10 MB: well over 100,000 addresses) is declared either way; a cap of 0 leaves it unused.
        per_address = (
            f"""limit_conn per_address {cap};  # open connections per client address, WebSockets included
        limit_conn_status 503;"""
            if cap > 0
            else "# no per-address connection cap (max_connections_per_address=0)"
        )
        return f"""# Written by `tokenwise cluster` at every start; edits are lost.
daemon off;
{user}worker_processes 1;
worker_rlimit_nofile 16384;
pid {h}/nginx.pid;
error_log {logs}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    log_format cluster '{_LOG_FORMAT}';
    access_log {logs}/nginx-access.log cluster;
    client_body_temp_path {h}/client_body_temp;
    proxy_temp_path {h}/proxy_temp;
    fastcgi_temp_path {h}/fastcgi_temp;
    uwsgi_temp_path {h}/uwsgi_temp;
    scgi_temp_path {h}/scgi_temp;
    client_max_body_size {self.max_body_bytes + 1024 * 1024};
    limit_conn_zone $binary_remote_addr zone=per_address:10m;
    # An upgrade asks for one; every other request keeps the upstream connection alive.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    upstream tokenwise_auth {{
        server 127.0.0.1:{self.auth_port};
        keepalive 16;
    }}
    upstream tokenwise_api {{
{apis}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        {per_address}
        location /auth/ {{
            proxy_pass http://tokenwise_auth;
            {common}
        }}
        location / {{
            proxy_pass http://tokenwise_api;
            {common}
        }}
    }}
}}
"""

    def child(self, cwd: Path) -> Child:
        """Write the configuration, check it with `nginx -t`, and describe the server process."""
        binary = nginx_binary()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        conf = self.home / "nginx.conf"
        conf.write_text(self.config())
        argv = [binary, "-p", str(self.home), "-c", str(conf), "-e", str(self.logs / "nginx-error.log")]
        checked = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, check=False)  # noqa: S603
        if checked.returncode != 0:
            raise StartupFailed(f"nginx refused {conf}:\n{checked.stderr.strip()}")
        return Child(
            name="nginx",
            role="nginx",
            port=self.port,
            argv=argv,
            log=self.logs / "nginx.log",
            cwd=cwd,
            ready=self.answers,
            stop_timeout_s=10.0,
        )

    def answers(self) -> bool:
        """True when an API answers /health/ready and the auth service its JWKS, both through nginx."""
        base = f"http://127.0.0.1:{self.port}"
        try:
            with httpx.Client(base_url=base, timeout=2.0) as http:
                api = http.get("/health/ready")
                jwks = http.get("/auth/.well-known/jwks.json")
        except httpx.HTTPError:
            return False
        return api.status_code == 200 and jwks.status_code == 200
