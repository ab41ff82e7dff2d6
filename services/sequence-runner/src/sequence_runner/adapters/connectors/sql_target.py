"""SQL target: the rows of one table, one per record, found by the key column.

Create is an insert (an upsert on the key, so a batch applied again converges), update an
update of the changed columns only, delete a delete, and disable sets the active column false
(true again when the record comes back). Each batch is one transaction: a row the server
refuses fails the sequence naming the row's key and the server's message, and nothing of that
batch is written. Values are written as the columns keep them (a number stays a number, NULL
is not "")."""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from provisioning_common.definitions import SqlTarget

from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.sql_database import (
    Kind,
    Row,
    SqlDatabase,
    SqlRefusedError,
    SqlUnavailableError,
    as_column_value,
    plain_rows,
    quoted,
)
from sequence_runner.domain.records import PlannedChange, TargetRules

logger = logging.getLogger(__name__)


class SqlTargetConnector:
    def __init__(
        self,
        connection_name: str,
        database: SqlDatabase,
        target: SqlTarget,
        attributes: Sequence[str] | None,
        retry: RetryPolicy,
        fetch_size: int = 1000,
    ) -> None:
        self._name = connection_name
        self._database = database
        self._target = target
        self._key = target.key_column
        self._retry = retry
        self._fetch_size = fetch_size
        self._disable = target.deprovision == "disable"
        # The columns read: those the sequence writes (every column without a mapping).
        self._columns: list[str] | None = None
        if attributes is not None:
            wanted = dict.fromkeys([self._key, *attributes])
            if self._disable:
                wanted[target.active_column] = None
            self._columns = list(wanted)
        self._kinds: dict[str, Kind] = {}
        # Statement text by action and columns: built once, not once per change (make bench).
        self._queries: dict[tuple[str, tuple[str, ...]], str] = {}
        self.rules = TargetRules(
            stored_as=self._stored_as,
            deprovision=target.deprovision,
            is_disabled=self._is_disabled,
        )

    @property
    def shown_as(self) -> str:
        return f"connection {self._name!r} ({self._database.shown_as}), table {self._target.table}"

    def _stored_as(self, attributes: dict[str, Any]) -> dict[str, Any]:
        kinds = self._kinds
        stored = {
            name: as_column_value(value, kinds.get(name, "other"))
            for name, value in attributes.items()
        }
        if self._disable:
            # A record in the source is active: a disabled row that comes back is enabled.
            stored[self._target.active_column] = self._active(True)
        return stored

    def _active(self, value: bool) -> Any:
        return as_column_value(value, self._kinds.get(self._target.active_column, "bool"))

    def _is_disabled(self, record: Mapping[str, Any]) -> bool:
        return record.get(self._target.active_column) in (False, 0)

    # ------------------------------------------------------------------ reading

    async def _load_columns(self) -> None:
        kinds = await self._retrying("column list", self._database.column_kinds, self._table)
        if not kinds:
            raise TargetError(f"{self.shown_as}: no such table (it is not created for you)")
        missing = [c for c in self._columns or [] if c not in kinds]
        if missing:
            raise TargetError(f"{self.shown_as}: no column {', '.join(missing)} in the table")
        self._kinds = kinds

    async def describe(self) -> None:
        # The column types, before the source is mapped: `_stored_as` converts with them.
        await self._load_columns()

    @property
    def _table(self) -> str:
        return self._target.table

    async def prepare(self) -> None:
        await self._load_columns()
        unique = await self._retrying(
            "index list", self._database.has_unique_index, self._table, self._key
        )
        if not unique:
            # Without one, an insert applied twice (a runner restarted mid-apply) would double
            # the row; with one, it is an upsert that converges.
            raise TargetError(
                f"{self.shown_as}: the key column {self._key} needs a primary key or unique "
                f"index of its own (create unique index on {self._table} ({self._key}))"
            )

    async def read_all(self) -> AsyncIterator[dict[str, Any]]:
        async for piece in self.read_pieces():
            for record in piece:
                yield record

    async def read_pieces(self) -> AsyncIterator[list[dict[str, Any]]]:
        await self._load_columns()
        columns = self._columns or list(self._kinds)
        query = (
            f"select {', '.join(map(quoted, columns))} from {quoted(self._table)} "
            f"where {quoted(self._key)} is not null"
        )
        try:
            async for names, rows in self._database.pages(query, self._fetch_size):
                yield plain_rows(names, rows)
        except SqlUnavailableError as error:
            raise TargetError(f"{self.shown_as}: the read failed: {error}") from None
        except SqlRefusedError as error:
            raise TargetError(f"{self.shown_as}: the read was refused: {error}") from None

    # ------------------------------------------------------------------ writing

    def _statements(
        self, changes: Sequence[PlannedChange]
    ) -> tuple[list[tuple[str, list[Row]]], list[list[PlannedChange]]]:
        """The batch as statements, one per shape of change, each with its rows; a plan's keys
        are distinct, so grouping them does not reorder writes to one row."""
        p = self._database.placeholder
        key = quoted(self._key)
        table = quoted(self._table)
        shapes: dict[str, tuple[list[Row], list[PlannedChange]]] = {}

        def add(query: str, row: Row, change: PlannedChange) -> None:
            rows, of = shapes.setdefault(query, ([], []))
            rows.append(row)
            of.append(change)

        queries = self._queries
        for change in changes:
            match change.action:
                case "create":
                    after = dict(change.after or {})
                    after[self._key] = change.key
                    names = tuple(after)
                    query = queries.get(("create", names)) or ""
                    if not query:
                        others = [quoted(n) for n in names if n != self._key]
                        on_conflict = (
                            "do update set " + ", ".join(f"{n} = excluded.{n}" for n in others)
                            if others
                            else "do nothing"
                        )
                        query = queries[("create", names)] = (
                            f"insert into {table} ({', '.join(map(quoted, names))}) values "
                            f"({', '.join([p] * len(names))}) on conflict ({key}) {on_conflict}"
                        )
                    add(query, tuple(after.values()), change)
                case "update":
                    after = change.after or {}
                    names = tuple(sorted(change.before or {}))
                    if not names:
                        continue
                    query = queries.get(("update", names)) or ""
                    if not query:
                        sets = ", ".join(f"{quoted(n)} = {p}" for n in names)
                        query = queries[("update", names)] = (
                            f"update {table} set {sets} where {key} = {p}"
                        )
                    add(query, (*[after.get(n) for n in names], change.key), change)
                case "delete":
                    add(f"delete from {table} where {key} = {p}", (change.key,), change)
                case "disable":
                    query = (
                        f"update {table} set {quoted(self._target.active_column)} = {p} "
                        f"where {key} = {p}"
                    )
                    add(query, (self._active(False), change.key), change)
        statements = [(query, rows) for query, (rows, _) in shapes.items()]
        return statements, [of for _, of in shapes.values()]

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        if not changes:
            return
        if not self._kinds:
            await self._load_columns()
        statements, of = self._statements(changes)
        try:
            # The batch is one transaction and every statement in it converges when run again,
            # so a lost connection means: the whole batch again.
            await self._retrying("write", self._database.write, statements)
        except SqlRefusedError as refused:
            change = of[refused.statement][refused.row] if refused.row >= 0 else changes[0]
            raise TargetError(
                f"{self.shown_as}: the server refused the {change.action} of "
                f"{self._key}={change.key!r}: {refused}; the batch's {len(changes)} changes "
                "were rolled back, none written"
            ) from None

    async def _retrying(self, what: str, operation: Any, *args: Any) -> Any:
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return await operation(*args)
            except SqlUnavailableError as error:
                if attempt == self._retry.attempts:
                    raise TargetError(
                        f"{self.shown_as}: unreachable after {attempt} attempts ({what}): {error}"
                    ) from None
                pause = self._retry.backoff_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "%s: %s failed (%s); retrying in %.1fs", self.shown_as, what, error, pause
                )
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover
