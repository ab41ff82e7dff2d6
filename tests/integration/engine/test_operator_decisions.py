"""Operator commands on real Kafka: validate, restart, cancel, rejections and a race."""

import uuid
from typing import Any

import pytest
from provisioning_common.commands import (
    CancelJob,
    CommandData,
    RestartJob,
    ValidateThreshold,
    ValidateThresholdData,
)
from provisioning_common.events import (
    CommandRejected,
    JobCanceled,
    JobCompleted,
    JobStarted,
    SequenceBlocked,
    SequenceCanceled,
    SequenceCompleted,
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
    job_id: str, plan_id: str | None = None, expected: JobStatus | None = None
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


def cancel(job_id: str, expected: JobStatus | None = None) -> CancelJob:
    data = CommandData(command_id=str(uuid.uuid4()), requested_by="bob", expected_status=expected)
    return CancelJob(source=SOURCE, subject=job_id, data=data)


def restart(job_id: str) -> RestartJob:
    data = CommandData(command_id=str(uuid.uuid4()), requested_by="carol")
    return RestartJob(source=SOURCE, subject=job_id, data=data)


async def run_status(engine: EngineRig, job_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        run = await engine.database["runs"].find_one({"_id": job_id})
        return run if run is not None and run["status"] == status else None

    found: dict[str, Any] = await eventually(reached, what=f"job {job_id} at {status}")
    return found


def rows(count: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i},{prefix}{i}@x" for i in range(count)]


async def blocked_job(engine: EngineRig, name: str, creates: int = 5) -> tuple[str, str]:
    """A three-sequence job whose second sequence stops at its create threshold (count 3)."""
    engine.write(f"{name}/first.csv", csv_text("uid,mail", rows(1, "f")))
    engine.write(f"{name}/second.csv", csv_text("uid,mail", rows(creates)))
    engine.write(f"{name}/third.csv", csv_text("uid,mail", rows(1, "t")))
    job_id = await engine.submit(
        definition(
            sequence("first", {"type": "csv", "path": f"{name}/first.csv"}, collection=name),
            sequence(
                "second",
                {"type": "csv", "path": f"{name}/second.csv"},
                collection=name,
                thresholds={"create": {"count": 3}},
            ),
            sequence("third", {"type": "csv", "path": f"{name}/third.csv"}, collection=name),
        )
    )
    (blocked,) = await engine.events.wait_for(job_id, SequenceBlocked)
    await run_status(engine, job_id, "THRESHOLD")
    plan_id: str = blocked.data.plan_id
    return job_id, plan_id


async def test_validate_then_restart_completes_the_job(engine: EngineRig, unique_name: str) -> None:
    job_id, plan_id = await blocked_job(engine, unique_name)
    await engine.publish_command(validate(job_id, plan_id))
    (validated,) = await engine.events.wait_for(job_id, ThresholdValidated)
    assert validated.data.index == 1
    approval = validated.data.approval
    assert (approval.create, approval.update, approval.delete) == (5, 0, 0)
    assert (approval.validated_by, approval.plan_id) == ("alice", plan_id)
    run = await run_status(engine, job_id, "VALIDATED")
    assert [s["status"] for s in run["sequences"]] == ["COMPLETED", "VALIDATED", "PENDING"]
    # Validation does not restart: only the first sequence has written anything.
    assert await engine.target[unique_name].count_documents({}) == 1

    await engine.publish_command(restart(job_id))
    await engine.events.wait_for(job_id, JobCompleted)
    replanned = engine.events.events(job_id, SequencePlanned)[-2]
    assert replanned.data.index == 1
    assert replanned.data.approval == approval
    released = [r for r in engine.events.events(job_id, SequenceReleased) if r.data.index == 1]
    assert released[-1].data.reason == "within_approval"
    started = engine.events.events(job_id, JobStarted)
    assert [(s.data.attempt, s.data.restarted_by) for s in started] == [(1, None), (2, "carol")]
    assert await engine.target[unique_name].count_documents({}) == 7


async def test_a_plan_grown_past_its_approval_stops_at_threshold_again(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, plan_id = await blocked_job(engine, unique_name)
    await engine.publish_command(validate(job_id, plan_id))
    await run_status(engine, job_id, "VALIDATED")
    engine.write(f"{unique_name}/second.csv", csv_text("uid,mail", rows(6)))
    await engine.publish_command(restart(job_id))
    blocks = await engine.events.wait_for(job_id, SequenceBlocked, count=2)
    again = blocks[-1].data
    # Not the plan that was approved (another record): decided as a first plan is.
    assert engine.events.events(job_id, SequencePlanned)[-1].data.approval is None
    assert (again.threshold.limit, again.threshold.limit_value, again.threshold.actual) == (
        "count",
        3,
        6,
    )
    await run_status(engine, job_id, "THRESHOLD")
    assert await engine.target[unique_name].count_documents({}) == 1


async def test_cancel_cancels_the_blocked_and_every_later_sequence(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, _ = await blocked_job(engine, unique_name)
    await engine.publish_command(cancel(job_id))
    (canceled,) = await engine.events.wait_for(job_id, JobCanceled)
    assert canceled.data.canceled_by == "bob"
    assert [e.data.index for e in engine.events.events(job_id, SequenceCanceled)] == [1, 2]
    run = await run_status(engine, job_id, "CANCELED")
    assert [s["status"] for s in run["sequences"]] == ["COMPLETED", "CANCELED", "CANCELED"]
    assert await engine.target[unique_name].count_documents({}) == 1


async def test_validating_a_completed_job_is_rejected_with_the_reason(
    engine: EngineRig, unique_name: str
) -> None:
    job_id = await engine.submit(
        definition(sequence("accounts", {"type": "inline"}, collection=unique_name)),
        inputs={"accounts": [{"uid": "a"}]},
    )
    await engine.events.wait_for(job_id, JobCompleted)
    command = validate(job_id)
    await engine.publish_command(command)
    (rejected,) = await engine.events.wait_for(job_id, CommandRejected)
    assert rejected.data.command_id == command.data.command_id
    assert rejected.data.command == "ValidateThreshold"
    assert rejected.data.reason == (
        f"job {job_id} is COMPLETED; only a job at THRESHOLD can be validated"
    )


async def test_validating_a_plan_the_job_is_not_blocked_on_is_rejected(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, plan_id = await blocked_job(engine, unique_name)
    await engine.publish_command(validate(job_id, "some-other-plan"))
    (rejected,) = await engine.events.wait_for(job_id, CommandRejected)
    assert f"blocked on plan {plan_id}" in rejected.data.reason
    await run_status(engine, job_id, "THRESHOLD")


async def test_validate_and_cancel_back_to_back_exactly_one_wins(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, plan_id = await blocked_job(engine, unique_name)
    # Both operators saw the job at THRESHOLD.
    await engine.publish_command(validate(job_id, plan_id, expected=JobStatus.THRESHOLD))
    await engine.publish_command(cancel(job_id, expected=JobStatus.THRESHOLD))
    (rejected,) = await engine.events.wait_for(job_id, CommandRejected)
    assert rejected.data.command == "CancelJob"
    assert "no longer THRESHOLD" in rejected.data.reason
    assert len(engine.events.events(job_id, ThresholdValidated)) == 1
    assert engine.events.events(job_id, JobCanceled) == []
    await run_status(engine, job_id, "VALIDATED")


async def test_a_command_for_a_job_the_runner_does_not_know_is_rejected(
    engine: EngineRig,
) -> None:
    job_id = str(uuid.uuid4())
    await engine.publish_command(restart(job_id))
    (rejected,) = await engine.events.wait_for(job_id, CommandRejected)
    assert "not known" in rejected.data.reason


async def test_a_job_stopped_at_threshold_restarts_after_its_source_was_fixed(
    engine: EngineRig, unique_name: str
) -> None:
    job_id, _ = await blocked_job(engine, unique_name)
    engine.write(f"{unique_name}/second.csv", csv_text("uid,mail", rows(2)))
    await engine.publish_command(restart(job_id))
    await engine.events.wait_for(job_id, JobCompleted)
    completed = engine.events.events(job_id, SequenceCompleted)
    assert [c.data.index for c in completed] == [0, 1, 2]
