"""The run's transitions: the job and sequence state machines, and the events each step emits."""

from collections.abc import Callable

import pytest
from provisioning_common.events import (
    AppliedCounts,
    JobCanceled,
    JobFailed,
    JobStarted,
    SequenceCanceled,
    SequenceCompleted,
    SequenceFailed,
    SequencePlanned,
    SequenceStarted,
    ThresholdValidated,
)
from provisioning_common.statuses import JobStatus, SequenceStatus
from sequence_runner.domain.run import Run
from sequence_runner.domain.transitions import (
    RUNNER_SOURCE,
    Moved,
    Rejected,
    TransitionResult,
    Unchanged,
    cancel,
    on_applied,
    on_blocked,
    on_completed,
    on_failed,
    on_planned,
    on_released,
    rejection,
    restart,
    start,
    validate,
)

from tests.unit.sequence_runner.builders import (
    JOB_ID,
    NOW,
    cancel_command,
    counts,
    hit,
    job_created,
    restart_command,
    validate_command,
)

APPLIED = AppliedCounts(create=1, update=0, delete=0)


def moved(outcome: TransitionResult) -> Moved:
    assert isinstance(outcome, Moved), outcome
    return outcome


def statuses(run: Run) -> list[str]:
    return [s.status.value for s in run.sequences]


def started() -> Run:
    return start(job_created(), NOW).run


def planned(
    run: Run, index: int = 0, plan_id: str = "p1", digest: str = "d1", **planned_counts: int
) -> Run:
    outcome = on_planned(run, index, run.attempt, plan_id, counts(**planned_counts), NOW, digest)
    return moved(outcome).run


def blocked(run: Run | None = None, index: int = 0, plan_id: str = "p1") -> Run:
    run = planned(run or started(), index, plan_id, delete=12)
    return moved(on_blocked(run, index, plan_id, hit())).run


def completed(run: Run, index: int, plan_id: str) -> Run:
    run = planned(run, index, plan_id, create=1)
    run = moved(on_released(run, index, plan_id)).run
    return moved(on_completed(run, index, plan_id, APPLIED, NOW)).run


def test_start_runs_the_first_sequence_and_announces_it() -> None:
    result = start(job_created(), NOW)
    assert result.run.status is JobStatus.RUNNING
    assert result.run.attempt == 1
    assert statuses(result.run) == ["RUNNING", "PENDING", "PENDING"]
    assert result.run.pending_work() == (0, "planning")
    job_started, sequence_started = result.events
    assert isinstance(job_started, JobStarted)
    assert job_started.data.attempt == 1
    assert isinstance(sequence_started, SequenceStarted)
    assert (sequence_started.data.index, sequence_started.data.name) == (0, "a")
    assert all(e.subject == JOB_ID and e.source == RUNNER_SOURCE for e in result.events)


def test_a_planned_sequence_goes_to_the_guard_with_its_thresholds() -> None:
    run = started()
    result = moved(on_planned(run, 0, 1, "p1", counts(create=3), NOW))
    (event,) = result.events
    assert isinstance(event, SequencePlanned)
    assert event.data.plan_id == "p1"
    assert event.data.counts == counts(create=3)
    assert event.data.thresholds == run.definition.sequences[0].thresholds
    assert event.data.approval is None
    assert result.run.sequence(0).phase == "deciding"
    assert result.run.pending_work() is None


def test_a_plan_from_an_earlier_attempt_is_ignored() -> None:
    assert isinstance(on_planned(started(), 0, 0, "p1", counts(), NOW), Unchanged)


def test_a_released_plan_is_applied_and_the_next_sequence_started() -> None:
    run = planned(started(), create=1)
    run = moved(on_released(run, 0, "p1")).run
    assert run.pending_work() == (0, "applying")
    result = moved(on_completed(run, 0, "p1", APPLIED, NOW))
    assert statuses(result.run) == ["COMPLETED", "RUNNING", "PENDING"]
    assert result.run.sequence(0).applied == APPLIED
    done, next_started = result.events
    assert isinstance(done, SequenceCompleted)
    assert done.data.applied == APPLIED
    assert isinstance(next_started, SequenceStarted)
    assert next_started.data.index == 1


