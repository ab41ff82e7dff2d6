"""Reverting an applied sequence through the real runner and guard on a MongoDB target: the
target comes back exactly as it was before the sequence, record by record; a record changed
since is a conflict left alone (or forced back when included); the revert stops at the
sequence's own thresholds with nothing written."""

import uuid
from typing import Any

import pytest
from provisioning_common.definitions import JobDefinition
from provisioning_common.events import (
    JobCompleted,
    JobCreated,
    JobCreatedData,
    RevertOf,
    SequenceBlocked,
    SequencePlanned,
)
from sequence_runner.adapters.mongo_plans import MongoPlanRepository

from tests.integration.engine.conftest import EngineRig, definition, jsonl_text, sequence

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

BEFORE = [
    {"id": "u1", "mail": "u1@old", "sn": "One"},
    {"id": "u2", "mail": "u2@x", "sn": "Two"},
    {"id": "u3", "mail": "u3@x", "sn": "Three"},
    {"id": "u4", "mail": "u4@x", "sn": "Four"},
]
# The sequence to revert: u1 updated, u2 deleted (it left the source), u5 and u6 created.
AFTER = [
    {"id": "u1", "mail": "u1@new", "sn": "One"},
    {"id": "u3", "mail": "u3@x", "sn": "Three"},
    {"id": "u4", "mail": "u4@x", "sn": "Four"},
    {"id": "u5", "mail": "u5@x", "sn": "Five"},
    {"id": "u6", "mail": "u6@x", "sn": "Six"},
]


