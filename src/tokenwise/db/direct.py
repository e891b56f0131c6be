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
- PostgreSQL: the asyncpg connection of a pooled checkout, in an asyncpg transaction; the `:name`
  parameters become `$n` once per statement, and asyncpg prepares each statement once per connection.
  Through an ORM session and `text()` the same statements cost a cluster worker a third of its CPU. Driver
  failures map as `Database.session()` maps them: a lost or refusing server is `ServiceUnavailable` (and
  the connection is discarded), a constraint is SQLAlchemy's `IntegrityError`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError

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


_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` parameters as asyncpg's `$1, $2, ...`, and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAME.sub(number, sql), tuple(names)


class _AsyncpgTransaction:
    is_sqlite = False

    def __init__(self, connection: Any) -> None:
        self._connection = connection  # asyncpg.Connection

    @staticmethod
    def _args(names: tuple[str, ...], params: Params | None) -> list[Any]:
        # JSON columns take their text (the json codec SQLAlchemy's dialect sets on each connection)
        values = params or {}
        return [json.dumps(v) if isinstance(v := values[n], dict | list) else v for n in names]

    async def execute(self, sql: str, params: Params | None = None) -> int:
        query, names = _numbered(sql)
        status: str = await self._connection.execute(query, *self._args(names, params))
        count = status.rpartition(" ")[2]  # "UPDATE 3", "INSERT 0 1"
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        query, names = _numbered(sql)
        await self._connection.executemany(query, [self._args(names, row) for row in rows])

    async def fetch(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        query, names = _numbered(sql)
        return [tuple(row) for row in await self._connection.fetch(query, *self._args(names, params))]


class Direct:
    """Opens the golden path's transactions on `db` (see the module's docstring); one per Database,
    as `db.direct`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        dialect = db.engine.dialect
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        self._stamp: Callable[[datetime], str] = processor or str
        self._readers: dict[tuple[type[Base], tuple[str, ...]], _Reader] = {}
        dbapi = getattr(dialect, "loaded_dbapi", None)
        self._connect_error: type[Exception] = getattr(dbapi, "Error", DBAPIError)

    async def rows(
        self,
        model: type[M],
        where: str,
        params: Params,
        order_by: str = "",
        *,
        columns: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[M]:
        """Instances of `model` (detached, as a closed session would leave them) for `WHERE where`, with
        every column or only `columns` (the others are left unset), at most `limit` of them.

        The columns' own result processors (the engine's dialect's) turn what the driver returns into
        values, exactly as the ORM reads them: on SQLite the stored text, on PostgreSQL asyncpg's values
        (a JSON column's text, through the codec SQLAlchemy's dialect sets on each connection).
        """
        key = (model, tuple(columns))
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = _Reader(model, self._db.engine.dialect, key[1])
        # `where` and `order_by` are the callers' fixed SQL; values only ever come in `params`
        sql = f"SELECT {reader.columns} FROM {reader.table} WHERE {where}"  # noqa: S608
        if order_by:
            sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        async with self.transaction() as tx:
            found = await tx.fetch(sql, params)
        return [reader.build(row) for row in found]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if not self._db.is_sqlite:
            async with self._postgres() as tx:
                yield tx
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

    @asynccontextmanager
    async def _postgres(self) -> AsyncIterator[Transaction]:
        try:
            raw = await self._db.engine.raw_connection()
        except (*_PG_UNAVAILABLE, asyncpg.PostgresError, self._connect_error) as exc:
            # A checkout that fails is the server's state (away, refusing, at its limit), never a statement:
            # the pool raises its driver adapter's own error class here, unwrapped.
            raise ServiceUnavailable("the database is unavailable", dependency="database") from exc
        connection: Any = raw.driver_connection  # the asyncpg connection
        broken = False
        try:
            transaction = connection.transaction()
            await transaction.start()
            try:
                yield _AsyncpgTransaction(connection)
            except BaseException:
                with suppress(*_PG_UNAVAILABLE, asyncpg.PostgresError):
                    await transaction.rollback()
                raise
            await transaction.commit()
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(None, None, exc) from exc  # the ORM's error for the same fault
        except (*_PG_UNAVAILABLE, asyncpg.PostgresError) as exc:
            if not _pg_unavailable(exc):
                raise
            broken = True
            raise ServiceUnavailable("the database is unavailable", dependency="database") from exc
        finally:
            if broken or connection.is_closed():
                raw.invalidate()  # never handed out again
            else:
                raw.close()


class _Reader:
    """How to read one table's rows into its model without the ORM: columns and their processors."""

    def __init__(self, model: type[Base], dialect: Dialect, only: Sequence[str] = ()) -> None:
        table = model.__table__
        self.model, self.table = model, str(model.__tablename__)
        read = [column for column in table.columns if not only or column.key in only]
        self.names = [column.key for column in read]
        self.columns = ", ".join(column.name for column in read)
        self.processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in read]

    def build(self, row: Sequence[Any]) -> Any:
        values = {
            name: value if process is None else process(value)
            for name, process, value in zip(self.names, self.processors, row, strict=True)
        }
        return self.model(**values)


_PG_UNAVAILABLE = (DBAPIError, OSError, TimeoutError, ConnectionError, asyncpg.InterfaceError)
# SQLSTATEs of a server that is there but will not serve: connection failures (class 08), shutting down
# or starting up (57P01-57P03), too many connections (53300), connections not allowed (55000).
REFUSING_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "55000")


def _pg_unavailable(exc: BaseException) -> bool:
    """A lost connection or a server refusing to serve now, not a bad statement."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "")).startswith(REFUSING_SQLSTATES)
    return True


def _unavailable(exc: BaseException) -> bool:
    """SQLite faults of the storage (locked, full, read-only, I/O, not a database), not of a statement."""
    return isinstance(exc, sqlite3.OperationalError | OSError) or type(exc) is sqlite3.DatabaseError


def _roll_back(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        with suppress(sqlite3.Error):  # a broken connection: the transaction is gone with it
            connection.rollback()
