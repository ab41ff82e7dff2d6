"""The fold of job events into job instance documents, event by event, with replays."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import (
    DELETE,
    fold,
    fold_all,
    rejection_record,
    resurrects,
    stored_time,
    tombstone,
)
from provisioning_common.definitions import (
    CsvSource,
    InlineSource,
    JobDefinition,
    MongoTarget,
    SequenceDefinition,
    ThresholdLimit,
    Thresholds,
)
from provisioning_common.events import (
    AppliedCounts,
    Approval,
    CommandRejected,
    CommandRejectedData,
    JobArchived,
    JobArchivedData,
    JobCanceled,
    JobCanceledData,
    JobCompleted,
    JobCreated,
    JobCreatedData,
    JobDeleted,
    JobDeletedData,
    JobEvent,
    JobFailed,
    JobFailedData,
    JobRejected,
    JobRejectedData,
    JobStarted,
    JobStartedData,
    PlanCounts,
    SequenceBlocked,
    SequenceBlockedData,
    SequenceCanceled,
    SequenceCanceledData,
    SequenceCompleted,
    SequenceCompletedData,
    SequenceFailed,
    SequenceFailedData,
    SequencePlanned,
    SequencePlannedData,
    SequenceProgress,
    SequenceProgressData,
    SequenceReleased,
    SequenceReleasedData,
    SequenceStarted,
    SequenceStartedData,
    ThresholdHit,
    ThresholdValidated,
    ThresholdValidatedData,
)
from provisioning_common.identifiers import job_id_for_request

SOURCE = "/provisioning/tests"
T0 = datetime(2026, 12, 1, 6, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def two_sequence_definition(definition_id: str = "hr-import") -> JobDefinition:
    return JobDefinition(
        id=definition_id,
        name="HR import",
        version=3,
        sequences=[
            SequenceDefinition(
                name="employees",
                source=CsvSource(path="hr/employees.csv"),
                target=MongoTarget(collection="identities"),
                key="uid",
                mapping={"uid": "employee_id", "mail": "email"},
                delete_missing=True,
                thresholds=Thresholds(delete=ThresholdLimit(count=10, percent=5)),
            ),
            SequenceDefinition(
                name="contractors",
                source=InlineSource(),
                target=MongoTarget(collection="identities"),
                key="uid",
                thresholds=Thresholds(create=ThresholdLimit(count=100)),
            ),
        ],
    )


def created(
    request_id: str = "hr-feed-1", definition: JobDefinition | None = None, t: float = 0
) -> JobCreated:
    return JobCreated(
        source=SOURCE,
        subject=job_id_for_request(request_id),
        time=at(t),
        data=JobCreatedData(
            request_id=request_id,
            definition=definition or two_sequence_definition(),
            inputs={"contractors": [{"uid": "c1"}, {"uid": "c2"}]},
            origin="kafka",
            requested_by="hr-feed",
        ),
    )


def counts(create: int = 0, update: int = 0, delete: int = 0, unchanged: int = 0) -> PlanCounts:
    return PlanCounts(
        create=create,
        update=update,
        delete=delete,
        unchanged=unchanged,
        target_size=update + delete + unchanged,
    )


def completed_job_events(job_id: str, t: float = 1) -> list[JobEvent]:
    """What the runner and guard publish for a job whose two sequences pass their thresholds."""
    return [
        JobStarted(source=SOURCE, subject=job_id, time=at(t), data=JobStartedData(attempt=1)),
        SequenceStarted(
            source=SOURCE,
            subject=job_id,
            time=at(t + 1),
            data=SequenceStartedData(index=0, name="employees", attempt=1),
        ),
        SequenceProgress(
            source=SOURCE,
            subject=job_id,
            time=at(t + 1.5),
            data=SequenceProgressData(index=0, phase="planning", done=500, total=None),
        ),
        SequencePlanned(
            source=SOURCE,
            subject=job_id,
            time=at(t + 2),
            data=SequencePlannedData(
                index=0,
                name="employees",
                plan_id="plan-0",
                counts=counts(create=3, update=2, delete=1, unchanged=94),
                thresholds=Thresholds(delete=ThresholdLimit(count=10, percent=5)),
            ),
        ),
        SequenceReleased(
            source=SOURCE,
            subject=job_id,
            time=at(t + 3),
            data=SequenceReleasedData(index=0, plan_id="plan-0", reason="within_thresholds"),
        ),
        SequenceCompleted(
            source=SOURCE,
            subject=job_id,
            time=at(t + 4),
            data=SequenceCompletedData(
                index=0, plan_id="plan-0", applied=AppliedCounts(create=3, update=2, delete=1)
            ),
        ),
        SequenceStarted(
            source=SOURCE,
            subject=job_id,
            time=at(t + 5),
            data=SequenceStartedData(index=1, name="contractors", attempt=1),
        ),
        SequencePlanned(
            source=SOURCE,
            subject=job_id,
            time=at(t + 6),
            data=SequencePlannedData(
                index=1,
                name="contractors",
                plan_id="plan-1",
                counts=counts(create=2),
                thresholds=Thresholds(create=ThresholdLimit(count=100)),
            ),
        ),
        SequenceReleased(
            source=SOURCE,
            subject=job_id,
            time=at(t + 7),
            data=SequenceReleasedData(index=1, plan_id="plan-1", reason="within_thresholds"),
        ),
        SequenceCompleted(
            source=SOURCE,
            subject=job_id,
            time=at(t + 8),
            data=SequenceCompletedData(
                index=1, plan_id="plan-1", applied=AppliedCounts(create=2, update=0, delete=0)
            ),
        ),
        JobCompleted(source=SOURCE, subject=job_id, time=at(t + 9)),
    ]


def blocked(job_id: str, t: float, index: int = 0, plan_id: str = "plan-0") -> SequenceBlocked:
    hit = ThresholdHit(action="delete", limit="count", limit_value=10, actual=12)
    return SequenceBlocked(
        source=SOURCE,
        subject=job_id,
        time=at(t),
        data=SequenceBlockedData(index=index, plan_id=plan_id, threshold=hit, hits=[hit]),
    )


def validated(job_id: str, t: float, index: int = 0) -> ThresholdValidated:
    return ThresholdValidated(
        source=SOURCE,
        subject=job_id,
        time=at(t),
        data=ThresholdValidatedData(
            index=index,
            command_id="cmd-validate",
            approval=Approval(
                create=0,
                update=0,
                delete=12,
                validated_by="alice",
                validated_at=at(t - 0.5),
                plan_id="plan-0",
            ),
        ),
    )


def positioned(
    events: list[JobEvent], partition: int = 1, first_offset: int = 0
) -> list[tuple[JobEvent, int | None, int | None]]:
    return [(e, partition, first_offset + i) for i, e in enumerate(events)]


def folded(doc: JobInstance | None, event: JobEvent, partition: int, offset: int) -> JobInstance:
    """The fold's job instance, for events that must give one."""
    result = fold(doc, event, partition, offset)
    assert isinstance(result, JobInstance)
    return result


