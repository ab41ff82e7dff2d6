"""MongoDB side of the scheduler: each schedule's last firing (claimed by compare-and-set, so
one replica runs a firing) and one document per firing, started or skipped."""

import contextlib
from datetime import datetime
from typing import Any

from provisioning_common.definitions import JobDefinition
from provisioning_common.statuses import FINISHED_JOB_STATUSES
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from job_api.adapters.definitions import DEFINITIONS_COLLECTION
from job_api.adapters.job_instances import JOB_INSTANCES_COLLECTION

SCHEDULE_STATE = "schedule_state"
SCHEDULE_FIRINGS = "schedule_firings"
_FIELDS = frozenset(JobDefinition.model_fields)
_FINISHED = sorted(s.value for s in FINISHED_JOB_STATUSES)


class ScheduleStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._definitions = db[DEFINITIONS_COLLECTION]
        self._instances = db[JOB_INSTANCES_COLLECTION]
        self._state = db[SCHEDULE_STATE]
        self._firings = db[SCHEDULE_FIRINGS]

    async def ensure_indexes(self) -> None:
        await self._firings.create_index([("definition_id", ASCENDING), ("at", DESCENDING)])
        await self._firings.create_index([("status", ASCENDING), ("claimed_at", ASCENDING)])

    async def scheduled_definitions(self) -> list[JobDefinition]:
        cursor = self._definitions.find({"schedule": {"$ne": None}})
        return [
            JobDefinition.model_validate({k: v for k, v in doc.items() if k in _FIELDS})
            async for doc in cursor
        ]

    async def state(self, definition_id: str, now: datetime) -> dict[str, Any]:
        """The schedule's last firing run; `since` is when a scheduler first saw it, so a new
        schedule starts with its next firing rather than a backlog."""
        doc = await self._state.find_one_and_update(
            {"_id": definition_id},
            {"$setOnInsert": {"since": now, "last_firing": None}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return doc

    async def advance(self, definition_id: str, last: datetime | None, firing: datetime) -> bool:
        """Compare-and-set: True for the one scheduler that moves the schedule to `firing`."""
        result = await self._state.update_one(
            {"_id": definition_id, "last_firing": last}, {"$set": {"last_firing": firing}}
        )
        return result.modified_count == 1

    async def record_firing(self, firing: dict[str, Any]) -> None:
        # A duplicate: recorded by a scheduler that died before it could finish the firing.
        with contextlib.suppress(DuplicateKeyError):
            await self._firings.insert_one(firing)

    async def settle(self, firing_id: str, status: str, **fields: Any) -> None:
        await self._firings.update_one({"_id": firing_id}, {"$set": {"status": status, **fields}})

    async def unsettled(self, claimed_before: datetime) -> list[dict[str, Any]]:
        """Firings a scheduler claimed and did not finish (it died in between)."""
        cursor = self._firings.find({"status": "claimed", "claimed_at": {"$lt": claimed_before}})
        return [doc async for doc in cursor]

    async def unfinished_job(self, definition_id: str, other_than: str) -> dict[str, Any] | None:
        return await self._instances.find_one(
            {
                "definition_id": definition_id,
                "status": {"$nin": _FINISHED},
                "_id": {"$ne": other_than},
            },
            {"_id": 1, "status": 1},
        )

    async def firings(self, definition_id: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = (
            self._firings.find({"definition_id": definition_id})
            .sort([("at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]
