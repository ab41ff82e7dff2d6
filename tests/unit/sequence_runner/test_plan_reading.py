"""How the runner reads the two sides of a plan: a source or target that reads a list at a
time is handed on a list at a time (no step per record), with the same records, the same
errors and progress told as the lists come."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from provisioning_common.definitions import SequenceDefinition
from provisioning_common.events import SequenceFailed, SequenceProgress
from provisioning_common.statuses import JobStatus
from sequence_runner.adapters.connectors.base import SourceConnector, SourceError, TargetError
from sequence_runner.adapters.connectors.csv_source import CsvSourceConnector
from sequence_runner.adapters.connectors.jsonl_source import JsonlSourceConnector
from sequence_runner.adapters.connectors.sql_database import plain_rows
from sequence_runner.domain.records import SourceEntry
from sequence_runner.handlers.engine import Engine, EngineOptions
from sequence_runner.handlers.messages import EVENT_HANDLERS, handle

from tests.unit.sequence_runner.builders import definition, job_created, sequence
from tests.unit.sequence_runner.fakes import (
    FakeConnectors,
    FakePlans,
    FakePublisher,
    FakeRuns,
    FakeTarget,
)
from tests.unit.sequence_runner.test_engine import World


class ListedSource:
    """A source that reads its records three at a time; reading it record by record fails."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.shown_as = "listed.fake"

    def read(self) -> AsyncIterator[SourceEntry]:
        raise AssertionError("a source that reads lists is read by the list")

    async def read_pieces(self) -> AsyncIterator[list[SourceEntry]]:
        entries = [SourceEntry(line=i + 2, fields=f) for i, f in enumerate(self.records)]
        for first in range(0, len(entries), 3):
            yield entries[first : first + 3]


class ListedConnectors(FakeConnectors):
    def source(
        self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
    ) -> SourceConnector:
        return ListedSource(self.sources[sequence.name])  # type: ignore[arg-type]


async def test_a_source_read_by_the_list_is_planned_and_applied_whole() -> None:
    people = [{"uid": f"u{i}"} for i in range(10)]
    ticks = iter(float(i) for i in range(10_000))
    connectors = ListedConnectors(sources={"people": people})
    target = connectors.targets["people"] = FakeTarget("uid")
    options = EngineOptions(progress_interval_seconds=1, work_retries=1)
    world = World.of(connectors, options, monotonic=lambda: next(ticks))
    publisher = world.publisher
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 100}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])
    assert sorted(target.records) == sorted(p["uid"] for p in people)
    planning = [
        p.data.done for p in publisher.of_type(SequenceProgress) if p.data.phase == "planning"
    ]
    # Told list by list (3, 6, 9, 10 records read), ending with the whole source.
    assert planning[:3] == [3, 6, 9]
    assert planning[-1] == 10


async def _both_ways(source: Any) -> tuple[list[SourceEntry], list[SourceEntry]]:
    by_record = [record async for record in source.read()]
    by_list = [record async for piece in source.read_pieces() for record in piece]
    return by_record, by_list


