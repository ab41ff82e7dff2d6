"""CSV source: a header row, then one record per row; a malformed row names its line."""

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.domain.records import SourceRecord

if TYPE_CHECKING:
    from _csv import Reader

READ_BATCH = 1000


class CsvSourceConnector:
    def __init__(self, path: Path, shown_as: str, delimiter: str = ",") -> None:
        self._path = path
        self._shown_as = shown_as
        self._delimiter = delimiter

    @property
    def shown_as(self) -> str:
        return self._shown_as

    async def read(self) -> AsyncIterator[SourceRecord]:
        handle = await asyncio.to_thread(self._open)
        try:
            # strict: an unclosed quote is an error, not a field that swallows the rest of the
            # file (whose records would then be missing, and planned as deletions).
            reader = csv.reader(handle, delimiter=self._delimiter, strict=True)
            rows = self._rows(reader)
            while True:
                # The file is read in a worker thread, so a big file never stalls the consumers.
                batch = await asyncio.to_thread(_take, rows, READ_BATCH)
                if not batch:
                    return
                for record in batch:
                    yield record
        finally:
            handle.close()

    def _open(self) -> TextIO:
        try:
            # utf-8-sig: spreadsheets often start the file with a byte-order mark.
            return self._path.open(newline="", encoding="utf-8-sig")
        except OSError as error:
            raise SourceError(f"{self._shown_as}: cannot be opened: {error.strerror}") from error

    def _rows(self, reader: "Reader") -> Iterator[SourceRecord]:
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
                yield SourceRecord(line=first_line, fields=dict(zip(names, row, strict=True)))
        except csv.Error as error:
            raise SourceError(f"{self._shown_as}: line {first_line}: {error}") from error
        except UnicodeDecodeError as error:
            raise SourceError(
                f"{self._shown_as}: after line {reader.line_num}: not UTF-8 text"
            ) from error


def _take(rows: Iterator[SourceRecord], count: int) -> list[SourceRecord]:
    batch: list[SourceRecord] = []
    for record in rows:
        batch.append(record)
        if len(batch) >= count:
            break
    return batch
