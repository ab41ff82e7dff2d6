"""JSON Lines source: one JSON object per line; a line that is not one names its number."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.adapters.connectors.files import SourceLines, open_lines, read_in_batches
from sequence_runner.domain.records import SourceEntry


class JsonlSourceConnector:
    def __init__(self, path: Path, shown_as: str) -> None:
        self._path = path
        self._shown_as = shown_as

    @property
    def shown_as(self) -> str:
        return self._shown_as

    async def read(self) -> AsyncIterator[SourceEntry]:
        async for piece in self.read_pieces():
            for record in piece:
                yield record

    async def read_pieces(self) -> AsyncIterator[list[SourceEntry]]:
        handle = await asyncio.to_thread(open_lines, self._path, self._shown_as)
        async for piece in read_in_batches(handle, self._records(handle)):
            yield piece

    def _records(self, handle: SourceLines) -> Iterator[SourceEntry]:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise SourceError(
                    f"{self._shown_as}: line {line}: invalid JSON: {error.msg}"
                ) from error
            if not isinstance(value, dict):
                raise SourceError(
                    f"{self._shown_as}: line {line}: expected a JSON object, "
                    f"found {type(value).__name__}"
                )
            yield SourceEntry(line=line, fields=value)
