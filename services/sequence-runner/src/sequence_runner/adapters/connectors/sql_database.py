"""SQL databases as the SQL connectors see them: PostgreSQL through psycopg 3 (async, a
connection pool, server-side cursors, executemany in pipeline mode) and SQLite files through
the standard library's sqlite3 in a worker thread, behind one small interface.

Values cross this interface as plain JSON values (text, numbers, booleans, null), the shapes
a plan can be stored and digested in: a numeric column's value is canonical text ("12.5"), a
date or timestamp ISO 8601 text; `column_kinds` says how to turn a source's value into the
value the column gives back, so that an unchanged row compares equal."""

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from decimal import Decimal, InvalidOperation
from itertools import chain
from pathlib import Path
from typing import Any, Literal, Protocol
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

# int, float, decimal (as text), bool, bool stored as 0/1 (SQLite), date, timestamp, text,
# and anything else (passed as it is).
Kind = Literal["int", "float", "decimal", "bool", "bool01", "date", "datetime", "text", "other"]
Row = tuple[Any, ...]
# A statement and the parameter rows it is run with (executemany).
Statement = tuple[str, list[Row]]


class SqlUnavailableError(Exception):
    """The server could not be reached, or the connection broke: worth another attempt."""


class SqlRefusedError(Exception):
    """The server refused a statement for one row; `statement` and `row` say which."""

    def __init__(self, message: str, statement: int, row: int) -> None:
        super().__init__(message)
        self.statement = statement
        self.row = row


def quoted(name: str) -> str:
    """An identifier (checked by the definition's pattern) quoted, `schema.table` part by part."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


class SqlDatabase(Protocol):
    shown_as: str
    placeholder: str

    async def column_kinds(self, table: str) -> dict[str, Kind]:
        """The table's columns and their kinds; empty when there is no such table."""
        ...

    async def has_unique_index(self, table: str, column: str) -> bool: ...

    def pages(self, query: str, page_size: int) -> AsyncIterator[tuple[list[str], list[Row]]]:
        """The query's rows page by page, with the result's column names."""
        ...

    async def write(self, statements: Sequence[Statement]) -> None:
        """Every statement in one transaction: all written, or (on an error) none."""

    async def close(self) -> None: ...


# ---------------------------------------------------------------- values


# Values that are already plain, by exact type: the common case, checked first and cheaply
# (a million target rows are four million values; make bench).
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """A value read from a database as a plain JSON value."""
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, bool | int | float | str | list | dict):
        return value
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def plain_rows(names: Sequence[str], rows: Sequence[Row]) -> list[dict[str, Any]]:
    """A page of rows as records of plain values. A page whose every value is plain already
    (text, numbers, booleans, NULL: the common case) is made with no call of ours per value."""
    if _PLAIN_TYPES.issuperset(map(type, chain.from_iterable(rows))):
        return [dict(zip(names, row, strict=True)) for row in rows]
    return [{name: plain(value) for name, value in zip(names, row, strict=True)} for row in rows]


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def as_column_value(value: Any, kind: Kind) -> Any:
    """A source's value as the column will give it back. A value that does not fit the column
    is left as it is: the server refuses it, and the sequence fails naming the row."""
    if value is None:
        return None
    if kind in ("text", "other") and type(value) is str:
        # What a text column gives back, and what a CSV gives: as it is (the common case).
        return value
    text = value.strip() if isinstance(value, str) else None
    # An empty cell of a CSV is no number, date or boolean: it is NULL there (and stays "" in
    # a text column, which keeps "" and NULL apart).
    if text == "" and kind not in ("text", "other"):
        return None
    try:
        match kind:
            case "int":
                if isinstance(value, bool):
                    return value
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                return int(text) if text is not None else value
            case "float":
                if isinstance(value, int | str) and not isinstance(value, bool):
                    return float(value)
            case "decimal":
                if isinstance(value, int | float | str) and not isinstance(value, bool):
                    return _decimal_text(Decimal(str(value).strip()))
            case "bool" | "bool01":
                if text is not None and text.lower() in _TRUE | _FALSE:
                    value = text.lower() in _TRUE
                elif isinstance(value, int) and value in (0, 1):
                    value = bool(value)
                if isinstance(value, bool) and kind == "bool01":
                    return int(value)
            case "date":
                if text is not None:
                    return dt.date.fromisoformat(text).isoformat()
            case "datetime":
                if text is not None:
                    return dt.datetime.fromisoformat(text).isoformat()
            case "text":
                if isinstance(value, bool):
                    return "true" if value else "false"
                if isinstance(value, int | float):
                    return str(value)
    except (ValueError, InvalidOperation):
        pass
    return value


