"""Planning a revert job's sequence: the inverse of an applied sequence's stored plan, against
the records its keys name in the target as it is now.

The stored plan is read batch by batch through the plan repository, each batch's records are
read from the target by key, and the inverse changes go to a spill file on local disk, so a
revert of a million changes holds one batch in memory. The plan is then stored, digested and
decided like any other: the guard holds it against the sequence's own thresholds.
"""

import asyncio
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

from provisioning_common.events import PlanCounts, RevertOf
from provisioning_common.statuses import SequenceStatus

from sequence_runner.adapters.connectors.base import (
    ConnectorError,
    DescribedTarget,
    ReadsByKey,
    TargetConnector,
)
from sequence_runner.domain.plan_digest import plan_digest
from sequence_runner.domain.records import Key, PlannedChange, TargetRules
from sequence_runner.domain.revert import Conflict, invert
from sequence_runner.domain.run import Run
from sequence_runner.domain.spill import SpillFile
from sequence_runner.domain.transitions import Moved, on_planned
from sequence_runner.handlers.engine_options import EngineOptions
from sequence_runner.handlers.ports import (
    Connectors,
    PlanRepository,
    RevertConflicts,
    StoredPlan,
)
from sequence_runner.handlers.progress import ProgressReporter
from sequence_runner.handlers.run_store import RunStore

logger = logging.getLogger(__name__)

# Changes of the reverted plan read (and their records looked up in the target) at a time.
REVERT_BATCH = 1000


class RevertRefusedError(Exception):
    """The applied sequence cannot be reverted (its job or plan is gone); the sequence fails."""


