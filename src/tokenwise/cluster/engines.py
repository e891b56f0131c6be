"""PostgreSQL and Redis for a local cluster, from the Debian packages, with their data in the cluster's dir.

PostgreSQL refuses to run as root. When the launcher is root, the server runs as the `postgres` user the
Debian package creates (else `nobody`), and its data directory belongs to that user. That user must be
able to reach the directory: when the cluster's directory is out of its reach (under a 0700 home or
temporary directory), the data goes to /var/tmp/tokenwise-cluster-<hash> instead and
`<dir>/postgres` is a symbolic link to it. The postmaster is started directly, not through `pg_ctl`, so
the launcher holds its real pid and stops it like any other child (SIGINT: PostgreSQL's fast shutdown).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenwise.cluster.processes import Child, StartupFailed

_INITDB_OPTIONS = ("--auth=trust", "--encoding=UTF8", "--locale=C")
INSTALL_HINT = "install it with `make system-deps` (scripts/install-system-deps.sh)"


def _clean_env(**extra: str) -> dict[str, str]:
    # A developer's PGHOST/PGPORT/PGDATA/... must not redirect the tools to another server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class RunAs:
    """Who PostgreSQL runs as: the current user, or an unprivileged one when the launcher is root."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_postgres(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls(name=pwd.getpwuid(os.geteuid()).pw_name)
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
        raise StartupFailed("running as root, but there is neither a 'postgres' nor a 'nobody' user")

    def popen_options(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, -1 if self.gid is None else self.gid)

    def can_enter(self, path: Path) -> bool:
        """True when this user can reach `path` (search permission on it and every parent)."""
        if self.uid is None:
            return True
        probe = subprocess.run(  # noqa: S603 - fixed argv
            ["test", "-x", str(path)],  # noqa: S607 - coreutils' test, from PATH
            cwd="/",
            check=False,
            **self.popen_options(),
        )
        return probe.returncode == 0


def postgres_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres (Debian), else PATH's."""
    versioned = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in versioned:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    found = shutil.which("initdb")
    if found and (Path(found).parent / "postgres").is_file():
        return Path(found).parent
    raise StartupFailed(f"PostgreSQL server binaries (initdb, postgres) not found: {INSTALL_HINT}")


class Postgres:
    """A PostgreSQL server on 127.0.0.1 with trust authentication, its data in `home` (initdb once)."""

    user = "tokenwise"
    database = "tokenwise"

    def __init__(self, home: Path, log: Path, port: int, max_connections: int) -> None:
        self.home, self.log, self.port, self.max_connections = home, log, port, max_connections
        self.bin = postgres_bin_dir()
        self.run_as = RunAs.for_postgres()
        psql = self.bin / "psql"
        self.psql_path = str(psql) if psql.is_file() else (shutil.which("psql") or "psql")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def version(self) -> str:
        return self.bin.parent.name

    def prepare(self) -> Path:
        """Find or make the data directory; initdb when it holds no cluster yet. Returns the data dir."""
        data = self._data_dir()
        marker = data / "PG_VERSION"
        if marker.exists():
            made_by = marker.read_text().strip()
            if self.version.isdigit() and made_by != self.version:
                raise StartupFailed(
                    f"{data} was made by PostgreSQL {made_by}; the binaries are version {self.version} "
                    f"({self.bin}): delete {self.home} to start afresh, or install PostgreSQL {made_by}"
                )
            return data
        if any(data.iterdir()):
            raise StartupFailed(f"{data} is neither empty nor a PostgreSQL data directory")
        result = subprocess.run(  # noqa: S603 - fixed argv
            [str(self.bin / "initdb"), "-D", str(data), "-U", self.user, *_INITDB_OPTIONS],
            cwd=data,  # initdb must be able to stat its working directory
            env=self._env(data),
            capture_output=True,
            text=True,
            check=False,
            **self.run_as.popen_options(),
        )
        if result.returncode != 0:
            raise StartupFailed(f"initdb failed (as {self.run_as.name}):\n{result.stdout}{result.stderr}")
        return data

    def child(self, data: Path) -> Child:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",  # TCP only: no socket directory to create or share
            "max_connections": str(self.max_connections),
            "logging_collector": "off",
        }
        argv = [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return Child(
            name="postgres",
            role="postgres",
            port=self.port,
            argv=argv,
            log=self.log,
            cwd=data,
            env=self._env(data),
            ready=lambda: self.query("SELECT 1") == "1",
            stop_signal=signal.SIGINT,  # fast shutdown: roll back open transactions, checkpoint, exit
            stop_timeout_s=30.0,
            popen_options=self.run_as.popen_options(),
        )

    def ensure_database(self) -> None:
        exists = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608 - a constant
        if self.query(exists) != "1":
            self.query(f'CREATE DATABASE "{self.database}"')

    def query(self, sql: str, database: str = "postgres") -> str | None:
        """Run one statement with psql over TCP; its bare output, or None when it failed."""
        argv = [self.psql_path, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
        argv += ["-p", str(self.port), "-U", self.user, "-d", database, "-c", sql]
        result = subprocess.run(  # noqa: S603 - fixed argv
            argv, capture_output=True, text=True, check=False, env=_clean_env(PGCONNECT_TIMEOUT="3")
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def _env(self, data: Path) -> dict[str, str]:
        user = self.run_as.name
        return _clean_env(HOME=str(data), USER=user, LOGNAME=user, LC_ALL="C")

    def _data_dir(self) -> Path:
        if self.home.is_symlink():
            return self.home.resolve()
        if self.run_as.can_enter(self.home.parent):
            self.home.mkdir(mode=0o700, exist_ok=True)
            self.run_as.own(self.home)
            return self.home
        if self.home.exists():
            raise StartupFailed(
                f"PostgreSQL runs as {self.run_as.name!r}, who cannot reach {self.home}: "
                "make its parent directories searchable (chmod o+x) or use another --dir"
            )
        # Out of the unprivileged user's reach (e.g. under /root or a 0700 temp dir): keep the data in
        # /var/tmp (kept across reboots, unlike /tmp) and leave a link where it is expected.
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        elsewhere = Path("/var/tmp") / f"tokenwise-cluster-{digest}"  # noqa: S108 - private 0700 dir
        elsewhere.mkdir(mode=0o700, exist_ok=True)
        self.run_as.own(elsewhere)
        self.home.symlink_to(elsewhere, target_is_directory=True)
        return elsewhere


class Redis:
    """A redis-server on 127.0.0.1 without persistence: the bus never holds the only copy of anything."""

    def __init__(self, home: Path, log: Path, port: int) -> None:
        self.home, self.log, self.port = home, log, port
        binary = shutil.which("redis-server") or next(
            (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.isfile(p)), None
        )
        if binary is None:
            raise StartupFailed(f"redis-server not found: {INSTALL_HINT}")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def child(self) -> Child:
        self.home.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.home)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        return Child(
            name="redis",
            role="redis",
            port=self.port,
            argv=argv,
            log=self.log,
            cwd=self.home,
            ready=self.ping,
            stop_timeout_s=10.0,
        )

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