# ---------------------------------------------------------------- PostgreSQL

_PG_KINDS: dict[str, Kind] = {
    "smallint": "int",
    "integer": "int",
    "bigint": "int",
    "real": "float",
    "double precision": "float",
    "numeric": "decimal",
    "boolean": "bool",
    "date": "date",
    "timestamp without time zone": "datetime",
    "timestamp with time zone": "datetime",
    "text": "text",
    "character varying": "text",
    "character": "text",
}


class PostgresDatabase:
    placeholder = "%s"

    def __init__(self, url: str, password: str | None, *, pool_size: int, timeout: float) -> None:
        self.shown_as = url  # the connections file keeps passwords out of URLs
        self._kwargs: dict[str, Any] = {"connect_timeout": max(1, round(timeout))}
        if password is not None:
            self._kwargs["password"] = password
        self._url = url
        self._timeout = timeout
        self._pool = AsyncConnectionPool(
            url,
            kwargs=self._kwargs,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout,
            check=AsyncConnectionPool.check_connection,
            configure=self._configure,
        )
        self._opened = False

    @staticmethod
    async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
        # Timestamps read back in UTC, whatever the server's default zone.
        await connection.execute("set time zone 'UTC'")
        await connection.commit()

    async def _open(self) -> None:
        if self._opened:
            return
        # One direct connection first: a wrong password or a missing database is reported
        # with the server's own words, where the pool would only time out.
        try:
            connection = await psycopg.AsyncConnection.connect(self._url, **self._kwargs)
        except psycopg.OperationalError as error:
            raise SqlUnavailableError(_first_line(error)) from None
        await connection.close()
        await self._pool.open(wait=False)
        self._opened = True

    async def column_kinds(self, table: str) -> dict[str, Kind]:
        schema, _, name = table.rpartition(".")
        rows = await self._query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = coalesce(nullif(%s, ''), current_schema()) "
            "and table_name = %s order by ordinal_position",
            (schema, name),
        )
        return {column: _PG_KINDS.get(kind, "other") for column, kind in rows}

    async def has_unique_index(self, table: str, column: str) -> bool:
        rows = await self._query(
            "select 1 from pg_index i join pg_attribute a "
            "on a.attrelid = i.indrelid and a.attnum = i.indkey[0] "
            "where i.indrelid = to_regclass(%s) and i.indisunique and i.indnatts = 1 "
            "and i.indpred is null and a.attname = %s",
            (quoted(table), column),
        )
        return bool(rows)

    async def _query(self, query: str, params: Row) -> list[Row]:
        await self._open()
        try:
            async with self._pool.connection() as connection:
                cursor = await connection.execute(query, params)
                return await cursor.fetchall()
        except psycopg.OperationalError as error:
            raise SqlUnavailableError(_first_line(error)) from None

    async def pages(self, query: str, page_size: int) -> AsyncIterator[tuple[list[str], list[Row]]]:
        await self._open()
        try:
            # A named cursor is a server-side cursor: the server keeps the result and hands it
            # over `page_size` rows at a time, so no result is ever whole in memory.
            async with (
                self._pool.connection() as connection,
                connection.transaction(),
                connection.cursor(name="provisioning_read") as cursor,
            ):
                await cursor.execute(query)
                names = [c.name for c in cursor.description or ()]
                while rows := await cursor.fetchmany(page_size):
                    yield names, rows
        except psycopg.OperationalError as error:
            raise SqlUnavailableError(_first_line(error)) from None
        except psycopg.Error as error:
            raise SqlRefusedError(_server_message(error), 0, -1) from None

    async def write(self, statements: Sequence[Statement]) -> None:
        await self._open()
        try:
            async with self._pool.connection() as connection:
                try:
                    async with connection.transaction(), connection.cursor() as cursor:
                        for query, rows in statements:
                            # psycopg pipelines executemany: one round trip for the rows.
                            await cursor.executemany(query, rows)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as error:
                    # Rolled back; which row was it? Found by running them one by one in a
                    # transaction that is rolled back too (only on this failure path).
                    raise await self._refused_row(connection, statements, error) from None
        except psycopg.OperationalError as error:
            raise SqlUnavailableError(_first_line(error)) from None

    async def _refused_row(
        self,
        connection: psycopg.AsyncConnection[Any],
        statements: Sequence[Statement],
        first: psycopg.Error,
    ) -> SqlRefusedError:
        await connection.rollback()
        try:
            async with connection.cursor() as cursor:
                for s, (query, rows) in enumerate(statements):
                    for r, row in enumerate(rows):
                        try:
                            await cursor.execute(query, row)
                        except psycopg.Error as error:
                            return SqlRefusedError(_server_message(error), s, r)
        finally:
            await connection.rollback()
        return SqlRefusedError(_server_message(first), 0, -1)

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _server_message(error: psycopg.Error) -> str:
    diag = error.diag
    message = diag.message_primary or _first_line(error)
    return f"{message} ({diag.message_detail})" if diag.message_detail else message


