"""The runner works only on the jobs of its partitions: a job of another partition waits for
its owner; revoked partitions' work stops before the rebalance goes on, but for planning still
reading, kept without writing until the assignment says whether its partition stayed; gained
ones resume."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from provisioning_common.definitions import SequenceDefinition
from provisioning_common.partitions import partition_of
from provisioning_common.statuses import JobStatus
from sequence_runner.adapters.connectors.base import SourceConnector
from sequence_runner.domain.records import SourceEntry
from sequence_runner.entrypoints.ownership import PartitionOwnership
from sequence_runner.handlers.messages import EVENT_HANDLERS, handle

from tests.unit.sequence_runner.builders import JOB_ID
from tests.unit.sequence_runner.fakes import (
    FakeConnectors,
    FakeSource,
)
from tests.unit.sequence_runner.test_engine import (
    GROUPS,
    PEOPLE,
    WORLD_OPTIONS,
    World,
    two_sequences,
)

TOPIC = "provisioning.job-events"
PARTITIONS = 6
MINE = partition_of(JOB_ID, PARTITIONS)
OTHERS = [p for p in range(PARTITIONS) if p != MINE]


@pytest.fixture
def world() -> World:
    return World.of(FakeConnectors(sources={"people": PEOPLE, "groups": GROUPS}), WORLD_OPTIONS)


def ownership_of(world: World) -> PartitionOwnership:
    return PartitionOwnership(world.engine.scheduler, TOPIC, lambda _: PARTITIONS)


def assigned(*partitions: int) -> set[TopicPartition]:
    return {TopicPartition(TOPIC, p) for p in partitions} | {
        TopicPartition("provisioning.job-commands", p) for p in partitions
    }


async def test_a_job_of_another_partition_is_left_to_its_owner_until_assigned_here(
    world: World,
) -> None:
    ownership = ownership_of(world)
    await ownership.on_partitions_assigned(assigned(*OTHERS))
    assert not ownership.owns(JOB_ID)

    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    # The run exists (the message was handled) but nothing was planned here.
    assert world.status()[0] is JobStatus.RUNNING
    assert "SequencePlanned" not in world.publisher.types()

    # The partition comes to this replica (the owner died): its pending run is resumed.
    await ownership.on_partitions_revoked(assigned(*OTHERS))
    await ownership.on_partitions_assigned(assigned(MINE))
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED", "COMPLETED"])


async def test_work_on_a_revoked_partition_is_stopped_before_the_rebalance_goes_on(
    world: World,
) -> None:
    ownership = ownership_of(world)
    await ownership.on_partitions_assigned(assigned(MINE))
    started, stopped = asyncio.Event(), asyncio.Event()

    async def long_work(job_id: str) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise

    world.engine.scheduler._work_through = long_work  # type: ignore[method-assign]
    world.engine.kick(JOB_ID)
    await asyncio.wait_for(started.wait(), 5)

    await ownership.on_partitions_revoked(assigned(MINE))
    # Stopped by the time the listener returns, i.e. before the partition can move.
    assert stopped.is_set()
    assert not ownership.owns(JOB_ID)
    # A late kick (a retry timer) does nothing here now.
    world.engine.kick(JOB_ID)
    await world.engine.idle()
    assert started.is_set()


async def test_no_job_is_owned_before_the_first_assignment(world: World) -> None:
    ownership = ownership_of(world)
    assert not ownership.owns(JOB_ID)
    await ownership.on_partitions_assigned(set())
    assert not ownership.owns(JOB_ID)


class HeldSource(FakeSource):
    """A source whose reading waits until the test lets it go on: planning still reading."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records, "people")
        self.reading, self.go_on = asyncio.Event(), asyncio.Event()
        self.reads = 0

    async def read(self) -> AsyncIterator[SourceEntry]:
        self.reads += 1
        self.reading.set()
        await self.go_on.wait()
        async for entry in super().read():
            yield entry


@dataclass
class HeldConnectors(FakeConnectors):
    held: HeldSource = field(default_factory=lambda: HeldSource(PEOPLE))

    def source(
        self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
    ) -> SourceConnector:
        return self.held if sequence.name == "people" else super().source(sequence, inputs)


@pytest.fixture
def held_world() -> World:
    return World.of(HeldConnectors(sources={"people": PEOPLE, "groups": GROUPS}), WORLD_OPTIONS)


async def planning_then_rebalance(world: World, ownership: PartitionOwnership) -> HeldSource:
    """The job's first sequence is being planned (its source read) when a rebalance revokes
    every partition, as aiokafka's eager rebalances do; the source then ends its reading."""
    assert isinstance(world.connectors, HeldConnectors)
    held = world.connectors.held
    await ownership.on_partitions_assigned(assigned(MINE))
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await asyncio.wait_for(held.reading.wait(), 5)

    await ownership.on_partitions_revoked(assigned(MINE))
    assert world.engine.scheduler.kept_through_rebalance() == [JOB_ID]
    held.go_on.set()
    for _ in range(20):  # the plan is computed; its first write waits for the assignment
        await asyncio.sleep(0)
    assert world.plans.plans == {}
    assert "SequencePlanned" not in world.publisher.types()
    return held


async def test_planning_still_reading_is_kept_through_a_rebalance_that_gives_its_partition_back(
    held_world: World,
) -> None:
    ownership = ownership_of(held_world)
    held = await planning_then_rebalance(held_world, ownership)

    await ownership.on_partitions_assigned(assigned(MINE))
    await held_world.settle()
    assert held_world.status() == (JobStatus.COMPLETED, ["COMPLETED", "COMPLETED"])
    # Read once and planned once: the rebalance cost the plan nothing.
    assert held.reads == 1
    assert held_world.publisher.types().count("SequencePlanned") == 2


async def test_kept_planning_of_a_job_whose_partition_moved_stops_before_writing(
    held_world: World,
) -> None:
    ownership = ownership_of(held_world)
    await planning_then_rebalance(held_world, ownership)

    await ownership.on_partitions_assigned(assigned(*OTHERS))
    # Stopped by the time the listener returns: the new owner plans it, alone.
    assert held_world.engine.scheduler.kept_through_rebalance() == []
    await held_world.engine.idle()
    assert held_world.plans.plans == {}
    assert "SequencePlanned" not in held_world.publisher.types()
    assert held_world.status()[0] is JobStatus.RUNNING
