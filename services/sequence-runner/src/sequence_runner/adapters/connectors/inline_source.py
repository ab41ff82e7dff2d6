"""Inline source: the records that came with the job request, in inputs.<sequence name>."""

from collections.abc import AsyncIterator
from typing import Any

from sequence_runner.adapters.connectors.base import SourceError
from sequence_runner.domain.records import SourceEntry


class InlineSourceConnector:
    def __init__(self, sequence_name: str, records: list[dict[str, Any]] | None) -> None:
        if records is None:
            raise SourceError(
                f"the job request has no inline records for sequence {sequence_name!r} "
                f"(expected inputs.{sequence_name})"
            )
        self._records = records
        self._shown_as = f"inputs.{sequence_name}"

    @property
    def shown_as(self) -> str:
        return self._shown_as

    async def read(self) -> AsyncIterator[SourceEntry]:
        # Position 1, 2, … stands in for a line number in error messages.
        for position, fields in enumerate(self._records, start=1):
            yield SourceEntry(line=position, fields=dict(fields))
