"""An approval covers the records of the plan an operator approved, not only its counts: a plan
planned again after a failure is written on that approval only if its changes are the same."""

import uuid

import pytest
from provisioning_common.commands import (
    CommandData,
    RestartJob,
    ValidateThreshold,
    ValidateThresholdData,
)
from provisioning_common.events import (
    CommandRejected,
    JobCompleted,
    JobFailed,
    SequenceBlocked,
    SequencePlanned,
    SequenceReleased,
    ThresholdValidated,
)
from provisioning_common.statuses import JobStatus

from tests.integration.engine.conftest import EngineRig, csv_text, definition, sequence
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

SOURCE = "/provisioning/job-api"


def validate(
    job_id: str, plan_id: str | None, expected: JobStatus | None = None
) -> ValidateThreshold:
    return ValidateThreshold(
        source=SOURCE,
        subject=job_id,
        data=ValidateThresholdData(
            command_id=str(uuid.uuid4()),
            requested_by="alice",
            plan_id=plan_id,
            expected_status=expected,
        ),
    )


def restart(job_id: str) -> RestartJob:
    data = CommandData(command_id=str(uuid.uuid4()), requested_by="carol")
    return RestartJob(source=SOURCE, subject=job_id, data=data)


def rows(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i},{prefix}{i}@x" for i in range(count)]


async def status_is(engine: EngineRig, job_id: str, status: str) -> None:
    async def reached() -> bool:
        run = await engine.database["runs"].find_one({"_id": job_id})
        return run is not None and run["status"] == status

    await eventually(reached, what=f"job {job_id} at {status}")


async def approved_then_failed(engine: EngineRig, name: str) -> tuple[str, str]:
    """30 creations stop at a limit of 20; an operator validates them; the restart fails before
    writing anything (the source file is gone)."""
    path = f"{name}/people.csv"
    engine.write(path, csv_text("uid,mail", rows(30, "a")))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": path},
                collection=name,
                thresholds={"create": {"count": 20}},
            )
        )
    )
    (blocked,) = await engine.events.wait_for(job_id, SequenceBlocked)
    await status_is(engine, job_id, "THRESHOLD")
    plan_id: str = blocked.data.plan_id
    await engine.publish_command(validate(job_id, plan_id, JobStatus.THRESHOLD))
    await engine.events.wait_for(job_id, ThresholdValidated)
    (engine.data_dir / path).unlink()
    await engine.publish_command(restart(job_id))
    await engine.events.wait_for(job_id, JobFailed)
    assert await engine.target[name].count_documents({}) == 0
    return job_id, path


async def test_a_changed_plan_after_an_approval_stops_at_threshold_again(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, path = await approved_then_failed(engine, unique_name)
    # 30 other people: the same counts as approved, none of the records the operator saw.
    engine.write(path, csv_text("uid,mail", rows(30, "b")))
    await engine.publish_command(restart(job_id))
    blocks = await engine.events.wait_for(job_id, SequenceBlocked, count=2)
    await status_is(engine, job_id, "THRESHOLD")
    again = blocks[-1].data
    assert (again.threshold.limit, again.threshold.actual) == ("count", 30)
    assert engine.events.events(job_id, SequenceReleased) == []
    assert await engine.target[unique_name].count_documents({}) == 0
    planned = engine.events.events(job_id, SequencePlanned)
    assert planned[0].data.digest != planned[-1].data.digest


async def test_the_same_plan_after_an_approval_is_written_on_it(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, path = await approved_then_failed(engine, unique_name)
    engine.write(path, csv_text("uid,mail", rows(30, "a")))
    await engine.publish_command(restart(job_id))
    await engine.events.wait_for(job_id, JobCompleted)
    (released,) = engine.events.events(job_id, SequenceReleased)
    assert released.data.reason == "within_approval"
    assert set(await engine.records(unique_name)) == {f"a{i}" for i in range(30)}


async def test_a_validate_for_a_plan_the_job_was_planned_past_is_rejected(
    engine: EngineRig, unique_name: str
) -> None:
    """The projector is behind: an operator who saw plan A (30 creations) validates it, but
    someone else restarted the job and it stopped again on plan B (300 creations)."""
    path = f"{unique_name}/people.csv"
    engine.write(path, csv_text("uid,mail", rows(30, "a")))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": path},
                collection=unique_name,
                thresholds={"create": {"count": 20}},
            )
        )
    )
    (first,) = await engine.events.wait_for(job_id, SequenceBlocked)
    await status_is(engine, job_id, "THRESHOLD")
    engine.write(path, csv_text("uid,mail", rows(300, "a")))
    await engine.publish_command(restart(job_id))
    blocks = await engine.events.wait_for(job_id, SequenceBlocked, count=2)
    await status_is(engine, job_id, "THRESHOLD")
    plan_b = blocks[-1].data.plan_id

    command = validate(job_id, first.data.plan_id, JobStatus.THRESHOLD)
    await engine.publish_command(command)
    (rejected,) = await engine.events.wait_for(job_id, CommandRejected)
    assert rejected.data.command_id == command.data.command_id
    assert rejected.data.current_plan_id == plan_b
    assert rejected.data.current_counts is not None
    assert rejected.data.current_counts.create == 300
    assert f"blocked on plan {plan_b} (300 creations" in rejected.data.reason
    assert engine.events.events(job_id, ThresholdValidated) == []
    await status_is(engine, job_id, "THRESHOLD")
    assert await engine.target[unique_name].count_documents({}) == 0


async def test_a_validate_that_names_no_plan_is_rejected(
    engine: EngineRig, unique_name: str
) -> None:
    path = f"{unique_name}/people.csv"
    engine.write(path, csv_text("uid,mail", rows(30, "a")))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": path},
                collection=unique_name,
                thresholds={"create": {"count": 20}},
            )
        )
    )
    (blocked,) = await engine.events.wait_for(job_id, SequenceBlocked)
    await status_is(engine, job_id, "THRESHOLD")
    await engine.publish_command(validate(job_id, None))
    (rejected,) = await engine.events.wait_for(job_id, CommandRejected)
    assert "names no plan" in rejected.data.reason
    assert rejected.data.current_plan_id == blocked.data.plan_id
    await status_is(engine, job_id, "THRESHOLD")