def fold_list(events: list[JobEvent], partition: int = 1) -> dict[str, Any]:
    """The one job instance folded from `events`, as the document MongoDB stores."""
    docs = fold_all(positioned(events, partition))
    assert len(docs) == 1
    return next(iter(docs.values())).to_document()


# ---- one event at a time ------------------------------------------------------------------------


def test_job_created_gives_a_queued_instance_with_pending_sequences() -> None:
    event = created()
    doc = folded(None, event, 2, 40).to_document()

    assert doc["_id"] == doc["id"] == job_id_for_request("hr-feed-1")
    assert doc["request_id"] == "hr-feed-1"
    assert (doc["definition_id"], doc["definition_name"], doc["definition_version"]) == (
        "hr-import",
        "HR import",
        3,
    )
    assert doc["definition"]["sequences"][0]["source"] == {
        "type": "csv",
        "path": "hr/employees.csv",
        "delimiter": ",",
    }
    assert doc["input_records"] == {"contractors": 2}
    assert doc["status"] == "QUEUED"
    assert doc["archived"] is False
    assert (doc["origin"], doc["requested_by"]) == ("kafka", "hr-feed")
    assert doc["created_at"] == doc["updated_at"] == stored_time(event.time)
    assert doc["started_at"] is None
    assert doc["ended_at"] is None
    assert [(s["index"], s["name"], s["status"]) for s in doc["sequences"]] == [
        (0, "employees", "PENDING"),
        (1, "contractors", "PENDING"),
    ]
    assert all(s["planned"] is None and s["applied"] is None for s in doc["sequences"])
    assert doc["projection"] == {"partition": 2, "offset": 40}


