"""Plain SQL transactions for the golden path's reads and writes, on the driver connection where that pays.

A run's hot transactions (admit and store a message with its run, a batch of events behind its fence,
the run's end with its final event, the user's datasets and price fingerprint) are about a dozen small
statements per run. Through the ORM they cost the server about half of its CPU per run
(docs/performance.md). So they are written once, as SQL with `:name` parameters, and run by a
`Transaction` of the engine in use:

- SQLite: the connection that SQLAlchemy's pool hands out (there is one, so these transactions
  serialise with every other use of the database, as before). While the pool's checkout is held nothing
  else touches it, so the statements and the commit run on the loop's thread, with no await while the
  connection is held: a hop to aiosqlite's thread cost more than the statement, and a transaction that
  awaited held the one connection until the busy loop came back to it (submit waited 13 ms p50, 49 ms
  p90 under load). A commit writes the log without syncing it (WAL, synchronous=NORMAL) since the
  checkpoints, which sync, run elsewhere (db/checkpoint.py). Values are stored exactly as the ORM
  stores them (the column types' own processors), so either side reads the other's rows.
- PostgreSQL: a session of `Database.session()` (its row locks, pool and error mapping); there the
  statements go through SQLAlchemy's `text()`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokenwise.db.tables import Base, UTCDateTime
from tokenwise.errors import ServiceUnavailable

if TYPE_CHECKING:
    from tokenwise.db.database import Database

Params = Mapping[str, Any]
M = TypeVar("M", bound=Base)
INSERT_MESSAGE = (
    "INSERT INTO messages (id, thread_id, user_id, role, content, run_id, client_message_id, created_at)"
    " VALUES (:id, :thread_id, :user_id, :role, :content, :run_id, :client_message_id, :created_at)"
)


class Transaction(Protocol):
    """One database transaction: committed when the block that opened it ends without an error."""

    is_sqlite: bool

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    async def fetch(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]: ...


def expand(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`:name0, :name1, ...` for an IN list, and their parameters."""
    names = [f"{name}{i}" for i in range(len(values))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))


class _SqliteTransaction:
    """Statements straight on the sqlite3 connection, on the loop's thread: each takes microseconds, and
    a hop to aiosqlite's thread per statement cost more than the statement. The commit (where SQLite
    may write a checkpoint and sync) still goes to aiosqlite's thread."""

    is_sqlite = True

    def __init__(self, connection: sqlite3.Connection, stamp: Callable[[datetime], str]) -> None:
        self._connection, self._stamp = connection, stamp

    def _adapt(self, params: Params | None) -> dict[str, Any]:
        adapted = {}
        for name, value in (params or {}).items():
            if isinstance(value, datetime):
                value = self._stamp(value)
            elif isinstance(value, dict | list):
                value = json.dumps(value)  # what SQLAlchemy's JSON type stores on SQLite
            adapted[name] = value
        return adapted

    async def execute(self, sql: str, params: Params | None = None) -> int:
        return self._connection.execute(sql, self._adapt(params)).rowcount

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._connection.executemany(sql, [self._adapt(row) for row in rows])

    async def fetch(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, self._adapt(params)).fetchall()


class _SessionTransaction:
    is_sqlite = False

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @staticmethod
    def _adapt(params: Params | None) -> dict[str, Any]:
        # JSON columns take their text (asyncpg's json codec); every other value goes as it is
        return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in (params or {}).items()}

    async def execute(self, sql: str, params: Params | None = None) -> int:
        result = await self._session.execute(text(sql), self._adapt(params))
        return int(getattr(result, "rowcount", 0))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self._session.execute(text(sql), [self._adapt(row) for row in rows])

    async def fetch(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._session.execute(text(sql), self._adapt(params))]


class Direct:
    """Opens the golden path's transactions on `db` (see the module's docstring); one per Database,
    as `db.direct`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        dialect = db.engine.dialect
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        self._stamp: Callable[[datetime], str] = processor or str
        self._readers: dict[type[Base], _Reader] = {}

    async def rows(self, model: type[M], where: str, params: Params, order_by: str = "") -> list[M]:
        """Instances of `model` (detached, as a closed session would leave them) for `WHERE where`.

        On SQLite the columns' own result processors turn the stored text back into values, exactly as
        the ORM reads them; on PostgreSQL this is an ORM query.
        """
        reader = self._readers.get(model)
        if reader is None:
            reader = self._readers[model] = _Reader(model, self._db.engine.dialect)
        # `where` and `order_by` are the callers' fixed SQL; values only ever come in `params`
        sql = f"SELECT {reader.columns} FROM {reader.table} WHERE {where}"  # noqa: S608
        if order_by:
            sql += f" ORDER BY {order_by}"
        if not self._db.is_sqlite:
            async with self._db.session() as session:
                return list((await session.scalars(select(model).from_statement(text(sql)), params)).all())
        async with self.transaction() as tx:
            found = await tx.fetch(sql, params)
        return [reader.build(row) for row in found]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if not self._db.is_sqlite:
            async with self._db.session() as session:
                yield _SessionTransaction(session)
            return
        try:
            raw = await self._db.engine.raw_connection()
        except (DBAPIError, sqlite3.Error, OSError) as exc:
            raise ServiceUnavailable("the database is unavailable", dependency="database") from exc
        connection: Any = raw.driver_connection  # aiosqlite's; `_conn` is its sqlite3 connection
        sqlite: sqlite3.Connection = connection._conn
        try:
            yield _SqliteTransaction(sqlite, self._stamp)
            if sqlite.in_transaction:  # only writes open one (sqlite3 begins before DML)
                sqlite.commit()  # no sync: WAL mode, synchronous=NORMAL, checkpoints off (checkpoint.py)
        except BaseException as exc:
            _roll_back(sqlite)
            if isinstance(exc, sqlite3.IntegrityError):
                raise IntegrityError(None, None, exc) from exc  # the ORM's error for the same fault
            if _unavailable(exc):
                raise ServiceUnavailable("the database is unavailable", dependency="database") from exc
            raise
        finally:
            raw.close()


class _Reader:
    """How to read one table's rows into its model without the ORM: columns and their processors."""

    def __init__(self, model: type[Base], dialect: Dialect) -> None:
        table = model.__table__
        self.model, self.table = model, str(model.__tablename__)
        self.names = [column.key for column in table.columns]
        self.columns = ", ".join(column.name for column in table.columns)
        self.processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in table.columns
        ]

    def build(self, row: Sequence[Any]) -> Any:
        values = {
            name: value if process is None else process(value)
            for name, process, value in zip(self.names, self.processors, row, strict=True)
        }
        return self.model(**values)


def _unavailable(exc: BaseException) -> bool:
    """SQLite faults of the storage (locked, full, read-only, I/O, not a database), not of a statement."""
    return isinstance(exc, sqlite3.OperationalError | OSError) or type(exc) is sqlite3.DatabaseError


def _roll_back(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        with suppress(sqlite3.Error):  # a broken connection: the transaction is gone with it
            connection.rollback()
