"""The database handle: one async engine per app, sessions, and dependency-failure mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from tokenwise.errors import ServiceUnavailable

# Raised by drivers when the server is gone: refused connections, dropped sockets, timeouts.
_UNAVAILABLE = (OperationalError, DBAPIError, OSError, asyncio.TimeoutError, ConnectionError)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# SQLSTATEs of a server that is there but will not serve: connection failures (class 08), shutting down
# or starting up (57P01-57P03), too many connections (53300), connections not allowed (55000).
_REFUSING = ("08", "57P01", "57P02", "57P03", "53300", "55000")


def _refused(exc: DBAPIError) -> bool:
    """A driver error that means the database refuses to serve right now, not a bad statement."""
    cause: BaseException | None = exc.orig
    while cause is not None:
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str) and state.startswith(_REFUSING):
            return True
        cause = cause.__cause__
    return False


class Database:
    """Owns the engine. SQLite is serialized through one connection: no lock contention, no busy waits."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # Every use of the connection ends its own transaction (session.begin()), so the pool's
            # rollback on return would only be one more round trip to the SQLite thread.
            self.engine: AsyncEngine = create_async_engine(
                url, pool_size=1, max_overflow=0, pool_timeout=30, pool_reset_on_return=None
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
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

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success; driver failures become ServiceUnavailable."""
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

    async def dispose(self) -> None:
        await self.engine.dispose()
