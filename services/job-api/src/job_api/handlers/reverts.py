"""An admin's revert of an applied sequence: a new job, linked to the sequence, whose plan is
the inverse of the plan that sequence applied (planned by the sequence runner)."""

from dataclasses import dataclass
from uuid import uuid4

from provisioning_common.definitions import JobDefinition
from provisioning_common.events import RevertOf
from provisioning_common.requests import JobRequest
from pydantic import ValidationError

from job_api.domain.reverts import RevertRefusedError, revert_definition, revert_refusal
from job_api.handlers.job_requests import (
    IntakeResult,
    JobEventPublisher,
    JobInstanceIntake,
    submit_job_request,
)


@dataclass(frozen=True)
class RevertRequest:
    job_id: str
    index: int
    requested_by: str
    include_conflicts: bool = False
    dry_run: bool = False
    # Chosen by the caller to make a retried call the same job; generated otherwise.
    request_id: str | None = None


class _Snapshot:
    """The definition lookup of a revert job: the reverted job's own snapshot, not the
    definition as it may have been edited since."""

    def __init__(self, definition: JobDefinition) -> None:
        self._definition = definition

    async def get(self, definition_id: str) -> JobDefinition | None:
        return self._definition if definition_id == self._definition.id else None


async def request_revert(
    wanted: RevertRequest, *, job_instances: JobInstanceIntake, publisher: JobEventPublisher
) -> IntakeResult:
    """JobCreated for the revert job (or the job a repeated request id already made).

    Raises RevertRefusedError when the job or sequence is unknown or cannot be reverted."""
    doc = await job_instances.get(wanted.job_id)
    if doc is None:
        raise RevertRefusedError(404, f"no job instance with id {wanted.job_id}")
    refused = revert_refusal(doc, wanted.index)
    if refused is not None:
        raise refused
    sequence = doc.sequence(wanted.index)
    assert sequence is not None
    assert sequence.plan_id is not None
    try:
        snapshot = JobDefinition.model_validate(doc.definition)
    except ValidationError:
        raise RevertRefusedError(
            409,
            f"job {wanted.job_id} has no readable definition snapshot (its read model may be "
            "being rebuilt); read the job again and retry",
        ) from None
    definition = revert_definition(snapshot, wanted.index)
    kind = "revert-preview" if wanted.dry_run else "revert"
    request = JobRequest(
        request_id=wanted.request_id or f"{kind}:{wanted.job_id}:{wanted.index}:{uuid4().hex[:12]}",
        definition_id=definition.id,
        requested_by=wanted.requested_by,
        dry_run=wanted.dry_run,
    )
    return await submit_job_request(
        request,
        origin="api",
        definitions=_Snapshot(definition),
        job_instances=job_instances,
        publisher=publisher,
        reverts=RevertOf(
            job_id=wanted.job_id,
            sequence_index=wanted.index,
            plan_id=sequence.plan_id,
            include_conflicts=wanted.include_conflicts,
        ),
    )
