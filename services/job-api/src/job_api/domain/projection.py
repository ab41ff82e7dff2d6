"""The fold of job events into job instance documents: pure, driven by event times only."""

import copy
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

JobInstanceDoc = dict[str, Any]


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

FoldResult = JobInstanceDoc | Delete | None


def already_folded(doc: JobInstanceDoc | None, partition: int | None, offset: int | None) -> bool:
    """True when `doc` already holds the event at (partition, offset) or a later one.

    A job's events share one partition (keyed by job id), so the offset orders them; a document
    folded from another partition (the topic was recreated with another partition count) is
    not comparable and the event is folded.
    """
    if doc is None or partition is None or offset is None:
        return False
    seen = doc.get("projection")
    if not seen:
        return False
    return bool(seen.get("partition") == partition and seen.get("offset", -1) >= offset)


def fold(
    doc: JobInstanceDoc | None, event: JobEvent, partition: int | None, offset: int | None
) -> FoldResult:
    """The job instance after `event`, read from (partition, offset) of provisioning.job-events.

    Returns a new document (the input is never mutated), `doc` itself when the event changes
    nothing (already folded, or an event without a document to change), `None` when there is
    no job instance (an event about a job that was deleted or never created, or JobRejected),
    or `DELETE` for JobDeleted.
    """
    if already_folded(doc, partition, offset):
        return doc
    if isinstance(event, JobCreated):
        return _created(doc, event, partition, offset)
    if isinstance(event, JobDeleted):
        # Even without a document (the API deleted it already): the deletion leaves a tombstone.
        return DELETE
    if isinstance(event, JobRejected) or doc is None:
        return doc
    new = copy.deepcopy(doc)
    _FOLDERS[type(event)](new, event)
    new["updated_at"] = stored_time(event.time)
    new["projection"] = _position(partition, offset)
    return new


def fold_all(
    events: Iterable[tuple[JobEvent, int | None, int | None]],
) -> dict[str, JobInstanceDoc]:
    """Every job instance after `events` in order: what a rebuild from the topic gives.

    Mirrors the store: a deleted job leaves a tombstone, so its JobCreated read again (a
    replay) does not bring it back.
    """
    docs: dict[str, JobInstanceDoc] = {}
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
        elif isinstance(result, dict):
            docs[event.subject] = result
    return docs


def tombstone(event: JobDeleted, partition: int | None, offset: int | None) -> dict[str, Any]:
    """What remains of a deleted job instance: where its deletion was read, and by whom."""
    return {
        "_id": event.subject,
        "deleted_by": event.data.deleted_by,
        "deleted_at": stored_time(event.time),
        "projection": _position(partition, offset),
    }


def resurrects(tombstone: dict[str, Any] | None, partition: int | None, offset: int | None) -> bool:
    """True for an event read before the job's deletion was: folding it would revive the job."""
    return already_folded(tombstone, partition, offset)


def new_sequence_instance(index: int, name: str) -> dict[str, Any]:
    return {
        "index": index,
        "name": name,
        "status": SequenceStatus.PENDING.value,
        "attempt": 0,
        "started_at": None,
        "ended_at": None,
        "plan_id": None,
        "planned": None,
        "applied": None,
        "released": None,
        "threshold": None,
        "threshold_hits": [],
        "above_approval": False,
        "approval": None,
        "validated_by": None,
        "validated_at": None,
        "canceled_by": None,
        "canceled_at": None,
        "failure": None,
        "progress": None,
    }


def blocked_plan_id(doc: JobInstanceDoc) -> str | None:
    """The plan of the sequence stopped at its threshold: what a validate approves."""
    for sequence in doc.get("sequences", []):
        if sequence.get("status") == SequenceStatus.THRESHOLD.value:
            plan_id = sequence.get("plan_id")
            return None if plan_id is None else str(plan_id)
    return None


def _position(partition: int | None, offset: int | None) -> dict[str, int] | None:
    if partition is None or offset is None:
        return None
    return {"partition": partition, "offset": offset}


