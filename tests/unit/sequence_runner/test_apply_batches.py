"""How the runner writes a stored plan: in batches of the target's size unless the options set
one, the next batch read while one is written, and nothing more once the run is no longer its
to apply."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from provisioning_common.statuses import JobStatus
from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.engine import EngineOptions
from sequence_runner.handlers.messages import EVENT_HANDLERS, handle
from sequence_runner.handlers.sequence_work import DEFAULT_APPLY_BATCH, _read_ahead

from tests.unit.sequence_runner.builders import JOB_ID, definition, job_created, sequence
from tests.unit.sequence_runner.fakes import (
    FakeConnectors,
    FakePlans,
    FakeTarget,
)
from tests.unit.sequence_runner.test_engine import World


class BatchTarget(FakeTarget):
    """A target that tells its own batch size and keeps each batch's keys."""

    def __init__(self, key: str, apply_batch_size: int | None = None) -> None:
        super().__init__(key)
        if apply_batch_size is not None:
            self.apply_batch_size = apply_batch_size
        self.batches: list[list[Any]] = []

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        self.batches.append([change.key for change in changes])
        await super().apply(changes)


def make_world(options: EngineOptions, records: int, plans: FakePlans | None = None) -> World:
    people = [{"uid": f"u{i}"} for i in range(records)]
    return World.of(FakeConnectors(sources={"people": people}), options, plans=plans)


async def run_job(world: World, target: FakeTarget) -> None:
    world.connectors.targets["people"] = target
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10_000}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()


async def test_the_targets_own_batch_size_is_used_unless_the_options_set_one() -> None:
    own = BatchTarget("uid", apply_batch_size=3)
    await run_job(make_world(EngineOptions(work_retries=1), 7), own)
    assert [len(batch) for batch in own.batches] == [3, 3, 1]

    overridden = BatchTarget("uid", apply_batch_size=3)
    await run_job(make_world(EngineOptions(work_retries=1, apply_batch_size=2), 7), overridden)
    assert [len(batch) for batch in overridden.batches] == [2, 2, 2, 1]


async def test_a_target_without_a_batch_size_gets_the_default() -> None:
    plain = BatchTarget("uid")
    await run_job(make_world(EngineOptions(work_retries=1), DEFAULT_APPLY_BATCH + 1), plain)
    assert [len(batch) for batch in plain.batches] == [DEFAULT_APPLY_BATCH, 1]


class LoggedPlans(FakePlans):
    """Plans whose reading is logged beside the target's writes, and told when it stops."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log
        self.closed = False

    async def changes(
        self, plan_id: str, batch_size: int, start: int = 0
    ) -> AsyncIterator[list[PlannedChange]]:
        try:
            number = 0
            async for batch in super().changes(plan_id, batch_size, start):
                await asyncio.sleep(0)  # a round trip to the store
                self.log.append(f"read {number}")
                number += 1
                yield batch
        finally:
            self.closed = True


class SlowTarget(BatchTarget):
    def __init__(self, log: list[str], failing_at: int | None = None) -> None:
        super().__init__("uid", apply_batch_size=2)
        self.log = log
        self.failing_at = failing_at

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        number = len(self.batches)
        self.log.append(f"write {number}")
        for _ in range(3):
            await asyncio.sleep(0)  # a round trip to the target
        if number == self.failing_at:
            raise TargetError("the server refused the batch")
        await super().apply(changes)
        self.log.append(f"written {number}")


async def test_the_next_batch_is_read_while_one_is_written() -> None:
    log: list[str] = []
    world = make_world(EngineOptions(work_retries=1), 5, LoggedPlans(log))
    target = SlowTarget(log)
    await run_job(world, target)
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])
    assert target.batches == [["u0", "u1"], ["u2", "u3"], ["u4"]]
    # Batch 1 came from the store while batch 0 was being written, and so on.
    assert log.index("read 1") < log.index("written 0")
    assert log.index("read 2") < log.index("written 1")


async def test_a_failed_write_stops_the_reading_of_the_plan() -> None:
    log: list[str] = []
    plans = LoggedPlans(log)
    world = make_world(EngineOptions(work_retries=1), 7, plans)
    target = SlowTarget(log, failing_at=1)
    await run_job(world, target)
    assert world.status() == (JobStatus.FAILED, ["FAILED"])
    assert target.batches == [["u0", "u1"]]
    assert plans.closed
    assert "read 3" not in log


async def test_an_apply_taken_over_between_batches_writes_no_more() -> None:
    """Another runner moved the job on while a batch was written: the recording of that batch
    is refused, and the next batch, already read, is not written."""
    world = make_world(EngineOptions(work_retries=1), 6)

    class TakenOver(BatchTarget):
        async def apply(self, changes: Sequence[PlannedChange]) -> None:
            await super().apply(changes)
            if len(self.batches) == 1:
                row = world.runs.rows[JOB_ID]
                moved = row.run.sequence(0).model_copy(update={"plan_id": "another-plan"})
                row.run, row.version = row.run.with_sequence(moved), row.version + 1

    target = TakenOver("uid", apply_batch_size=2)
    await run_job(world, target)
    assert target.batches == [["u0", "u1"]]


async def _numbers(failing_at: int | None = None, hanging_at: int | None = None) -> Any:
    for number in range(5):
        await asyncio.sleep(0)
        if number == failing_at:
            raise RuntimeError("the plan store went away")
        if number == hanging_at:
            await asyncio.Event().wait()
        yield number


async def test_reading_ahead_stops_quietly_with_the_apply() -> None:
    """The apply stopped after batch 0 (a failed write): the read in flight, which failed,
    is not raised in its place."""
    async with contextlib.aclosing(_read_ahead(_numbers(failing_at=1))) as numbers:
        async for number in numbers:
            assert number == 0
            for _ in range(5):
                await asyncio.sleep(0)  # batch 0 written while batch 1's read fails
            break


async def test_reading_ahead_is_cancelled_with_the_apply() -> None:
    seen: list[int] = []
    reading_the_third = asyncio.Event()

    async def apply() -> None:
        async with contextlib.aclosing(_read_ahead(_numbers(hanging_at=2))) as numbers:
            async for number in numbers:
                seen.append(number)
                if number == 1:
                    reading_the_third.set()

    task = asyncio.create_task(apply())
    await reading_the_third.wait()
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled()
    assert seen == [0, 1]