def test_a_completed_job_carries_its_dates_and_counts() -> None:
    job = created()
    doc = fold_list([job, *completed_job_events(job.subject)])

    assert doc["status"] == "COMPLETED"
    assert doc["attempt"] == 1
    assert doc["started_at"] == stored_time(at(1))
    assert doc["ended_at"] == stored_time(at(10))
    assert doc["updated_at"] == stored_time(at(10))
    first, second = doc["sequences"]
    assert first["status"] == second["status"] == "COMPLETED"
    assert (first["started_at"], first["ended_at"]) == (stored_time(at(2)), stored_time(at(5)))
    assert (second["started_at"], second["ended_at"]) == (stored_time(at(6)), stored_time(at(9)))
    assert first["planned"] == {
        "create": 3,
        "update": 2,
        "delete": 1,
        "unchanged": 94,
        "target_size": 97,
        "disable": 0,
    }
    assert first["applied"] == {"create": 3, "update": 2, "delete": 1, "disable": 0}
    assert first["plan_id"] == "plan-0"
    assert first["released"] == "within_thresholds"
    assert first["progress"] == {"phase": "planning", "done": 500, "total": None}
    assert second["applied"] == {"create": 2, "update": 0, "delete": 0, "disable": 0}
    assert doc["projection"] == {"partition": 1, "offset": 11}


def test_job_started_makes_the_job_running() -> None:
    job = created()
    doc = fold_list([job, *completed_job_events(job.subject)[:1]])
    assert doc["status"] == "RUNNING"
    assert doc["started_at"] == stored_time(at(1))
    assert all(s["status"] == "PENDING" for s in doc["sequences"])


def test_sequence_started_then_progress_then_planned() -> None:
    job = created()
    doc = fold_list([job, *completed_job_events(job.subject)[:4]])
    sequence = doc["sequences"][0]
    assert sequence["status"] == "RUNNING"
    assert sequence["attempt"] == 1
    assert sequence["started_at"] == stored_time(at(2))
    assert sequence["progress"] == {"phase": "planning", "done": 500, "total": None}
    assert sequence["plan_id"] == "plan-0"
    assert sequence["planned"]["delete"] == 1
    assert doc["sequences"][1]["status"] == "PENDING"


def test_a_blocked_sequence_stops_the_job_at_threshold() -> None:
    job = created()
    events = [*completed_job_events(job.subject)[:4], blocked(job.subject, 4)]
    doc = fold_list([job, *events])

    assert doc["status"] == "THRESHOLD"
    sequence = doc["sequences"][0]
    assert sequence["status"] == "THRESHOLD"
    assert sequence["threshold"] == {
        "action": "delete",
        "limit": "count",
        "limit_value": 10,
        "actual": 12,
        "limit_records": None,
    }
    assert sequence["threshold_hits"] == [sequence["threshold"]]
    assert sequence["ended_at"] is None
    assert doc["ended_at"] is None


