"""The job_instances read model (and job_rejections) in MongoDB, written by folding job events."""

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

import bson
from provisioning_common.events import JobCreated, JobDeleted, JobEvent, JobRejected
from provisioning_common.mongo import is_duplicate_key
from provisioning_common.statuses import FINISHED_JOB_STATUSES
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import (
    DELETE,
    FoldResult,
    fold,
    rejection_record,
    resurrects,
    tombstone,
)

JOB_INSTANCES_COLLECTION = "job_instances"
JOB_REJECTIONS_COLLECTION = "job_rejections"
PROJECTOR_STATE_COLLECTION = "projector_state"
JOB_TOMBSTONES_COLLECTION = "job_tombstones"
_FINISHED = sorted(s.value for s in FINISHED_JOB_STATUSES)
# A write loses a race only to the API's own writes to the same job (insert, archive):
# a few rounds always settle it.
_MAX_ROUNDS = 8
# Job instances the projector remembers as it last wrote them (see `apply_fold`).
_REMEMBERED_INSTANCES = 1_000

logger = logging.getLogger(__name__)


class ProjectionConflictError(RuntimeError):
    """The document kept changing under the projector; the event is retried from Kafka."""


def _sort_indexes() -> list[list[tuple[str, int]]]:
    # Each sort the API offers (created/started/ended, newest first) under each filter it
    # offers (none, status, definition), always behind `archived` (every listing filters it)
    # and with _id last, so keyset pages follow the index. MongoDB walks an index backwards
    # for the ascending sorts.
    indexes = []
    for filter_field in (None, "status", "definition_id"):
        for sort_field in ("created_at", "started_at", "ended_at"):
            keys: list[tuple[str, int]] = [("archived", ASCENDING)]
            if filter_field:
                keys.append((filter_field, ASCENDING))
            keys += [(sort_field, DESCENDING), ("_id", DESCENDING)]
            indexes.append(keys)
    # The sorts by status and by definition, with their _id tie-break.
    for sort_field in ("status", "definition_id"):
        indexes.append([("archived", ASCENDING), (sort_field, ASCENDING), ("_id", ASCENDING)])
    return indexes


JOB_INSTANCE_INDEXES: list[list[tuple[str, int]]] = [
    *_sort_indexes(),
    # Whether a definition is used by an unfinished job (refusing its deletion).
    [("definition_id", ASCENDING), ("status", ASCENDING)],
    [("request_id", ASCENDING)],
]


