"""The fold of job events into job instance documents: pure, driven by event times only."""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from provisioning_common.decisions import decision_counts
from provisioning_common.events import (
    CommandRejected,
    JobArchived,
    JobCanceled,
    JobCompleted,
    JobCreated,
    JobDeleted,
    JobEvent,
    JobFailed,
    JobRejected,
    JobStarted,
    SequenceBlocked,
    SequenceCanceled,
    SequenceCompleted,
    SequenceFailed,
    SequencePlanned,
    SequenceProgress,
    SequenceReleased,
    SequenceStarted,
    ThresholdValidated,
)
from provisioning_common.statuses import JobStatus, SequenceStatus

from job_api.domain.job_instance import (
    AppliedCounts,
    ApprovedCounts,
    JobInstance,
    PlannedCounts,
    Progress,
    ProjectionPosition,
    RejectedCommand,
    RevertedSequence,
    SequenceInstance,
    ThresholdHit,
)


class Delete:
    """The fold's answer to JobDeleted: the job instance document goes away."""

    _instance: "Delete | None" = None

    def __new__(cls) -> "Delete":
        # One value, so callers compare with `is DELETE`.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = Delete()

FoldResult = JobInstance | Delete | None


def already_folded(
    seen: ProjectionPosition | None, partition: int | None, offset: int | None
) -> bool:
    """True when `seen`, where a document was last folded, is (partition, offset) or later.

    A job's events share one partition (keyed by job id), so the offset orders them; a document
    folded from another partition (the topic was recreated with another partition count) is
    not comparable and the event is folded.
    """
    if seen is None or partition is None or offset is None:
        return False
    return seen.partition == partition and seen.offset >= offset


def fold(
    doc: JobInstance | None, event: JobEvent, partition: int | None, offset: int | None
) -> FoldResult:
    """The job instance after `event`, read from (partition, offset) of provisioning.job-events.

    Returns a new job instance (the input is never mutated), `doc` itself when the event
    changes nothing (already folded, or an event without a document to change), `None` when
    there is no job instance (an event about a job that was deleted or never created, or
    JobRejected), or `DELETE` for JobDeleted.
    """
    if doc is not None and already_folded(doc.projection, partition, offset):
        return doc
    if isinstance(event, JobCreated):
        return _created(doc, event, partition, offset)
    if isinstance(event, JobDeleted):
        # Even without a document (the API deleted it already): the deletion leaves a tombstone.
        return DELETE
    if isinstance(event, JobRejected) or doc is None:
        return doc
    new = doc.model_copy(deep=True)
    _FOLDERS[type(event)](new, event)
    new.updated_at = stored_time(event.time)
    new.projection = _position(partition, offset)
    return new


def fold_all(
    events: Iterable[tuple[JobEvent, int | None, int | None]],
) -> dict[str, JobInstance]:
    """Every job instance after `events` in order: what a rebuild from the topic gives.

    Mirrors the store: a deleted job leaves a tombstone, so its JobCreated read again (a
    replay) does not bring it back.
    """
    docs: dict[str, JobInstance] = {}
    tombstones: dict[str, dict[str, Any]] = {}
    for event, partition, offset in events:
        current = docs.get(event.subject)
        if current is None and resurrects(tombstones.get(event.subject), partition, offset):
            continue
        result = fold(current, event, partition, offset)
        if result is DELETE:
            assert isinstance(event, JobDeleted)
            docs.pop(event.subject, None)
            if not resurrects(tombstones.get(event.subject), partition, offset):
                tombstones[event.subject] = tombstone(event, partition, offset)
        elif isinstance(result, JobInstance):
            docs[event.subject] = result
    return docs


def tombstone(event: JobDeleted, partition: int | None, offset: int | None) -> dict[str, Any]:
    """What remains of a deleted job instance: where its deletion was read, and by whom."""
    return {
        "_id": event.subject,
        "deleted_by": event.data.deleted_by,
        "deleted_at": stored_time(event.time),
        "projection": _stored_position(partition, offset),
    }


def resurrects(tombstone: dict[str, Any] | None, partition: int | None, offset: int | None) -> bool:
    """True for an event read before the job's deletion was: folding it would revive the job."""
    if tombstone is None or not tombstone.get("projection"):
        return False
    seen = ProjectionPosition.model_validate(tombstone["projection"])
    return already_folded(seen, partition, offset)


