"""The database handle: one async engine per app, sessions, and dependency-failure mapping.

SQLite is a file under the data directory, and a file can go away under a running process: deleted,
replaced, made read-only, or its disk filled. The connection would go on writing to a deleted file (lost
at the next start), so the file's identity (device and inode) is recorded when it is first opened, and
every session checks that the path still names that file; readiness also checks that it is writable and
that its disk has room (docs/operations.md#storage-faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from tokenwise.db.checkpoint import KEEP_WAL_BYTES, Checkpointer
from tokenwise.db.direct import REFUSING_SQLSTATES, Direct
from tokenwise.errors import ServiceUnavailable

log = logging.getLogger(__name__)

# Raised by drivers when the server is gone: refused connections, dropped sockets, timeouts.
_UNAVAILABLE = (OperationalError, DBAPIError, OSError, asyncio.TimeoutError, ConnectionError)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _refused(exc: DBAPIError) -> bool:
    """A driver error that means the database refuses to serve right now, not a bad statement."""
    cause: BaseException | None = exc.orig
    while cause is not None:
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str) and state.startswith(REFUSING_SQLSTATES):
            return True
        cause = cause.__cause__
    return False


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    try:
        database = make_url(url).database
    except ArgumentError:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@dataclass(frozen=True)
class StorageFault:
    """Why the SQLite file cannot take writes now. `reason`: deleted, replaced, not_writable, disk_full."""

    reason: str
    message: str  # for operators: names the file and what to do
    public: str  # for clients: no path


def _identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at `path`; None when there is none. Other errors (EACCES) raise."""
    try:
        stat = os.stat(path)  # once per checkout: a plain syscall, about a microsecond
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_dev, stat.st_ino


def _writable_fault(path: Path, min_free_bytes: int) -> StorageFault | None:
    directory = path.parent
    for where in (path, directory, Path(f"{path}-wal"), Path(f"{path}-shm")):
        # access(2) also answers EROFS for a read-only filesystem, even to root
        if where.exists() and not os.access(where, os.W_OK):
            what = "directory" if where == directory else "file"
            return StorageFault(
                "not_writable",
                f"database {what} {where} is not writable by this process (permissions, or a read-only "
                "filesystem): writes fail, or will once it is reopened; make it writable",
                "the database cannot be written",
            )
    free = shutil.disk_usage(directory).free
    if free < max(1, min_free_bytes):
        return StorageFault(
            "disk_full",
            f"the disk of database file {path} has {free} bytes free, under the minimum of {min_free_bytes} "
            "(TOKENWISE_MIN_FREE_DISK_BYTES): writes fail or soon will; free space",
            "the database disk is full",
        )
    return None


