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

    async def read(self) -> AsyncIterator[SourceRecord]:
        handle = await asyncio.to_thread(self._open)
        try:
            reader = csv.reader(handle, delimiter=self._delimiter)
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
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(f"{self._shown_as}: the file is empty; a header row is needed")
            names = [name.strip() for name in header]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated or "" in names:
                raise SourceError(
                    f"{self._shown_as}: line {reader.line_num}: header names must be unique and "
                    f"not empty (repeated: {', '.join(repeated) or 'none'})"
                )
            for row in reader:
                if not row:
                    continue
                if len(row) != len(names):
                    raise SourceError(
                        f"{self._shown_as}: line {reader.line_num}: expected {len(names)} fields, "
                        f"found {len(row)}"
                    )
                yield SourceRecord(line=reader.line_num, fields=dict(zip(names, row, strict=True)))
        except csv.Error as error:
            raise SourceError(f"{self._shown_as}: line {reader.line_num}: {error}") from error
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