def _position(partition: int | None, offset: int | None) -> ProjectionPosition | None:
    if partition is None or offset is None:
        return None
    return ProjectionPosition(partition=partition, offset=offset)


def _stored_position(partition: int | None, offset: int | None) -> dict[str, int] | None:
    position = _position(partition, offset)
    return None if position is None else position.model_dump()


def _created(
    doc: JobInstance | None, event: JobCreated, partition: int | None, offset: int | None
) -> FoldResult:
    if doc is not None and doc.projection is not None:
        # A duplicate request published JobCreated again: the job instance is the first one.
        return doc
    data = event.data
    definition = data.definition
    return JobInstance(
        mongo_id=event.subject,
        id=event.subject,
        request_id=data.request_id,
        definition_id=definition.id,
        definition_name=definition.name,
        definition_version=definition.version,
        definition=definition.model_dump(mode="json"),
        input_records={name: len(records) for name, records in sorted(data.inputs.items())},
        status=JobStatus.QUEUED,
        origin=data.origin,
        requested_by=data.requested_by,
        dry_run=data.dry_run,
        reverts=None if data.reverts is None else RevertedSequence(**data.reverts.model_dump()),
        created_at=stored_time(event.time),
        updated_at=stored_time(event.time),
        sequences=[SequenceInstance.pending(i, s.name) for i, s in enumerate(definition.sequences)],
        projection=_position(partition, offset),
    )


def _job_started(doc: JobInstance, event: JobStarted) -> None:
    doc.status = JobStatus.RUNNING
    doc.attempt = event.data.attempt
    if doc.started_at is None:
        doc.started_at = stored_time(event.time)
    if event.data.attempt > 1:
        doc.restarted_by = event.data.restarted_by
        doc.restarted_at = stored_time(event.time)
    # A restart reopens the job: the previous run's end and failure no longer describe it.
    doc.ended_at = None
    doc.failure = None
    doc.failed_index = None


def _sequence_started(doc: JobInstance, event: SequenceStarted) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is None:
        return
    # A new attempt plans afresh; who validated and the approval stay (the plan is held
    # against it), as do who canceled (a canceled sequence never starts again).
    sequence.status = SequenceStatus.RUNNING
    sequence.attempt = event.data.attempt
    sequence.started_at = stored_time(event.time)
    sequence.ended_at = None
    sequence.plan_id = None
    sequence.planned = None
    sequence.applied = None
    sequence.released = None
    sequence.threshold = None
    sequence.threshold_hits = []
    sequence.above_approval = False
    sequence.failure = None
    sequence.progress = None


def _sequence_planned(doc: JobInstance, event: SequencePlanned) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is None:
        return
    sequence.plan_id = event.data.plan_id
    sequence.planned = PlannedCounts.model_validate(event.data.counts.model_dump())
    if event.data.approval is not None:
        sequence.approval = ApprovedCounts.model_validate(event.data.approval.model_dump())


def _deciding_on(doc: JobInstance, index: int, plan_id: str) -> SequenceInstance | None:
    """The sequence, if the guard's decision on `plan_id` counts for it (see decision_counts).

    Until it is released, a planned sequence awaits the decision on its plan, as the
    runner's sequence in its "deciding" phase does.
    """
    sequence = doc.sequence(index)
    if sequence is None or not decision_counts(
        job_status=doc.status,
        sequence_status=sequence.status,
        awaiting_plan_id=sequence.plan_id if sequence.released is None else None,
        decided_plan_id=plan_id,
    ):
        return None
    return sequence


def _sequence_released(doc: JobInstance, event: SequenceReleased) -> None:
    sequence = _deciding_on(doc, event.data.index, event.data.plan_id)
    if sequence is not None:
        sequence.released = event.data.reason


def _sequence_blocked(doc: JobInstance, event: SequenceBlocked) -> None:
    sequence = _deciding_on(doc, event.data.index, event.data.plan_id)
    if sequence is None:
        return
    sequence.status = SequenceStatus.THRESHOLD
    sequence.threshold = ThresholdHit.model_validate(event.data.threshold.model_dump())
    sequence.threshold_hits = [ThresholdHit.model_validate(h.model_dump()) for h in event.data.hits]
    sequence.above_approval = event.data.above_approval
    doc.status = JobStatus.THRESHOLD