def _created(
    doc: JobInstanceDoc | None, event: JobCreated, partition: int | None, offset: int | None
) -> FoldResult:
    if doc is not None and doc.get("projection") is not None:
        # A duplicate request published JobCreated again: the job instance is the first one.
        return doc
    data = event.data
    definition = data.definition
    return {
        "_id": event.subject,
        "id": event.subject,
        "request_id": data.request_id,
        "definition_id": definition.id,
        "definition_name": definition.name,
        "definition_version": definition.version,
        "definition": definition.model_dump(mode="json"),
        "input_records": {name: len(records) for name, records in sorted(data.inputs.items())},
        "status": JobStatus.QUEUED.value,
        "archived": False,
        "archived_by": None,
        "archived_at": None,
        "origin": data.origin,
        "requested_by": data.requested_by,
        "created_at": stored_time(event.time),
        "started_at": None,
        "ended_at": None,
        "updated_at": stored_time(event.time),
        "attempt": 0,
        "restarted_by": None,
        "restarted_at": None,
        "sequences": [new_sequence_instance(i, s.name) for i, s in enumerate(definition.sequences)],
        "failure": None,
        "failed_index": None,
        "canceled_by": None,
        "canceled_at": None,
        "last_rejected_command": None,
        "projection": _position(partition, offset),
    }


def _sequence(doc: JobInstanceDoc, index: int) -> dict[str, Any] | None:
    for sequence in doc["sequences"]:
        if sequence["index"] == index:
            found: dict[str, Any] = sequence
            return found
    return None


def _job_started(doc: JobInstanceDoc, event: JobStarted) -> None:
    doc["status"] = JobStatus.RUNNING.value
    doc["attempt"] = event.data.attempt
    if doc["started_at"] is None:
        doc["started_at"] = stored_time(event.time)
    if event.data.attempt > 1:
        doc["restarted_by"] = event.data.restarted_by
        doc["restarted_at"] = stored_time(event.time)
    # A restart reopens the job: the previous run's end and failure no longer describe it.
    doc["ended_at"] = None
    doc["failure"] = None
    doc["failed_index"] = None


def _sequence_started(doc: JobInstanceDoc, event: SequenceStarted) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is None:
        return
    sequence.update(
        status=SequenceStatus.RUNNING.value,
        attempt=event.data.attempt,
        started_at=stored_time(event.time),
        ended_at=None,
        plan_id=None,
        planned=None,
        applied=None,
        released=None,
        threshold=None,
        threshold_hits=[],
        above_approval=False,
        failure=None,
        progress=None,
    )


def _sequence_planned(doc: JobInstanceDoc, event: SequencePlanned) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is None:
        return
    sequence["plan_id"] = event.data.plan_id
    sequence["planned"] = event.data.counts.model_dump(mode="python")
    if event.data.approval is not None:
        sequence["approval"] = _approval(event.data.approval.model_dump(mode="python"))


def _deciding_on(doc: JobInstanceDoc, index: int, plan_id: str) -> dict[str, Any] | None:
    """The sequence, if the guard's decision on `plan_id` counts for it (see decision_counts).

    Until it is released, a planned sequence awaits the decision on its plan, as the
    runner's sequence in its "deciding" phase does.
    """
    sequence = _sequence(doc, index)
    if sequence is None or not decision_counts(
        job_status=doc.get("status", ""),
        sequence_status=sequence.get("status", ""),
        awaiting_plan_id=sequence.get("plan_id") if sequence.get("released") is None else None,
        decided_plan_id=plan_id,
    ):
        return None
    return sequence


def _sequence_released(doc: JobInstanceDoc, event: SequenceReleased) -> None:
    sequence = _deciding_on(doc, event.data.index, event.data.plan_id)
    if sequence is not None:
        sequence["released"] = event.data.reason