def test_validation_records_who_when_and_the_approved_counts() -> None:
    job = created()
    events = [
        *completed_job_events(job.subject)[:4],
        blocked(job.subject, 4),
        validated(job.subject, 5),
    ]
    doc = fold_list([job, *events])

    assert doc["status"] == "VALIDATED"
    sequence = doc["sequences"][0]
    assert sequence["status"] == "VALIDATED"
    assert sequence["validated_by"] == "alice"
    assert sequence["validated_at"] == stored_time(at(4.5))
    assert sequence["approval"] == {
        "create": 0,
        "update": 0,
        "delete": 12,
        "disable": 0,
        "plan_id": "plan-0",
    }
    assert sequence["threshold"]["actual"] == 12


def test_disables_are_their_own_count_in_the_plan_the_approval_and_what_was_applied() -> None:
    job = created()
    job_id = job.subject
    planned = PlanCounts(create=0, update=1, delete=0, disable=12, unchanged=7, target_size=20)
    approval = Approval(
        create=0,
        update=1,
        delete=0,
        disable=12,
        validated_by="alice",
        validated_at=at(4.5),
        plan_id="plan-0",
    )
    events: list[JobEvent] = [
        *completed_job_events(job_id)[:2],
        SequencePlanned(
            source=SOURCE,
            subject=job_id,
            time=at(3),
            data=SequencePlannedData(
                index=0,
                name="employees",
                plan_id="plan-0",
                counts=planned,
                thresholds=Thresholds(delete=ThresholdLimit(count=10)),
            ),
        ),
        blocked(job_id, 4),
        ThresholdValidated(
            source=SOURCE,
            subject=job_id,
            time=at(5),
            data=ThresholdValidatedData(index=0, command_id="cmd-1", approval=approval),
        ),
    ]
    doc = fold_list([job, *events])
    sequence = doc["sequences"][0]
    assert (sequence["planned"]["delete"], sequence["planned"]["disable"]) == (0, 12)
    assert (sequence["approval"]["delete"], sequence["approval"]["disable"]) == (0, 12)

    completed = SequenceCompleted(
        source=SOURCE,
        subject=job_id,
        time=at(8),
        data=SequenceCompletedData(
            index=0,
            plan_id="plan-0",
            applied=AppliedCounts(create=0, update=1, delete=0, disable=12),
        ),
    )
    doc = fold_list([job, *events, completed])
    assert doc["sequences"][0]["applied"] == {"create": 0, "update": 1, "delete": 0, "disable": 12}


def test_counts_of_events_from_before_disables_were_counted_apart_read_as_no_disables() -> None:
    job = created()
    raw = completed_job_events(job.subject)[3].model_dump(mode="json")
    del raw["data"]["counts"]["disable"]  # as a runner of the previous version wrote it
    old = SequencePlanned.model_validate(raw)
    doc = fold_list([job, *completed_job_events(job.subject)[:3], old])
    assert doc["sequences"][0]["planned"]["disable"] == 0


def test_restart_after_validation_reopens_the_job_and_replans() -> None:
    job = created()
    job_id = job.subject
    before: list[JobEvent] = [
        *completed_job_events(job_id)[:4],
        blocked(job_id, 4),
        validated(job_id, 5),
    ]
    approval = validated(job_id, 5).data.approval
    restart: list[JobEvent] = [
        JobStarted(
            source=SOURCE,
            subject=job_id,
            time=at(20),
            data=JobStartedData(attempt=2, restarted_by="bob"),
        ),
        SequenceStarted(
            source=SOURCE,
            subject=job_id,
            time=at(21),
            data=SequenceStartedData(index=0, name="employees", attempt=2),
        ),
    ]
    doc = fold_list([job, *before, *restart])

    assert doc["status"] == "RUNNING"
    assert doc["attempt"] == 2
    assert doc["started_at"] == stored_time(at(1))
    assert (doc["restarted_by"], doc["restarted_at"]) == ("bob", stored_time(at(20)))
    sequence = doc["sequences"][0]
    assert sequence["status"] == "RUNNING"
    assert sequence["attempt"] == 2
    assert sequence["started_at"] == stored_time(at(21))
    assert sequence["threshold"] is None
    assert sequence["planned"] is None
    assert sequence["progress"] is None
    # The approval stays visible: the new plan is held against it.
    assert sequence["validated_by"] == "alice"

    replanned = SequencePlanned(
        source=SOURCE,
        subject=job_id,
        time=at(22),
        data=SequencePlannedData(
            index=0,
            name="employees",
            plan_id="plan-0b",
            counts=counts(delete=11, unchanged=90),
            thresholds=Thresholds(delete=ThresholdLimit(count=10)),
            approval=approval,
        ),
    )
    doc = fold_list([job, *before, *restart, replanned])
    assert doc["sequences"][0]["plan_id"] == "plan-0b"
    assert doc["sequences"][0]["approval"]["delete"] == 12


