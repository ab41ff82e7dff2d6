"""SQL source: the rows of a query, streamed page by page through a server-side cursor (a
SQLite file's cursor, for a file), never the whole result in memory. Each row is a record whose
fields are the result's columns; errors name the row by its key column's value."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from provisioning_common.definitions import SqlSource

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.sql_database import (
    SqlDatabase,
    SqlRefusedError,
    SqlUnavailableError,
    plain,
)
from sequence_runner.domain.records import SourceEntry


class SqlSourceConnector:
    def __init__(
        self,
        connection_name: str,
        database: SqlDatabase,
        source: SqlSource,
        retry: RetryPolicy,
        fetch_size: int = 1000,
    ) -> None:
        self._name = connection_name
        self._database = database
        self._source = source
        self._retry = retry
        self._fetch_size = fetch_size

    @property
    def shown_as(self) -> str:
        return f"connection {self._name!r} ({self._database.shown_as}), query"

    async def read(self) -> AsyncIterator[SourceEntry]:
        key = self._source.key_column
        position = 0
        # A query that fails part-way cannot be resumed where it stopped: it is run again from
        # the start before anything of it was handed on, and fails the sequence once a row was.
        for attempt in range(1, self._retry.attempts + 1):
            try:
                async for names, rows in self._database.pages(self._source.query, self._fetch_size):
                    if key not in names:
                        raise SourceError(
                            f"{self.shown_as}: the result has no column {key!r} (key_column); "
                            f"its columns: {', '.join(names)}"
                        )
                    for row in rows:
                        position += 1
                        fields: dict[str, Any] = {
                            name: plain(value) for name, value in zip(names, row, strict=True)
                        }
                        # Shown where a file source shows a line: "row login='ann'".
                        yield SourceEntry(
                            line=position, fields=fields, dn=f"row {key}={fields[key]!r}"
                        )
                return
            except SqlUnavailableError as error:
                if position or attempt == self._retry.attempts:
                    raise SourceError(
                        f"{self.shown_as}: the database went away while it was read "
                        f"({position} rows read): {error}"
                    ) from None
                await asyncio.sleep(self._retry.backoff_seconds * 2 ** (attempt - 1))
            except SqlRefusedError as error:
                raise SourceError(f"{self.shown_as}: the query was refused: {error}") from None
