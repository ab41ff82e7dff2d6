"""The runner's engine: transitions stored with compare-and-set, the outbox published, and the
planning and applying each run's state asks for, carried out in the background."""

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Literal
from uuid import uuid4

from provisioning_common.commands import JobCommand
from provisioning_common.envelope import utcnow
from provisioning_common.events import AppliedCounts, JobCreated
from provisioning_common.logs import current_job_id
from provisioning_common.statuses import JobStatus, SequenceStatus

from sequence_runner.adapters.connectors.base import ConnectorError
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlanError, SourceRecord
from sequence_runner.domain.run import Run
from sequence_runner.domain.transitions import (
    Moved,
    Outcome,
    Rejected,
    on_completed,
    on_failed,
    on_planned,
    rejection,
    start,
)
from sequence_runner.handlers.ports import (
    Connectors,
    EventPublisher,
    PlanRepository,
    RunRepository,
    StoredPlan,
)
from sequence_runner.handlers.progress import ProgressReporter

logger = logging.getLogger(__name__)

Transition = Callable[[Run], Outcome]


@dataclass(frozen=True)
class EngineOptions:
    progress_interval_seconds: float = 1.0
    apply_batch_size: int = 500
    # Jobs planned or applied at the same time by one runner process.
    max_parallel_jobs: int = 2
    # An unexpected error (the database away) is retried this many times before the sequence
    # fails with it, so a short outage does not fail every running job.
    work_retries: int = 3
    work_retry_backoff_seconds: float = 1.0
    # Compare-and-set conflicts in a row before giving up on a transition.
    conflict_retries: int = 20
    # How long an operator's command may wait for the guard's decision it was sent against:
    # commands and events travel on different topics, so a validate sent for a job the
    # projection already shows at THRESHOLD can reach us before the SequenceBlocked does.
    decision_wait_seconds: float = 30.0
    # After giving up on a job's work (the database or the broker away), look at it again this
    # much later: its unsent events and unfinished work must not wait for the next start.
    work_resume_seconds: float = 30.0


