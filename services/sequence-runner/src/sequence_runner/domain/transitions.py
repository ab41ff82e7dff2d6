"""Pure transitions of a run: each returns the new run and the events it publishes, or why not."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provisioning_common.commands import CancelJob, JobCommand, RestartJob, ValidateThreshold
from provisioning_common.decisions import decision_counts
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    THRESHOLD_GUARD_SOURCE,
    AppliedCounts,
    Approval,
    CommandRejected,
    CommandRejectedData,
    JobCanceled,
    JobCanceledData,
    JobCompleted,
    JobCompletedData,
    JobCreated,
    JobFailed,
    JobFailedData,
    JobStarted,
    JobStartedData,
    PlanCounts,
    SequenceCanceled,
    SequenceCanceledData,
    SequenceCompleted,
    SequenceCompletedData,
    SequenceFailed,
    SequenceFailedData,
    SequencePlanned,
    SequencePlannedData,
    SequenceStarted,
    SequenceStartedData,
    ThresholdHit,
    ThresholdValidated,
    ThresholdValidatedData,
    bounded_reason,
)
from provisioning_common.statuses import (
    RESTARTABLE_JOB_STATUSES,
    JobStatus,
    SequenceStatus,
    job_can_move,
    sequence_can_move,
)

from sequence_runner.domain.plan_digest import approval_covers
from sequence_runner.domain.run import Phase, Run, SequenceRun

RUNNER_SOURCE = "/provisioning/sequence-runner"


@dataclass(frozen=True)
class Moved:
    """The run changed; `events` are published once the new run is stored."""

    run: Run
    events: tuple[Envelope, ...] = field(default=())


@dataclass(frozen=True)
class Rejected:
    """A command that does not fit the job's state; `reason` is meant for the operator.

    A validate refused because the job waits on another plan (or because it named none) also
    carries that plan's id and counts, so the answer says what there is to look at."""

    reason: str
    current_plan_id: str | None = None
    current_counts: PlanCounts | None = None


@dataclass(frozen=True)
class Unchanged:
    """Nothing to do: a stale decision, a replayed message, a command already handled."""

    why: str


# What a transition gives: not named `Outcome`, which job-api's audit entries use.
TransitionResult = Moved | Rejected | Unchanged


def _about(run: Run, now: datetime) -> dict[str, Any]:
    """The envelope fields every event of the runner about this job carries."""
    return {"source": RUNNER_SOURCE, "subject": run.job_id, "time": now}


def _running(sequence: SequenceRun, phase: Phase) -> SequenceRun:
    return sequence.model_copy(
        update={
            "status": SequenceStatus.RUNNING,
            "phase": phase,
            "plan_id": None,
            "planned": None,
            "plan_digest": None,
            "planned_at": None,
            "written": None,
            "applied": None,
            "threshold": None,
            "reason": None,
        }
    )


def _in_phase(run: Run, index: int, phase: Phase, attempt: int | None = None) -> bool:
    if run.status is not JobStatus.RUNNING or not 0 <= index < len(run.sequences):
        return False
    if attempt is not None and run.attempt != attempt:
        return False
    sequence = run.sequence(index)
    return sequence.status is SequenceStatus.RUNNING and sequence.phase == phase


def command_name(command: JobCommand) -> str:
    return command.type.removeprefix("provisioning.")


def rejection(
    job_id: str, command: JobCommand, refusal: Rejected | str, now: datetime
) -> CommandRejected:
    if isinstance(refusal, str):
        refusal = Rejected(refusal)
    return CommandRejected(
        source=RUNNER_SOURCE,
        subject=job_id,
        time=now,
        data=CommandRejectedData(
            command_id=command.data.command_id,
            command=command_name(command),
            requested_by=command.data.requested_by,
            reason=refusal.reason,
            current_plan_id=refusal.current_plan_id,
            current_counts=refusal.current_counts,
        ),
    )


# ---- the job's own progress ---------------------------------------------------------------


def start(created: JobCreated, now: datetime) -> Moved:
    """A new run at its first sequence: QUEUED → RUNNING."""
    definition = created.data.definition
    sequences = [SequenceRun(index=i, name=s.name) for i, s in enumerate(definition.sequences)]
    sequences[0] = _running(sequences[0], "planning")
    run = Run(
        job_id=created.subject,
        request_id=created.data.request_id,
        requested_by=created.data.requested_by,
        status=JobStatus.RUNNING,
        attempt=1,
        definition=definition,
        inputs=created.data.inputs,
        sequences=tuple(sequences),
        dry_run=created.data.dry_run,
        reverts=created.data.reverts,
    )
    return Moved(
        run,
        (
            JobStarted(**_about(run, now), data=JobStartedData(attempt=1)),
            SequenceStarted(
                **_about(run, now),
                data=SequenceStartedData(index=0, name=sequences[0].name, attempt=1),
            ),
        ),
    )