def test_a_plan_above_its_approval_stops_again() -> None:
    job = created()
    job_id = job.subject
    grown = blocked(job_id, 23, plan_id="plan-0c").model_copy(
        update={
            "data": SequenceBlockedData(
                index=0,
                plan_id="plan-0c",
                threshold=ThresholdHit(
                    action="delete", limit="approved", limit_value=12, actual=15
                ),
                hits=[ThresholdHit(action="delete", limit="approved", limit_value=12, actual=15)],
                above_approval=True,
            )
        }
    )
    events = [
        *completed_job_events(job_id)[:4],
        blocked(job_id, 4),
        validated(job_id, 5),
        JobStarted(source=SOURCE, subject=job_id, time=at(20), data=JobStartedData(attempt=2)),
        SequenceStarted(
            source=SOURCE,
            subject=job_id,
            time=at(21),
            data=SequenceStartedData(index=0, name="employees", attempt=2),
        ),
        SequencePlanned(
            source=SOURCE,
            subject=job_id,
            time=at(22),
            data=SequencePlannedData(
                index=0,
                name="employees",
                plan_id="plan-0c",
                counts=counts(delete=15, unchanged=85),
                thresholds=Thresholds(delete=ThresholdLimit(count=10, percent=5)),
            ),
        ),
        grown,
    ]
    doc = fold_list([job, *events])
    assert doc["status"] == "THRESHOLD"
    assert doc["sequences"][0]["threshold"]["limit"] == "approved"
    assert doc["sequences"][0]["above_approval"] is True


def test_a_decision_replayed_for_an_old_plan_changes_nothing() -> None:
    """A guard started with a fresh consumer group decides the whole topic anew: its decisions
    on plans long since applied come after the job's end, at new offsets."""
    job = created()
    finished = fold_list([job, *completed_job_events(job.subject)])
    assert finished["status"] == "COMPLETED"
    again = folded(
        JobInstance.from_document(finished), blocked(job.subject, 60, plan_id="plan-0"), 1, 10_000
    ).to_document()
    assert again["status"] == "COMPLETED"
    assert again["sequences"][0]["status"] == "COMPLETED"
    assert again["sequences"][0]["threshold"] is None


def test_a_block_read_after_the_release_of_the_same_plan_changes_nothing() -> None:
    """As in the runner, which is applying the plan by then: a decision counts only while its
    plan waits for one (provisioning_common.decisions)."""
    job = created()
    events = completed_job_events(job.subject)
    released = fold_list([job, *events[:5]])
    assert released["sequences"][0]["released"] == "within_thresholds"
    again = folded(
        JobInstance.from_document(released), blocked(job.subject, 5, plan_id="plan-0"), 1, 10_000
    ).to_document()
    assert again["status"] == "RUNNING"
    assert again["sequences"][0]["status"] == "RUNNING"
    assert again["sequences"][0]["threshold"] is None


