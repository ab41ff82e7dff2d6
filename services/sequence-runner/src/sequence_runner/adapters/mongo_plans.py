"""MongoDB `plans` and `plan_chunks`: every plan the guard checked, change by change, so the
apply writes exactly what was checked and job-api can show any page of it at once.

A plan's changes are stored in chunks of 1,000 of one action, each chunk's changes one
compressed BSON value (`provisioning_common.plan_chunks`), its document last, with how many
changes of each action it holds and from which seq: a plan is there only once all its chunks
are. Plans stored before chunks, one document per change in
`plan_changes`, are still read (a plan document without `chunk_size`) and deleted; they go with
their jobs."""

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from provisioning_common.plan_chunks import (
    CHUNK_SIZE,
    LEGACY_PLAN_CHANGES,
    PART_BYTES,
    PLAN_CHUNKS,
    PLANS,
    ActionRun,
    chunk_id,
    chunk_slices,
    encode_changes,
    read_slices,
)
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from sequence_runner.domain.plan_digest import PlanDigester, digesting
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.ports import StoredPlan

# Chunks encoded per hop to the worker thread, and sent in one insert.
CHUNKS_PER_INSERT = 8
# Chunks read at once while a plan is read in order (the apply, a revert).
CHUNKS_PER_READ = 2


class PlanOrderError(ValueError):
    """The changes handed to `save` are not the plan's order: seq 0, 1, … grouped by action."""


class _ChunkWriter:
    """Turns a plan's changes, read once in order, into encoded chunk documents, and keeps the
    runs of actions the plan document records."""

    def __init__(self, plan: StoredPlan, changes: Iterable[PlannedChange]) -> None:
        self._plan = plan
        self._changes = iter(changes)
        self.runs: list[ActionRun] = []
        self._chunks = self._encoded()

    def next_group(self) -> list[RawBSONDocument]:
        """Up to CHUNKS_PER_INSERT encoded chunks; empty at the end. CPU work: run in a thread."""
        group: list[RawBSONDocument] = []
        for document in self._chunks:
            group.append(document)
            if len(group) >= CHUNKS_PER_INSERT:
                break
        return group

    def _encoded(self) -> Iterator[RawBSONDocument]:
        action: str | None = None
        position = 0  # within the current action
        pending: list[dict[str, Any]] = []
        for expected, change in enumerate(self._changes):
            if change.seq != expected:
                raise PlanOrderError(
                    f"plan {self._plan.plan_id}: change seq {change.seq} where {expected} was due"
                )
            if change.action != action:
                if any(run.action == change.action for run in self.runs):
                    raise PlanOrderError(
                        f"plan {self._plan.plan_id}: {change.action} changes are not grouped "
                        f"(seq {change.seq} comes after other actions)"
                    )
                if pending:
                    assert action is not None
                    yield from self._chunk(action, position - len(pending), pending)
                    pending = []
                action, position = change.action, 0
                self.runs.append(ActionRun(change.action, change.seq, 0))
            stored: dict[str, Any] = {
                "seq": change.seq,
                "key": change.key,
                "before": change.before,
                "after": change.after,
            }
            if change.by_id:  # only where true: the rare record without a key attribute
                stored["by_id"] = True
            if change.dn is not None:  # a directory target's DN: shown with it, written to
                stored["dn"] = change.dn
            pending.append(stored)
            position += 1
            last = self.runs[-1]
            self.runs[-1] = ActionRun(last.action, last.first_seq, last.count + 1)
            if len(pending) == CHUNK_SIZE:
                yield from self._chunk(change.action, position - CHUNK_SIZE, pending)
                pending = []
        if pending:
            assert action is not None
            yield from self._chunk(action, position - len(pending), pending)

    def _chunk(
        self, action: str, position: int, changes: list[dict[str, Any]]
    ) -> Iterator[RawBSONDocument]:
        number = position // CHUNK_SIZE
        parts = _parts(changes)
        for part, (offset, encoded) in enumerate(parts):
            document = {
                "_id": chunk_id(self._plan.plan_id, action, number, part),
                "plan_id": self._plan.plan_id,
                "job_id": self._plan.job_id,
                "index": self._plan.index,
                "action": action,
                "number": number,
                "part": part,
                "parts": len(parts),
                "offset": offset,
                "created_at": self._plan.created_at,
                **encode_changes(encoded),
            }
            yield RawBSONDocument(bson.encode(document))


