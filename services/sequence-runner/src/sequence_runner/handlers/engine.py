"""The runner's engine, as its message handlers see it: runs changed through stored transitions
(run_store), their work done in the background (scheduler, sequence_work), and operators'
commands answered, or kept waiting for the guard's decision they were sent against."""

import logging
import time
from collections.abc import Callable
from datetime import datetime

from provisioning_common.commands import JobCommand
from provisioning_common.envelope import utcnow
from provisioning_common.events import JobCreated
from provisioning_common.statuses import JobStatus, SequenceStatus

from sequence_runner.domain.run import Run
from sequence_runner.domain.transitions import Rejected, TransitionResult, rejection
from sequence_runner.handlers.engine_options import EngineOptions
from sequence_runner.handlers.ports import (
    Connectors,
    EventPublisher,
    PlanRepository,
    RevertConflicts,
    RunRepository,
    TargetClaims,
)
from sequence_runner.handlers.run_store import ConcurrentUpdateError, RunStore, Transition
from sequence_runner.handlers.scheduler import WorkScheduler
from sequence_runner.handlers.sequence_work import SequenceWork

__all__ = [
    "ConcurrentUpdateError",
    "DecisionPendingError",
    "Engine",
    "EngineOptions",
    "Transition",
]

logger = logging.getLogger(__name__)


class DecisionPendingError(RuntimeError):
    """The command came before the guard's decision it answers; redelivered, not rejected."""


class Engine:
    def __init__(
        self,
        runs: RunRepository,
        plans: PlanRepository,
        publisher: EventPublisher,
        connectors: Connectors,
        options: EngineOptions | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        claims: TargetClaims | None = None,
        conflicts: RevertConflicts | None = None,
    ) -> None:
        self.options = options or EngineOptions()
        self._now = clock
        self.store = RunStore(runs, publisher, clock, self.options.conflict_retries)
        self.work = SequenceWork(
            self.store, plans, connectors, self.options, clock, monotonic, claims, conflicts
        )
        self.scheduler = WorkScheduler(self.store, self.work, self.options, clock)

    @property
    def runs(self) -> RunRepository:
        return self.store.runs

    @property
    def publisher(self) -> EventPublisher:
        return self.store.publisher

    @property
    def plans(self) -> PlanRepository:
        return self.work.plans

    @plans.setter
    def plans(self, plans: PlanRepository) -> None:
        self.work.plans = plans

    # ---- transitions ------------------------------------------------------------------------

    async def create_run(self, created: JobCreated) -> bool:
        """Start a job's run; False (and nothing new) when the job already has one."""
        return await self.store.create_run(created)

    async def step(self, job_id: str, transition: Transition) -> TransitionResult | None:
        """Apply `transition` to the stored run with compare-and-set; None if there is no run."""
        return await self.store.step(job_id, transition)

    async def flush(self, job_id: str) -> None:
        await self.store.flush(job_id)

    async def decide(
        self, command: JobCommand, transition: Callable[[Run, datetime], TransitionResult]
    ) -> TransitionResult | None:
        """Apply an operator's command; one that does not fit is answered with CommandRejected."""
        job_id = command.subject
        outcome = await self.store.step(job_id, lambda run: transition(run, self._now()))
        if outcome is None:
            refusal = Rejected(f"job {job_id} is not known to the sequence runner")
        elif isinstance(outcome, Rejected):
            if await self._decision_pending(job_id) and self._young(command):
                raise DecisionPendingError(
                    f"{command.type} for job {job_id} waits for the guard's decision "
                    f"on its plan: {outcome.reason}"
                )
            refusal = outcome
        else:
            return outcome
        logger.info("%s rejected: %s", command.type, refusal.reason)
        await self.store.publish(rejection(job_id, command, refusal, self._now()))
        return outcome

    async def _decision_pending(self, job_id: str) -> bool:
        stored = await self.store.load(job_id)
        return (
            stored is not None
            and stored.run.status is JobStatus.RUNNING
            and any(
                sequence.status is SequenceStatus.RUNNING and sequence.phase == "deciding"
                for sequence in stored.run.sequences
            )
        )

    def _young(self, command: JobCommand) -> bool:
        age = (self._now() - command.time).total_seconds()
        return age < self.options.decision_wait_seconds

    # ---- background work --------------------------------------------------------------------

    def kick(self, job_id: str) -> None:
        """Make sure the run's pending work (outbox, planning, applying) gets done."""
        self.scheduler.kick(job_id)

    async def resume_pending(self) -> int:
        """At start: take up every run a previous process left with work or unsent events."""
        return await self.scheduler.resume_pending()

    async def idle(self) -> None:
        """Wait until no run has work in progress (for tests and orderly shutdown)."""
        await self.scheduler.idle()

    async def close(self) -> None:
        """Stop working; interrupted planning or applying is taken up again at the next start."""
        await self.scheduler.close()
