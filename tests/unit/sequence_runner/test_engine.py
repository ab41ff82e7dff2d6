"""The engine against fakes of its ports: a job planned, decided, applied; the outbox; races."""

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from provisioning_common.envelope import utcnow
from provisioning_common.events import (
    AppliedCounts,
    CommandRejected,
    JobCompleted,
    JobDeleted,
    JobDeletedData,
    JobFailed,
    JobStarted,
    SequenceBlocked,
    SequenceCanceled,
    SequenceCompleted,
    SequenceFailed,
    SequencePlanned,
    SequenceProgress,
    SequenceReleased,
    SequenceReleasedData,
    SequenceStarted,
)
from provisioning_common.statuses import JobStatus, SequenceStatus
from sequence_runner.adapters.connectors.base import SourceError, TargetError
from sequence_runner.domain import planner
from sequence_runner.domain.plan_digest import plan_digest
from sequence_runner.domain.records import PlannedChange
from sequence_runner.domain.transitions import (
    Moved,
    Rejected,
    cancel,
    on_blocked,
    on_completed,
    on_released,
    validate,
)
from sequence_runner.handlers.engine import DecisionPendingError, Engine, EngineOptions
from sequence_runner.handlers.messages import COMMAND_HANDLERS, EVENT_HANDLERS, handle
from sequence_runner.handlers.ports import StoredPlan
from threshold_guard.handlers.decisions import decide

from tests.unit.sequence_runner.builders import (
    JOB_ID,
    NOW,
    cancel_command,
    counts,
    definition,
    job_created,
    restart_command,
    sequence,
    validate_command,
)
from tests.unit.sequence_runner.fakes import (
    FakeClaims,
    FakeConnectors,
    FakePlans,
    FakePublisher,
    FakeRuns,
    FakeTarget,
)

PEOPLE = [{"uid": f"u{i}", "mail": f"u{i}@x"} for i in range(3)]
GROUPS = [{"uid": "admins"}, {"uid": "staff"}]
# Work retried once at once, plans applied two changes a batch: the engine tests' defaults.
WORLD_OPTIONS = EngineOptions(work_retries=1, work_retry_backoff_seconds=0, apply_batch_size=2)