# ---------------------------------------------------------------- SQLite


def _sqlite_kind(declared: str) -> Kind:
    # SQLite's type affinity rules (https://sqlite.org/datatype3.html, 3.1), plus booleans,
    # which it keeps as 0 and 1, and dates, which it keeps as text.
    upper = declared.upper()
    if "BOOL" in upper:
        return "bool01"
    if "INT" in upper:
        return "int"
    if any(t in upper for t in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if any(t in upper for t in ("REAL", "FLOA", "DOUB")):
        return "float"
    if upper.startswith("DATETIME") or upper.startswith("TIMESTAMP"):
        return "datetime"
    if upper.startswith("DATE"):
        return "date"
    return "other"


class SqliteDatabase:
    """A SQLite file: each operation opens it in a worker thread (opening a file is cheap), so
    the event loop never waits on the disk."""

    placeholder = "?"

    def __init__(self, path: Path, shown_as: str, timeout: float) -> None:
        self._path = path
        self.shown_as = shown_as
        self._timeout = timeout

    def _connect(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise SqlUnavailableError(f"no database file {self.shown_as} in the data folder")
        # Autocommit, with BEGIN/COMMIT written out: one transaction per batch.
        connection = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        return connection

    async def column_kinds(self, table: str) -> dict[str, Kind]:
        def read() -> dict[str, Kind]:
            with closing(self._connect()) as connection:
                rows = connection.execute(f"pragma table_info({quoted(table)})").fetchall()
            return {row[1]: _sqlite_kind(row[2] or "") for row in rows}

        return await asyncio.to_thread(read)

    async def has_unique_index(self, table: str, column: str) -> bool:
        def read() -> bool:
            with closing(self._connect()) as connection:
                info = connection.execute(f"pragma table_info({quoted(table)})").fetchall()
                primary = [row[1] for row in info if row[5]]
                if primary == [column]:
                    return True
                for index in connection.execute(f"pragma index_list({quoted(table)})"):
                    if index[2] and not index[4]:  # unique, not partial
                        columns = connection.execute(
                            f"pragma index_info({quoted(index[1])})"
                        ).fetchall()
                        if [c[2] for c in columns] == [column]:
                            return True
            return False

        return await asyncio.to_thread(read)

    async def pages(self, query: str, page_size: int) -> AsyncIterator[tuple[list[str], list[Row]]]:
        def start() -> tuple[sqlite3.Connection, sqlite3.Cursor]:
            connection = self._connect()
            try:
                return connection, connection.execute(query)
            except sqlite3.Error:
                connection.close()
                raise

        try:
            connection, cursor = await asyncio.to_thread(start)
        except sqlite3.Error as error:
            raise SqlRefusedError(str(error), 0, -1) from None
        try:
            names = [c[0] for c in cursor.description or ()]
            while True:
                try:
                    rows = await asyncio.to_thread(cursor.fetchmany, page_size)
                except sqlite3.Error as error:
                    raise SqlRefusedError(str(error), 0, -1) from None
                if not rows:
                    return
                yield names, rows
        finally:
            await asyncio.to_thread(connection.close)

    async def write(self, statements: Sequence[Statement]) -> None:
        def run() -> None:
            with closing(self._connect()) as connection:
                connection.execute("begin immediate")
                try:
                    for s, (query, rows) in enumerate(statements):
                        for r, row in enumerate(rows):
                            try:
                                connection.execute(query, row)
                            except sqlite3.Error as error:
                                raise SqlRefusedError(str(error), s, r) from None
                except BaseException:
                    connection.execute("rollback")
                    raise
                connection.execute("commit")

        try:
            await asyncio.to_thread(run)
        except sqlite3.OperationalError as error:
            raise SqlUnavailableError(str(error)) from None

    async def close(self) -> None:
        return None