def on_planned(
    run: Run,
    index: int,
    attempt: int,
    plan_id: str,
    counts: PlanCounts,
    now: datetime,
    digest: str | None = None,
) -> TransitionResult:
    """The plan is stored: hand it to the guard with the thresholds, and with the approval if
    the operator approved these very changes (the same digest)."""
    if not _in_phase(run, index, "planning", attempt):
        return Unchanged(f"sequence {index} is no longer being planned in attempt {attempt}")
    sequence = run.sequence(index).model_copy(
        update={
            "phase": "deciding",
            "plan_id": plan_id,
            "planned": counts,
            "plan_digest": digest,
            "planned_at": now,
        }
    )
    # Other changes than were approved (the source changed after the approval) are decided
    # as a first plan is: an approval of 30 records never writes 30 others.
    approval = sequence.approval if approval_covers(sequence.approval, digest) else None
    moved = run.with_sequence(sequence)
    return Moved(
        moved,
        (
            SequencePlanned(
                **_about(moved, now),
                data=SequencePlannedData(
                    index=index,
                    name=sequence.name,
                    plan_id=plan_id,
                    counts=counts,
                    thresholds=run.sequence_definition(index).thresholds,
                    approval=approval,
                    digest=digest,
                ),
            ),
        ),
    )


def _deciding_on(run: Run, index: int, plan_id: str) -> bool:
    if not 0 <= index < len(run.sequences):
        return False
    sequence = run.sequence(index)
    # The one rule, shared with the read model's fold.
    return decision_counts(
        job_status=run.status,
        sequence_status=sequence.status,
        awaiting_plan_id=sequence.plan_id if sequence.phase == "deciding" else None,
        decided_plan_id=plan_id,
    )


def _not_from_guard(source: str) -> Unchanged | None:
    # Anyone who can produce on job-events could otherwise release a plan (the topic's ACLs
    # are the real barrier; this keeps a misconfigured or test producer from writing).
    if source != THRESHOLD_GUARD_SOURCE:
        return Unchanged(f"a threshold decision from {source!r}, not from the threshold guard")
    return None


def on_released(
    run: Run,
    index: int,
    plan_id: str,
    source: str = THRESHOLD_GUARD_SOURCE,
    now: datetime | None = None,
) -> TransitionResult:
    """The guard released the plan: apply it. The guard's event is the record of it."""
    if ignored := _not_from_guard(source):
        return ignored
    if not _deciding_on(run, index, plan_id):
        return Unchanged(f"plan {plan_id} of sequence {index} is not awaiting a decision")
    if run.dry_run:
        return _dry_run_decided(run, index, plan_id, None, now)
    return Moved(run.with_sequence(run.sequence(index).model_copy(update={"phase": "applying"})))


def on_blocked(
    run: Run,
    index: int,
    plan_id: str,
    hit: ThresholdHit,
    source: str = THRESHOLD_GUARD_SOURCE,
    now: datetime | None = None,
) -> TransitionResult:
    """The guard blocked the plan: nothing is written and the job waits for an operator."""
    if ignored := _not_from_guard(source):
        return ignored
    if not _deciding_on(run, index, plan_id):
        return Unchanged(f"plan {plan_id} of sequence {index} is not awaiting a decision")
    if run.dry_run:
        return _dry_run_decided(run, index, plan_id, hit, now)
    sequence = run.sequence(index).model_copy(
        update={"status": SequenceStatus.THRESHOLD, "phase": None, "threshold": hit}
    )
    moved = run.with_sequence(sequence).model_copy(update={"status": JobStatus.THRESHOLD})
    return Moved(moved)


def on_batch_written(run: Run, index: int, plan_id: str, written: int) -> TransitionResult:
    """A batch of the plan is written: remember how far the apply got."""
    if not run.is_applying(index, plan_id):
        return Unchanged(f"plan {plan_id} of sequence {index} is not being applied")
    return Moved(run.with_sequence(run.sequence(index).model_copy(update={"written": written})))


def on_completed(
    run: Run, index: int, plan_id: str, applied: AppliedCounts, now: datetime
) -> TransitionResult:
    """The plan is written: start the next sequence, or complete the job."""
    if not _in_phase(run, index, "applying") or run.sequence(index).plan_id != plan_id:
        return Unchanged(f"plan {plan_id} of sequence {index} is not being applied")
    return _sequence_done(run, index, plan_id, applied, now)


