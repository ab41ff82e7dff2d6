"""Source files: found only inside the data folder (a path that leaves it, even by a symlink,
is refused), opened with a clear error, and read in batches off the event loop."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TextIO

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


def open_text(path: Path, shown_as: str, *, newline: str | None = None) -> TextIO:
    try:
        # utf-8-sig: spreadsheets often start the file with a byte-order mark.
        return path.open(newline=newline, encoding="utf-8-sig")
    except OSError as error:
        raise SourceError(f"{shown_as}: cannot be opened: {error.strerror}") from error


async def read_in_batches(
    handle: TextIO, records: Iterator[SourceEntry]
) -> AsyncIterator[SourceEntry]:
    """Yield `records`, parsed from `handle` in a worker thread so a big file never stalls the
    consumers; the file is closed however the reading ends."""
    try:
        while True:
            batch = await asyncio.to_thread(_take, records, READ_BATCH)
            if not batch:
                return
            for record in batch:
                yield record
    finally:
        handle.close()


def _take(records: Iterator[SourceEntry], count: int) -> list[SourceEntry]:
    batch: list[SourceEntry] = []
    for record in records:
        batch.append(record)
        if len(batch) >= count:
            break
    return batch