def test_cancel_at_threshold_cancels_the_blocked_and_later_sequences() -> None:
    job = created()
    job_id = job.subject
    events = [
        *completed_job_events(job_id)[:4],
        blocked(job_id, 4),
        SequenceCanceled(
            source=SOURCE,
            subject=job_id,
            time=at(30),
            data=SequenceCanceledData(index=0, canceled_by="carol", command_id="cmd-cancel"),
        ),
        SequenceCanceled(
            source=SOURCE,
            subject=job_id,
            time=at(30),
            data=SequenceCanceledData(index=1, canceled_by="carol", command_id="cmd-cancel"),
        ),
        JobCanceled(
            source=SOURCE,
            subject=job_id,
            time=at(31),
            data=JobCanceledData(canceled_by="carol", command_id="cmd-cancel"),
        ),
    ]
    doc = fold_list([job, *events])

    assert doc["status"] == "CANCELED"
    assert (doc["canceled_by"], doc["canceled_at"]) == ("carol", stored_time(at(31)))
    assert doc["ended_at"] == stored_time(at(31))
    blocked_one, later = doc["sequences"]
    assert blocked_one["status"] == later["status"] == "CANCELED"
    assert blocked_one["canceled_by"] == later["canceled_by"] == "carol"
    assert blocked_one["ended_at"] == stored_time(at(30))
    # The later sequence never ran: it has a cancel date, no end date.
    assert later["canceled_at"] == stored_time(at(30))
    assert later["ended_at"] is None
    assert later["started_at"] is None


def test_a_failure_is_recorded_and_a_restart_clears_it() -> None:
    job = created()
    job_id = job.subject
    failing: list[JobEvent] = [
        *completed_job_events(job_id)[:6],
        SequenceStarted(
            source=SOURCE,
            subject=job_id,
            time=at(7),
            data=SequenceStartedData(index=1, name="contractors", attempt=1),
        ),
        SequenceFailed(
            source=SOURCE,
            subject=job_id,
            time=at(8),
            data=SequenceFailedData(index=1, reason="inputs.contractors[3]: uid missing"),
        ),
        JobFailed(
            source=SOURCE,
            subject=job_id,
            time=at(8.5),
            data=JobFailedData(index=1, reason="sequence contractors failed"),
        ),
    ]
    doc = fold_list([job, *failing])
    assert doc["status"] == "FAILED"
    assert (doc["failure"], doc["failed_index"]) == ("sequence contractors failed", 1)
    assert doc["ended_at"] == stored_time(at(8.5))
    assert doc["sequences"][0]["status"] == "COMPLETED"
    assert doc["sequences"][1]["status"] == "FAILED"
    assert doc["sequences"][1]["failure"] == "inputs.contractors[3]: uid missing"
    assert doc["sequences"][1]["ended_at"] == stored_time(at(8))

    restarted: list[JobEvent] = [
        JobStarted(source=SOURCE, subject=job_id, time=at(40), data=JobStartedData(attempt=2)),
        SequenceStarted(
            source=SOURCE,
            subject=job_id,
            time=at(41),
            data=SequenceStartedData(index=1, name="contractors", attempt=2),
        ),
    ]
    doc = fold_list([job, *failing, *restarted])
    assert doc["status"] == "RUNNING"
    assert doc["failure"] is None
    assert doc["failed_index"] is None
    assert doc["ended_at"] is None
    assert doc["sequences"][0]["status"] == "COMPLETED"
    assert doc["sequences"][1]["status"] == "RUNNING"
    assert doc["sequences"][1]["failure"] is None
    assert doc["sequences"][1]["ended_at"] is None


def test_command_rejected_is_kept_for_the_operator() -> None:
    job = created()
    rejected = CommandRejected(
        source=SOURCE,
        subject=job.subject,
        time=at(3),
        data=CommandRejectedData(
            command_id="c1",
            command="RestartJob",
            requested_by="dave",
            reason="job is RUNNING; only THRESHOLD, VALIDATED or FAILED jobs restart",
        ),
    )
    doc = fold_list([job, rejected])
    assert doc["status"] == "QUEUED"
    assert doc["last_rejected_command"] == {
        "command_id": "c1",
        "command": "RestartJob",
        "requested_by": "dave",
        "reason": "job is RUNNING; only THRESHOLD, VALIDATED or FAILED jobs restart",
        "at": stored_time(at(3)),
    }


