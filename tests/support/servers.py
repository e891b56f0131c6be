"""Real PostgreSQL and Redis servers for the test run, started from the system binaries.

Nothing is mocked: each server is a private instance in a temporary directory, listening on a
free loopback port, so it never collides with a system service (or another test run) and is
thrown away afterwards. The binaries come from `make system-deps`.

PostgreSQL refuses to run as root. When the tests run as root (CI, containers) the server
processes are spawned as an unprivileged user (``postgres`` if the Debian package created
it, else ``nobody``) via ``subprocess.Popen(user=..., group=...)`` and the data directory is
chowned to it. The postmaster is spawned directly (not via ``pg_ctl``/``runuser``) so that we
hold its real pid: ``stop(mode="immediate")`` and ``kill()`` then act on exactly that process,
which the tests use to simulate "database down".
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

SYSTEM_DEPS_HINT = "Run `make system-deps` (scripts/install-system-deps.sh) to install it."

StopMode = Literal["smart", "fast", "immediate"]
# How PostgreSQL maps shutdown modes to signals sent to the postmaster.
_PG_STOP_SIGNALS: dict[str, signal.Signals] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}
_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ServerError(RuntimeError):
    """A test server could not be started or controlled."""


class MissingBinaryError(ServerError):
    """The server binaries are not installed on this machine."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def to_asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy) -> ``postgresql://...`` (asyncpg / libpq)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _clean_env(**extra: str) -> dict[str, str]:
    # A developer's PGHOST/PGPORT/PGDATA/... must not redirect our tools to another server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc); postgres backends run in their own sessions."""
    result = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Format: "pid (comm) state ppid ..."; comm may contain spaces/parens, so split after ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            result.append(int(stat.parent.name))
    return result


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _is_zombie(p)]
        if pids:
            time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# --------------------------------------------------------------------------------------------
# Running as an unprivileged user


@dataclass(frozen=True)
class RunAs:
    """Who the server processes run as; ``None`` fields mean "the current user"."""

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
        raise ServerError("Running as root, but neither a 'postgres' nor a 'nobody' user exists.")

    def popen_kwargs(self) -> dict[str, object]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def make_private_dir(self, prefix: str) -> Path:
        """A fresh 0700 temp dir owned by this user, whose parents it can traverse."""
        parents = [tempfile.gettempdir(), "/tmp", "/dev/shm"]
        for parent in dict.fromkeys(parents):
            if not os.path.isdir(parent):
                continue
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            if self.uid is not None:
                os.chown(path, self.uid, self.gid if self.gid is not None else -1)
            if self._can_write(path):
                return path
            shutil.rmtree(path, ignore_errors=True)
        raise ServerError(f"No temp dir writable by user {self.name!r} (tried {parents}).")

    def _can_write(self, path: Path) -> bool:
        if self.uid is None:
            return os.access(path, os.W_OK | os.X_OK)
        # A root-owned 0700 parent (e.g. TMPDIR under /root) would hide the dir from the user.
        probe = subprocess.run(
            ["test", "-w", str(path), "-a", "-x", str(path)],
            cwd="/",
            check=False,
            **self.popen_kwargs(),  # type: ignore[call-overload]
        )
        return bool(probe.returncode == 0)