async def test_a_csv_file_gives_the_same_records_by_the_list(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    rows = "".join(f'{i},"Name, {i}"\n' for i in range(2500))
    path.write_text("id,name\n" + rows, encoding="utf-8")
    by_record, by_list = await _both_ways(CsvSourceConnector(path, "people.csv"))
    assert len(by_list) == 2500
    assert by_list == by_record
    assert by_list[-1] == SourceEntry(line=2501, fields={"id": "2499", "name": "Name, 2499"})


async def test_a_bad_line_is_named_when_read_by_the_list(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text('{"id": 1}\n' * 1500 + "[1]\n", encoding="utf-8")
    source = JsonlSourceConnector(path, "people.jsonl")
    with pytest.raises(SourceError, match=r"^people.jsonl: line 1501: expected a JSON object"):
        [piece async for piece in source.read_pieces()]


def test_a_page_of_plain_values_becomes_records_as_it_is() -> None:
    rows = [("u1", 3, 1.5, True, None), ("u2", 4, 2.5, False, "x")]
    assert plain_rows(["login", "grade", "score", "active", "note"], rows) == [
        {"login": "u1", "grade": 3, "score": 1.5, "active": True, "note": None},
        {"login": "u2", "grade": 4, "score": 2.5, "active": False, "note": "x"},
    ]


def test_a_page_with_other_values_has_them_made_plain() -> None:
    rows = [("u1", Decimal("12.50"), dt.date(2026, 1, 2)), ("u2", Decimal("0"), None)]
    assert plain_rows(["login", "salary", "since"], rows) == [
        {"login": "u1", "salary": "12.5", "since": "2026-01-02"},
        {"login": "u2", "salary": "0", "since": None},
    ]


class LoggedSource(ListedSource):
    """Reads its lists with a round trip between them, logging each; may fail after some."""

    def __init__(
        self, records: list[dict[str, Any]], log: list[str], failing_after: int | None = None
    ) -> None:
        super().__init__(records)
        self.log = log
        self.failing_after = failing_after

    async def read_pieces(self) -> AsyncIterator[list[SourceEntry]]:
        number = 0
        async for piece in super().read_pieces():
            if number == self.failing_after:
                raise SourceError("listed.fake: line 9: expected 1 fields, found 2")
            await asyncio.sleep(0)
            self.log.append("source")
            number += 1
            yield piece


class LoggedTarget(FakeTarget):
    def __init__(self, log: list[str], failing: bool = False) -> None:
        super().__init__("uid")
        self.log = log
        self.failing = TargetError("the directory refused the search") if failing else None
        self.closed = False

    async def read_all(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for record in list(self.records.values()):
                await asyncio.sleep(0)
                self.log.append("target")
                if self.failing is not None:
                    raise self.failing
                yield dict(record)
        finally:
            self.closed = True

    async def apply(self, changes: Any) -> None:
        self.failing = None
        await super().apply(changes)


def logged_world(source: LoggedSource, target: LoggedTarget) -> World:
    runs, plans, publisher = FakeRuns(), FakePlans(), FakePublisher()

    class Connectors(FakeConnectors):
        def source(
            self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
        ) -> SourceConnector:
            return source

    connectors = Connectors(sources={"people": []}, targets={"people": target})
    target.records = {f"t{i}": {"uid": f"t{i}"} for i in range(5)}
    engine = Engine(runs, plans, publisher, connectors, EngineOptions(work_retries=1))
    return World(engine, runs, plans, publisher, connectors)


async def run_people(world: World) -> None:
    thresholds = {"create": {"count": 100}, "delete": {"count": 100}}
    created = job_created(
        definition(sequence("people", thresholds=thresholds, delete_missing=True))
    )
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()


async def test_a_file_is_read_while_the_target_is() -> None:
    log: list[str] = []
    people = [{"uid": f"u{i}"} for i in range(12)]
    target = LoggedTarget(log)
    world = logged_world(LoggedSource(people, log), target)
    await run_people(world)
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])
    # The target's records were read before the file's last list was.
    assert log.index("target") < len(log) - 1 - log[::-1].index("source")
    assert sorted(target.records) == sorted(p["uid"] for p in people)


async def test_a_bad_file_fails_the_sequence_and_stops_the_targets_reading() -> None:
    log: list[str] = []
    target = LoggedTarget(log)
    world = logged_world(LoggedSource([{"uid": f"u{i}"} for i in range(12)], log, 2), target)
    await run_people(world)
    assert world.status() == (JobStatus.FAILED, ["FAILED"])
    failed = world.publisher.of_type(SequenceFailed)[-1]
    assert failed.data.reason == "listed.fake: line 9: expected 1 fields, found 2"
    assert target.closed
    assert target.writes == []


async def test_a_target_that_cannot_be_read_fails_the_sequence() -> None:
    log: list[str] = []
    target = LoggedTarget(log, failing=True)
    world = logged_world(LoggedSource([{"uid": "u1"}], log), target)
    await run_people(world)
    assert world.status() == (JobStatus.FAILED, ["FAILED"])
    failed = world.publisher.of_type(SequenceFailed)[-1]
    assert failed.data.reason == "the directory refused the search"
    assert target.writes == []