@dataclass
class World:
    engine: Engine
    runs: FakeRuns
    plans: FakePlans
    publisher: FakePublisher
    connectors: FakeConnectors

    @classmethod
    def of(
        cls,
        connectors: FakeConnectors,
        options: EngineOptions,
        *,
        plans: FakePlans | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> "World":
        """An engine over fresh fake runs and publisher (and `plans`, or fresh ones)."""
        runs, publisher = FakeRuns(), FakePublisher()
        plans = plans or FakePlans()
        engine = Engine(runs, plans, publisher, connectors, options, monotonic=monotonic)
        return cls(engine, runs, plans, publisher, connectors)

    async def settle(self) -> None:
        """Let the engine work, answering every new plan the way the guard would."""
        decided: set[str] = set()
        while True:
            await self.engine.idle()
            fresh = [e for e in self.publisher.of_type(SequencePlanned) if e.id not in decided]
            if not fresh:
                return
            for planned in fresh:
                decided.add(planned.id)
                decision = decide(planned)
                self.publisher.published.append(decision)
                await handle(EVENT_HANDLERS, decision, self.engine)

    def current_plan(self, index: int = 0) -> str | None:
        """The plan the sequence was last planned with: what an operator's screen shows."""
        return self.runs.rows[JOB_ID].run.sequence(index).plan_id

    def status(self) -> tuple[JobStatus, list[str]]:
        run = self.runs.rows[JOB_ID].run
        return run.status, [s.status.value for s in run.sequences]


@pytest.fixture
def world() -> World:
    connectors = FakeConnectors(sources={"people": PEOPLE, "groups": GROUPS})
    return World.of(connectors, WORLD_OPTIONS)


def two_sequences(**people: Any) -> Any:
    return job_created(
        definition(
            sequence("people", thresholds={"create": {"count": 10}}, **people),
            sequence("groups", thresholds={"create": {"count": 10}}),
        )
    )


async def test_a_two_sequence_job_runs_to_completion(world: World) -> None:
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED", "COMPLETED"])
    assert world.publisher.types() == [
        "JobStarted",
        "SequenceStarted",
        "SequencePlanned",
        "SequenceReleased",
        "SequenceCompleted",
        "SequenceStarted",
        "SequencePlanned",
        "SequenceReleased",
        "SequenceCompleted",
        "JobCompleted",
    ]
    assert set(world.connectors.targets["people"].records) == {"u0", "u1", "u2"}
    assert set(world.connectors.targets["groups"].records) == {"admins", "staff"}
    assert world.runs.rows[JOB_ID].outbox == []


async def test_a_duplicate_job_created_starts_no_second_run(world: World) -> None:
    created = two_sequences()
    await handle(EVENT_HANDLERS, created, world.engine)
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert len(world.publisher.of_type(JobStarted)) == 1
    assert len(world.publisher.of_type(JobCompleted)) == 1


async def test_events_a_failed_publish_left_in_the_outbox_go_out_later(world: World) -> None:
    world.publisher.failures_left = 1
    with pytest.raises(ConnectionError):
        await world.engine.create_run(two_sequences())
    assert [e.type for e in world.runs.rows[JOB_ID].outbox][:1] == ["provisioning.JobStarted"]
    # What a restarted runner does first.
    assert await world.engine.resume_pending() == 1
    await world.settle()
    assert world.publisher.types()[:2] == ["JobStarted", "SequenceStarted"]
    assert len(world.publisher.of_type(JobStarted)) == 1
    assert world.status()[0] is JobStatus.COMPLETED


async def test_events_published_but_not_marked_sent_are_marked_not_published_again(
    world: World,
) -> None:
    marking = world.runs.mark_sent
    failures = [ConnectionError("database away")]

    async def mark_sent_once_failing(job_id: str, event_ids: Sequence[str]) -> None:
        if failures:
            raise failures.pop()
        await marking(job_id, event_ids)

    world.runs.mark_sent = mark_sent_once_failing  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await world.engine.create_run(two_sequences())
    assert world.publisher.types() == ["JobStarted", "SequenceStarted"]
    assert len(world.runs.rows[JOB_ID].outbox) == 2
    await world.engine.flush(JOB_ID)
    assert world.runs.rows[JOB_ID].outbox == []
    assert world.publisher.types() == ["JobStarted", "SequenceStarted"]


async def test_a_blocked_sequence_writes_nothing(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])
    assert world.publisher.types()[-1] == "SequenceBlocked"
    assert world.connectors.targets["people"].writes == []


async def test_validate_then_restart_writes_the_approved_plan(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    await handle(COMMAND_HANDLERS, validate_command(plan_id=world.current_plan()), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.VALIDATED, ["VALIDATED"])
    assert world.connectors.targets["people"].writes == []
    await handle(COMMAND_HANDLERS, restart_command(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])
    assert world.publisher.of_type(SequenceReleased)[-1].data.reason == "within_approval"
    assert len(world.connectors.targets["people"].records) == 3


async def test_a_plan_replaced_by_a_restart_is_removed_once_the_new_one_is_recorded(
    world: World,
) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    first = world.current_plan()
    await handle(COMMAND_HANDLERS, restart_command(), world.engine)
    await world.settle()
    second = world.current_plan()
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])
    assert second != first
    assert set(world.plans.plans) == {second}
    # A plan that ends its sequence stays: it is what was written (and what a revert reads).
    await handle(COMMAND_HANDLERS, validate_command(plan_id=second), world.engine)
    await world.settle()
    await handle(COMMAND_HANDLERS, restart_command("c-restart-2"), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])
    third = world.current_plan()
    assert set(world.plans.plans) == {third}


