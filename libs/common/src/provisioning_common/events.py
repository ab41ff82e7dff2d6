"""Events on provisioning.job-events, past tense, keyed and subjected by job id."""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, TypeAdapter

from provisioning_common.definitions import Action, JobDefinition, Thresholds
from provisioning_common.envelope import Envelope, Payload, UtcTime
from provisioning_common.requests import Origin

# The producer of the threshold decisions (SequenceReleased, SequenceBlocked): the runner acts
# on no decision from another source.
THRESHOLD_GUARD_SOURCE = "/provisioning/threshold-guard"

# ---- bounded text ----------------------------------------------------------------------------

# A reason is read by people and carried in every event about a failure: it must never make an
# event too large for the broker (a duplicated 1.2 MB key once did, and the job looked RUNNING
# for ever). The start says what went wrong, the end where (the lines), so the middle is cut.
REASON_LIMIT_BYTES = 2048
# A value from a source or target quoted in a reason ('uid=...'): enough to recognise it.
QUOTED_VALUE_LIMIT = 200
_REASON_TAIL_BYTES = 256
# A run of text in single or double quotes longer than a quoted value may be, as repr() quotes.
# Without "…": a value already shortened is not shortened again when the event is read back.
_LONG = QUOTED_VALUE_LIMIT + 1
_QUOTED = re.compile(rf"'[^'\n…]{{{_LONG},}}'|\"[^\"\n…]{{{_LONG},}}\"")


def shortened(text: str, limit: int = QUOTED_VALUE_LIMIT) -> str:
    """`text` cut to `limit` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def quoted(value: Any, limit: int = QUOTED_VALUE_LIMIT) -> str:
    """repr(value) for a reason, at most about `limit` characters of it."""
    text = repr(value)
    if len(text) <= limit + 2:
        return text
    return text[0] + shortened(text[1:-1], limit) + text[-1]


def quoted_text(text: str) -> str:
    """A quoted run ('...' or "...") with what is between the quotes shortened."""
    return text[0] + shortened(text[1:-1]) + text[-1]


def _utf8_head(text: str, size: int) -> str:
    return text.encode()[:size].decode(errors="ignore")


def _utf8_tail(text: str, size: int) -> str:
    return text.encode()[-size:].decode(errors="ignore")


def bounded_reason(reason: str, limit_bytes: int = REASON_LIMIT_BYTES) -> str:
    """A reason fit for an event: each quoted value shortened, the whole at most `limit_bytes`
    in UTF-8, its start and its end kept around a marker of what was cut."""
    reason = _QUOTED.sub(lambda found: quoted_text(found.group(0)), reason)
    if len(reason.encode()) <= limit_bytes:
        return reason
    tail = _utf8_tail(reason, _REASON_TAIL_BYTES)
    marker = f" … [{len(reason)} characters in all, cut] … "
    head = _utf8_head(reason, limit_bytes - len(marker.encode()) - len(tail.encode()))
    return head + marker + tail


# Every reason in an event is bounded when the event is made (and when one is read).
Reason = Annotated[str, AfterValidator(bounded_reason)]


# ---- payload pieces -------------------------------------------------------------------------


# Disables (`deprovision: "disable"`) are their own count beside the deletions, and the delete
# threshold is held against both (as Entra counts them). `disable` was added later with a
# default of 0: events written before it parse, and until then `delete` held the disables too.
def _disable_count() -> Any:
    return Field(
        default=0,
        ge=0,
        description="Records disabled rather than deleted (deprovision: disable); the delete "
        "threshold is held against delete + disable.",
    )


class PlanCounts(Payload):
    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    target_size: int = Field(ge=0, description="Records in the target before the sequence.")
    disable: int = _disable_count()
    # Left out of the message when None, so every other plan's counts read as they always did.
    conflicts: int | None = Field(
        default=None,
        ge=0,
        exclude_if=lambda value: value is None,
        description="A revert's plan only: records changed since the reverted sequence ran, "
        "left alone (or, when included, forced back and counted with their action).",
    )

    def for_action(self, action: Action) -> int:
        """The number the action's threshold is held against: deletions and disables for
        `delete`."""
        if action == "delete":
            return self.delete + self.disable
        value: int = getattr(self, action)
        return value

    @property
    def changes(self) -> int:
        """Every change the plan writes."""
        return self.create + self.update + self.delete + self.disable


class AppliedCounts(Payload):
    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    disable: int = _disable_count()


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
    """The plan an operator saw and approved at a threshold: its counts and its content."""

    create: int = Field(ge=0)
    update: int = Field(ge=0)
    delete: int = Field(ge=0)
    disable: int = _disable_count()
    validated_by: str
    validated_at: UtcTime
    plan_id: str
    digest: str | None = Field(
        default=None,
        description="Digest of the approved plan's changes (action, key, values written). A "
        "later plan is written on this approval only if its digest is the same.",
    )


class RevertOf(Payload):
    """The applied sequence a revert job undoes: its job, its position and the plan it applied."""

    job_id: str
    sequence_index: int = Field(ge=0)
    plan_id: str
    include_conflicts: bool = Field(
        default=False,
        description="Records changed since the sequence ran are forced back to their state "
        "before it too, instead of being left alone.",
    )


# ---- payloads ---------------------------------------------------------------------------------


class JobCreatedData(Payload):
    request_id: str
    definition: JobDefinition = Field(description="Snapshot: later edits change no job.")
    inputs: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    origin: Origin
    requested_by: str
    dry_run: bool = Field(
        default=False, description="Planned only, never applied (a dry run of the job)."
    )
    reverts: RevertOf | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Set on a revert job: its one sequence plans the inverse of this applied "
        "sequence's stored plan instead of reading a source.",
    )


class JobRejectedData(Payload):
    request_id: str
    definition_id: str | None = None
    origin: Origin
    requested_by: str | None = None
    reason: Reason


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
        default=None,
        description="Present on a restart after validation, when this plan makes exactly the "
        "changes that were approved (same digest).",
    )
    digest: str | None = Field(
        default=None, description="Digest of the plan's changes (action, key, values written)."
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
    dry_run: bool = Field(
        default=False, description="Planned only, never applied (a dry run of the job)."
    )


class SequenceFailedData(Payload):
    index: int = Field(ge=0)
    reason: Reason


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
    reason: Reason
    current_plan_id: str | None = Field(
        default=None,
        description="The plan the job waits on now, when a validate named another one (or none).",
    )
    current_counts: PlanCounts | None = Field(
        default=None, description="The counts of that current plan, for the operator to look at."
    )


class JobCompletedData(Payload):
    dry_run: bool = Field(
        default=False, description="Planned only, never applied (a dry run of the job)."
    )


class JobFailedData(Payload):
    index: int | None = None
    reason: Reason


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


def _shrunk(value: Any) -> Any:
    if isinstance(value, str):
        return shortened(value)
    if isinstance(value, list):
        return [_shrunk(item) for item in value]
    if isinstance(value, dict):
        return {name: _shrunk(item) for name, item in value.items()}
    return value


def bounded_event(event: Envelope) -> JobEvent:
    """A copy of `event` with every text in its data shortened to QUOTED_VALUE_LIMIT characters:
    what can still be told when the broker refuses the event as it is. Same id, type and job;
    raises pydantic.ValidationError if the shortened data no longer makes that event."""
    dumped = event.model_dump(mode="json")
    dumped["data"] = _shrunk(dumped.get("data", {}))
    return JOB_EVENT_ADAPTER.validate_python(dumped)