def test_the_last_batch_is_recorded_with_the_completion_in_one_step() -> None:
    run = moved(on_released(planned(started(), create=3), 0, "p1")).run
    result = moved(on_applied(run, 0, "p1", 3, APPLIED, NOW))
    assert result.run.sequence(0).written == 3
    assert statuses(result.run) == ["COMPLETED", "RUNNING", "PENDING"]
    assert [e.type for e in result.events] == [
        "provisioning.SequenceCompleted",
        "provisioning.SequenceStarted",
    ]
    # A plan no longer applied (another runner moved the job on) records nothing.
    assert isinstance(on_applied(run, 0, "another plan", 3, APPLIED, NOW), Unchanged)


def test_the_last_completed_sequence_completes_the_job() -> None:
    run = started()
    for index in range(3):
        run = completed(run, index, f"p{index}")
    assert run.status is JobStatus.COMPLETED
    assert statuses(run) == ["COMPLETED"] * 3


def test_completing_the_last_sequence_emits_job_completed() -> None:
    run = completed(completed(started(), 0, "p0"), 1, "p1")
    run = moved(on_released(planned(run, 2, "p2"), 2, "p2")).run
    events = moved(on_completed(run, 2, "p2", APPLIED, NOW)).events
    assert [e.type for e in events] == [
        "provisioning.SequenceCompleted",
        "provisioning.JobCompleted",
    ]


def test_a_stale_or_repeated_decision_is_ignored() -> None:
    run = planned(started(), plan_id="p2")
    assert isinstance(on_released(run, 0, "p1"), Unchanged)
    assert isinstance(on_blocked(run, 0, "p1", hit()), Unchanged)
    released = moved(on_released(run, 0, "p2")).run
    assert isinstance(on_released(released, 0, "p2"), Unchanged)
    assert isinstance(on_blocked(released, 0, "p2", hit()), Unchanged)


def test_a_blocked_plan_stops_the_job_at_threshold() -> None:
    run = blocked()
    assert run.status is JobStatus.THRESHOLD
    assert run.sequence(0).status is SequenceStatus.THRESHOLD
    assert run.sequence(0).threshold == hit()
    assert run.pending_work() is None


def test_a_failure_fails_the_sequence_and_the_job() -> None:
    result = moved(on_failed(started(), 0, 1, "a.csv: line 3: expected 3 fields, found 2", NOW))
    assert result.run.status is JobStatus.FAILED
    assert statuses(result.run) == ["FAILED", "PENDING", "PENDING"]
    failed, job_failed = result.events
    assert isinstance(failed, SequenceFailed)
    assert isinstance(job_failed, JobFailed)
    assert job_failed.data.index == 0
    assert "line 3" in job_failed.data.reason


def test_validation_records_the_approval_and_runs_nothing() -> None:
    result = moved(validate(blocked(), validate_command(plan_id="p1"), NOW))
    assert result.run.status is JobStatus.VALIDATED
    sequence = result.run.sequence(0)
    assert sequence.status is SequenceStatus.VALIDATED
    assert sequence.approval is not None
    assert (sequence.approval.delete, sequence.approval.create) == (12, 0)
    assert sequence.approval.validated_by == "alice"
    assert sequence.approval.validated_at == NOW
    assert sequence.approval.plan_id == "p1"
    assert result.run.pending_work() is None
    (event,) = result.events
    assert isinstance(event, ThresholdValidated)
    assert event.data.approval == sequence.approval
    assert event.data.command_id == "c-validate"


