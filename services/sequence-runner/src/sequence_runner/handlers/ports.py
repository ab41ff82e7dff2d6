"""The ports the runner's handlers work through; adapters implement them, unit tests fake them."""

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from provisioning_common.definitions import SequenceDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import PlanCounts

from sequence_runner.adapters.connectors.base import SourceConnector, TargetConnector
from sequence_runner.domain.plan_digest import PlanDigester
from sequence_runner.domain.records import PlannedChange
from sequence_runner.domain.run import Run


@dataclass(frozen=True)
class StoredRun:
    run: Run
    version: int
    # Events stored with a transition and not yet published.
    outbox: tuple[Envelope, ...]


@dataclass(frozen=True)
class StoredPlan:
    plan_id: str
    job_id: str
    index: int
    attempt: int
    counts: PlanCounts
    created_at: datetime
    # plan_digest() of its changes: what an approval of this plan covers. None: made from the
    # changes as they are stored (`PlanRepository.save` with a digester).
    digest: str | None


class RunRepository(Protocol):
    async def insert(self, run: Run, events: Sequence[Envelope]) -> bool:
        """Store a new run with its first events; False if the job already has one."""
        ...

    async def load(self, job_id: str) -> StoredRun | None: ...

    async def save(self, run: Run, expected_version: int, events: Sequence[Envelope]) -> bool:
        """Replace the run and add `events` to its outbox, in one atomic write, if the stored
        version is still `expected_version`; False when another writer came first."""
        ...

    async def mark_sent(self, job_id: str, event_ids: Sequence[str]) -> None: ...

    async def with_pending_work(self) -> list[str]:
        """Job ids whose outbox is not empty or that are RUNNING."""
        ...


class PlanRepository(Protocol):
    async def save(
        self,
        plan: StoredPlan,
        changes: Iterable[PlannedChange],
        digester: PlanDigester | None = None,
    ) -> str:
        """Store a plan and its changes, read once from `changes` (a million need not fit in
        memory); returns the digest the plan records. With `digester` (and `plan.digest`
        None) each change is digested as it is read and the plan records that digest: the
        changes a target placed after planning (a directory's DN) are read once, not once to
        digest and again to store."""
        ...

    def changes(
        self, plan_id: str, batch_size: int, start: int = 0
    ) -> AsyncIterator[list[PlannedChange]]:
        """The plan's changes in order from seq `start`, batch by batch."""
        ...

    async def delete(self, plan_id: str) -> None: ...

    async def delete_job_plans(self, job_id: str) -> int:
        """Every plan of a job, with its changes; how many there were."""
        ...

    async def delete_superseded(self, job_id: str, index: int, current_plan_id: str) -> int:
        """The plans of the job's sequence other than its current one; how many there were."""
        ...


class RevertConflicts(Protocol):
    """The conflicts a revert's plan found: records changed since the reverted sequence ran,
    kept beside the plan for operators to look at."""

    async def save(
        self, plan_id: str, job_id: str, index: int, conflicts: Sequence[dict[str, Any]]
    ) -> None: ...

    async def delete(self, plan_id: str) -> None: ...

    async def delete_job(self, job_id: str) -> None: ...


class UnpublishableEventError(Exception):
    """The broker refuses this very event (too large, malformed): sending it again can never
    succeed. Any other error from `publish` is taken as transient (the broker away)."""


class TargetClaims(Protocol):
    """Which job plans and writes a target repository now: one at a time, so that no job is
    planned against a target another job is changing."""

    async def claim(self, target: str, job_id: str) -> str | None:
        """Claim `target` for the job; None once it holds it, else the job that does."""
        ...

    async def release(self, target: str, job_id: str) -> None:
        """Give the target up, if `job_id` holds it."""
        ...


class EventPublisher(Protocol):
    async def publish(self, event: Envelope) -> None:
        """Raises UnpublishableEventError when the broker refuses the event itself."""
        ...

    async def set_aside(self, event: Envelope, reason: str) -> None:
        """Keep (a bounded copy of) an event that could not be published on the dead-letter
        topic, with the reason, so it is not lost from sight."""
        ...


class Connectors(Protocol):
    def source(
        self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
    ) -> SourceConnector:
        """Raises SourceError when the source cannot be opened as defined."""
        ...

    def target(self, sequence: SequenceDefinition) -> TargetConnector: ...
