"""The read model's shape: a job instance and its sequence instances, defined once.

The projection folds events into `JobInstance`, the store keeps `JobInstance.to_document()`
in MongoDB's `job_instances`, the API publishes `JobInstanceSummary`'s fields (plus the
definition snapshot on one job), and the tests build instances with the same constructors.
See docs/projection.md for what each field means to an operator.
"""

from datetime import datetime
from typing import Any, Literal

from provisioning_common.requests import Origin
from provisioning_common.statuses import JobStatus, SequenceStatus
from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    # Statuses are stored and compared as their plain string values. Fields MongoDB returns
    # that the shape does not name (an older or newer projector's) are dropped when read.
    model_config = ConfigDict(extra="ignore", use_enum_values=True)


class PlannedCounts(_Shape):
    create: int
    update: int
    delete: int
    unchanged: int = 0
    target_size: int = Field(default=0, description="Records in the target before the sequence.")
    disable: int = Field(
        default=0, description="Records disabled, not deleted (deprovision: disable)."
    )
    conflicts: int | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="A revert's plan only: records changed since the reverted sequence ran.",
    )


class AppliedCounts(_Shape):
    create: int
    update: int
    delete: int
    disable: int = Field(
        default=0, description="Records disabled, not deleted (deprovision: disable)."
    )


class ThresholdHit(_Shape):
    action: Literal["create", "update", "delete"]
    limit: str = Field(description="count, percent, or approved (a validated plan that grew).")
    limit_value: float
    actual: int = Field(description="The planned number of that action.")
    limit_records: int | None = Field(
        default=None, description="A percent limit in records of this target."
    )


class ApprovedCounts(_Shape):
    create: int
    update: int
    delete: int
    disable: int = Field(
        default=0, description="Records disabled, not deleted (deprovision: disable)."
    )
    plan_id: str | None = None


class Progress(_Shape):
    phase: str
    done: int
    total: int | None = None


class RejectedCommand(_Shape):
    command_id: str
    command: str
    requested_by: str | None = None
    reason: str
    at: datetime | None = None


class RevertedSequence(_Shape):
    """The applied sequence a revert job undoes."""

    job_id: str
    sequence_index: int
    plan_id: str
    include_conflicts: bool = False


class ProjectionPosition(_Shape):
    """Where the last event folded into a document was read: (partition, offset)."""

    partition: int
    offset: int


class SequenceInstance(_Shape):
    index: int
    name: str
    status: SequenceStatus = SequenceStatus.PENDING
    attempt: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    plan_id: str | None = None
    planned: PlannedCounts | None = None
    applied: AppliedCounts | None = None
    released: str | None = Field(
        default=None, description="Why the guard released the plan, once it did."
    )
    threshold: ThresholdHit | None = None
    threshold_hits: list[ThresholdHit] = Field(default_factory=list)
    above_approval: bool = False
    approval: ApprovedCounts | None = Field(
        default=None, description="The counts an operator approved at the threshold."
    )
    validated_by: str | None = None
    validated_at: datetime | None = None
    canceled_by: str | None = None
    canceled_at: datetime | None = None
    failure: str | None = None
    progress: Progress | None = None

    @classmethod
    def pending(cls, index: int, name: str) -> "SequenceInstance":
        """A sequence instance before its job starts: nothing planned, nothing applied."""
        return cls(index=index, name=name)


class JobInstanceSummary(_Shape):
    """The fields of a job instance that listings return (all but the definition snapshot)."""

    id: str
    request_id: str | None = None
    definition_id: str
    definition_name: str | None = None
    definition_version: int | None = None
    status: JobStatus
    archived: bool = False
    origin: Origin | None = None
    requested_by: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    attempt: int = 0
    sequences: list[SequenceInstance] = Field(default_factory=list)
    failure: str | None = None
    failed_index: int | None = None
    canceled_by: str | None = None
    canceled_at: datetime | None = None
    archived_by: str | None = None
    archived_at: datetime | None = None
    restarted_by: str | None = None
    restarted_at: datetime | None = None
    last_rejected_command: RejectedCommand | None = Field(
        default=None,
        description="The last command the sequence runner refused (it answers after the 202).",
    )
    input_records: dict[str, int] | None = Field(
        default=None, description="Records given inline with the request, by sequence name."
    )
    dry_run: bool = Field(
        default=False, description="Planned and decided only: nothing was or will be applied."
    )
    reverts: RevertedSequence | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Set on a revert job: the applied sequence whose plan it undoes.",
    )

    def sequence(self, index: int) -> SequenceInstance | None:
        return next((s for s in self.sequences if s.index == index), None)

    def blocked_plan_id(self) -> str | None:
        """The plan of the sequence stopped at its threshold: what a validate approves."""
        for sequence in self.sequences:
            if sequence.status == SequenceStatus.THRESHOLD:
                return sequence.plan_id
        return None


class JobInstance(JobInstanceSummary):
    """One document of `job_instances`, `_id` = job id."""

    model_config = ConfigDict(extra="ignore", use_enum_values=True, populate_by_name=True)
    mongo_id: str = Field(alias="_id")
    definition: dict[str, Any] = Field(
        default_factory=dict, description="The definition snapshot the job runs."
    )
    projection: ProjectionPosition | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "JobInstance":
        return cls.model_validate(doc)

    def to_document(self) -> dict[str, Any]:
        """As stored in MongoDB: `_id` first, every field present."""
        return self.model_dump(by_alias=True)


# Listings read these fields only: the definition snapshot (and the projection's position)
# stay in the database.
SUMMARY_FIELDS: tuple[str, ...] = tuple(JobInstanceSummary.model_fields)
