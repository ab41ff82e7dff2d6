"""Transitions of a run stored with compare-and-set, and the outbox they fill published in order."""

import asyncio
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
# Ids of the events this process published (True once also marked sent), newest last. Bounded:
# an id forgotten is at worst published once more, which every consumer takes (at least once).
_REMEMBERED_EVENTS = 10_000


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
        self._sent: OrderedDict[str, bool] = OrderedDict()

    async def load(self, job_id: str) -> StoredRun | None:
        return await self.runs.load(job_id)

    async def create_run(self, created: JobCreated) -> bool:
        """Start a job's run; False (and nothing new) when the job already has one."""
        moved = start(created, self._now())
        inserted = await self.runs.insert(moved.run, moved.events)
        if not inserted:
            logger.info("job %s already has a run; JobCreated ignored", created.subject)
        # Inserted, the run's outbox is exactly the events just written: no need to read it.
        await self.flush(created.subject, moved.events if inserted else None)
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
                # The outbox now holds at most what it held when loaded, and the new events:
                # any other event pushed meanwhile would have changed the version and failed
                # the save; one taken out meanwhile was published (and is skipped if by us).
                await self.flush(job_id, (*stored.outbox, *outcome.events))
                return outcome
        raise ConcurrentUpdateError(f"the run of job {job_id} kept changing; transition dropped")

    async def flush(self, job_id: str, outbox: Sequence[Envelope] | None = None) -> None:
        """Publish the run's unsent events in order, then mark them sent. `outbox`: what the
        caller knows the stored outbox to hold at most (it just wrote it), saving a read."""
        lock = self._outbox_locks.get(job_id)
        if lock is None:
            lock = asyncio.Lock()
            self._outbox_locks[job_id] = lock
        async with lock:
            if outbox is None:
                stored = await self.runs.load(job_id)
                outbox = () if stored is None else stored.outbox
            # Published here before (its mark_sent failed, or the caller's outbox predates
            # it): not published again, only marked.
            unsent = [event for event in outbox if event.id not in self._sent]
            unmarked = [event.id for event in outbox if not self._sent.get(event.id, False)]
            if not unmarked:
                return
            try:
                for event in unsent:
                    await self.publish(event)
                    self._remember(event.id, marked=False)
            except Exception as error:
                raise OutboxNotSentError(
                    f"{len(unsent)} event(s) of job {job_id} not published: {error}"
                ) from error
            await self.runs.mark_sent(job_id, unmarked)
            for event_id in unmarked:
                self._remember(event_id, marked=True)

    def _remember(self, event_id: str, *, marked: bool) -> None:
        self._sent[event_id] = marked
        self._sent.move_to_end(event_id)
        while len(self._sent) > _REMEMBERED_EVENTS:
            self._sent.popitem(last=False)

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