def on_applied(
    run: Run, index: int, plan_id: str, written: int, applied: AppliedCounts, now: datetime
) -> TransitionResult:
    """The plan's last batch is written: how far the apply got and the sequence done, in one
    write (`on_batch_written`, then `on_completed`)."""
    recorded = on_batch_written(run, index, plan_id, written)
    if not isinstance(recorded, Moved):
        return recorded
    return on_completed(recorded.run, index, plan_id, applied, now)


def _dry_run_decided(
    run: Run, index: int, plan_id: str, hit: ThresholdHit | None, now: datetime | None
) -> Moved:
    """A dry run's plan is decided: kept with its counts (and the threshold it would stop at),
    never applied; the job goes on to plan its next sequence, or completes."""
    assert now is not None, "a dry run's decision needs the time of its events"
    sequence = run.sequence(index).model_copy(update={"threshold": hit})
    return _sequence_done(
        run.with_sequence(sequence),
        index,
        plan_id,
        AppliedCounts(create=0, update=0, delete=0),
        now,
    )


def _sequence_done(
    run: Run, index: int, plan_id: str, applied: AppliedCounts, now: datetime
) -> Moved:
    done = run.sequence(index).model_copy(
        update={"status": SequenceStatus.COMPLETED, "phase": None, "applied": applied}
    )
    moved = run.with_sequence(done)
    events: list[Envelope] = [
        SequenceCompleted(
            **_about(moved, now),
            data=SequenceCompletedData(
                index=index, plan_id=plan_id, applied=applied, dry_run=run.dry_run
            ),
        )
    ]
    following = index + 1
    if following < len(moved.sequences):
        upcoming = _running(moved.sequence(following), "planning")
        moved = moved.with_sequence(upcoming)
        events.append(
            SequenceStarted(
                **_about(moved, now),
                data=SequenceStartedData(
                    index=following, name=upcoming.name, attempt=moved.attempt
                ),
            )
        )
    else:
        moved = moved.model_copy(update={"status": JobStatus.COMPLETED})
        events.append(
            JobCompleted(**_about(moved, now), data=JobCompletedData(dry_run=run.dry_run))
        )
    return Moved(moved, tuple(events))


def on_failed(run: Run, index: int, attempt: int, reason: str, now: datetime) -> TransitionResult:
    """The sequence could not be planned or applied: it and the job are FAILED."""
    # Bounded here too, not only in the events: the run shows the same reason as they do.
    reason = bounded_reason(reason)
    if run.status is not JobStatus.RUNNING or run.attempt != attempt:
        return Unchanged(f"attempt {attempt} of the job is over")
    sequence = run.sequence(index)
    if sequence.status is not SequenceStatus.RUNNING:
        return Unchanged(f"sequence {index} is not running")
    failed = sequence.model_copy(
        update={"status": SequenceStatus.FAILED, "phase": None, "reason": reason}
    )
    moved = run.with_sequence(failed).model_copy(update={"status": JobStatus.FAILED})
    return Moved(
        moved,
        (
            SequenceFailed(
                **_about(moved, now), data=SequenceFailedData(index=index, reason=reason)
            ),
            JobFailed(**_about(moved, now), data=JobFailedData(index=index, reason=reason)),
        ),
    )


# ---- operator commands ----------------------------------------------------------------------


def _already_handled(run: Run, command: JobCommand) -> Unchanged | Rejected | None:
    """A redelivered command is skipped; one sent for a state the job has left is refused."""
    if command.data.command_id in run.handled_commands:
        return Unchanged(f"command {command.data.command_id} was already handled")
    expected = command.data.expected_status
    if expected is not None and run.status is not expected:
        # Two operators deciding at once: the first decision stands, the second is told why.
        return Rejected(
            f"job {run.job_id} is {run.status.value} now, no longer {expected.value} as when "
            f"the command was sent; look at the job again before deciding"
        )
    return None


def _names(statuses: Sequence[JobStatus]) -> str:
    names = [status.value for status in statuses]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _job_is(run: Run, allowed: Sequence[JobStatus], verb: str) -> Rejected:
    return Rejected(
        f"job {run.job_id} is {run.status.value}; only a job at {_names(allowed)} can be {verb}"
    )


def _described(counts: PlanCounts) -> str:
    disables = f", {counts.disable} disables" if counts.disable else ""
    return (
        f"{counts.create} creations, {counts.update} modifications, {counts.delete} deletions"
        f"{disables}"
    )