async def test_a_plan_grown_past_its_approval_stops_again(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    await handle(COMMAND_HANDLERS, validate_command(plan_id=world.current_plan()), world.engine)
    world.connectors.sources["people"] = [*PEOPLE, {"uid": "u9"}]
    await handle(COMMAND_HANDLERS, restart_command(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])
    blocked = world.publisher.of_type(SequenceBlocked)[-1]
    assert (blocked.data.threshold.limit, blocked.data.threshold.actual) == ("count", 4)
    assert world.connectors.targets["people"].writes == []


async def test_an_approval_writes_no_other_records_than_it_approved(world: World) -> None:
    """Issue 8, defect 6: approved 3 records, the source then gave 3 others. Same counts, but
    nobody saw these: the plan stops at its threshold again and nothing is written."""
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    await handle(COMMAND_HANDLERS, validate_command(plan_id=world.current_plan()), world.engine)
    world.connectors.sources["people"] = [{"uid": f"other{i}"} for i in range(3)]
    await handle(COMMAND_HANDLERS, restart_command(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])
    assert world.publisher.of_type(SequenceReleased) == []
    assert world.connectors.targets["people"].writes == []
    first, again = world.publisher.of_type(SequencePlanned)
    assert first.data.digest != again.data.digest
    assert world.plans.plans[again.data.plan_id][0].digest == again.data.digest


class PlacingTarget(FakeTarget):
    """A target that places each change (as a directory gives it a DN) once the plan is made;
    counts the changes it placed."""

    placed = 0

    def locate(self, change: PlannedChange) -> PlannedChange:
        self.placed += 1
        return replace(change, dn=f"uid={change.key},ou=people")


async def test_a_placed_plan_is_digested_with_its_places_in_the_pass_that_stores_it(
    world: World,
) -> None:
    # Where a directory change is written is part of what the operator approves: the digest
    # the guard and an approval see covers the DNs, and each change is placed once, as it is
    # stored (a million changes are not read back twice).
    target = world.connectors.targets["people"] = PlacingTarget("uid")
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()

    planned = world.publisher.of_type(SequencePlanned)[-1]
    stored, changes = world.plans.plans[planned.data.plan_id]
    assert [c.dn for c in changes] == [f"uid={c.key},ou=people" for c in changes]
    assert target.placed == len(changes) == 3
    assert planned.data.digest == stored.digest == plan_digest(changes)
    assert planned.data.digest != plan_digest(replace(c, dn=None) for c in changes)


async def test_a_source_error_fails_the_sequence_and_the_job(world: World) -> None:
    world.connectors.sources["groups"] = SourceError("groups.csv: line 4: expected 2 fields")
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.FAILED, ["COMPLETED", "FAILED"])
    failed = world.publisher.of_type(SequenceFailed)[-1]
    assert failed.data.reason == "groups.csv: line 4: expected 2 fields"
    assert world.publisher.of_type(JobFailed)[-1].data.index == 1