def _sequence_blocked(doc: JobInstanceDoc, event: SequenceBlocked) -> None:
    sequence = _deciding_on(doc, event.data.index, event.data.plan_id)
    if sequence is None:
        return
    sequence["status"] = SequenceStatus.THRESHOLD.value
    sequence["threshold"] = event.data.threshold.model_dump(mode="python")
    sequence["threshold_hits"] = [hit.model_dump(mode="python") for hit in event.data.hits]
    sequence["above_approval"] = event.data.above_approval
    doc["status"] = JobStatus.THRESHOLD.value


def _threshold_validated(doc: JobInstanceDoc, event: ThresholdValidated) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is None:
        return
    approval = event.data.approval
    sequence["status"] = SequenceStatus.VALIDATED.value
    sequence["validated_by"] = approval.validated_by
    sequence["validated_at"] = stored_time(approval.validated_at)
    sequence["approval"] = _approval(approval.model_dump(mode="python"))
    doc["status"] = JobStatus.VALIDATED.value


def _approval(approval: dict[str, Any]) -> dict[str, Any]:
    return {
        "create": approval["create"],
        "update": approval["update"],
        "delete": approval["delete"],
        "plan_id": approval["plan_id"],
    }


def _sequence_completed(doc: JobInstanceDoc, event: SequenceCompleted) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is None:
        return
    sequence["status"] = SequenceStatus.COMPLETED.value
    sequence["plan_id"] = event.data.plan_id
    sequence["applied"] = event.data.applied.model_dump(mode="python")
    sequence["ended_at"] = stored_time(event.time)


def _sequence_failed(doc: JobInstanceDoc, event: SequenceFailed) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is None:
        return
    sequence["status"] = SequenceStatus.FAILED.value
    sequence["failure"] = event.data.reason
    sequence["ended_at"] = stored_time(event.time)


def _sequence_canceled(doc: JobInstanceDoc, event: SequenceCanceled) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is None:
        return
    sequence["status"] = SequenceStatus.CANCELED.value
    sequence["canceled_by"] = event.data.canceled_by
    sequence["canceled_at"] = stored_time(event.time)
    # A sequence that never started has no end: it did not run.
    if sequence["started_at"] is not None:
        sequence["ended_at"] = stored_time(event.time)


def _sequence_progress(doc: JobInstanceDoc, event: SequenceProgress) -> None:
    sequence = _sequence(doc, event.data.index)
    if sequence is not None:
        sequence["progress"] = {
            "phase": event.data.phase,
            "done": event.data.done,
            "total": event.data.total,
        }


def _command_rejected(doc: JobInstanceDoc, event: CommandRejected) -> None:
    # The API answered 202 before the runner refused: this is where the operator sees why.
    doc["last_rejected_command"] = {
        "command_id": event.data.command_id,
        "command": event.data.command,
        "requested_by": event.data.requested_by,
        "reason": event.data.reason,
        "at": stored_time(event.time),
    }


def _job_completed(doc: JobInstanceDoc, event: JobCompleted) -> None:
    doc["status"] = JobStatus.COMPLETED.value
    doc["ended_at"] = stored_time(event.time)


def _job_failed(doc: JobInstanceDoc, event: JobFailed) -> None:
    doc["status"] = JobStatus.FAILED.value
    doc["ended_at"] = stored_time(event.time)
    doc["failure"] = event.data.reason
    doc["failed_index"] = event.data.index


def _job_canceled(doc: JobInstanceDoc, event: JobCanceled) -> None:
    doc["status"] = JobStatus.CANCELED.value
    doc["ended_at"] = stored_time(event.time)
    doc["canceled_by"] = event.data.canceled_by
    doc["canceled_at"] = stored_time(event.time)


def _job_archived(doc: JobInstanceDoc, event: JobArchived) -> None:
    doc["archived"] = event.data.archived
    doc["archived_by"] = event.data.archived_by if event.data.archived else None
    doc["archived_at"] = stored_time(event.time) if event.data.archived else None


_FOLDERS: Final[dict[type[Any], Callable[[JobInstanceDoc, Any], None]]] = {
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
        "projection": _position(partition, offset),
    }


def stored_time(moment: datetime) -> datetime:
    """`moment` as MongoDB gives it back (UTC, milliseconds): folds compare equal after a trip."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