def validate(run: Run, command: ValidateThreshold, now: datetime) -> TransitionResult:
    """Approve the blocked plan the command names; nothing runs until a restart."""
    if handled := _already_handled(run, command):
        return handled
    blocked = run.awaiting_decision()
    if (
        blocked is None
        or run.status is not JobStatus.THRESHOLD
        or not job_can_move(run.status, JobStatus.VALIDATED)
        or not sequence_can_move(blocked.status, SequenceStatus.VALIDATED)
    ):
        return _job_is(run, [JobStatus.THRESHOLD], "validated")
    assert blocked.planned is not None
    assert blocked.plan_id is not None
    wanted_plan = command.data.plan_id
    if wanted_plan != blocked.plan_id:
        # The operator approves the plan they looked at, and only that one: the job may have
        # been planned again meanwhile (a restart by someone else) with other, larger counts.
        asked = "names no plan" if wanted_plan is None else f"is for plan {wanted_plan}"
        return Rejected(
            f"job {run.job_id} is blocked on plan {blocked.plan_id} "
            f"({_described(blocked.planned)}); the validate {asked}; look at the current plan "
            "and validate it",
            current_plan_id=blocked.plan_id,
            current_counts=blocked.planned,
        )
    approval = Approval(
        create=blocked.planned.create,
        update=blocked.planned.update,
        delete=blocked.planned.delete,
        disable=blocked.planned.disable,
        validated_by=command.data.requested_by,
        validated_at=now,
        plan_id=blocked.plan_id,
        digest=blocked.plan_digest,
    )
    validated = blocked.model_copy(
        update={"status": SequenceStatus.VALIDATED, "approval": approval}
    )
    moved = (
        run.with_sequence(validated)
        .model_copy(update={"status": JobStatus.VALIDATED})
        .with_handled_command(command.data.command_id)
    )
    return Moved(
        moved,
        (
            ThresholdValidated(
                **_about(moved, now),
                data=ThresholdValidatedData(
                    index=blocked.index, command_id=command.data.command_id, approval=approval
                ),
            ),
        ),
    )


def cancel(run: Run, command: CancelJob, now: datetime) -> TransitionResult:
    """Cancel the blocked sequence and every later one; the job ends CANCELED."""
    if handled := _already_handled(run, command):
        return handled
    blocked = run.awaiting_decision()
    allowed = [JobStatus.THRESHOLD, JobStatus.VALIDATED]
    if blocked is None or run.status not in allowed:
        return _job_is(run, allowed, "canceled")
    moved = run
    events: list[Envelope] = []
    for sequence in run.sequences[blocked.index :]:
        if not sequence_can_move(sequence.status, SequenceStatus.CANCELED):
            continue
        moved = moved.with_sequence(
            sequence.model_copy(update={"status": SequenceStatus.CANCELED, "phase": None})
        )
        events.append(
            SequenceCanceled(
                **_about(moved, now),
                data=SequenceCanceledData(
                    index=sequence.index,
                    canceled_by=command.data.requested_by,
                    command_id=command.data.command_id,
                ),
            )
        )
    moved = moved.model_copy(update={"status": JobStatus.CANCELED}).with_handled_command(
        command.data.command_id
    )
    events.append(
        JobCanceled(
            **_about(moved, now),
            data=JobCanceledData(
                canceled_by=command.data.requested_by, command_id=command.data.command_id
            ),
        )
    )
    return Moved(moved, tuple(events))


def restart(run: Run, command: RestartJob, now: datetime) -> TransitionResult:
    """Plan again the first sequence that is not completed; completed ones are not re-run."""
    if handled := _already_handled(run, command):
        return handled
    allowed = sorted(RESTARTABLE_JOB_STATUSES, key=list(JobStatus).index)
    if run.status not in RESTARTABLE_JOB_STATUSES:
        return _job_is(run, allowed, "restarted")
    resumed = next(s for s in run.sequences if s.status is not SequenceStatus.COMPLETED)
    attempt = run.attempt + 1
    moved = (
        run.with_sequence(_running(resumed, "planning"))
        .model_copy(update={"status": JobStatus.RUNNING, "attempt": attempt})
        .with_handled_command(command.data.command_id)
    )
    return Moved(
        moved,
        (
            JobStarted(
                **_about(moved, now),
                data=JobStartedData(attempt=attempt, restarted_by=command.data.requested_by),
            ),
            SequenceStarted(
                **_about(moved, now),
                data=SequenceStartedData(index=resumed.index, name=resumed.name, attempt=attempt),
            ),
        ),
    )