def _parts(changes: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    """The chunk's changes encoded (`{"changes": [...]}`) in pieces whose encoding stays under
    PART_BYTES (one piece almost always), each with its offset in the chunk. The size is that
    of the changes before compression, so a part stays under it whatever they compress to; a
    single change larger than that is left to the server to refuse, as any record too large to
    store."""
    pieces: list[tuple[int, bytes]] = []
    start = 0
    while start < len(changes):
        size = len(changes) - start
        encoded = bson.encode({"changes": changes[start : start + size]})
        while size > 1 and len(encoded) > PART_BYTES:
            size = (size + 1) // 2
            encoded = bson.encode({"changes": changes[start : start + size]})
        pieces.append((start, encoded))
        start += size
    return pieces


class MongoPlanRepository:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._plans = database[PLANS]
        self._chunks = database[PLAN_CHUNKS]
        self._legacy = database[LEGACY_PLAN_CHANGES]

    async def ensure_indexes(self) -> None:
        await self._plans.create_index([("job_id", ASCENDING), ("index", ASCENDING)], name="job")
        # Chunks are read by `_id`; these remove a plan, or a deleted job's plans, at once.
        await self._chunks.create_index([("plan_id", ASCENDING)], name="plan")
        await self._chunks.create_index([("job_id", ASCENDING)], name="job")

    async def save(
        self,
        plan: StoredPlan,
        changes: Iterable[PlannedChange],
        digester: PlanDigester | None = None,
    ) -> str:
        # Chunks first, the plan document last: a plan is only there once all its changes are.
        # The changes are read once, a group of chunks at a time, in a worker thread (they may
        # come from the planner's disk, and encoding them is CPU), while the previous group is
        # being inserted: a million changes are never held whole, nor block the event loop.
        if plan.digest is None and digester is None:
            raise ValueError(f"plan {plan.plan_id}: no digest, and no digester to make one")
        if digester is not None:
            changes = digesting(changes, digester)
        writer = _ChunkWriter(plan, changes)
        group = await asyncio.to_thread(writer.next_group)
        while group:
            _, group = await asyncio.gather(
                self._chunks.insert_many(group, ordered=False),
                asyncio.to_thread(writer.next_group),
            )
        digest = plan.digest if digester is None else digester.digest()
        assert digest is not None
        await self._plans.insert_one(
            {
                "_id": plan.plan_id,
                "plan_id": plan.plan_id,
                "job_id": plan.job_id,
                "index": plan.index,
                "attempt": plan.attempt,
                "counts": plan.counts.model_dump(),
                "digest": digest,
                "created_at": plan.created_at,
                "chunk_size": CHUNK_SIZE,
                "changes": sum(run.count for run in writer.runs),
                "actions": [run.to_document() for run in writer.runs],
            }
        )
        return digest

    async def changes(
        self, plan_id: str, batch_size: int, start: int = 0
    ) -> AsyncIterator[list[PlannedChange]]:
        """The plan's changes in seq order from `start`, `batch_size` at a time, a chunk or
        two read per batch."""
        stored = await self._plans.find_one(
            {"_id": plan_id}, {"chunk_size": 1, "changes": 1, "actions": 1}
        )
        if stored is None:
            return
        if "chunk_size" not in stored:
            async for batch in self._legacy_changes(plan_id, batch_size, start):
                yield batch
            return
        runs = [ActionRun.from_document(run) for run in stored["actions"]]
        slices = chunk_slices(runs, start, stored["changes"], stored["chunk_size"])
        pending: list[PlannedChange] = []
        # Chunk by chunk, each read once whatever the batch size, as many at once as a batch
        # spans (one read per batch); a chunk missing from the store leaves a gap in the seqs,
        # which the apply refuses.
        per_read = max(CHUNKS_PER_READ, -(-batch_size // stored["chunk_size"]) + 1)
        for first in range(0, len(slices), per_read):
            documents = await read_slices(self._chunks, plan_id, slices[first : first + per_read])
            pending += (_change(document) for document in documents)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
        if pending:
            yield pending

    async def _legacy_changes(
        self, plan_id: str, batch_size: int, start: int
    ) -> AsyncIterator[list[PlannedChange]]:
        cursor = (
            self._legacy.find({"plan_id": plan_id, "seq": {"$gte": start}}, {"_id": 0})
            .sort("seq", ASCENDING)
            .batch_size(batch_size)
        )
        batch: list[PlannedChange] = []
        async for document in cursor:
            batch.append(_change(document))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def delete(self, plan_id: str) -> None:
        # Its document first: a plan half deleted is no longer a plan anyone reads.
        await self._plans.delete_one({"_id": plan_id})
        await self._chunks.delete_many({"plan_id": plan_id})
        await self._legacy.delete_many({"plan_id": plan_id})

    async def delete_job_plans(self, job_id: str) -> int:
        # By job id through the `job` indexes: a job's plans may hold millions of changes.
        # Changes first, as before; the handler runs again if this stops halfway.
        plans = await self._plans.count_documents({"job_id": job_id})
        await self._chunks.delete_many({"job_id": job_id})
        await self._legacy.delete_many({"job_id": job_id})
        await self._plans.delete_many({"job_id": job_id})
        return plans

    async def delete_superseded(self, job_id: str, index: int, current_plan_id: str) -> int:
        # On the plans' `job` index; each plan's chunks by its id.
        superseded = [
            document["_id"]
            async for document in self._plans.find(
                {"job_id": job_id, "index": index, "_id": {"$ne": current_plan_id}}, {"_id": 1}
            )
        ]
        for plan_id in superseded:
            await self.delete(plan_id)
        return len(superseded)


def _change(document: dict[str, Any]) -> PlannedChange:
    return PlannedChange(
        seq=document["seq"],
        action=document["action"],
        key=document["key"],
        before=document["before"],
        after=document["after"],
        by_id=document.get("by_id", False),
        dn=document.get("dn"),
    )