async def test_restart_after_a_failure_does_not_run_completed_sequences_again(
    world: World,
) -> None:
    world.connectors.sources["groups"] = SourceError("bad row")
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    people_writes = list(world.connectors.targets["people"].writes)
    world.connectors.sources["groups"] = GROUPS
    await handle(COMMAND_HANDLERS, restart_command(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED", "COMPLETED"])
    assert world.connectors.targets["people"].writes == people_writes
    restarted = world.publisher.published[world.publisher.types().index("JobFailed") + 1 :]
    assert [e.data.index for e in restarted if isinstance(e, SequenceStarted)] == [1]


async def test_a_target_that_fails_to_write_fails_the_sequence(world: World) -> None:
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    target = FakeTarget("uid")
    target.failing = TargetError("target repository unreachable after 4 attempts (write)")
    world.connectors.targets["people"] = target
    await world.settle()
    assert world.status() == (JobStatus.FAILED, ["FAILED", "PENDING"])
    assert "unreachable" in world.publisher.of_type(JobFailed)[-1].data.reason


async def test_a_command_for_an_unknown_job_is_rejected(world: World) -> None:
    await handle(COMMAND_HANDLERS, validate_command(job_id="nope"), world.engine)
    (rejected,) = world.publisher.of_type(CommandRejected)
    assert rejected.subject == "nope"
    assert "not known" in rejected.data.reason


async def test_a_command_that_does_not_fit_is_rejected_with_its_reason(world: World) -> None:
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    await handle(COMMAND_HANDLERS, validate_command(), world.engine)
    (rejected,) = world.publisher.of_type(CommandRejected)
    assert rejected.data.reason == (
        f"job {JOB_ID} is COMPLETED; only a job at THRESHOLD can be validated"
    )


async def test_validate_and_cancel_racing_exactly_one_wins(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    seen = JobStatus.THRESHOLD
    validating = validate_command(plan_id=world.current_plan(), expected_status=seen)
    canceling = cancel_command(expected_status=seen)
    outcomes = await asyncio.gather(
        world.engine.decide(validating, lambda run, now: validate(run, validating, now)),
        world.engine.decide(canceling, lambda run, now: cancel(run, canceling, now)),
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Moved", "Rejected"]
    (rejected,) = world.publisher.of_type(CommandRejected)
    assert "no longer THRESHOLD" in rejected.data.reason


async def test_a_transition_is_evaluated_again_on_the_newer_run_after_a_conflict(
    world: World,
) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    interfered = False

    def another_writer_cancels_first(job_id: str) -> None:
        nonlocal interfered
        if not interfered:
            interfered = True
            row = world.runs.rows[job_id]
            canceled = cancel(row.run, cancel_command(), NOW)
            assert isinstance(canceled, Moved)
            row.run, row.version = canceled.run, row.version + 1

    world.runs.before_save = another_writer_cancels_first
    command = validate_command(plan_id=world.current_plan())
    outcome = await world.engine.decide(command, lambda run, now: validate(run, command, now))
    assert isinstance(outcome, Rejected)
    assert "is CANCELED" in outcome.reason


async def test_cancel_at_threshold_cancels_the_blocked_and_later_sequences(world: World) -> None:
    created = job_created(
        definition(
            sequence("people", thresholds={"create": {"count": 3}}),
            sequence("groups"),
        )
    )
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    await handle(COMMAND_HANDLERS, cancel_command(), world.engine)
    assert world.status() == (JobStatus.CANCELED, ["CANCELED", "CANCELED"])
    assert [e.data.index for e in world.publisher.of_type(SequenceCanceled)] == [0, 1]
    assert world.publisher.types()[-1] == "JobCanceled"


async def test_a_stale_decision_changes_nothing(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    saves = world.runs.saves
    outcome = await world.engine.step(JOB_ID, lambda run: on_released(run, 0, "an-old-plan"))
    assert not isinstance(outcome, Moved)
    outcome = await world.engine.step(
        JOB_ID,
        lambda run: on_blocked(
            run, 0, "an-old-plan", world.publisher.of_type(SequenceBlocked)[0].data.threshold
        ),
    )
    assert not isinstance(outcome, Moved)
    assert world.runs.saves == saves
    assert world.runs.rows[JOB_ID].run.sequence(0).status is SequenceStatus.THRESHOLD


async def test_a_plan_made_for_a_run_that_moved_on_is_thrown_away(world: World) -> None:
    await world.engine.create_run(two_sequences())

    def restarted_meanwhile(job_id: str) -> None:
        world.runs.before_save = None
        row = world.runs.rows[job_id]
        row.run = row.run.model_copy(update={"attempt": 2})
        row.version += 1

    world.runs.before_save = restarted_meanwhile
    world.engine.kick(JOB_ID)
    await world.engine.idle()
    # The plan of attempt 1 is gone; the run, still planning in attempt 2, was planned again.
    assert [plan.attempt for plan, _ in world.plans.plans.values()] == [2]
    (planned,) = world.publisher.of_type(SequencePlanned)
    assert planned.data.plan_id in world.plans.plans


async def test_progress_is_published_at_a_bounded_rate() -> None:
    ticks = iter(float(i) for i in range(10_000))
    runs, plans, publisher = FakeRuns(), FakePlans(), FakePublisher()
    many = [{"uid": f"u{i}"} for i in range(50)]
    connectors = FakeConnectors(sources={"people": many})
    engine = Engine(
        runs,
        plans,
        publisher,
        connectors,
        EngineOptions(progress_interval_seconds=10, apply_batch_size=5),
        monotonic=lambda: next(ticks),
    )
    world = World(engine, runs, plans, publisher, connectors)
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 100}})))
    await handle(EVENT_HANDLERS, created, engine)
    await world.settle()
    progress = publisher.of_type(SequenceProgress)
    planning = [p.data for p in progress if p.data.phase == "planning"]
    applying = [p.data for p in progress if p.data.phase == "applying"]
    # One clock read per record while planning: 50 reads, one event per 10, plus the last one.
    assert 4 <= len(planning) <= 6
    assert planning[-1].done == 50
    assert applying
    assert applying[-1].done == applying[-1].total == 50
    assert world.status()[0] is JobStatus.COMPLETED


