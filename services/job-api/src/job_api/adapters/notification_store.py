"""MongoDB side of the notifier: the recipients of each job (from its JobCreated), and one
document per delivery — claimed before it is sent, with every attempt."""

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from job_api.domain.notifications import JobContext

NOTIFICATION_JOBS = "notification_jobs"
NOTIFICATIONS = "notifications"


class NotificationStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._jobs = db[NOTIFICATION_JOBS]
        self._deliveries = db[NOTIFICATIONS]

    async def ensure_indexes(self) -> None:
        await self._deliveries.create_index([("job_id", ASCENDING), ("created_at", ASCENDING)])
        await self._deliveries.create_index([("status", ASCENDING), ("claimed_until", ASCENDING)])

    async def remember_job(self, job: JobContext) -> None:
        # A restart reads JobCreated again: the same document, written again.
        doc = asdict(job)
        await self._jobs.replace_one({"_id": job.job_id}, {"_id": job.job_id, **doc}, upsert=True)

    async def job(self, job_id: str) -> JobContext | None:
        doc = await self._jobs.find_one({"_id": job_id})
        if doc is None:
            return None
        doc.pop("_id")
        return JobContext(**doc)

    async def claim(
        self, delivery: dict[str, Any], owner: str, now: datetime, lease: timedelta
    ) -> bool:
        """True when this notifier is the one to send `delivery` (keyed by event, recipient and
        channel): the first to insert it, or the one taking over a claim whose holder died."""
        try:
            await self._deliveries.insert_one(
                {
                    **delivery,
                    "status": "sending",
                    "claimed_by": owner,
                    "claimed_until": now + lease,
                    "attempts": [],
                    "created_at": now,
                }
            )
            return True
        except DuplicateKeyError:
            return await self.take_over(delivery["_id"], owner, now, lease) is not None

    async def take_over(
        self, delivery_id: str, owner: str, now: datetime, lease: timedelta
    ) -> dict[str, Any] | None:
        """The delivery, if it was left `sending` by a notifier whose lease ran out."""
        return await self._deliveries.find_one_and_update(
            {"_id": delivery_id, "status": "sending", "claimed_until": {"$lt": now}},
            {"$set": {"claimed_by": owner, "claimed_until": now + lease}},
            return_document=ReturnDocument.AFTER,
        )

    async def abandoned(self, now: datetime, limit: int = 50) -> list[str]:
        cursor = self._deliveries.find(
            {"status": "sending", "claimed_until": {"$lt": now}}, {"_id": 1}
        ).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def record_attempt(
        self, delivery_id: str, at: datetime, ok: bool, detail: str, lease_until: datetime
    ) -> None:
        await self._deliveries.update_one(
            {"_id": delivery_id},
            {
                "$push": {"attempts": {"at": at, "ok": ok, "detail": detail}},
                "$set": {"claimed_until": lease_until},
            },
        )

    async def finish(self, delivery_id: str, status: str, at: datetime) -> None:
        await self._deliveries.update_one(
            {"_id": delivery_id}, {"$set": {"status": status, "finished_at": at}}
        )

    async def of_job(self, job_id: str) -> list[dict[str, Any]]:
        cursor = self._deliveries.find({"job_id": job_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [doc async for doc in cursor]