class Database:
    """Owns the engine. SQLite is serialized through one connection: no lock contention, no busy waits."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.path = sqlite_path(url)
        # (st_dev, st_ino) of the file the first connection opened; the path must keep naming it.
        self._opened: tuple[int, int] | None = None
        self._lost: StorageFault | None = None  # the file was deleted or replaced: for good
        self._ready_fault: str | None = None  # the reason readiness last failed for, to log changes once
        self._checkpointer: Checkpointer | None = None
        if self.is_sqlite:
            # Every use of the connection ends its own transaction (session.begin()), so the pool's
            # rollback on return would only be one more round trip to the SQLite thread.
            # check_same_thread: the golden path's statements (db/direct.py) run on the event loop's
            # thread while they hold the pool's one connection; aiosqlite's thread runs the rest.
            self.engine: AsyncEngine = create_async_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=30,
                pool_reset_on_return=None,
                connect_args={"check_same_thread": False},
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "connect", self._record_file)
            # Every checkout (ORM sessions and db/direct.py's raw connections alike) checks the file;
            # a lost file is never reconnected to (SQLite would create an empty one in its place).
            event.listen(self.engine.sync_engine, "checkout", self._refuse_lost_file)
            event.listen(self.engine.sync_engine, "do_connect", self._refuse_lost_file)
        else:
            self.engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=True,
                pool_timeout=5,
                connect_args={"timeout": 5},
            )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.direct = Direct(self)  # the golden path's plain SQL (db/direct.py)

    def _record_file(self, dbapi_connection: Any, _record: Any) -> None:
        """On connect: remember which file the path named (a reconnect keeps the first one's), and hand
        the WAL's checkpoints to a thread of their own (db/checkpoint.py)."""
        if self.path is not None and self._opened is None:
            with contextlib.suppress(OSError):
                self._opened = _identity(self.path)
        if self.path is not None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={KEEP_WAL_BYTES}")
            cursor.close()
            if self._checkpointer is None:
                self._checkpointer = Checkpointer(self.path)
                self._checkpointer.start()

    def _refuse_lost_file(self, *_args: Any) -> None:
        """Pool hook: ServiceUnavailable once the file was deleted or replaced (the checkout's connection
        is then invalidated by the pool: it only ever wrote to the lost file)."""
        fault = self.file_fault()
        if fault is not None:
            raise ServiceUnavailable(fault.public, dependency="database")

    def file_fault(self) -> StorageFault | None:
        """Whether the SQLite path no longer names the file this process opened (one stat call). Once
        lost, always lost: the process must be restarted."""
        if self._lost is not None:
            return self._lost
        if self.path is None or self._opened is None:
            return None
        try:
            now = _identity(self.path)
        except OSError:
            return None  # cannot tell (a directory made unreadable): the other checks will say
        if now == self._opened:
            return None
        fault = StorageFault(
            "deleted" if now is None else "replaced",
            f"database file {self.path} was deleted or replaced "
            f"({'it is gone' if now is None else 'the path names another file now'}); this process is no "
            "longer ready; restart it (restore the file from a backup first, or run `tokenwise migrate` "
            "for an empty database)",
            "the database file was deleted or replaced: this server must be restarted",
        )
        if self._lost is None:
            self._lost = fault
            log.error("%s", fault.message)  # once: every later use answers from `_lost`
        return fault

    def storage_fault(self, min_free_bytes: int = 0) -> StorageFault | None:
        """For readiness: the file is the one opened, it and its directory are writable, its disk has
        at least `min_free_bytes` free (and never none). Blocking calls: run it in a thread."""
        if self.path is None:
            return None
        fault = self.file_fault()
        if fault is not None:
            return fault
        try:
            fault = _writable_fault(self.path, min_free_bytes)
        except OSError as exc:
            message = f"database file {self.path} cannot be checked: {exc}"
            fault = StorageFault("unavailable", message, "the database is unavailable")
        if fault is not None and fault.reason != self._ready_fault:
            log.warning("%s", fault.message)  # once per fault, not once per probe
        elif fault is None and self._ready_fault is not None:
            log.warning("database file %s is writable again, with free space", self.path)
        self._ready_fault = None if fault is None else fault.reason
        return fault

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success; driver failures become ServiceUnavailable."""
        if self._lost is not None:  # (a file lost since is found by the pool's checkout hook)
            raise ServiceUnavailable(self._lost.public, dependency="database")
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except _UNAVAILABLE as exc:
            if (
                isinstance(exc, DBAPIError)
                and not isinstance(exc, OperationalError)
                and not exc.connection_invalidated
                and not _refused(exc)
            ):
                raise
            raise ServiceUnavailable("the database is unavailable", dependency="database") from exc

    async def ping(self) -> None:
        """Raise ServiceUnavailable unless the database answers a trivial query."""
        async with self.session() as session:
            await session.execute(text("SELECT 1"))

    async def check_ready(self, *, min_free_bytes: int = 0) -> None:
        """Readiness: `ping`, and for SQLite `storage_fault`; ServiceUnavailable names what is wrong."""
        if self.path is not None:
            fault = await asyncio.to_thread(self.storage_fault, min_free_bytes)
            if fault is not None:
                raise ServiceUnavailable(fault.message, dependency="database")
        await self.ping()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None


_START_FREE_BYTES = 1024 * 1024  # under it, start-up writes (keys, the demo user) would fail half-way


def startup_problem(url: str) -> str | None:
    """Why a server cannot start on the SQLite database at `url` (which file, what is wrong, what to do),
    or None; PostgreSQL and in-memory SQLite: None. Never creates the file."""
    path = sqlite_path(url)
    if path is None:
        return None
    migrate = "run `tokenwise migrate` (it creates the file and its tables)"
    if not path.parent.is_dir():
        return f"the data directory {path.parent} does not exist: {migrate}, or set TOKENWISE_DATA_DIR"
    if not path.exists():
        return f"the database file {path} does not exist (deleted, or never created): {migrate}"
    for what, where in (("file", path), ("directory", path.parent)):
        if not os.access(where, os.W_OK):
            return (
                f"the database {what} {where} is not writable by this process (permissions, or a "
                "read-only filesystem): make it writable for the user running the server"
            )
    free = shutil.disk_usage(path.parent).free
    if free < _START_FREE_BYTES:
        return f"the disk of the database file {path} is full ({free} bytes free): free space, then start"
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        return f"the database file {path} cannot be read ({exc}): restore it from a backup, or {migrate}"
    if "alembic_version" not in tables:
        return f"the database file {path} has no tables (it was never migrated): {migrate}"
    return None