async def test_an_unexpected_error_is_retried_then_fails_the_sequence(world: World) -> None:
    class Broken(FakePlans):
        async def save(self, *args: Any) -> str:
            raise RuntimeError("database away")

    world.engine.plans = Broken()
    await world.engine.create_run(two_sequences())
    world.engine.kick(JOB_ID)
    await world.engine.idle()
    assert world.status()[0] is JobStatus.FAILED
    assert "database away" in world.publisher.of_type(JobFailed)[-1].data.reason


async def test_a_command_that_overtakes_the_guards_decision_waits_for_it(world: World) -> None:
    """The API sends a validate once the projection shows THRESHOLD; the command can still
    reach the runner (on job-commands) before the SequenceBlocked (on job-events) does."""
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.engine.idle()  # planned; the guard's decision not handled yet
    assert world.status() == (JobStatus.RUNNING, ["RUNNING"])
    early = validate_command(plan_id=world.current_plan(), expected_status=JobStatus.THRESHOLD)
    with pytest.raises(DecisionPendingError):
        await handle(COMMAND_HANDLERS, early, world.engine)
    assert world.publisher.of_type(CommandRejected) == []

    await world.settle()  # the guard blocks the plan
    await handle(COMMAND_HANDLERS, early, world.engine)  # the redelivery
    assert world.status() == (JobStatus.VALIDATED, ["VALIDATED"])


async def test_a_command_waits_for_a_decision_only_so_long(world: World) -> None:
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.engine.idle()
    stale = validate_command().model_copy(
        update={"time": NOW - timedelta(seconds=world.engine.options.decision_wait_seconds + 1)}
    )
    await handle(COMMAND_HANDLERS, stale, world.engine)
    (rejected,) = world.publisher.of_type(CommandRejected)
    assert "only a job at THRESHOLD can be validated" in rejected.data.reason


