"""MongoDB `runs`: one document per job with its state, a version for compare-and-set, and the
outbox of events stored in the same write as the state that produced them."""

import json
from collections.abc import Sequence
from typing import Any

from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope, utcnow
from provisioning_common.events import JOB_EVENT_ADAPTER, RevertOf
from provisioning_common.mongo import is_duplicate_key
from provisioning_common.statuses import JobStatus
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from sequence_runner.domain.run import Run, SequenceRun
from sequence_runner.handlers.ports import StoredRun

RUNS = "runs"


def _outbox_entry(event: Envelope) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "event": event.model_dump(mode="json")}


def _state(run: Run) -> dict[str, Any]:
    return {
        "job_id": run.job_id,
        "request_id": run.request_id,
        "requested_by": run.requested_by,
        "status": run.status.value,
        "attempt": run.attempt,
        "definition_id": run.definition.id,
        # As JSON text: record and attribute names are the requester's, and some ('$x', 'a.b')
        # are not valid MongoDB field names.
        "definition_json": run.definition.model_dump_json(),
        "inputs_json": json.dumps(run.inputs, default=str),
        "sequences": [sequence.model_dump(mode="json") for sequence in run.sequences],
        "handled_commands": list(run.handled_commands),
        "dry_run": run.dry_run,
        "reverts": None if run.reverts is None else run.reverts.model_dump(),
        "updated_at": utcnow(),
    }


def _run(document: dict[str, Any]) -> Run:
    return Run(
        job_id=document["job_id"],
        request_id=document["request_id"],
        requested_by=document["requested_by"],
        status=JobStatus(document["status"]),
        attempt=document["attempt"],
        definition=JobDefinition.model_validate_json(document["definition_json"]),
        inputs=json.loads(document["inputs_json"]),
        sequences=tuple(SequenceRun.model_validate(s) for s in document["sequences"]),
        handled_commands=tuple(document.get("handled_commands", ())),
        dry_run=document.get("dry_run", False),
        reverts=None if document.get("reverts") is None else RevertOf(**document["reverts"]),
    )


class MongoRunRepository:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._runs = database[RUNS]

    async def ensure_indexes(self) -> None:
        await self._runs.create_index([("status", ASCENDING)], name="status")

    async def insert(self, run: Run, events: Sequence[Envelope]) -> bool:
        document = {
            "_id": run.job_id,
            "version": 1,
            **_state(run),
            "created_at": utcnow(),
            "outbox": [_outbox_entry(event) for event in events],
        }
        try:
            await self._runs.insert_one(document)
        except PyMongoError as error:
            if is_duplicate_key(error):
                return False
            raise
        return True

    async def load(self, job_id: str) -> StoredRun | None:
        document = await self._runs.find_one({"_id": job_id})
        if document is None:
            return None
        outbox = tuple(
            JOB_EVENT_ADAPTER.validate_python(entry["event"])
            for entry in document.get("outbox", ())
        )
        return StoredRun(run=_run(document), version=document["version"], outbox=outbox)

    async def save(self, run: Run, expected_version: int, events: Sequence[Envelope]) -> bool:
        update: dict[str, Any] = {"$set": {**_state(run), "version": expected_version + 1}}
        if events:
            update["$push"] = {"outbox": {"$each": [_outbox_entry(event) for event in events]}}
        result = await self._runs.update_one(
            {"_id": run.job_id, "version": expected_version}, update
        )
        return result.matched_count == 1

    async def mark_sent(self, job_id: str, event_ids: Sequence[str]) -> None:
        # Pulled by id: events a concurrent transition pushed meanwhile stay in the outbox.
        await self._runs.update_one(
            {"_id": job_id}, {"$pull": {"outbox": {"id": {"$in": list(event_ids)}}}}
        )

    async def with_pending_work(self) -> list[str]:
        cursor = self._runs.find(
            {"$or": [{"outbox.0": {"$exists": True}}, {"status": JobStatus.RUNNING.value}]},
            {"_id": 1},
        )
        return [str(document["_id"]) async for document in cursor]
