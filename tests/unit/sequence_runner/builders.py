"""Small builders of definitions, job events and commands for the runner's unit tests."""

from datetime import UTC, datetime
from typing import Any

from provisioning_common.commands import (
    CancelJob,
    CommandData,
    RestartJob,
    ValidateThreshold,
    ValidateThresholdData,
)
from provisioning_common.definitions import JobDefinition
from provisioning_common.events import JobCreated, JobCreatedData, PlanCounts, ThresholdHit
from provisioning_common.statuses import JobStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
JOB_ID = "00000000-0000-0000-0000-00000000000a"


def sequence(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "inline"},
        "target": {"type": "mongo", "collection": name},
        "key": "uid",
        "thresholds": {"delete": {"count": 10}},
        **overrides,
    }


def definition(*sequences: dict[str, Any]) -> JobDefinition:
    return JobDefinition.model_validate(
        {"id": "hr", "name": "HR", "sequences": list(sequences) or [sequence("people")]}
    )


def job_created(
    defn: JobDefinition | None = None,
    inputs: dict[str, list[dict[str, Any]]] | None = None,
    job_id: str = JOB_ID,
) -> JobCreated:
    return JobCreated(
        source="/provisioning/job-api",
        subject=job_id,
        data=JobCreatedData(
            request_id=f"req-{job_id}",
            definition=defn or definition(sequence("a"), sequence("b"), sequence("c")),
            inputs=inputs or {},
            origin="api",
            requested_by="hr-feed",
        ),
    )


def counts(create: int = 0, update: int = 0, delete: int = 0, size: int = 10) -> PlanCounts:
    return PlanCounts(create=create, update=update, delete=delete, unchanged=0, target_size=size)


def hit(actual: int = 12) -> ThresholdHit:
    return ThresholdHit(action="delete", limit="count", limit_value=10, actual=actual)


def validate_command(
    command_id: str = "c-validate",
    # The plan the transition tests block on; the engine tests pass the one they planned.
    plan_id: str | None = "p1",
    job_id: str = JOB_ID,
    expected_status: JobStatus | None = None,
) -> ValidateThreshold:
    return ValidateThreshold(
        source="/provisioning/job-api",
        subject=job_id,
        data=ValidateThresholdData(
            command_id=command_id,
            requested_by="alice",
            plan_id=plan_id,
            expected_status=expected_status,
        ),
    )


def cancel_command(
    command_id: str = "c-cancel", job_id: str = JOB_ID, expected_status: JobStatus | None = None
) -> CancelJob:
    return CancelJob(
        source="/provisioning/job-api",
        subject=job_id,
        data=CommandData(
            command_id=command_id, requested_by="bob", expected_status=expected_status
        ),
    )


def restart_command(command_id: str = "c-restart", job_id: str = JOB_ID) -> RestartJob:
    return RestartJob(
        source="/provisioning/job-api",
        subject=job_id,
        data=CommandData(command_id=command_id, requested_by="carol"),
    )
