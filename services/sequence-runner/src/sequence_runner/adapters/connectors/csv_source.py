"""CSV source: a header row, then one record per row; a malformed row names its line."""

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.adapters.connectors.files import open_lines, read_in_batches
from sequence_runner.domain.records import SourceEntry

if TYPE_CHECKING:
    from _csv import Reader


class CsvSourceConnector:
    def __init__(self, path: Path, shown_as: str, delimiter: str = ",") -> None:
        self._path = path
        self._shown_as = shown_as
        self._delimiter = delimiter

    @property
    def shown_as(self) -> str:
        return self._shown_as

    async def read(self) -> AsyncIterator[SourceEntry]:
        async for piece in self.read_pieces():
            for record in piece:
                yield record

    async def read_pieces(self) -> AsyncIterator[list[SourceEntry]]:
        handle = await asyncio.to_thread(open_lines, self._path, self._shown_as)
        # strict: an unclosed quote is an error, not a field that swallows the rest of the
        # file (whose records would then be missing, and planned as deletions).
        reader = csv.reader(handle, delimiter=self._delimiter, strict=True)
        async for piece in read_in_batches(handle, self._rows(reader)):
            yield piece

    def _rows(self, reader: "Reader") -> Iterator[SourceEntry]:
        # A record is known by its first line: a quoted field may run over several lines.
        first_line = 1
        try:
            header: list[str] = []
            while not header:
                first_line = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    raise SourceError(
                        f"{self._shown_as}: the file is empty; a header row is needed"
                    )
                header = row
            names = [name.strip() for name in header]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated or "" in names:
                raise SourceError(
                    f"{self._shown_as}: line {first_line}: header names must be unique and "
                    f"not empty (repeated: {', '.join(repeated) or 'none'})"
                )
            while True:
                first_line = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    return
                if not row:
                    continue
                if len(row) != len(names):
                    raise SourceError(
                        f"{self._shown_as}: line {first_line}: expected {len(names)} fields, "
                        f"found {len(row)}"
                    )
                yield SourceEntry(line=first_line, fields=dict(zip(names, row, strict=True)))
        except csv.Error as error:
            raise SourceError(f"{self._shown_as}: line {first_line}: {error}") from error
