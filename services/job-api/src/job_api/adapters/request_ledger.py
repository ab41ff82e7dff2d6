"""The request ledger in MongoDB: every request id the intake turned into a job, kept for good.

The read model alone cannot say whether a request id was handled: it forgets deleted jobs, and
is empty while it is rebuilt from the topic. The ledger is written before JobCreated is
published and outlives the job's deletion.
"""

from datetime import datetime
from typing import Any

from provisioning_common.envelope import utcnow
from provisioning_common.mongo import is_duplicate_key
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from job_api.adapters.job_instances import JobInstanceStore
from job_api.domain.admission import HandledRequest
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import stored_time

REQUEST_LEDGER_COLLECTION = "request_ledger"


class RequestLedger:
    """One document per request id (`_id`): its job id, whether JobCreated is out, its deletion."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._entries = db[REQUEST_LEDGER_COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._entries.create_index([("job_id", ASCENDING)])

    async def get(self, request_id: str) -> HandledRequest | None:
        entry = await self._entries.find_one({"_id": request_id})
        return None if entry is None else _handled(entry)

    async def record(
        self, request_id: str, job_id: str, at: datetime, *, published: bool = False
    ) -> bool:
        """Record the request before its JobCreated is published; False if it was already."""
        try:
            await self._entries.insert_one(
                {
                    "_id": request_id,
                    "job_id": job_id,
                    "published": published,
                    "recorded_at": at,
                    "deleted_by": None,
                    "deleted_at": None,
                }
            )
        except PyMongoError as error:
            if is_duplicate_key(error):
                return False
            raise
        return True

    async def mark_published(self, request_id: str) -> None:
        await self._entries.update_one({"_id": request_id}, {"$set": {"published": True}})

    async def forget(self, request_id: str) -> None:
        """The request was rejected after all (too large to publish): it made no job."""
        await self._entries.delete_one({"_id": request_id, "published": False})

    async def mark_deleted(self, job_id: str, by: str | None, at: datetime) -> None:
        await self._entries.update_many(
            {"job_id": job_id, "deleted_at": None}, {"$set": {"deleted_by": by, "deleted_at": at}}
        )


class IntakeRecords:
    """What the intake reads and writes: the read model and the request ledger, as one port."""

    def __init__(self, job_instances: JobInstanceStore, ledger: RequestLedger) -> None:
        self._job_instances = job_instances
        self._ledger = ledger

    async def get(self, job_id: str) -> JobInstance | None:
        return await self._job_instances.get(job_id)

    async def insert_if_absent(self, doc: JobInstance) -> bool:
        return await self._job_instances.insert_if_absent(doc)

    async def handled_request(self, request_id: str, job_id: str) -> HandledRequest | None:
        """The ledger's entry, completed from the read model for jobs older than the ledger.

        A job deleted where the ledger does not know it yet (a crash after JobDeleted was
        published, or a job deleted before the ledger existed) is found by its tombstone.
        """
        handled = await self._ledger.get(request_id)
        if handled is not None and (handled.deleted or not handled.published):
            return handled
        if await self._job_instances.get(job_id) is not None:
            if handled is None:
                await self._ledger.record(request_id, job_id, _now(), published=True)
                return HandledRequest(request_id=request_id, job_id=job_id, published=True)
            return handled
        grave = await self._job_instances.tombstone(job_id)
        if grave is None:
            return handled
        if handled is None:
            await self._ledger.record(request_id, job_id, _now(), published=True)
        await self._ledger.mark_deleted(job_id, grave.get("deleted_by"), grave["deleted_at"])
        return await self._ledger.get(request_id)

    async def record_request(self, request_id: str, job_id: str, at: datetime) -> bool:
        return await self._ledger.record(request_id, job_id, at)

    async def request_published(self, request_id: str) -> None:
        await self._ledger.mark_published(request_id)

    async def forget_request(self, request_id: str) -> None:
        await self._ledger.forget(request_id)


def _now() -> datetime:
    return stored_time(utcnow())


def _handled(entry: dict[str, Any]) -> HandledRequest:
    return HandledRequest(
        request_id=str(entry["_id"]),
        job_id=str(entry["job_id"]),
        published=bool(entry.get("published", True)),
        deleted_by=entry.get("deleted_by"),
        deleted_at=entry.get("deleted_at"),
    )
