"""Transitions of a run stored with compare-and-set, and the outbox they fill published in order."""

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import datetime

from provisioning_common.envelope import Envelope
from provisioning_common.events import JobCreated, bounded_event
from pydantic import ValidationError

from sequence_runner.domain.run import Run
from sequence_runner.domain.transitions import Moved, TransitionResult, start
from sequence_runner.handlers.ports import (
    EventPublisher,
    RunRepository,
    StoredRun,
    UnpublishableEventError,
)

logger = logging.getLogger(__name__)

Transition = Callable[[Run], TransitionResult]


class ConcurrentUpdateError(RuntimeError):
    pass


class OutboxNotSentError(ConnectionError):
    """Stored events could not be published (the broker away). The run itself is stored and
    fine: what is left to do is sending them, not failing its work."""


class RunStore:
    """The only way the runner changes a run: a pure transition, stored with its events."""

    def __init__(
        self,
        runs: RunRepository,
        publisher: EventPublisher,
        clock: Callable[[], datetime],
        conflict_retries: int,
    ) -> None:
        self.runs = runs
        self.publisher = publisher
        self._now = clock
        self._conflict_retries = conflict_retries
        self._outbox_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def load(self, job_id: str) -> StoredRun | None:
        return await self.runs.load(job_id)

    async def create_run(self, created: JobCreated) -> bool:
        """Start a job's run; False (and nothing new) when the job already has one."""
        moved = start(created, self._now())
        inserted = await self.runs.insert(moved.run, moved.events)
        if not inserted:
            logger.info("job %s already has a run; JobCreated ignored", created.subject)
        await self.flush(created.subject)
        return inserted

    async def step(self, job_id: str, transition: Transition) -> TransitionResult | None:
        """Apply `transition` to the stored run with compare-and-set; None if there is no run."""
        for _ in range(self._conflict_retries):
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
            try:
                for event in stored.outbox:
                    await self.publish(event)
            except Exception as error:
                raise OutboxNotSentError(
                    f"{len(stored.outbox)} event(s) of job {job_id} not published: {error}"
                ) from error
            await self.runs.mark_sent(job_id, [event.id for event in stored.outbox])

    async def publish(self, event: Envelope) -> None:
        """Publish `event`; one the broker refuses as it is (too large) is replaced by a bounded
        copy and set aside on the dead-letter topic, never retried for ever: it would hold up
        every later event of its job, and with them the operators' actions."""
        try:
            await self.publisher.publish(event)
            return
        except UnpublishableEventError as error:
            refused = str(error)
        logger.error("%s; publishing a bounded copy and setting it aside", refused)
        try:
            await self.publisher.publish(bounded_event(event))
        except (UnpublishableEventError, ValidationError):
            logger.exception("no bounded copy of %s %s could be published", event.type, event.id)
        await self.publisher.set_aside(event, refused)
