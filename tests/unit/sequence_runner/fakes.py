"""Hand-written fakes of the runner's own ports, for unit tests of the engine."""

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from provisioning_common.definitions import MongoTarget, SequenceDefinition
from provisioning_common.envelope import Envelope
from sequence_runner.adapters.connectors.base import (
    SourceConnector,
    SourceError,
    TargetConnector,
    TargetError,
)
from sequence_runner.domain.plan_digest import PlanDigester, digesting
from sequence_runner.domain.records import PlannedChange, SourceEntry, TargetRules
from sequence_runner.domain.run import Run
from sequence_runner.handlers.ports import StoredPlan, StoredRun, UnpublishableEventError


@dataclass
class _Row:
    run: Run
    version: int
    outbox: list[Envelope]


class FakeRuns:
    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        # Called before each save: lets a test play another writer that came first.
        self.before_save: Callable[[str], None] | None = None
        self.saves = 0

    async def insert(self, run: Run, events: Sequence[Envelope]) -> bool:
        if run.job_id in self.rows:
            return False
        self.rows[run.job_id] = _Row(run, 1, list(events))
        return True

    async def load(self, job_id: str) -> StoredRun | None:
        row = self.rows.get(job_id)
        if row is None:
            return None
        return StoredRun(run=row.run, version=row.version, outbox=tuple(row.outbox))

    async def save(self, run: Run, expected_version: int, events: Sequence[Envelope]) -> bool:
        if self.before_save is not None:
            self.before_save(run.job_id)
        row = self.rows[run.job_id]
        if row.version != expected_version:
            return False
        self.saves += 1
        row.run, row.version = run, row.version + 1
        row.outbox.extend(events)
        return True

    def bump(self, job_id: str) -> None:
        self.rows[job_id].version += 1

    async def mark_sent(self, job_id: str, event_ids: Sequence[str]) -> None:
        row = self.rows[job_id]
        row.outbox = [e for e in row.outbox if e.id not in set(event_ids)]

    async def with_pending_work(self) -> list[str]:
        return [
            job_id
            for job_id, row in self.rows.items()
            if row.outbox or row.run.status.value == "RUNNING"
        ]


class FakePlans:
    def __init__(self) -> None:
        self.plans: dict[str, tuple[StoredPlan, list[PlannedChange]]] = {}

    async def save(
        self,
        plan: StoredPlan,
        changes: Iterable[PlannedChange],
        digester: PlanDigester | None = None,
    ) -> str:
        if digester is not None:
            changes = digesting(changes, digester)
        stored = list(changes)
        digest = plan.digest if digester is None else digester.digest()
        assert digest is not None
        self.plans[plan.plan_id] = (replace(plan, digest=digest), stored)
        return digest

    async def changes(
        self, plan_id: str, batch_size: int, start: int = 0
    ) -> AsyncIterator[list[PlannedChange]]:
        changes = [change for change in self.plans[plan_id][1] if change.seq >= start]
        for start in range(0, len(changes), batch_size):
            yield changes[start : start + batch_size]

    async def delete(self, plan_id: str) -> None:
        self.plans.pop(plan_id, None)

    async def delete_job_plans(self, job_id: str) -> int:
        mine = [p for p, (plan, _) in self.plans.items() if plan.job_id == job_id]
        for plan_id in mine:
            del self.plans[plan_id]
        return len(mine)

    async def delete_superseded(self, job_id: str, index: int, current_plan_id: str) -> int:
        others = [
            p
            for p, (plan, _) in self.plans.items()
            if (plan.job_id, plan.index) == (job_id, index) and p != current_plan_id
        ]
        for plan_id in others:
            del self.plans[plan_id]
        return len(others)


class FakeClaims:
    def __init__(self) -> None:
        self.holders: dict[str, str] = {}

    async def claim(self, target: str, job_id: str) -> str | None:
        holder = self.holders.setdefault(target, job_id)
        return None if holder == job_id else holder

    async def release(self, target: str, job_id: str) -> None:
        if self.holders.get(target) == job_id:
            del self.holders[target]


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.failures_left = 0
        # Events whose JSON is longer than this are refused, as a broker refuses a too large one.
        self.max_bytes: int | None = None
        self.set_aside_events: list[tuple[Envelope, str]] = []

    async def publish(self, event: Envelope) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("broker away")
        size = len(event.model_dump_json())
        if self.max_bytes is not None and size > self.max_bytes:
            raise UnpublishableEventError(f"{event.type} {event.id} refused: {size} bytes")
        self.published.append(event)

    async def set_aside(self, event: Envelope, reason: str) -> None:
        self.set_aside_events.append((event, reason))

    def of_type(self, kind: type[Envelope]) -> list[Any]:
        return [e for e in self.published if isinstance(e, kind)]

    def types(self) -> list[str]:
        return [e.type.removeprefix("provisioning.") for e in self.published]


class FakeSource:
    def __init__(self, records: list[dict[str, Any]] | SourceError, name: str = "fake") -> None:
        self._records = records
        self.shown_as = f"{name}.fake"

    async def read(self) -> AsyncIterator[SourceEntry]:
        if isinstance(self._records, SourceError):
            raise self._records
        for line, fields in enumerate(self._records, start=2):
            yield SourceEntry(line=line, fields=fields)


class FakeTarget:
    def __init__(self, key: str) -> None:
        self.key = key
        self.records: dict[Any, dict[str, Any]] = {}
        self.writes: list[PlannedChange] = []
        self.failing: TargetError | None = None
        self.rules = TargetRules()

    async def prepare(self) -> None:
        pass

    async def read_all(self) -> AsyncIterator[dict[str, Any]]:
        for record in list(self.records.values()):
            yield dict(record)

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        if self.failing is not None:
            raise self.failing
        for change in changes:
            self.writes.append(change)
            if change.action == "delete":
                self.records.pop(change.key, None)
            else:
                assert change.after is not None
                self.records[change.key] = {**self.records.get(change.key, {}), **change.after}


@dataclass
class FakeConnectors:
    sources: dict[str, list[dict[str, Any]] | SourceError] = field(default_factory=dict)
    targets: dict[str, FakeTarget] = field(default_factory=dict)

    def source(
        self, sequence: SequenceDefinition, inputs: list[dict[str, Any]] | None
    ) -> SourceConnector:
        return FakeSource(self.sources[sequence.name], sequence.name)

    def target(self, sequence: SequenceDefinition) -> TargetConnector:
        target = sequence.target
        # The fakes are keyed by what names the repository: a collection, else the whole target.
        collection = (
            target.collection if isinstance(target, MongoTarget) else target.model_dump_json()
        )
        if collection not in self.targets:
            self.targets[collection] = FakeTarget(sequence.key)
        return self.targets[collection]