def test_archive_and_unarchive_set_the_flag() -> None:
    job = created()
    events = [job, *completed_job_events(job.subject)]
    archive = JobArchived(
        source=SOURCE,
        subject=job.subject,
        time=at(50),
        data=JobArchivedData(archived_by="admin", archived=True),
    )
    doc = fold_list([*events, archive])
    assert doc["archived"] is True
    assert (doc["archived_by"], doc["archived_at"]) == ("admin", stored_time(at(50)))
    assert doc["status"] == "COMPLETED"

    unarchive = archive.model_copy(
        update={"time": at(60), "data": JobArchivedData(archived_by="admin", archived=False)}
    )
    doc = fold_list([*events, archive, unarchive])
    assert doc["archived"] is False
    assert doc["archived_by"] is None
    assert doc["archived_at"] is None


def test_job_deleted_removes_the_instance_and_later_events_are_ignored() -> None:
    job = created()
    doc = folded(None, job, 0, 0)
    deleted = JobDeleted(
        source=SOURCE, subject=job.subject, time=at(70), data=JobDeletedData(deleted_by="admin")
    )
    assert fold(doc, deleted, 0, 1) is DELETE

    docs = fold_all(positioned([job, *completed_job_events(job.subject), deleted], 0))
    assert docs == {}
    late = JobArchived(
        source=SOURCE,
        subject=job.subject,
        time=at(80),
        data=JobArchivedData(archived_by="admin", archived=True),
    )
    assert fold(None, late, 0, 20) is None


def test_events_of_an_unknown_job_are_ignored() -> None:
    for event in completed_job_events(job_id_for_request("never-created")):
        assert fold(None, event, 0, 5) is None


def test_job_rejected_makes_no_job_instance_but_a_rejection_record() -> None:
    rejected = JobRejected(
        source=SOURCE,
        subject=job_id_for_request("bad-1"),
        time=at(1),
        data=JobRejectedData(
            request_id="bad-1",
            definition_id="nope",
            origin="kafka",
            requested_by="hr-feed",
            reason="definition_id: unknown job definition 'nope'",
        ),
    )
    assert fold(None, rejected, 0, 3) is None
    record = rejection_record(rejected, 0, 3)
    assert record == {
        "_id": rejected.id,
        "job_id": job_id_for_request("bad-1"),
        "request_id": "bad-1",
        "definition_id": "nope",
        "origin": "kafka",
        "requested_by": "hr-feed",
        "reason": "definition_id: unknown job definition 'nope'",
        "rejected_at": stored_time(at(1)),
        "projection": {"partition": 0, "offset": 3},
    }
    # A rejected duplicate of an existing job changes nothing about that job.
    existing = folded(None, created("bad-1"), 0, 1)
    assert fold(existing, rejected, 0, 3) is existing


# ---- replays, duplicates, rebuilds ----------------------------------------------------------


def test_an_event_already_folded_is_skipped() -> None:
    job = created()
    started = completed_job_events(job.subject)[0]
    doc = folded(folded(None, job, 1, 10), started, 1, 11)

    # Redelivered (same offset) or older (a replay from an earlier committed offset).
    assert fold(doc, started, 1, 11) is doc
    assert fold(doc, job, 1, 10) is doc
    late_cancel = JobCanceled(
        source=SOURCE,
        subject=job.subject,
        time=at(99),
        data=JobCanceledData(canceled_by="x", command_id="c"),
    )
    assert fold(doc, late_cancel, 1, 5) is doc


def test_an_event_from_another_partition_is_not_compared_by_offset() -> None:
    job = created()
    doc = folded(None, job, 1, 10)
    started = completed_job_events(job.subject)[0]
    moved = folded(doc, started, 0, 2).to_document()
    assert moved["status"] == "RUNNING"
    assert moved["projection"] == {"partition": 0, "offset": 2}


def test_a_duplicate_job_created_keeps_the_first_instance() -> None:
    first = created(t=0)
    again = created(t=5)
    doc = folded(None, first, 1, 10)
    assert fold(doc, again, 1, 30) is doc


