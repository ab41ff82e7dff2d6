"""Source files: found only inside the data folder (a path that leaves it, even by a symlink,
is refused), opened with a clear error, and read in batches off the event loop."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.domain.records import SourceEntry

READ_BATCH = 1000


def resolve_in_data_folder(data_dir: Path, relative: str) -> Path:
    root = data_dir.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        raise SourceError(f"source path {relative!r} resolves outside the data folder; refused")
    if not candidate.is_file():
        raise SourceError(f"source file {relative!r} not found in the data folder")
    return candidate


class SourceLines:
    """A source file's lines, decoded one at a time, so that a byte that is not UTF-8 is
    reported at its line: a text stream decodes 8 KB at a time, and its error names none.

    Lines keep their line ends, as a file opened with newline="" gives them (what csv wants).
    """

    def __init__(self, handle: BinaryIO, shown_as: str) -> None:
        self._handle = handle
        self._shown_as = shown_as
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._handle.readline()
        if not raw:
            raise StopIteration
        self.line += 1
        try:
            # utf-8-sig on the first line: spreadsheets often start a file with a byte-order mark.
            return raw.decode("utf-8-sig" if self.line == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise SourceError(
                f"{self._shown_as}: line {self.line}: not UTF-8 text (byte "
                f"0x{raw[error.start]:02x} at column {error.start + 1}); save the file as UTF-8"
            ) from error

    def close(self) -> None:
        self._handle.close()


def open_lines(path: Path, shown_as: str) -> SourceLines:
    try:
        return SourceLines(path.open("rb"), shown_as)
    except OSError as error:
        raise SourceError(f"{shown_as}: cannot be opened: {error.strerror}") from error


async def read_in_batches(
    handle: SourceLines, records: Iterator[SourceEntry]
) -> AsyncIterator[list[SourceEntry]]:
    """`records` in lists of READ_BATCH, parsed from `handle` in a worker thread so a big file
    never stalls the consumers; the file is closed however the reading ends."""
    try:
        while True:
            batch = await asyncio.to_thread(_take, records, READ_BATCH)
            if not batch:
                return
            yield batch
    finally:
        handle.close()


def _take(records: Iterator[SourceEntry], count: int) -> list[SourceEntry]:
    batch: list[SourceEntry] = []
    for record in records:
        batch.append(record)
        if len(batch) >= count:
            break
    return batch