def test_validating_another_plan_than_the_blocked_one_is_rejected() -> None:
    outcome = validate(blocked(), validate_command(plan_id="old"), NOW)
    assert outcome == Rejected(
        f"job {JOB_ID} is blocked on plan p1 (0 creations, 0 modifications, 12 deletions); the "
        "validate is for plan old; look at the current plan and validate it",
        current_plan_id="p1",
        current_counts=counts(delete=12),
    )
    event = rejection(JOB_ID, validate_command(plan_id="old"), outcome, NOW)
    assert (event.data.current_plan_id, event.data.current_counts) == ("p1", counts(delete=12))


def test_a_validate_that_names_no_plan_is_rejected_with_the_current_plan() -> None:
    """Without a plan id the runner cannot tell which counts the operator saw: the job may have
    been planned again (a restart by someone else) since the screen they decided on."""
    outcome = validate(blocked(), validate_command(plan_id=None), NOW)
    assert isinstance(outcome, Rejected)
    assert "the validate names no plan" in outcome.reason
    assert outcome.current_plan_id == "p1"


def test_the_approval_records_the_digest_of_the_plan_validated() -> None:
    result = moved(validate(blocked(), validate_command(), NOW))
    approval = result.run.sequence(0).approval
    assert approval is not None
    assert (approval.plan_id, approval.digest) == ("p1", "d1")


@pytest.mark.parametrize(
    ("make_run", "status"),
    [
        (started, "RUNNING"),
        (lambda: completed(completed(completed(started(), 0, "a"), 1, "b"), 2, "c"), "COMPLETED"),
    ],
)
def test_validating_a_job_not_at_threshold_is_rejected_with_a_reason(
    make_run: Callable[[], Run], status: str
) -> None:
    run = make_run()
    outcome = validate(run, validate_command(), NOW)
    assert outcome == Rejected(
        f"job {JOB_ID} is {status}; only a job at THRESHOLD can be validated"
    )


def test_a_validated_job_cannot_be_validated_again() -> None:
    run = moved(validate(blocked(), validate_command("v1"), NOW)).run
    assert isinstance(validate(run, validate_command("v2"), NOW), Rejected)


def test_a_command_handled_once_is_not_handled_twice() -> None:
    run = moved(validate(blocked(), validate_command("v1"), NOW)).run
    assert isinstance(validate(run, validate_command("v1"), NOW), Unchanged)


@pytest.mark.parametrize("validated", [False, True])
def test_cancel_cancels_the_blocked_and_every_later_sequence(validated: bool) -> None:
    run = blocked(completed(started(), 0, "p0"), index=1)
    if validated:
        run = moved(validate(run, validate_command(), NOW)).run
    result = moved(cancel(run, cancel_command(), NOW))
    assert result.run.status is JobStatus.CANCELED
    assert statuses(result.run) == ["COMPLETED", "CANCELED", "CANCELED"]
    assert [type(e) for e in result.events] == [SequenceCanceled, SequenceCanceled, JobCanceled]
    assert [e.data.index for e in result.events if isinstance(e, SequenceCanceled)] == [1, 2]
    job_canceled = result.events[-1]
    assert isinstance(job_canceled, JobCanceled)
    assert job_canceled.data.canceled_by == "bob"


def test_validate_after_cancel_is_rejected_and_cancel_after_validate_wins_once() -> None:
    canceled = moved(cancel(blocked(), cancel_command(), NOW)).run
    assert isinstance(validate(canceled, validate_command(), NOW), Rejected)
    validated = moved(validate(blocked(), validate_command(), NOW)).run
    assert isinstance(cancel(validated, cancel_command(), NOW), Moved)


def test_cancel_of_a_running_job_is_rejected() -> None:
    outcome = cancel(started(), cancel_command(), NOW)
    assert outcome == Rejected(
        f"job {JOB_ID} is RUNNING; only a job at THRESHOLD or VALIDATED can be canceled"
    )


