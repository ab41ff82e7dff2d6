"""A dry run's transitions: each plan is decided and kept, none is ever applied, and the job
ends COMPLETED with every event saying it was a dry run."""

from provisioning_common.events import (
    AppliedCounts,
    JobCompleted,
    SequenceCompleted,
    SequenceStarted,
)
from provisioning_common.statuses import JobStatus, SequenceStatus
from sequence_runner.domain.run import Run
from sequence_runner.domain.transitions import on_blocked, on_released, start

from tests.unit.sequence_runner.builders import NOW, hit, job_created
from tests.unit.sequence_runner.test_transitions import moved, planned, statuses

NOTHING = AppliedCounts(create=0, update=0, delete=0)


def dry_started() -> Run:
    created = job_created()
    created = created.model_copy(update={"data": created.data.model_copy(update={"dry_run": True})})
    return start(created, NOW).run


def test_a_dry_run_blocked_plan_is_kept_with_its_threshold_and_the_next_is_planned() -> None:
    run = planned(dry_started(), delete=12)
    result = moved(on_blocked(run, 0, "p1", hit(), now=NOW))
    assert result.run.status is JobStatus.RUNNING
    assert statuses(result.run) == ["COMPLETED", "RUNNING", "PENDING"]
    first = result.run.sequence(0)
    assert (first.plan_id, first.threshold, first.applied) == ("p1", hit(), NOTHING)
    assert result.run.pending_work() == (1, "planning")  # never (0, "applying")
    done, following = result.events
    assert isinstance(done, SequenceCompleted)
    assert (done.data.applied, done.data.dry_run) == (NOTHING, True)
    assert isinstance(following, SequenceStarted)


def test_a_dry_run_released_plan_is_not_applied_and_the_job_completes_as_a_dry_run() -> None:
    run = dry_started()
    for index in range(3):
        run = planned(run, index, f"p{index}", create=1)
        result = moved(on_released(run, index, f"p{index}", now=NOW))
        run = result.run
        assert run.sequence(index).status is SequenceStatus.COMPLETED
        assert run.sequence(index).applied == NOTHING
    assert run.status is JobStatus.COMPLETED
    ended = result.events[-1]
    assert isinstance(ended, JobCompleted)
    assert ended.data.dry_run is True


def test_a_job_that_is_not_a_dry_run_still_applies_its_released_plan() -> None:
    run = moved(on_released(planned(start(job_created(), NOW).run, create=1), 0, "p1")).run
    assert run.pending_work() == (0, "applying")