class RevertWork:
    """Plans the one sequence of a revert job; `fail` is SequenceWork's, which gives the
    target up as well."""

    def __init__(
        self,
        store: RunStore,
        connectors: Connectors,
        options: EngineOptions,
        clock: Callable[[], datetime],
        conflicts: RevertConflicts | None,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.options = options
        self.conflicts = conflicts
        self._now = clock

    async def plan(
        self,
        run: Run,
        index: int,
        plans: PlanRepository,
        progress: ProgressReporter,
        fail: Callable[[Run, int, str], Any],
    ) -> None:
        reverts = run.reverts
        assert reverts is not None
        plan_id = str(uuid4())
        spill = SpillFile(self.options.plan_bound.directory or tempfile.gettempdir())
        try:
            try:
                applied = await self._applied_changes(reverts)
                target = self.connectors.target(run.sequence_definition(index))
                if isinstance(target, DescribedTarget):
                    await target.describe()  # a SQL table's column types, to compare with
                counts = await self._invert(
                    run, index, plan_id, reverts, applied, target, plans, spill, progress
                )
            except (ConnectorError, RevertRefusedError) as error:
                await self._forget_conflicts(plan_id)
                await fail(run, index, str(error))
                return
            digest = await asyncio.to_thread(plan_digest, _changes(spill))
            await plans.save(
                StoredPlan(
                    plan_id=plan_id,
                    job_id=run.job_id,
                    index=index,
                    attempt=run.attempt,
                    counts=counts,
                    created_at=self._now(),
                    digest=digest,
                ),
                _changes(spill),
            )
        finally:
            spill.close()
        outcome = await self.store.step(
            run.job_id,
            lambda current: on_planned(
                current, index, run.attempt, plan_id, counts, self._now(), digest
            ),
        )
        if not isinstance(outcome, Moved):
            await plans.delete(plan_id)
            await self._forget_conflicts(plan_id)
        else:
            logger.info("revert of sequence %s planned: %s", index, counts.model_dump())

    async def _applied_changes(self, reverts: RevertOf) -> PlanCounts:
        """The counts of the plan the reverted sequence applied, once it is sure it did."""
        stored = await self.store.load(reverts.job_id)
        where = f"sequence {reverts.sequence_index} of job {reverts.job_id}"
        if stored is None or reverts.sequence_index >= len(stored.run.sequences):
            raise RevertRefusedError(f"{where} is not known to the sequence runner (deleted?)")
        sequence = stored.run.sequence(reverts.sequence_index)
        if (
            sequence.status is not SequenceStatus.COMPLETED
            or sequence.plan_id != reverts.plan_id
            or sequence.planned is None
            or stored.run.dry_run
        ):
            raise RevertRefusedError(
                f"{where} did not apply plan {reverts.plan_id} (it is {sequence.status}, with "
                f"plan {sequence.plan_id}); only an applied plan can be reverted"
            )
        return sequence.planned

    async def _invert(
        self,
        run: Run,
        index: int,
        plan_id: str,
        reverts: RevertOf,
        applied: PlanCounts,
        target: TargetConnector,
        plans: PlanRepository,
        spill: SpillFile,
        progress: ProgressReporter,
    ) -> PlanCounts:
        rules = target.rules
        key_attribute = run.sequence_definition(index).key
        lookup = _KeyLookup(target, key_attribute)
        actions = {"create": 0, "update": 0, "delete": 0}
        unchanged = conflicts = read = 0
        expected = applied.create + applied.update + applied.delete
        async for batch in plans.changes(reverts.plan_id, REVERT_BATCH):
            current = await lookup.records(batch)
            inverse_changes: list[PlannedChange] = []
            conflict_documents: list[dict[str, Any]] = []
            for change in batch:
                inverse = invert(
                    change, _find(current, change.key), rules, reverts.include_conflicts
                )
                if inverse.conflict is not None:
                    conflicts += 1
                    conflict_documents.append(_conflict_document(inverse.conflict))
                if inverse.change is not None:
                    made = inverse.change
                    seq = sum(actions.values())
                    actions[made.action if made.action != "disable" else "delete"] += 1
                    inverse_changes.append(
                        PlannedChange(seq, made.action, made.key, made.before, made.after)
                    )
                elif inverse.conflict is None:
                    unchanged += 1
            spill.append(0, inverse_changes)
            if conflict_documents and self.conflicts is not None:
                await self.conflicts.save(plan_id, run.job_id, index, conflict_documents)
            read += len(batch)
            await progress.tick(read)
        if read != expected:
            raise RevertRefusedError(
                f"the stored plan {reverts.plan_id} holds {read} changes, {expected} were "
                "applied; it cannot be reverted (was the job deleted?)"
            )
        await progress.finish(read, read)
        return PlanCounts(
            create=actions["create"],
            update=actions["update"],
            delete=actions["delete"],
            unchanged=unchanged,
            # The size the reverted sequence left the target at, for percent thresholds:
            # counting the target now would read all of it for a revert of a few records.
            target_size=applied.target_size + applied.create - _removed(applied, rules),
            conflicts=conflicts,
        )

    async def _forget_conflicts(self, plan_id: str) -> None:
        if self.conflicts is not None:
            await self.conflicts.delete(plan_id)


def _removed(applied: PlanCounts, rules: TargetRules) -> int:
    # A disabled record stays in the target; a deleted one does not.
    return 0 if rules.deprovision == "disable" else applied.delete


def _changes(spill: SpillFile) -> Iterator[PlannedChange]:
    for chunk in spill.chunks(0):
        yield from chunk


def _find(records: Mapping[Key, dict[str, Any]], key: Key) -> dict[str, Any] | None:
    found = records.get(key)
    if found is None and not isinstance(key, str):
        # A directory reads every value as text.
        found = records.get(str(key))
    return found


class _KeyLookup:
    """The target's current records for a batch's keys: by key where the connector reads by
    key (MongoDB, LDAP, SQL), else from one reading of the whole target kept for the revert."""

    def __init__(self, target: TargetConnector, key_attribute: str) -> None:
        self._target = target
        self._key = key_attribute
        self._everything: dict[Key, dict[str, Any]] | None = None

    async def records(self, batch: Sequence[PlannedChange]) -> Mapping[Key, dict[str, Any]]:
        keys = list(dict.fromkeys(change.key for change in batch))
        if isinstance(self._target, ReadsByKey):
            return await self._target.read_keys(keys)
        if self._everything is None:
            self._everything = {}
            async for record in self._target.read_all():
                record_key: Any = record.get(self._key)
                if record_key is None:
                    record_key = record.get("_id")
                self._everything[record_key] = record
        return self._everything


def _conflict_document(conflict: Conflict) -> dict[str, Any]:
    original = conflict.original
    forced = conflict.forced
    return {
        "seq": original.seq,
        "key": original.key,
        "action": original.action,
        "before": original.before,
        "after": original.after,
        "current": _without_id(conflict.current),
        "reason": conflict.reason,
        "forced": None if forced is None else forced.action,
    }


def _without_id(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    # An ObjectId is no JSON for the API; the record is known by its key anyway.
    return {name: value for name, value in record.items() if name != "_id"}