def _threshold_validated(doc: JobInstance, event: ThresholdValidated) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is None:
        return
    approval = event.data.approval
    sequence.status = SequenceStatus.VALIDATED
    sequence.validated_by = approval.validated_by
    sequence.validated_at = stored_time(approval.validated_at)
    sequence.approval = ApprovedCounts.model_validate(approval.model_dump())
    doc.status = JobStatus.VALIDATED


def _sequence_completed(doc: JobInstance, event: SequenceCompleted) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is None:
        return
    sequence.status = SequenceStatus.COMPLETED
    sequence.plan_id = event.data.plan_id
    sequence.applied = AppliedCounts.model_validate(event.data.applied.model_dump())
    sequence.ended_at = stored_time(event.time)


def _sequence_failed(doc: JobInstance, event: SequenceFailed) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is None:
        return
    sequence.status = SequenceStatus.FAILED
    sequence.failure = event.data.reason
    sequence.ended_at = stored_time(event.time)


def _sequence_canceled(doc: JobInstance, event: SequenceCanceled) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is None:
        return
    sequence.status = SequenceStatus.CANCELED
    sequence.canceled_by = event.data.canceled_by
    sequence.canceled_at = stored_time(event.time)
    # A sequence that never started has no end: it did not run.
    if sequence.started_at is not None:
        sequence.ended_at = stored_time(event.time)


def _sequence_progress(doc: JobInstance, event: SequenceProgress) -> None:
    sequence = doc.sequence(event.data.index)
    if sequence is not None:
        sequence.progress = Progress(
            phase=event.data.phase, done=event.data.done, total=event.data.total
        )


def _command_rejected(doc: JobInstance, event: CommandRejected) -> None:
    # The API answered 202 before the runner refused: this is where the operator sees why.
    doc.last_rejected_command = RejectedCommand(
        command_id=event.data.command_id,
        command=event.data.command,
        requested_by=event.data.requested_by,
        reason=event.data.reason,
        at=stored_time(event.time),
    )


def _job_completed(doc: JobInstance, event: JobCompleted) -> None:
    doc.status = JobStatus.COMPLETED
    doc.ended_at = stored_time(event.time)


def _job_failed(doc: JobInstance, event: JobFailed) -> None:
    doc.status = JobStatus.FAILED
    doc.ended_at = stored_time(event.time)
    doc.failure = event.data.reason
    doc.failed_index = event.data.index


def _job_canceled(doc: JobInstance, event: JobCanceled) -> None:
    doc.status = JobStatus.CANCELED
    doc.ended_at = stored_time(event.time)
    doc.canceled_by = event.data.canceled_by
    doc.canceled_at = stored_time(event.time)


def _job_archived(doc: JobInstance, event: JobArchived) -> None:
    doc.archived = event.data.archived
    doc.archived_by = event.data.archived_by if event.data.archived else None
    doc.archived_at = stored_time(event.time) if event.data.archived else None


_FOLDERS: Final[dict[type[Any], Callable[[JobInstance, Any], None]]] = {
    JobStarted: _job_started,
    SequenceStarted: _sequence_started,
    SequencePlanned: _sequence_planned,
    SequenceReleased: _sequence_released,
    SequenceBlocked: _sequence_blocked,
    ThresholdValidated: _threshold_validated,
    SequenceCompleted: _sequence_completed,
    SequenceFailed: _sequence_failed,
    SequenceCanceled: _sequence_canceled,
    SequenceProgress: _sequence_progress,
    CommandRejected: _command_rejected,
    JobCompleted: _job_completed,
    JobFailed: _job_failed,
    JobCanceled: _job_canceled,
    JobArchived: _job_archived,
}


def rejection_record(
    event: JobRejected, partition: int | None, offset: int | None
) -> dict[str, Any]:
    """What operators look up when a request did not become a job: who sent it, and why."""
    data = event.data
    return {
        "_id": event.id,
        "job_id": event.subject,
        "request_id": data.request_id,
        "definition_id": data.definition_id,
        "origin": data.origin,
        "requested_by": data.requested_by,
        "reason": data.reason,
        "rejected_at": stored_time(event.time),
        "projection": _stored_position(partition, offset),
    }


def stored_time(moment: datetime) -> datetime:
    """`moment` as MongoDB gives it back (UTC, milliseconds): folds compare equal after a trip."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