class ConcurrentUpdateError(RuntimeError):
    pass


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
    ) -> None:
        self.runs = runs
        self.plans = plans
        self.publisher = publisher
        self.connectors = connectors
        self.options = options or EngineOptions()
        self._now = clock
        self._monotonic = monotonic
        self._outbox_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._work: dict[str, asyncio.Task[None]] = {}
        self._work_again: set[str] = set()
        self._slots = asyncio.Semaphore(self.options.max_parallel_jobs)
        self._closing = False
        self._resumes: set[asyncio.TimerHandle] = set()

    # ---- transitions ------------------------------------------------------------------------

    async def create_run(self, created: JobCreated) -> bool:
        """Start a job's run; False (and nothing new) when the job already has one."""
        moved = start(created, self._now())
        inserted = await self.runs.insert(moved.run, moved.events)
        if not inserted:
            logger.info("job %s already has a run; JobCreated ignored", created.subject)
        await self.flush(created.subject)
        return inserted

    async def step(self, job_id: str, transition: Transition) -> Outcome | None:
        """Apply `transition` to the stored run with compare-and-set; None if there is no run."""
        for _ in range(self.options.conflict_retries):
            stored = await self.runs.load(job_id)
            if stored is None:
                return None
            outcome = transition(stored.run)
            if not isinstance(outcome, Moved):
                return outcome
            if await self.runs.save(outcome.run, stored.version, outcome.events):
                await self.flush(job_id)
                return outcome
        raise ConcurrentUpdateError(f"the run of job {job_id} kept changing; transition dropped")

    async def decide(
        self, command: JobCommand, transition: Callable[[Run, datetime], Outcome]
    ) -> Outcome | None:
        """Apply an operator's command; one that does not fit is answered with CommandRejected."""
        job_id = command.subject
        outcome = await self.step(job_id, lambda run: transition(run, self._now()))
        if outcome is None:
            reason = f"job {job_id} is not known to the sequence runner"
        elif isinstance(outcome, Rejected):
            if await self._decision_pending(job_id) and self._young(command):
                raise DecisionPendingError(
                    f"{command.type} for job {job_id} waits for the guard's decision "
                    f"on its plan: {outcome.reason}"
                )
            reason = outcome.reason
        else:
            return outcome
        logger.info("%s rejected: %s", command.type, reason)
        await self.publisher.publish(rejection(job_id, command, reason, self._now()))
        return outcome

    async def _decision_pending(self, job_id: str) -> bool:
        stored = await self.runs.load(job_id)
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

    async def flush(self, job_id: str) -> None:
        """Publish the run's unsent events in order, then mark them sent."""
        lock = self._outbox_locks.get(job_id)
        if lock is None:
            lock = asyncio.Lock()
            self._outbox_locks[job_id] = lock
        async with lock:
            stored = await self.runs.load(job_id)
            if stored is None or not stored.outbox:
                return
            for event in stored.outbox:
                await self.publisher.publish(event)
            await self.runs.mark_sent(job_id, [event.id for event in stored.outbox])

    # ---- background work --------------------------------------------------------------------

    def kick(self, job_id: str) -> None:
        """Make sure the run's pending work (outbox, planning, applying) gets done."""
        if self._closing:
            return
        if job_id in self._work:
            # Looked at again once the current pass ends: the state may have moved meanwhile.
            self._work_again.add(job_id)
            return
        task = asyncio.create_task(self._work_on(job_id), name=f"run-{job_id}")
        self._work[job_id] = task
        task.add_done_callback(partial(self._work_done, job_id))

    async def resume_pending(self) -> int:
        """At start: take up every run a previous process left with work or unsent events."""
        job_ids = await self.runs.with_pending_work()
        for job_id in job_ids:
            self.kick(job_id)
        return len(job_ids)

    async def idle(self) -> None:
        """Wait until no run has work in progress (for tests and orderly shutdown)."""
        while self._work:
            await asyncio.gather(*self._work.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop working; interrupted planning or applying is taken up again at the next start."""
        self._closing = True
        for handle in self._resumes:
            handle.cancel()
        for task in self._work.values():
            task.cancel()
        await asyncio.gather(*self._work.values(), return_exceptions=True)

    def _work_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        self._work.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("work on job %s stopped", job_id, exc_info=task.exception())
        if job_id in self._work_again:
            self._work_again.discard(job_id)
            self.kick(job_id)

    async def _work_on(self, job_id: str) -> None:
        async with self._slots:
            token = current_job_id.set(job_id)
            try:
                await self._work_with_retries(job_id)
            finally:
                current_job_id.reset(token)

    async def _work_with_retries(self, job_id: str) -> None:
        retries = self.options.work_retries
        for attempt in range(retries + 1):
            try:
                await self._work_through(job_id)
                return
            except Exception as error:
                if attempt == retries:
                    logger.exception("giving up on job %s after %s retries", job_id, retries)
                    await self._give_up(job_id, error)
                    self._resume_later(job_id)
                    return
                logger.warning("work on job %s failed; retrying", job_id, exc_info=True)
                await asyncio.sleep(self.options.work_retry_backoff_seconds * 2**attempt)

    def _resume_later(self, job_id: str) -> None:
        """Kick the job again later: what it could not store or publish is still to be done."""

        def resume() -> None:
            self._resumes.discard(handle)
            self.kick(job_id)

        handle = asyncio.get_running_loop().call_later(self.options.work_resume_seconds, resume)
        self._resumes.add(handle)

    async def _give_up(self, job_id: str, error: Exception) -> None:
        try:
            stored = await self.runs.load(job_id)
            work = stored.run.pending_work() if stored else None
            if stored is None or work is None:
                return
            index, phase = work
            reason = f"the sequence runner could not finish {phase} this sequence: {error}"
            attempt = stored.run.attempt
            await self.step(job_id, lambda run: on_failed(run, index, attempt, reason, self._now()))
        except Exception:
            logger.exception("job %s could not be marked failed; it resumes at next start", job_id)

    async def _work_through(self, job_id: str) -> None:
        while True:
            stored = await self.runs.load(job_id)
            if stored is None:
                return
            if stored.outbox:
                await self.flush(job_id)
            work = stored.run.pending_work()
            if work is None:
                return
            index, phase = work
            if phase == "planning":
                await self._plan(stored.run, index)
            else:
                await self._apply(stored.run, index)

    async def _fail(self, run: Run, index: int, reason: str) -> None:
        logger.warning("sequence %s failed: %s", index, reason)
        await self.step(
            run.job_id, lambda current: on_failed(current, index, run.attempt, reason, self._now())
        )

    async def _plan(self, run: Run, index: int) -> None:
        definition = run.sequence_definition(index)
        progress = self._progress(run.job_id, index, "planning")
        records: list[SourceRecord] = []
        try:
            target = self.connectors.target(definition)
            await target.prepare()
            target_records = [record async for record in target.read_all()]
            source = self.connectors.source(definition, run.inputs.get(definition.name))
            async for record in source.read():
                records.append(record)
                await progress.tick(len(records))
            # Seconds of CPU for a large source: in a thread, so the consumers keep their
            # heartbeats and the other jobs keep moving.
            result = await asyncio.to_thread(
                plan,
                records,
                target_records,
                definition.key,
                definition.mapping,
                definition.delete_missing,
                source.shown_as,
                target.rules,
            )
        except (ConnectorError, PlanError) as error:
            await self._fail(run, index, str(error))
            return
        await progress.finish(len(records), len(records))
        plan_id = str(uuid4())
        await self.plans.save(
            StoredPlan(
                plan_id=plan_id,
                job_id=run.job_id,
                index=index,
                attempt=run.attempt,
                counts=result.counts,
                created_at=self._now(),
            ),
            result.changes,
        )
        outcome = await self.step(
            run.job_id,
            lambda current: on_planned(
                current, index, run.attempt, plan_id, result.counts, self._now()
            ),
        )
        if not isinstance(outcome, Moved):
            # The run moved on while we planned (a restart, another runner): nobody needs it.
            await self.plans.delete(plan_id)
        else:
            logger.info("sequence %s planned: %s", index, result.counts.model_dump())

    async def _apply(self, run: Run, index: int) -> None:
        sequence = run.sequence(index)
        plan_id, planned = sequence.plan_id, sequence.planned
        assert plan_id is not None
        assert planned is not None
        total = planned.create + planned.update + planned.delete
        progress = self._progress(run.job_id, index, "applying")
        done = 0
        try:
            target = self.connectors.target(run.sequence_definition(index))
            async for batch in self.plans.changes(plan_id, self.options.apply_batch_size):
                # Read back in order, each change once, no more than were checked.
                seqs = [change.seq for change in batch]
                if seqs != list(range(done, done + len(batch))) or done + len(batch) > total:
                    await self._fail(
                        run,
                        index,
                        f"the stored plan {plan_id} is not the plan that was checked ({total} "
                        f"changes): read back, changes {done} to {done + len(batch) - 1} are "
                        f"seq {_span(seqs)}",
                    )
                    return
                if not await self._still_applying(run.job_id, index, plan_id):
                    # Another runner process took the job over and moved it on; writing the
                    # rest of this plan now could overwrite what it has written since.
                    logger.warning(
                        "plan %s of sequence %s is no longer applied here", plan_id, index
                    )
                    return
                await target.apply(batch)
                done += len(batch)
                await progress.tick(done, total)
        except ConnectorError as error:
            await self._fail(run, index, str(error))
            return
        if done != total:
            await self._fail(
                run, index, f"the stored plan {plan_id} holds {done} changes, {total} were planned"
            )
            return
        await progress.finish(done, total)
        applied = AppliedCounts(create=planned.create, update=planned.update, delete=planned.delete)
        await self.step(
            run.job_id,
            lambda current: on_completed(current, index, plan_id, applied, self._now()),
        )
        logger.info("sequence %s applied: %s", index, applied.model_dump())

    async def _still_applying(self, job_id: str, index: int, plan_id: str) -> bool:
        stored = await self.runs.load(job_id)
        return stored is not None and stored.run.is_applying(index, plan_id)

    def _progress(
        self, job_id: str, index: int, phase: Literal["planning", "applying"]
    ) -> ProgressReporter:
        return ProgressReporter(
            self.publisher,
            job_id=job_id,
            index=index,
            phase=phase,
            interval_seconds=self.options.progress_interval_seconds,
            monotonic=self._monotonic,
        )


def _span(seqs: list[int]) -> str:
    shown = ", ".join(str(seq) for seq in seqs[:5])
    return f"{shown}, …" if len(seqs) > 5 else shown
