"""A job's run: its lifecycle as the sequence runner owns it, one sequence at a time."""

from datetime import datetime
from typing import Any, Literal

from provisioning_common.definitions import JobDefinition, SequenceDefinition
from provisioning_common.events import AppliedCounts, Approval, PlanCounts, RevertOf, ThresholdHit
from provisioning_common.statuses import JobStatus, SequenceStatus
from pydantic import BaseModel, ConfigDict

# Where a RUNNING sequence is: being planned, waiting for the guard's decision, being applied.
Phase = Literal["planning", "deciding", "applying"]
# Phases in which the runner itself has work to do (in "deciding" it waits for the guard).
WORKING_PHASES: frozenset[Phase] = frozenset({"planning", "applying"})
# Enough to recognise a redelivered command; older ones cannot come back.
HANDLED_COMMANDS_KEPT = 100


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SequenceRun(_Frozen):
    index: int
    name: str
    status: SequenceStatus = SequenceStatus.PENDING
    phase: Phase | None = None
    plan_id: str | None = None
    planned: PlanCounts | None = None
    # plan_digest() of the current plan's changes: what validating it approves.
    plan_digest: str | None = None
    # When the current plan was handed to the guard: a validate sent before cannot be about it.
    planned_at: datetime | None = None
    # Changes of the current plan written so far, recorded after each batch: an apply taken up
    # again after a crash goes on from there instead of writing its first batches again.
    written: int | None = None
    applied: AppliedCounts | None = None
    threshold: ThresholdHit | None = None
    # Kept across restarts: a later plan with the same digest (the same changes) is written on
    # it, up to the approved counts; any other plan is decided as if there were no approval.
    approval: Approval | None = None
    reason: str | None = None


class Run(_Frozen):
    job_id: str
    request_id: str
    requested_by: str
    status: JobStatus
    attempt: int
    definition: JobDefinition
    inputs: dict[str, list[dict[str, Any]]]
    sequences: tuple[SequenceRun, ...]
    handled_commands: tuple[str, ...] = ()
    # A dry run plans each sequence and has it decided, and never applies a plan.
    dry_run: bool = False
    # A revert job: its one sequence plans the inverse of this applied sequence's stored plan.
    reverts: RevertOf | None = None

    def sequence(self, index: int) -> SequenceRun:
        return self.sequences[index]

    def sequence_definition(self, index: int) -> SequenceDefinition:
        return self.definition.sequences[index]

    def with_sequence(self, sequence: SequenceRun) -> "Run":
        sequences = list(self.sequences)
        sequences[sequence.index] = sequence
        return self.model_copy(update={"sequences": tuple(sequences)})

    def with_handled_command(self, command_id: str) -> "Run":
        kept = (*self.handled_commands, command_id)[-HANDLED_COMMANDS_KEPT:]
        return self.model_copy(update={"handled_commands": kept})

    def is_applying(self, index: int, plan_id: str) -> bool:
        """Whether the run still wants this plan of this sequence written."""
        if self.status is not JobStatus.RUNNING or not 0 <= index < len(self.sequences):
            return False
        sequence = self.sequences[index]
        return (
            sequence.status is SequenceStatus.RUNNING
            and sequence.phase == "applying"
            and sequence.plan_id == plan_id
        )

    def awaiting_decision(self) -> SequenceRun | None:
        """The sequence stopped at a threshold (validated or not), if the job waits on one."""
        for sequence in self.sequences:
            if sequence.status in (SequenceStatus.THRESHOLD, SequenceStatus.VALIDATED):
                return sequence
        return None

    def pending_work(self) -> tuple[int, Phase] | None:
        """The sequence the runner has to plan or apply now, if any."""
        if self.status is not JobStatus.RUNNING:
            return None
        for sequence in self.sequences:
            if sequence.status is SequenceStatus.RUNNING and sequence.phase in WORKING_PHASES:
                assert sequence.phase is not None
                return sequence.index, sequence.phase
        return None