def test_the_api_instance_inserted_before_projection_is_the_projected_one() -> None:
    job = created()
    # The API folds the JobCreated it published with the offset the broker acknowledged.
    provisional = folded(None, job, 1, 7)
    projected = fold(provisional, job, 1, 7)
    assert projected is provisional
    # Without an offset (no acknowledgement), the projector's fold replaces it entirely.
    unplaced = fold(None, job, None, None)
    assert isinstance(unplaced, JobInstance)
    assert unplaced.projection is None
    replaced = fold(unplaced, job, 1, 7)
    assert replaced == provisional


def test_fold_never_mutates_its_input() -> None:
    job = created()
    doc = folded(None, job, 1, 0)
    snapshot = copy.deepcopy(doc)
    for i, event in enumerate(completed_job_events(job.subject), start=1):
        fold(doc, event, 1, i)
    assert doc == snapshot


def test_rebuilding_from_the_topic_gives_the_same_documents() -> None:
    one = created("hr-feed-1")
    two = created("hr-feed-2")
    three = created("hr-feed-3")
    deleted = JobDeleted(
        source=SOURCE, subject=three.subject, time=at(90), data=JobDeletedData(deleted_by="admin")
    )
    # Two jobs interleaved on one partition, one on another; one of them deleted.
    partition_a = positioned(
        [
            one,
            two,
            *[
                e
                for pair in zip(
                    completed_job_events(one.subject),
                    completed_job_events(two.subject, 2),
                    strict=True,
                )
                for e in pair
            ],
        ],
        partition=0,
    )
    partition_b = positioned([three, *completed_job_events(three.subject), deleted], partition=1)
    log = [*partition_a, *partition_b]

    clean = fold_all(log)
    assert set(clean) == {one.subject, two.subject}
    assert clean[two.subject].ended_at == stored_time(at(11))

    # At-least-once: a consumer that crashed before committing sees a stretch again, and a
    # rebuild reads every partition from its first offset, in any interleaving of partitions.
    with_replays = [*partition_a[:9], *partition_a[3:], *partition_b[:4], *partition_b]
    assert fold_all(with_replays) == clean
    interleaved = [e for pair in zip(partition_b, partition_a, strict=False) for e in pair]
    interleaved += partition_a[len(partition_b) :]
    assert fold_all(interleaved) == clean


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (
            datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
            datetime(2026, 1, 1, 0, 0, 0, 999000, tzinfo=UTC),
        ),
        (datetime(2026, 1, 1, 0, 0, 0, 1500), datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)),
    ],
)
def test_times_are_kept_as_mongodb_stores_them(moment: datetime, expected: datetime) -> None:
    assert stored_time(moment) == expected
    assert stored_time(moment).tzinfo is not None


def test_a_replay_does_not_bring_a_deleted_job_back() -> None:
    job = created("deleted-1")
    deleted = JobDeleted(
        source=SOURCE, subject=job.subject, time=at(90), data=JobDeletedData(deleted_by="admin")
    )
    log = positioned([job, *completed_job_events(job.subject), deleted], partition=0)
    assert fold_all(log) == {}
    # A consumer that re-reads the job's history after its deletion leaves it deleted.
    assert fold_all([*log, *log]) == {}
    assert fold_all([*log, log[0], log[1]]) == {}
    # A new request after the deletion, read later on the partition, is a new job instance.
    again = created("deleted-1", t=100)
    assert set(fold_all([*log, (again, 0, len(log))])) == {job.subject}
    grave = tombstone(deleted, 0, len(log) - 1)
    assert grave == {
        "_id": job.subject,
        "deleted_by": "admin",
        "deleted_at": stored_time(at(90)),
        "projection": {"partition": 0, "offset": len(log) - 1},
    }
    assert resurrects(grave, 0, 0)
    assert not resurrects(grave, 0, len(log))
    assert not resurrects(None, 0, 0)