def test_restart_after_validation_plans_the_sequence_again_with_its_approval() -> None:
    run = moved(validate(blocked(completed(started(), 0, "p0"), 1), validate_command(), NOW)).run
    result = moved(restart(run, restart_command(), NOW))
    assert result.run.status is JobStatus.RUNNING
    assert result.run.attempt == 2
    assert statuses(result.run) == ["COMPLETED", "RUNNING", "PENDING"]
    assert result.run.pending_work() == (1, "planning")
    job_started, sequence_started = result.events
    assert isinstance(job_started, JobStarted)
    assert (job_started.data.attempt, job_started.data.restarted_by) == (2, "carol")
    assert isinstance(sequence_started, SequenceStarted)
    assert (sequence_started.data.index, sequence_started.data.attempt) == (1, 2)
    replanned = moved(on_planned(result.run, 1, 2, "p9", counts(delete=12), NOW, "d1"))
    (event,) = replanned.events
    assert isinstance(event, SequencePlanned)
    assert event.data.approval is not None
    assert event.data.approval.delete == 12
    assert event.data.digest == "d1"


def test_a_plan_with_other_changes_than_were_approved_goes_to_the_guard_without_approval() -> None:
    """Same counts, other records (the source changed after the approval): the approval does
    not cover them, so the guard decides on the thresholds alone."""
    run = moved(validate(blocked(), validate_command(), NOW)).run
    run = moved(restart(run, restart_command(), NOW)).run
    replanned = moved(on_planned(run, 0, 2, "p9", counts(delete=12), NOW, "d-other"))
    (event,) = replanned.events
    assert isinstance(event, SequencePlanned)
    assert event.data.approval is None
    assert event.data.digest == "d-other"
    # The approval is kept: a plan of the approved changes, later, is still covered by it.
    assert replanned.run.sequence(0).approval is not None


def test_restart_of_a_failed_job_resumes_at_the_failed_sequence() -> None:
    run = moved(on_failed(completed(started(), 0, "p0"), 1, 1, "boom", NOW)).run
    result = moved(restart(run, restart_command(), NOW))
    assert statuses(result.run) == ["COMPLETED", "RUNNING", "PENDING"]
    assert result.run.sequence(1).reason is None


def test_restart_from_threshold_without_validation_plans_again() -> None:
    result = moved(restart(blocked(), restart_command(), NOW))
    assert result.run.pending_work() == (0, "planning")
    assert result.run.sequence(0).approval is None


def test_restart_of_a_running_or_completed_job_is_rejected() -> None:
    outcome = restart(started(), restart_command(), NOW)
    assert isinstance(outcome, Rejected)
    assert "only a job at FAILED, THRESHOLD or VALIDATED can be restarted" in outcome.reason


def test_a_failure_reported_for_an_earlier_attempt_is_ignored() -> None:
    run = moved(restart(blocked(), restart_command(), NOW)).run
    assert isinstance(on_failed(run, 0, 1, "late", NOW), Unchanged)


def test_a_rejection_names_the_command_and_who_sent_it() -> None:
    event = rejection(JOB_ID, validate_command("c9"), "job is COMPLETED", NOW)
    assert event.subject == JOB_ID
    assert event.data.command == "ValidateThreshold"
    assert (event.data.command_id, event.data.requested_by) == ("c9", "alice")


def test_a_command_sent_for_a_state_the_job_has_left_is_rejected() -> None:
    run = moved(validate(blocked(), validate_command("v1"), NOW)).run
    # Canceling a validated job is allowed, but this operator acted on the job at THRESHOLD.
    outcome = cancel(run, cancel_command(expected_status=JobStatus.THRESHOLD), NOW)
    assert outcome == Rejected(
        f"job {JOB_ID} is VALIDATED now, no longer THRESHOLD as when the command was sent; "
        "look at the job again before deciding"
    )
    assert isinstance(cancel(run, cancel_command(expected_status=JobStatus.VALIDATED), NOW), Moved)


def test_a_new_plan_forgets_when_the_previous_one_was_made() -> None:
    run = moved(restart(blocked(), restart_command(), NOW)).run
    assert run.sequence(0).planned_at is None
    run = planned(run, 0, "p2", delete=1)
    assert run.sequence(0).planned_at == NOW