async def test_a_validate_that_waited_for_a_newer_plan_does_not_approve_it(world: World) -> None:
    """Operator A restarts a job at THRESHOLD while operator B, who saw the same THRESHOLD,
    validates it. B's command waits for the decision on the new plan, which blocks again:
    B never saw its counts, so B's validate must not approve them."""
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])
    seen_by_b = validate_command(
        plan_id=world.current_plan(), expected_status=JobStatus.THRESHOLD
    ).model_copy(update={"time": utcnow() - timedelta(seconds=1)})
    await handle(COMMAND_HANDLERS, restart_command(), world.engine)
    world.connectors.sources["people"] = [{"uid": f"u{i}"} for i in range(50)]
    await world.engine.idle()  # planned again; not decided yet
    with pytest.raises(DecisionPendingError):
        await handle(COMMAND_HANDLERS, seen_by_b, world.engine)
    await world.settle()  # the new plan, 50 creates, is blocked
    await handle(COMMAND_HANDLERS, seen_by_b, world.engine)  # the redelivery
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])
    assert world.runs.rows[JOB_ID].run.sequence(0).approval is None
    (rejected,) = world.publisher.of_type(CommandRejected)
    assert f"blocked on plan {world.current_plan()} (50 creations" in rejected.data.reason
    assert rejected.data.current_plan_id == world.current_plan()


async def test_errors_planning_a_source_name_the_source(world: World) -> None:
    world.connectors.sources["people"] = [{"uid": "u1"}, {"uid": "u2"}, {"uid": "u1"}]
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    assert world.status() == (JobStatus.FAILED, ["FAILED", "PENDING"])
    assert world.publisher.of_type(SequenceFailed)[-1].data.reason == (
        "people.fake: duplicate key uid='u1' at lines 2 and 4"
    )


async def test_a_plan_is_computed_off_the_event_loop(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan of a million records takes seconds of CPU: on the event loop it would stop the
    Kafka consumers' heartbeats and every other job meanwhile."""
    threads: list[int] = []

    finish = planner.StreamedPlanner.finish

    def recording_finish(self: planner.StreamedPlanner) -> Any:
        threads.append(threading.get_ident())
        return finish(self)

    monkeypatch.setattr(planner.StreamedPlanner, "finish", recording_finish)
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    assert world.status()[0] is JobStatus.COMPLETED
    assert len(threads) == 2
    assert threading.get_ident() not in threads


async def test_a_plan_taken_over_by_another_runner_is_no_longer_written(world: World) -> None:
    """Two runner processes can work on one job (a rebalance, a second process starting up
    and resuming every running job). Once the other one has moved the run on, this one stops
    writing its now stale plan rather than overwrite what came after."""
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10}})))

    class OvertakenTarget(FakeTarget):
        async def apply(self, changes: Any) -> None:
            await super().apply(changes)
            row = world.runs.rows[JOB_ID]
            sequence_run = row.run.sequence(0)
            if sequence_run.phase == "applying":
                assert sequence_run.plan_id is not None
                done = on_completed(
                    row.run,
                    0,
                    sequence_run.plan_id,
                    AppliedCounts(create=3, update=0, delete=0),
                    NOW,
                )
                assert isinstance(done, Moved)
                row.run, row.version = done.run, row.version + 1

    world.connectors.targets["people"] = OvertakenTarget("uid")
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    # Batches of 2: the first was written, then the run said the other runner had finished.
    assert len(world.connectors.targets["people"].writes) == 2
    assert world.publisher.of_type(SequenceCompleted) == []
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])


async def test_events_left_unsent_by_a_broker_outage_go_out_without_a_new_message() -> None:
    """Background work whose events cannot be published gives up after its retries; the
    events must not then wait for the next message about the job, or the next start."""
    runs, plans, publisher = FakeRuns(), FakePlans(), FakePublisher()
    connectors = FakeConnectors(sources={"people": PEOPLE})
    engine = Engine(
        runs,
        plans,
        publisher,
        connectors,
        EngineOptions(work_retries=1, work_retry_backoff_seconds=0, work_resume_seconds=0.05),
    )
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10}})))
    await engine.create_run(created)
    publisher.failures_left = 10**9  # the broker goes away
    engine.kick(JOB_ID)
    await engine.idle()
    assert [e.type for e in runs.rows[JOB_ID].outbox] == ["provisioning.SequencePlanned"]
    publisher.failures_left = 0  # and comes back
    await asyncio.sleep(0.2)
    await engine.idle()
    assert runs.rows[JOB_ID].outbox == []
    assert len(publisher.of_type(SequencePlanned)) == 1
    await engine.close()


