"""The runner's background work: each run's pending outbox, planning and applying, one task per
job, a bounded number at once, retried, and taken up again later when it cannot finish now.
Only the jobs this process owns are worked on (`owns`: the jobs of its Kafka partitions)."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from types import TracebackType

from provisioning_common.logs import current_job_id
from provisioning_common.metrics import SEQUENCE_WORK, SEQUENCE_WORK_SECONDS
from provisioning_common.retrying import GaveUpError, RetryPolicy, retrying

from sequence_runner.domain.transitions import on_failed
from sequence_runner.handlers.engine_options import EngineOptions
from sequence_runner.handlers.run_store import OutboxNotSentError, RunStore
from sequence_runner.handlers.sequence_work import SequenceWork, TargetBusyError

logger = logging.getLogger(__name__)


class WorkScheduler:
    def __init__(
        self,
        store: RunStore,
        work: SequenceWork,
        options: EngineOptions,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.work = work
        self.options = options
        self._now = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._slots = asyncio.Semaphore(options.max_parallel_jobs)
        self._closing = False
        self._resumes: set[asyncio.TimerHandle] = set()
        # Jobs waiting for a target another job plans or writes.
        self._waiting: set[str] = set()
        # Which jobs this process works on: all of them until told otherwise (a single runner,
        # the unit tests); with replicas, those of the partitions its consumer is assigned.
        self.owns: Callable[[str], bool] = lambda _: True
        # Cleared from a revocation to the next assignment (a rebalance): meanwhile no job may
        # write, since its partition may be moving to another replica.
        self._settled = asyncio.Event()
        self._settled.set()
        # Jobs whose work is in the read-only part of planning: kept through a rebalance.
        self._reading: set[str] = set()
        work.reading_only = self.reading_only

    def kick(self, job_id: str) -> None:
        """Make sure the run's pending work (outbox, planning, applying) gets done."""
        if self._closing:
            return
        if not self.owns(job_id):
            # Another replica owns it now (a rebalance): a late resume timer must not take it up.
            logger.debug("job %s belongs to another runner; not worked on here", job_id)
            return
        if job_id in self._tasks:
            # Looked at again once the current pass ends: the state may have moved meanwhile.
            self._again.add(job_id)
            return
        task = asyncio.create_task(self._work_on(job_id), name=f"run-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(partial(self._done, job_id))

    async def resume_pending(self) -> int:
        """Take up every run this process owns that was left with work or unsent events (by a
        previous process, or by the replica that owned its partition before a rebalance)."""
        job_ids = [job for job in await self.store.runs.with_pending_work() if self.owns(job)]
        for job_id in job_ids:
            self.kick(job_id)
        return len(job_ids)

    def reading_only(self, job_id: str) -> "ReadingOnly":
        """Marks the read-only part of a job's planning (reading source and target, computing
        the plan): such work is kept through a rebalance, and what follows it waits until the
        partitions are settled and goes on only if the job is still this replica's."""
        return ReadingOnly(self, job_id)

    def hold_writes(self) -> None:
        """A rebalance begins: every job's next write waits for `release_writes`."""
        self._settled.clear()

    def release_writes(self) -> None:
        """The partitions are settled: the kept planning of the jobs still owned goes on."""
        self._settled.set()

    async def stop_unowned(
        self, timeout_seconds: float = 30.0, *, keep_reading: bool = False
    ) -> list[str]:
        """Stop the work of the jobs this process no longer owns, and wait until it stopped.

        Called when partitions are revoked, before the group hands them over: the new owner
        resumes the run from its stored phase (a plan is made again, an apply goes on from the
        last batch recorded), as after a crash, but without two processes working at once.
        With `keep_reading` (a revocation, writes held), planning still reading is kept: it
        writes nothing until the assignment says whether the job stayed here.
        """
        lost = {
            job: task
            for job, task in self._tasks.items()
            if not self.owns(job) and not (keep_reading and job in self._reading)
        }
        for job_id, task in lost.items():
            self._again.discard(job_id)
            task.cancel()
        if lost:
            _, still = await asyncio.wait(lost.values(), timeout=timeout_seconds)
            if still:
                logger.error("work on %d job(s) did not stop in %ss", len(still), timeout_seconds)
        return sorted(lost)

    def kept_through_rebalance(self) -> list[str]:
        """Jobs whose planning is kept while the partitions are not settled."""
        return sorted(job for job in self._reading if job in self._tasks)

    async def idle(self) -> None:
        """Wait until no run has work in progress (for tests and orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop working; interrupted planning or applying is taken up again at the next start."""
        self._closing = True
        self._settled.set()
        for handle in self._resumes:
            handle.cancel()
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("work on job %s stopped", job_id, exc_info=task.exception())
        if job_id in self._again:
            self._again.discard(job_id)
            self.kick(job_id)

    async def _work_on(self, job_id: str) -> None:
        async with self._slots:
            token = current_job_id.set(job_id)
            try:
                await self._work_with_retries(job_id)
            finally:
                current_job_id.reset(token)

    async def _work_with_retries(self, job_id: str) -> None:
        async def work() -> bool:
            try:
                await self._work_through(job_id)
            except TargetBusyError as busy:
                # Not a failure: another job holds the target. Said once per wait, not at
                # every look (each second, maybe for long: a guard that is away keeps the
                # other job deciding).
                level = logging.DEBUG if job_id in self._waiting else logging.INFO
                logger.log(level, "%s; job %s waits its turn", busy, job_id)
                self._waiting.add(job_id)
                self._resume_later(job_id, self.options.target_wait_seconds)
                return False
            return True

        attempts = self.options.work_retries + 1
        policy = RetryPolicy(
            first_delay_seconds=self.options.work_retry_backoff_seconds,
            give_up_after=attempts,
            transient_give_up_after=attempts,
        )
        try:
            if await retrying(work, what=f"work on job {job_id}", policy=policy, logger=logger):
                self._waiting.discard(job_id)
        except GaveUpError as gave_up:
            error = gave_up.__cause__
            if isinstance(error, Exception) and not isinstance(error, OutboxNotSentError):
                # An unsent event is no failure of the work: the sequence the run moved on
                # to has not even started.
                await self._give_up(job_id, error)
            self._resume_later(job_id)

    def _resume_later(self, job_id: str, delay: float | None = None) -> None:
        """Kick the job again later: what it could not do now is still to be done."""

        def resume() -> None:
            self._resumes.discard(handle)
            self.kick(job_id)

        wait = self.options.work_resume_seconds if delay is None else delay
        handle = asyncio.get_running_loop().call_later(wait, resume)
        self._resumes.add(handle)

    async def _give_up(self, job_id: str, error: Exception) -> None:
        try:
            stored = await self.store.load(job_id)
            work = stored.run.pending_work() if stored else None
            if stored is None or work is None:
                return
            index, phase = work
            reason = f"the sequence runner could not finish {phase} this sequence: {error}"
            attempt = stored.run.attempt
            await self.store.step(
                job_id, lambda run: on_failed(run, index, attempt, reason, self._now())
            )
        except Exception:
            logger.exception("job %s could not be marked failed; it resumes at next start", job_id)

    async def _work_through(self, job_id: str) -> None:
        while True:
            stored = await self.store.load(job_id)
            if stored is None:
                return
            if stored.outbox:
                await self.store.flush(job_id)
            work = stored.run.pending_work()
            if work is None:
                return
            index, phase = work
            began = time.monotonic()
            outcome = "failed"
            try:
                if phase == "planning":
                    await self.work.plan(stored.run, index)
                else:
                    await self.work.apply(stored.run, index)
                outcome = "done"
            except asyncio.CancelledError:
                outcome = "stopped"
                raise
            finally:
                SEQUENCE_WORK.labels(phase, outcome).inc()
                SEQUENCE_WORK_SECONDS.labels(phase).observe(time.monotonic() - began)


class ReadingOnly:
    """The read-only part of one job's planning (see `WorkScheduler.reading_only`).

    While inside, a revocation leaves the work running. Leaving it (done, or failed with an
    error the caller will record) waits until the partitions are settled; a job that moved to
    another replica meanwhile is stopped there, before it writes anything.
    """

    def __init__(self, scheduler: WorkScheduler, job_id: str) -> None:
        self._scheduler = scheduler
        self._job_id = job_id

    async def __aenter__(self) -> None:
        self._scheduler._reading.add(self._job_id)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None or issubclass(kind, Exception):
                await self._scheduler._settled.wait()
                if not self._scheduler.owns(self._job_id):
                    # Stopped as a revocation stops work (the assignment cancels it too).
                    raise asyncio.CancelledError
        finally:
            self._scheduler._reading.discard(self._job_id)