class JobInstanceStore:
    """One document per job instance, `_id` = job id; see docs/projection.md for its fields."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._instances = db[JOB_INSTANCES_COLLECTION]
        self._rejections = db[JOB_REJECTIONS_COLLECTION]
        self._state = db[PROJECTOR_STATE_COLLECTION]
        self._tombstones = db[JOB_TOMBSTONES_COLLECTION]
        # As this store last read or wrote them: the next event of a job folds into that
        # without reading it again. The write is conditional on the document being unchanged
        # since (`_unchanged_since`), so a stale one only costs the read it tried to save.
        self._recent: OrderedDict[str, JobInstance] = OrderedDict()

    @property
    def collection_name(self) -> str:
        return self._instances.name

    async def ensure_indexes(self) -> None:
        for keys in JOB_INSTANCE_INDEXES:
            await self._instances.create_index(keys)
        await self._rejections.create_index([("rejected_at", DESCENDING), ("_id", DESCENDING)])
        await self._rejections.create_index([("request_id", ASCENDING)])

    async def drop(self) -> None:
        """Forget the read model (a rebuild folds it again from the topic)."""
        self._recent.clear()
        await self._instances.drop()
        await self._rejections.drop()
        await self._tombstones.drop()

    async def projector_group(self, base_group: str) -> str:
        """The consumer group the projector reads with: `base_group` until a rebuild renames it."""
        state = await self._state.find_one({"_id": base_group})
        return base_group if state is None else str(state["group_id"])

    async def start_rebuild(self, base_group: str, at: datetime) -> str:
        """Fold the topic again from its first offset, under a fresh group kept from now on.

        The fresh group is recorded before the read model is dropped: a crash in between
        leaves a read model that the fresh group folds over again, never an empty one that
        the old group, already at the end of the topic, would never fill.
        """
        group = f"{base_group}.rebuild-{at:%Y%m%dT%H%M%S%f}"
        await self._state.replace_one(
            {"_id": base_group},
            {"_id": base_group, "group_id": group, "rebuilt_at": at},
            upsert=True,
        )
        await self.drop()
        return group

    async def apply_fold(
        self, event: JobEvent, partition: int | None, offset: int | None
    ) -> FoldResult:
        """Fold `event` into its job instance and store the result; returns what was stored."""
        if isinstance(event, JobRejected):
            record = rejection_record(event, partition, offset)
            await self._rejections.replace_one({"_id": record["_id"]}, record, upsert=True)
            return None
        remembered = self._recent.pop(event.subject, None)
        for _ in range(_MAX_ROUNDS):
            current = remembered or await self.get(event.subject)
            remembered = None
            if current is None and isinstance(event, JobCreated):
                grave = await self._tombstones.find_one({"_id": event.subject})
                if resurrects(grave, partition, offset):
                    return None
            result = fold(current, event, partition, offset)
            if result is current or result is None:
                if current is not None:
                    self._remember(current)
                return result
            if result is DELETE:
                assert isinstance(event, JobDeleted)
                await self._bury(event, partition, offset)
                if current is None:
                    return result
                removed = await self._instances.delete_one(_unchanged_since(current))
                if removed.deleted_count == 1:
                    return result
                continue
            assert isinstance(result, JobInstance)
            if current is None:
                if await self.insert_if_absent(result):
                    self._remember(result)
                    return result
                continue
            replaced = await self._instances.replace_one(
                _unchanged_since(current), result.to_document()
            )
            if replaced.matched_count == 1:
                self._remember(result)
                return result
        raise ProjectionConflictError(
            f"job instance {event.subject} changed {_MAX_ROUNDS} times while folding {event.type}"
        )

    def _remember(self, instance: JobInstance) -> None:
        # As MongoDB gives it back (times to the millisecond): the fold sees what a read sees.
        stored = bson.decode(
            bson.encode(instance.to_document()), codec_options=self._instances.codec_options
        )
        self._recent[instance.mongo_id] = JobInstance.from_document(stored)
        while len(self._recent) > _REMEMBERED_INSTANCES:
            self._recent.popitem(last=False)

    async def _bury(self, event: JobDeleted, partition: int | None, offset: int | None) -> None:
        # Written before the document goes: a crash in between reads JobDeleted again, and a
        # replay of the job's older events never revives it.
        grave = tombstone(event, partition, offset)
        existing = await self._tombstones.find_one({"_id": grave["_id"]})
        if not resurrects(existing, partition, offset):
            await self._tombstones.replace_one({"_id": grave["_id"]}, grave, upsert=True)

    async def insert_if_absent(self, doc: JobInstance) -> bool:
        """Insert `doc` unless its job instance exists; True when it was inserted."""
        try:
            await self._instances.insert_one(doc.to_document())
        except PyMongoError as error:
            if is_duplicate_key(error):
                return False
            raise
        return True

    async def set_archived(
        self, job_id: str, archived: bool, by: str, at: datetime, *, require_finished: bool = True
    ) -> bool:
        """Archive or unarchive a finished job at once; False when it is absent or unfinished.

        Pass the time of the JobArchived event the caller publishes: the projector folds that
        event into exactly the same fields.
        """
        self._recent.pop(job_id, None)
        query: dict[str, Any] = {"_id": job_id}
        if require_finished:
            query["status"] = {"$in": _FINISHED}
        result = await self._instances.update_one(
            query,
            {
                "$set": {
                    "archived": archived,
                    "archived_by": by if archived else None,
                    "archived_at": at if archived else None,
                    "updated_at": at,
                }
            },
        )
        return result.matched_count == 1

    async def restore_archived(self, before: JobInstance) -> None:
        """Put back the archive fields of `before`, the job instance as read before a change."""
        self._recent.pop(before.mongo_id, None)
        fields = before.model_dump(include={"archived", "archived_by", "archived_at", "updated_at"})
        await self._instances.update_one({"_id": before.mongo_id}, {"$set": fields})

    async def delete(self, job_id: str, *, require_finished: bool = True) -> bool:
        """Delete a finished job instance at once; False when it is absent or unfinished."""
        self._recent.pop(job_id, None)
        query: dict[str, Any] = {"_id": job_id}
        if require_finished:
            query["status"] = {"$in": _FINISHED}
        result = await self._instances.delete_one(query)
        return result.deleted_count == 1

    async def get(self, job_id: str) -> JobInstance | None:
        found = await self._instances.find_one({"_id": job_id})
        return None if found is None else JobInstance.from_document(found)

    async def tombstone(self, job_id: str) -> dict[str, Any] | None:
        """What the projector kept of a deleted job instance: who deleted it, and when."""
        return await self._tombstones.find_one({"_id": job_id})

    async def is_in_use(self, definition_id: str) -> bool:
        """True while a job instance of the definition is not finished."""
        found = await self._instances.find_one(
            {"definition_id": definition_id, "status": {"$nin": _FINISHED}}, {"_id": 1}
        )
        return found is not None

    async def rejections(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest requests that did not become jobs, newest first."""
        cursor = (
            self._rejections.find({}).sort([("rejected_at", DESCENDING), ("_id", DESCENDING)])
        ).limit(limit)
        return [record async for record in cursor]


def _unchanged_since(current: JobInstance) -> dict[str, Any]:
    """Matches the document only as it was read: the API writes archived flags meanwhile."""
    query: dict[str, Any] = {"_id": current.mongo_id, "archived": current.archived}
    seen = current.projection
    if seen is None:
        query["projection"] = None
    else:
        query["projection.partition"] = seen.partition
        query["projection.offset"] = seen.offset
    return query
