"""MongoDB `plans` and `plan_changes`: every plan the guard checked, change by change, so the
apply writes exactly what was checked and job-api can show it page by page."""

from collections.abc import AsyncIterator, Iterable
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.ports import StoredPlan

PLANS = "plans"
PLAN_CHANGES = "plan_changes"
INSERT_BATCH = 1000


class MongoPlanRepository:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._plans = database[PLANS]
        self._changes = database[PLAN_CHANGES]

    async def ensure_indexes(self) -> None:
        await self._plans.create_index([("job_id", ASCENDING), ("index", ASCENDING)], name="job")
        # Paging through one action of a plan, and through the whole plan, in order.
        await self._changes.create_index(
            [("plan_id", ASCENDING), ("action", ASCENDING), ("seq", ASCENDING)],
            name="plan_action_seq",
        )
        await self._changes.create_index(
            [("plan_id", ASCENDING), ("seq", ASCENDING)], name="plan_seq"
        )
        # Removing a deleted job's plans.
        await self._changes.create_index([("job_id", ASCENDING)], name="job")

    async def save(self, plan: StoredPlan, changes: Iterable[PlannedChange]) -> None:
        # Changes first: a plan document is only there once all its changes are. Read from
        # `changes` one batch at a time, so a plan of a million changes is never held whole.
        batch: list[dict[str, Any]] = []
        for change in changes:
            batch.append(
                {
                    "plan_id": plan.plan_id,
                    "job_id": plan.job_id,
                    "index": plan.index,
                    "seq": change.seq,
                    "action": change.action,
                    "key": change.key,
                    "before": change.before,
                    "after": change.after,
                    # Only where it is true: the rare record without a key attribute.
                    **({"by_id": True} if change.by_id else {}),
                    # A directory target's DN of the change, shown with it and written to.
                    **({"dn": change.dn} if change.dn is not None else {}),
                }
            )
            if len(batch) >= INSERT_BATCH:
                await self._changes.insert_many(batch)
                batch = []
        if batch:
            await self._changes.insert_many(batch)
        await self._plans.insert_one(
            {
                "_id": plan.plan_id,
                "plan_id": plan.plan_id,
                "job_id": plan.job_id,
                "index": plan.index,
                "attempt": plan.attempt,
                "counts": plan.counts.model_dump(),
                "digest": plan.digest,
                "created_at": plan.created_at,
            }
        )

    async def changes(
        self, plan_id: str, batch_size: int, start: int = 0
    ) -> AsyncIterator[list[PlannedChange]]:
        cursor = (
            self._changes.find({"plan_id": plan_id, "seq": {"$gte": start}}, {"_id": 0})
            .sort("seq", ASCENDING)
            .batch_size(batch_size)
        )
        batch: list[PlannedChange] = []
        async for document in cursor:
            batch.append(
                PlannedChange(
                    seq=document["seq"],
                    action=document["action"],
                    key=document["key"],
                    before=document["before"],
                    after=document["after"],
                    by_id=document.get("by_id", False),
                    dn=document.get("dn"),
                )
            )
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def delete(self, plan_id: str) -> None:
        await self._changes.delete_many({"plan_id": plan_id})
        await self._plans.delete_one({"_id": plan_id})

    async def delete_job_plans(self, job_id: str) -> int:
        # By job id through the `job` indexes: a job's plans may hold millions of changes.
        # Changes first, as in `delete`; the handler runs again if this stops halfway.
        plans = await self._plans.count_documents({"job_id": job_id})
        await self._changes.delete_many({"job_id": job_id})
        await self._plans.delete_many({"job_id": job_id})
        return plans
