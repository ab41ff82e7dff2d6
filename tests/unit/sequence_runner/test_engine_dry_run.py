"""The engine with fakes: a dry run plans and has every sequence decided, writes nothing, and
completes; a deleted job's plans go with it."""

from provisioning_common.events import JobCreated, JobDeleted, JobDeletedData
from provisioning_common.statuses import JobStatus
from sequence_runner.handlers.messages import EVENT_HANDLERS, handle

from tests.unit.sequence_runner.builders import JOB_ID, definition, job_created, sequence
from tests.unit.sequence_runner.test_engine import World, world

__all__ = ["world"]  # the fixture, shared with test_engine


def dry(created: JobCreated) -> JobCreated:
    return created.model_copy(update={"data": created.data.model_copy(update={"dry_run": True})})


async def test_a_dry_run_writes_nothing_and_completes_past_a_threshold(world: World) -> None:
    created = job_created(
        definition(
            sequence("people", thresholds={"create": {"count": 3}}),  # 3 creations: blocked
            sequence("groups", thresholds={"create": {"count": 10}}),
        )
    )
    await handle(EVENT_HANDLERS, dry(created), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED", "COMPLETED"])
    assert world.publisher.types() == [
        "JobStarted",
        "SequenceStarted",
        "SequencePlanned",
        "SequenceBlocked",
        "SequenceCompleted",
        "SequenceStarted",
        "SequencePlanned",
        "SequenceReleased",
        "SequenceCompleted",
        "JobCompleted",
    ]
    for target in world.connectors.targets.values():
        assert target.writes == []
    assert len(world.plans.plans) == 2  # both plans kept, to be looked at


async def test_a_deleted_job_takes_its_plans_with_it(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert world.plans.plans
    deleted = JobDeleted(
        source="/provisioning/job-api", subject=JOB_ID, data=JobDeletedData(deleted_by="admin")
    )
    await handle(EVENT_HANDLERS, deleted, world.engine)
    assert world.plans.plans == {}
