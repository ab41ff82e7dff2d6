"""MongoDB `revert_conflicts`: the records a revert's plan found changed since the reverted
sequence ran, one document each, beside the plan they belong to (job-api pages them)."""

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

REVERT_CONFLICTS = "revert_conflicts"


class MongoRevertConflicts:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._conflicts = database[REVERT_CONFLICTS]

    async def ensure_indexes(self) -> None:
        # Paging through one plan's conflicts in plan order; removing a deleted job's.
        await self._conflicts.create_index(
            [("plan_id", ASCENDING), ("seq", ASCENDING)], name="plan_seq"
        )
        await self._conflicts.create_index([("job_id", ASCENDING)], name="job")

    async def save(
        self, plan_id: str, job_id: str, index: int, conflicts: Sequence[dict[str, Any]]
    ) -> None:
        await self._conflicts.insert_many(
            [
                {"plan_id": plan_id, "job_id": job_id, "index": index, **conflict}
                for conflict in conflicts
            ]
        )

    async def delete(self, plan_id: str) -> None:
        await self._conflicts.delete_many({"plan_id": plan_id})

    async def delete_job(self, job_id: str) -> None:
        await self._conflicts.delete_many({"job_id": job_id})
