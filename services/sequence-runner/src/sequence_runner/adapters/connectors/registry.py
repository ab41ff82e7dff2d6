"""Builds the connectors a sequence definition names; a new connector type is added here."""

from pathlib import Path
from typing import Any

from provisioning_common.definitions import (
    CsvSource,
    InlineSource,
    JsonlSource,
    MongoTarget,
    SequenceDefinition,
)
from pymongo.asynchronous.database import AsyncDatabase

from sequence_runner.adapters.connectors.base import SourceConnector, TargetConnector
from sequence_runner.adapters.connectors.csv_source import CsvSourceConnector
from sequence_runner.adapters.connectors.files import resolve_in_data_folder
from sequence_runner.adapters.connectors.inline_source import InlineSourceConnector
from sequence_runner.adapters.connectors.jsonl_source import JsonlSourceConnector
from sequence_runner.adapters.connectors.mongo_target import MongoTargetConnector, RetryPolicy


class ConnectorRegistry:
    def __init__(
        self,
        *,
        data_dir: Path,
        target_database: AsyncDatabase[dict[str, Any]],
        retry: RetryPolicy,
    ) -> None:
        self._data_dir = data_dir
        self._target_database = target_database
        self._retry = retry

    def source(
        self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
    ) -> SourceConnector:
        source = sequence.source
        match source:
            case CsvSource():
                path = resolve_in_data_folder(self._data_dir, source.path)
                return CsvSourceConnector(path, source.path, source.delimiter)
            case JsonlSource():
                path = resolve_in_data_folder(self._data_dir, source.path)
                return JsonlSourceConnector(path, source.path)
            case InlineSource():
                return InlineSourceConnector(sequence.name, inputs)
        raise TypeError(f"no connector for source type {source.type!r}")  # pragma: no cover

    def target(self, sequence: SequenceDefinition) -> TargetConnector:
        target = sequence.target
        match target:
            case MongoTarget():
                collection = self._target_database[target.collection]
                return MongoTargetConnector(collection, sequence.key, self._retry)
        raise TypeError(f"no connector for target type {target.type!r}")  # pragma: no cover