# --------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass(frozen=True)
class PgBinaries:
    initdb: Path
    postgres: Path
    pg_ctl: Path | None
    psql: Path

    @classmethod
    def find(cls) -> PgBinaries:
        """Search /usr/lib/postgresql/<newest>/bin first (Debian layout), then PATH."""
        versioned = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        required = ("initdb", "postgres", "psql")  # pg_ctl is optional: we signal the postmaster
        for bindir in versioned:
            if all((bindir / tool).is_file() for tool in required):
                ctl = bindir / "pg_ctl"
                return cls(
                    bindir / "initdb", bindir / "postgres", ctl if ctl.is_file() else None, bindir / "psql"
                )
        found = {tool: shutil.which(tool) for tool in (*required, "pg_ctl")}
        initdb, postgres, psql, ctl_path = found["initdb"], found["postgres"], found["psql"], found["pg_ctl"]
        if initdb and postgres and psql:
            return cls(Path(initdb), Path(postgres), Path(ctl_path) if ctl_path else None, Path(psql))
        missing = ", ".join(tool for tool in required if not found[tool])
        raise MissingBinaryError(
            f"PostgreSQL server binaries not found ({missing} missing in /usr/lib/postgresql/*/bin "
            f"and PATH). {SYSTEM_DEPS_HINT}"
        )


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth and fsync off.

    ``url`` is the SQLAlchemy URL of a database created at first start; ``create_database()``
    makes more. The port stays the same across ``stop()``/``start()`` so URLs remain valid.
    """

    superuser = "postgres"

    def __init__(self, dbname: str = "tokenwise_test", start_timeout: float = 60.0) -> None:
        self.bin = PgBinaries.find()
        self.dbname = dbname
        self.start_timeout = start_timeout
        self.run_as = RunAs.for_postgres()
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        if self._base is None:
            raise ServerError("PostgresServer was never started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    def start(self) -> PostgresServer:
        """Start (first call: initdb + create ``dbname``); no-op if already running."""
        if self.is_running():
            return self
        if self._base is None:
            self._base = self.run_as.make_private_dir("tokenwise-pg-")
            _live_servers.add(self)
            try:
                self._initdb()
                # Only the first start may pick another port (a free port can be taken in between);
                # later restarts must keep it or existing URLs would point nowhere.
                for attempt in range(3):
                    self.port = free_port()
                    try:
                        self._launch()
                        break
                    except ServerError:
                        if attempt == 2 or "already in use" not in _tail(self.log_path, 10):
                            raise
                self.create_database(self.dbname)
            except BaseException:
                self.close()  # a half-initialised cluster must not be reused by a retry
                raise
        else:
            self._launch()
        return self

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Shut down like ``pg_ctl stop -m <mode>``; ``immediate`` = no checkpoint, crash recovery
        on next start (what a sudden database outage looks like to clients)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        children = _children(proc.pid)
        proc.send_signal(_PG_STOP_SIGNALS[mode])
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        _wait_gone(children, timeout=5)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends (a hard crash); ``start()`` recovers."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        children = _children(proc.pid)
        proc.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        # Restart would refuse while old backends still hold the shared memory segment.
        _wait_gone(children, timeout=10)

    def close(self) -> None:
        """Stop for good and delete the data directory."""
        try:
            self.stop("fast", timeout=15)
        finally:
            self.kill()
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None
            _live_servers.discard(self)

    # ---- databases -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database: postgresql+asyncpg://postgres@127.0.0.1:PORT/db"""
        return self.url_for(self.dbname)

    @property
    def dsn(self) -> str:
        """libpq/asyncpg DSN of the default database."""
        return to_asyncpg_dsn(self.url)

    def url_for(self, dbname: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (random ``test_...`` name unless given) and return its name."""
        name = name or f"test_{uuid.uuid4().hex[:16]}"
        self.psql(f'CREATE DATABASE "{self._checked(name)}"')
        return name

    def drop_database(self, name: str) -> None:
        # FORCE: disconnect whatever the test (or an app engine it started) left open.
        self.psql(f'DROP DATABASE IF EXISTS "{self._checked(name)}" WITH (FORCE)')

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with psql over TCP (psql is a client, fine as root) and return its output."""
        # -X: ignore ~/.psqlrc; -A -t: bare values; ON_ERROR_STOP: a failed statement fails psql.
        cmd = [str(self.bin.psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.superuser, "-d", dbname, "-c", sql]
        result = subprocess.run(
            cmd, capture_output=True, text=True, check=False, env=_clean_env(PGCONNECT_TIMEOUT="10")
        )
        if result.returncode != 0:
            raise ServerError(f"psql failed ({sql!r}): {result.stderr.strip()}")
        return result.stdout.strip()

    @staticmethod
    def _checked(name: str) -> str:
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"unsafe database name {name!r}")
        return name

    # ---- internals -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        user = self.run_as.name
        return _clean_env(HOME=str(self.base_dir), USER=user, LOGNAME=user, LC_ALL="C")

    def _initdb(self) -> None:
        # --no-sync: nothing to gain from flushing a throwaway cluster to disk.
        cmd = [str(self.bin.initdb), "-D", str(self.data_dir), "-U", self.superuser, "--auth=trust"]
        cmd += ["--encoding=UTF8", "--locale=C", "--no-sync"]
        result = subprocess.run(
            cmd,
            cwd=self.base_dir,  # initdb must be able to stat its cwd; /root would not do
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
            **self.run_as.popen_kwargs(),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise ServerError(f"initdb failed as user {self.run_as.name!r}:\n{result.stdout}{result.stderr}")

    def _launch(self) -> None:
        sock_dir = self.base_dir / "sock"
        sock_dir.mkdir(exist_ok=True)
        if self.run_as.uid is not None:
            os.chown(sock_dir, self.run_as.uid, -1 if self.run_as.gid is None else self.run_as.gid)
        # Settings on the command line (not postgresql.conf) so every restart uses the same port.
        # fsync/full_page_writes off: fast, and still crash-safe for a *process* crash (kill(),
        # immediate stop), which is all the tests simulate. synchronous_commit stays on so that
        # committed rows really survive such a crash.
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(sock_dir),
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "logging_collector": "off",
        }
        cmd = [str(self.bin.postgres), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.base_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal must not hit the server first
                **self.run_as.popen_kwargs(),  # type: ignore[call-overload]
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise ServerError(f"postgres exited during startup; log:\n{_tail(self.log_path)}")
            if self._accepts_connections():
                return
            if time.monotonic() > deadline:
                self.kill()
                tail = _tail(self.log_path)
                raise ServerError(f"postgres not ready after {self.start_timeout}s; log:\n{tail}")
            time.sleep(0.1)

    def _accepts_connections(self) -> bool:
        # Port open is not enough (it rejects logins during recovery); run a real query.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            return False
        try:
            return self.psql("SELECT 1") == "1"
        except ServerError:
            return False


# --------------------------------------------------------------------------------------------
# Redis


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 without persistence."""

    def __init__(self, start_timeout: float = 30.0) -> None:
        binary = shutil.which("redis-server") or next(
            (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.isfile(p)), None
        )
        if binary is None:
            raise MissingBinaryError(f"redis-server not found in PATH. {SYSTEM_DEPS_HINT}")
        self.binary = binary
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        if self._base is None:
            raise ServerError("RedisServer was never started")
        return self._base / "redis.log"

    def start(self) -> RedisServer:
        """Start (no-op if running); the port is kept across restarts."""
        if self.is_running():
            return self
        if self._base is None:
            self._base = Path(tempfile.mkdtemp(prefix="tokenwise-redis-"))
            _live_servers.add(self)
            try:
                for attempt in range(3):
                    self.port = free_port()
                    try:
                        self._launch()
                        break
                    except ServerError:
                        if attempt == 2 or "already in use" not in _tail(self.log_path, 10):
                            raise
            except BaseException:
                self.close()
                raise
        else:
            self._launch()
        return self

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.kill()
            if self._base is not None:
                shutil.rmtree(self._base, ignore_errors=True)
                self._base = None
            _live_servers.discard(self)

    def command(self, *args: str) -> bytes:
        """Send one command (RESP) and return the raw reply line, e.g. ``b"+PONG"``."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload)
            return sock.recv(65536).split(b"\r\n", 1)[0]

    def flushall(self) -> None:
        if self.command("FLUSHALL") != b"+OK":
            raise ServerError("FLUSHALL failed")

    def _launch(self) -> None:
        assert self._base is not None
        # No RDB snapshots, no AOF: nothing the tests write needs to outlive the process.
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._base)]
        cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self._base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise ServerError(f"redis-server exited during startup; log:\n{_tail(self.log_path)}")
            with contextlib.suppress(OSError):
                if self.command("PING") == b"+PONG":
                    return
            if time.monotonic() > deadline:
                self.kill()
                tail = _tail(self.log_path)
                raise ServerError(f"redis-server not ready after {self.start_timeout}s; log:\n{tail}")
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Safety net: never leave servers behind, even if pytest dies before fixture teardown.

_live_servers: set[PostgresServer | RedisServer] = set()


@atexit.register
def _close_leftovers() -> None:
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.close()


_ServerT = TypeVar("_ServerT", PostgresServer, RedisServer)


def start_or_fail(factory: Callable[[], _ServerT]) -> _ServerT:
    """Start a server for a fixture. Missing binaries fail (never skip): CI must have them."""
    import pytest

    try:
        return factory().start()
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)
