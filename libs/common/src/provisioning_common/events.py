"""Events on provisioning.job-events, past tense, keyed and subjected by job id."""

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from provisioning_common.definitions import Action, JobDefinition, Thresholds
from provisioning_common.envelope import Envelope, Payload, UtcTime
from provisioning_common.requests import Origin

# ---- payload pieces -------------------------------------------------------------------------


class PlanCounts(Payload):
    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    target_size: int = Field(ge=0, description="Records in the target before the sequence.")

    def for_action(self, action: Action) -> int:
        value: int = getattr(self, action)
        return value


class AppliedCounts(Payload):
    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)


class ThresholdHit(Payload):
    action: Action
    limit: Literal["count", "percent", "approved"] = Field(
        description="Which limit: the configured count or percent, or the count an operator "
        "approved (a validated plan that grew past its approval)."
    )
    limit_value: float = Field(description="The configured count or percent, or approved count.")
    actual: int = Field(description="The planned number of that action.")
    # The percent limit translated into records for this target, so the operator sees a number.
    limit_records: int | None = None


class Approval(Payload):
    """The counts an operator saw and approved at a threshold."""

    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    validated_by: str
    validated_at: UtcTime
    plan_id: str


# ---- payloads ---------------------------------------------------------------------------------


class JobCreatedData(Payload):
    request_id: str
    definition: JobDefinition = Field(description="Snapshot: later edits change no job.")
    inputs: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    origin: Origin
    requested_by: str


class JobRejectedData(Payload):
    request_id: str
    definition_id: str | None = None
    origin: Origin
    requested_by: str | None = None
    reason: str


class JobStartedData(Payload):
    attempt: int = Field(ge=1, description="1 for the first run, +1 on every restart.")
    restarted_by: str | None = None


class SequenceStartedData(Payload):
    index: int = Field(ge=0)
    name: str
    attempt: int = Field(ge=1)


class SequencePlannedData(Payload):
    index: int = Field(ge=0)
    name: str
    plan_id: str
    counts: PlanCounts
    thresholds: Thresholds
    approval: Approval | None = Field(
        default=None, description="Present on a restart after validation."
    )


class SequenceReleasedData(Payload):
    index: int = Field(ge=0)
    plan_id: str
    reason: Literal["within_thresholds", "within_approval"]


class SequenceBlockedData(Payload):
    index: int = Field(ge=0)
    plan_id: str
    threshold: ThresholdHit = Field(description="The first limit reached, in action order.")
    hits: list[ThresholdHit] = Field(description="Every limit reached.")
    above_approval: bool = Field(
        default=False, description="True when a validated plan grew past what was approved."
    )


class SequenceProgressData(Payload):
    index: int = Field(ge=0)
    phase: Literal["planning", "applying"]
    done: int = Field(ge=0)
    total: int | None = Field(default=None, ge=0)


class SequenceCompletedData(Payload):
    index: int = Field(ge=0)
    plan_id: str
    applied: AppliedCounts


class SequenceFailedData(Payload):
    index: int = Field(ge=0)
    reason: str


class ThresholdValidatedData(Payload):
    index: int = Field(ge=0)
    command_id: str
    approval: Approval


class SequenceCanceledData(Payload):
    index: int = Field(ge=0)
    canceled_by: str
    command_id: str


class CommandRejectedData(Payload):
    command_id: str
    command: str
    requested_by: str
    reason: str


class JobCompletedData(Payload):
    pass


class JobFailedData(Payload):
    index: int | None = None
    reason: str


class JobCanceledData(Payload):
    canceled_by: str
    command_id: str


class JobArchivedData(Payload):
    archived_by: str
    archived: bool = Field(description="False when the job was unarchived.")


class JobDeletedData(Payload):
    deleted_by: str


# ---- envelopes -------------------------------------------------------------------------------


class JobCreated(Envelope):
    type: Literal["provisioning.JobCreated"] = "provisioning.JobCreated"
    data: JobCreatedData


class JobRejected(Envelope):
    type: Literal["provisioning.JobRejected"] = "provisioning.JobRejected"
    data: JobRejectedData


class JobStarted(Envelope):
    type: Literal["provisioning.JobStarted"] = "provisioning.JobStarted"
    data: JobStartedData


class SequenceStarted(Envelope):
    type: Literal["provisioning.SequenceStarted"] = "provisioning.SequenceStarted"
    data: SequenceStartedData


class SequencePlanned(Envelope):
    type: Literal["provisioning.SequencePlanned"] = "provisioning.SequencePlanned"
    data: SequencePlannedData


class SequenceReleased(Envelope):
    type: Literal["provisioning.SequenceReleased"] = "provisioning.SequenceReleased"
    data: SequenceReleasedData


class SequenceBlocked(Envelope):
    type: Literal["provisioning.SequenceBlocked"] = "provisioning.SequenceBlocked"
    data: SequenceBlockedData


class SequenceProgress(Envelope):
    type: Literal["provisioning.SequenceProgress"] = "provisioning.SequenceProgress"
    data: SequenceProgressData


class SequenceCompleted(Envelope):
    type: Literal["provisioning.SequenceCompleted"] = "provisioning.SequenceCompleted"
    data: SequenceCompletedData


class SequenceFailed(Envelope):
    type: Literal["provisioning.SequenceFailed"] = "provisioning.SequenceFailed"
    data: SequenceFailedData


class ThresholdValidated(Envelope):
    type: Literal["provisioning.ThresholdValidated"] = "provisioning.ThresholdValidated"
    data: ThresholdValidatedData


class SequenceCanceled(Envelope):
    type: Literal["provisioning.SequenceCanceled"] = "provisioning.SequenceCanceled"
    data: SequenceCanceledData


class CommandRejected(Envelope):
    type: Literal["provisioning.CommandRejected"] = "provisioning.CommandRejected"
    data: CommandRejectedData


class JobCompleted(Envelope):
    type: Literal["provisioning.JobCompleted"] = "provisioning.JobCompleted"
    data: JobCompletedData = Field(default_factory=JobCompletedData)


class JobFailed(Envelope):
    type: Literal["provisioning.JobFailed"] = "provisioning.JobFailed"
    data: JobFailedData


class JobCanceled(Envelope):
    type: Literal["provisioning.JobCanceled"] = "provisioning.JobCanceled"
    data: JobCanceledData


class JobArchived(Envelope):
    type: Literal["provisioning.JobArchived"] = "provisioning.JobArchived"
    data: JobArchivedData


class JobDeleted(Envelope):
    type: Literal["provisioning.JobDeleted"] = "provisioning.JobDeleted"
    data: JobDeletedData


JobEvent = Annotated[
    JobCreated
    | JobRejected
    | JobStarted
    | SequenceStarted
    | SequencePlanned
    | SequenceReleased
    | SequenceBlocked
    | SequenceProgress
    | SequenceCompleted
    | SequenceFailed
    | ThresholdValidated
    | SequenceCanceled
    | CommandRejected
    | JobCompleted
    | JobFailed
    | JobCanceled
    | JobArchived
    | JobDeleted,
    Field(discriminator="type"),
]

JOB_EVENT_ADAPTER: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)


def parse_job_event(raw: bytes | str) -> JobEvent:
    """Parse one message of provisioning.job-events; raises pydantic.ValidationError."""
    return JOB_EVENT_ADAPTER.validate_json(raw)