def people(name: str, collection: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    return definition(
        sequence(
            "people",
            {"type": "jsonl", "path": f"{name}/people.jsonl"},
            collection=collection,
            mapping={"uid": "id", "mail": "mail", "sn": "sn"},
            delete_missing=True,
            thresholds=thresholds,
        )
    )


async def run_job(engine: EngineRig, name: str, spec: dict[str, Any], rows: list[Any]) -> str:
    engine.write(f"{name}/people.jsonl", jsonl_text(rows))
    job_id = await engine.submit(spec)
    await engine.events.wait_for(job_id, JobCompleted)
    return job_id


async def revert(
    engine: EngineRig,
    spec: dict[str, Any],
    job_id: str,
    *,
    include_conflicts: bool = False,
    dry_run: bool = False,
) -> str:
    """Publish the JobCreated job-api makes for a revert of the job's sequence 0."""
    (planned,) = engine.events.events(job_id, SequencePlanned)
    revert_id = str(uuid.uuid4())
    await engine.publish_event(
        JobCreated(
            source="/provisioning/job-api",
            subject=revert_id,
            data=JobCreatedData(
                request_id=f"revert-{revert_id}",
                definition=JobDefinition.model_validate(spec),
                origin="api",
                requested_by="admin",
                dry_run=dry_run,
                reverts=RevertOf(
                    job_id=job_id,
                    sequence_index=0,
                    plan_id=planned.data.plan_id,
                    include_conflicts=include_conflicts,
                ),
            ),
        )
    )
    return revert_id


async def applied_sequence(
    engine: EngineRig, unique_name: str, thresholds: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str, dict[Any, dict[str, Any]]]:
    """The target loaded with BEFORE, then the sequence that makes it AFTER applied: its
    definition, its job id, and the target's records as they were before it."""
    collection = f"{unique_name}_people"
    spec = people(unique_name, collection, thresholds or {"delete": {"count": 100}})
    await run_job(engine, unique_name, spec, BEFORE)
    before = await engine.records(collection)
    job_id = await run_job(engine, unique_name, spec, AFTER)
    assert await engine.records(collection) != before
    return spec, job_id, before


async def test_a_revert_restores_the_target_exactly(engine: EngineRig, unique_name: str) -> None:
    spec, job_id, before = await applied_sequence(engine, unique_name)

    revert_id = await revert(engine, spec, job_id)
    (planned,) = await engine.events.wait_for(revert_id, SequencePlanned)
    await engine.events.wait_for(revert_id, JobCompleted)

    # The inverse: u5 and u6 deleted, u1's mail restored, u2 created again; no conflict.
    counts = planned.data.counts
    assert (counts.create, counts.update, counts.delete, counts.conflicts) == (1, 1, 2, 0)
    assert await engine.records(f"{unique_name}_people") == before
    plans = MongoPlanRepository(engine.database)
    by_key = {
        change.key: change
        async for batch in plans.changes(planned.data.plan_id, 1000)
        for change in batch
    }
    assert by_key["u1"].action == "update"
    assert by_key["u1"].before == {"mail": "u1@new"}
    assert (by_key["u1"].after or {})["mail"] == "u1@old"
    assert by_key["u2"].after == {"uid": "u2", "mail": "u2@x", "sn": "Two"}
    run = await engine.run(revert_id)
    assert run["reverts"]["job_id"] == job_id


async def test_a_record_changed_since_is_a_conflict_left_alone(
    engine: EngineRig, unique_name: str
) -> None:
    spec, job_id, before = await applied_sequence(engine, unique_name)
    collection = engine.target[f"{unique_name}_people"]
    # Someone changes u1 and deletes u5 by other means after the sequence ran.
    await collection.update_one({"_id": "u1"}, {"$set": {"mail": "u1@by-hand"}})
    await collection.delete_one({"_id": "u5"})

    revert_id = await revert(engine, spec, job_id)
    (planned,) = await engine.events.wait_for(revert_id, SequencePlanned)
    await engine.events.wait_for(revert_id, JobCompleted)

    counts = planned.data.counts
    assert (counts.create, counts.update, counts.delete, counts.conflicts) == (1, 0, 1, 2)
    conflicts = engine.database["revert_conflicts"].find({"plan_id": planned.data.plan_id})
    found = {c["key"]: c async for c in conflicts}
    assert found["u1"]["reason"] == "changed"
    assert found["u1"]["current"] == {"uid": "u1", "mail": "u1@by-hand", "sn": "One"}
    assert found["u1"]["forced"] is None
    assert found["u5"]["reason"] == "gone"
    assert found["u5"]["current"] is None
    after = await engine.records(f"{unique_name}_people")
    # Left alone: u1 keeps the hand-made value; everything else is as before the sequence.
    assert after["u1"]["mail"] == "u1@by-hand"
    assert {k: v for k, v in after.items() if k != "u1"} == {
        k: v for k, v in before.items() if k != "u1"
    }


async def test_an_included_conflict_is_forced_back(engine: EngineRig, unique_name: str) -> None:
    spec, job_id, before = await applied_sequence(engine, unique_name)
    collection = engine.target[f"{unique_name}_people"]
    await collection.update_one({"_id": "u1"}, {"$set": {"mail": "u1@by-hand"}})
    await collection.update_one({"_id": "u6"}, {"$set": {"sn": "Changed"}})

    revert_id = await revert(engine, spec, job_id, include_conflicts=True)
    (planned,) = await engine.events.wait_for(revert_id, SequencePlanned)
    await engine.events.wait_for(revert_id, JobCompleted)

    assert planned.data.counts.conflicts == 2
    conflicts = engine.database["revert_conflicts"].find({"plan_id": planned.data.plan_id})
    assert {c["key"]: c["forced"] async for c in conflicts} == {"u1": "update", "u6": "delete"}
    assert await engine.records(f"{unique_name}_people") == before


async def test_a_revert_stops_at_the_sequences_thresholds_with_nothing_written(
    engine: EngineRig, unique_name: str
) -> None:
    # The sequence may delete 2 records at most: its revert deletes u5 and u6, the limit.
    spec, job_id, _ = await applied_sequence(
        engine, unique_name, {"create": {"count": 100}, "delete": {"count": 2}}
    )
    applied = await engine.records(f"{unique_name}_people")

    revert_id = await revert(engine, spec, job_id)
    (blocked,) = await engine.events.wait_for(revert_id, SequenceBlocked)
    assert blocked.data.threshold.action == "delete"
    assert blocked.data.threshold.actual == 2
    assert await engine.records(f"{unique_name}_people") == applied


async def test_a_revert_preview_writes_nothing(engine: EngineRig, unique_name: str) -> None:
    spec, job_id, _ = await applied_sequence(engine, unique_name)
    applied = await engine.records(f"{unique_name}_people")

    revert_id = await revert(engine, spec, job_id, dry_run=True)
    (planned,) = await engine.events.wait_for(revert_id, SequencePlanned)
    (completed,) = await engine.events.wait_for(revert_id, JobCompleted)

    assert completed.data.dry_run
    assert planned.data.counts.delete == 2
    assert await engine.records(f"{unique_name}_people") == applied