async def test_a_stored_plan_that_is_not_the_checked_one_is_not_written(world: World) -> None:
    class Garbled(FakePlans):
        async def save(self, plan: StoredPlan, changes: Any, digester: Any = None) -> str:
            changes = list(changes)
            # As many changes as were checked, but one twice and one missing.
            return await super().save(plan, [changes[0], changes[1], changes[1]], digester)

    world.engine.plans = Garbled()
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert world.status() == (JobStatus.FAILED, ["FAILED"])
    assert "not the plan that was checked" in world.publisher.of_type(JobFailed)[-1].data.reason


async def test_a_broker_away_after_a_sequence_completed_does_not_fail_the_next_one() -> None:
    """Issue 8, suspected: the publish of SequenceCompleted raises (the broker away) and keeps
    raising past the work's retries. Sequence 1 was never planned: nothing about it failed."""
    runs, plans = FakeRuns(), FakePlans()

    class BrokerGoesAway(FakePublisher):
        away = False
        came_back = False

        async def publish(self, event: Any) -> None:
            if isinstance(event, SequenceCompleted) and not self.came_back:
                self.away = True
            if self.away:
                raise ConnectionError("broker away")
            await super().publish(event)

    publisher = BrokerGoesAway()
    connectors = FakeConnectors(sources={"people": PEOPLE, "groups": GROUPS})
    engine = Engine(
        runs,
        plans,
        publisher,
        connectors,
        EngineOptions(work_retries=1, work_retry_backoff_seconds=0, work_resume_seconds=0.05),
    )
    world = World(engine, runs, plans, publisher, connectors)
    await handle(EVENT_HANDLERS, two_sequences(), engine)
    await world.settle()
    assert world.status() == (JobStatus.RUNNING, ["COMPLETED", "RUNNING"])
    assert runs.rows[JOB_ID].run.sequence(1).phase == "planning"
    assert [e.type for e in runs.rows[JOB_ID].outbox] == [
        "provisioning.SequenceCompleted",
        "provisioning.SequenceStarted",
    ]
    publisher.away, publisher.came_back = False, True  # the job is looked at again by itself
    await asyncio.sleep(0.2)
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED", "COMPLETED"])
    assert publisher.of_type(SequenceFailed) == []
    await engine.close()


async def test_a_decision_from_another_producer_than_the_guard_is_ignored(world: World) -> None:
    """Issue 8, suspected: the runner applied a SequenceReleased from any producer."""
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 3}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.engine.idle()  # planned, 3 creations: the guard would block it
    (planned,) = world.publisher.of_type(SequencePlanned)
    forged = SequenceReleased(
        source="/somebody/else",
        subject=JOB_ID,
        data=SequenceReleasedData(
            index=0, plan_id=planned.data.plan_id, reason="within_thresholds"
        ),
    )
    await handle(EVENT_HANDLERS, forged, world.engine)
    await world.engine.idle()
    assert world.runs.rows[JOB_ID].run.sequence(0).phase == "deciding"
    assert world.connectors.targets["people"].writes == []
    await world.settle()  # the guard's own decision
    assert world.status() == (JobStatus.THRESHOLD, ["THRESHOLD"])


def claiming_world() -> tuple[World, FakeClaims]:
    runs, plans, publisher, claims = FakeRuns(), FakePlans(), FakePublisher(), FakeClaims()
    connectors = FakeConnectors(sources={"people": PEOPLE})
    engine = Engine(
        runs,
        plans,
        publisher,
        connectors,
        EngineOptions(target_wait_seconds=0.01),
        claims=claims,
    )
    return World(engine, runs, plans, publisher, connectors), claims


async def test_a_job_waits_while_another_plans_or_writes_its_target() -> None:
    world, claims = claiming_world()
    people = definition(sequence("people", thresholds={"create": {"count": 10}}))
    await handle(EVENT_HANDLERS, job_created(people, job_id="job-a"), world.engine)
    await world.engine.idle()  # job a planned: deciding, it holds the target
    await handle(EVENT_HANDLERS, job_created(people, job_id="job-b"), world.engine)
    await asyncio.sleep(0.05)
    assert [p.subject for p in world.publisher.of_type(SequencePlanned)] == ["job-a"]
    await world.settle()  # a is released and written; then b plans against what a wrote
    await asyncio.sleep(0.05)
    await world.settle()
    planned = {p.subject: p.data.counts for p in world.publisher.of_type(SequencePlanned)}
    assert (planned["job-a"].create, planned["job-b"].create) == (3, 0)
    assert planned["job-b"].unchanged == 3
    assert claims.holders == {}
    await world.engine.close()


async def test_a_blocked_job_does_not_keep_its_target_from_others() -> None:
    world, claims = claiming_world()
    blocking = definition(sequence("people", thresholds={"create": {"count": 3}}))
    await handle(EVENT_HANDLERS, job_created(blocking, job_id="job-a"), world.engine)
    await world.settle()
    assert world.runs.rows["job-a"].run.status is JobStatus.THRESHOLD
    assert list(claims.holders.values()) == ["job-a"]  # given up lazily: a stale claim
    passing = definition(sequence("people", thresholds={"create": {"count": 10}}))
    await handle(EVENT_HANDLERS, job_created(passing, job_id="job-b"), world.engine)
    await world.settle()
    assert world.runs.rows["job-b"].run.status is JobStatus.COMPLETED
    await world.engine.close()


async def test_an_apply_taken_up_again_writes_only_what_was_not_written(world: World) -> None:
    """Issue 8, suspected: after a crash the stored plan was applied again from its first
    change, writing its first batches a second time over whatever the target holds by then.
    Each written batch is recorded on the run; the apply goes on from there."""

    class Crashing(FakeTarget):
        batches = 0

        async def apply(self, changes: Any) -> None:
            self.batches += 1
            if self.batches == 2:
                raise asyncio.CancelledError  # the process dies while writing batch 2
            await super().apply(changes)

    target = Crashing("uid")
    world.connectors.targets["people"] = target
    world.connectors.sources["people"] = [{"uid": f"u{i}"} for i in range(5)]
    created = job_created(definition(sequence("people", thresholds={"create": {"count": 10}})))
    await handle(EVENT_HANDLERS, created, world.engine)
    await world.settle()
    assert world.runs.rows[JOB_ID].run.sequence(0).phase == "applying"
    assert [c.key for c in target.writes] == ["u0", "u1"]
    # Someone changes a record the plan wrote before the runner comes back.
    target.records["u0"]["mail"] = "by-hand@x"

    world.engine.kick(JOB_ID)  # what a restarted runner does for a RUNNING job
    await world.settle()
    assert world.status() == (JobStatus.COMPLETED, ["COMPLETED"])
    assert [c.key for c in target.writes] == ["u0", "u1", "u2", "u3", "u4"]
    assert target.records["u0"]["mail"] == "by-hand@x"


async def test_a_deleted_jobs_plans_are_removed(world: World) -> None:
    """A plan can hold a million changes; once its job is deleted nobody can look at it."""
    await handle(EVENT_HANDLERS, two_sequences(), world.engine)
    await world.settle()
    other = StoredPlan("p-other", "another-job", 0, 1, counts(), NOW, "sha256:x")
    await world.plans.save(other, [])
    assert len(world.plans.plans) == 3
    deleted = JobDeleted(
        source="/provisioning/job-api", subject=JOB_ID, data=JobDeletedData(deleted_by="ops")
    )
    assert await handle(EVENT_HANDLERS, deleted, world.engine)
    assert list(world.plans.plans) == ["p-other"]
