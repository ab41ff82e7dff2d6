"""The runner's MongoDB adapters on the real wire server: compare-and-set, the outbox, plans in
order, and an apply that gives the same target when repeated."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from provisioning_common.events import PlanCounts
from pymongo import AsyncMongoClient
from sequence_runner.adapters.connectors.mongo_target import MongoTargetConnector, RetryPolicy
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.adapters.mongo_runs import MongoRunRepository
from sequence_runner.adapters.mongo_target_claims import MongoTargetClaims
from sequence_runner.domain.plan_digest import plan_digest
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlannedChange, SourceEntry
from sequence_runner.domain.transitions import start
from sequence_runner.handlers.ports import StoredPlan

from tests.unit.sequence_runner.builders import NOW, job_created

pytestmark = pytest.mark.mongo


async def test_a_run_is_saved_only_over_the_version_it_was_read_at(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> None:
    runs = MongoRunRepository(mongo_client[unique_name])
    await runs.ensure_indexes()
    first = start(job_created(inputs={"a": [{"uid": "$odd.name"}]}), NOW)
    assert await runs.insert(first.run, first.events) is True
    assert await runs.insert(first.run, first.events) is False

    stored = await runs.load(first.run.job_id)
    assert stored is not None
    assert stored.run == first.run
    assert [e.id for e in stored.outbox] == [e.id for e in first.events]
    assert await runs.with_pending_work() == [first.run.job_id]

    assert await runs.save(stored.run, stored.version, first.events[:1]) is True
    # A second writer holding the same version loses.
    assert await runs.save(stored.run, stored.version, first.events[:1]) is False
    newer = await runs.load(first.run.job_id)
    assert newer is not None
    assert newer.version == stored.version + 1
    assert len(newer.outbox) == 3

    await runs.mark_sent(first.run.job_id, [first.events[1].id])
    after = await runs.load(first.run.job_id)
    assert after is not None
    assert [e.id for e in after.outbox] == [first.events[0].id, first.events[0].id]


async def test_a_plan_is_read_back_in_order_batch_by_batch(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> None:
    plans = MongoPlanRepository(mongo_client[unique_name])
    await plans.ensure_indexes()
    changes = [
        PlannedChange(seq=i, action="create", key=f"k{i}", before=None, after={"uid": f"k{i}"})
        for i in range(2500)
    ]
    plan = StoredPlan(
        plan_id="p1",
        job_id="j1",
        index=0,
        attempt=1,
        counts=PlanCounts(create=2500, update=0, delete=0, unchanged=0, target_size=0),
        created_at=datetime.now(UTC),
        digest=plan_digest(changes),
    )
    await plans.save(plan, changes)
    batches = [batch async for batch in plans.changes("p1", 1000)]
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert [c.seq for b in batches for c in b] == list(range(2500))
    stored = await mongo_client[unique_name]["plans"].find_one({"_id": "p1"})
    assert stored is not None
    assert stored["counts"]["create"] == 2500
    assert stored["digest"] == plan_digest(changes)
    await plans.delete("p1")
    assert await mongo_client[unique_name]["plan_chunks"].count_documents({}) == 0
    assert await mongo_client[unique_name]["plans"].count_documents({}) == 0


async def test_a_plan_is_stored_from_a_stream_and_removed_with_its_job(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> None:
    """A plan of a million changes is stored as it is read from the planner's disk, never as
    one list; deleting its job removes it and leaves the other jobs' plans."""
    plans = MongoPlanRepository(mongo_client[unique_name])
    await plans.ensure_indexes()

    def stream(count: int) -> Iterator[PlannedChange]:
        for i in range(count):
            yield PlannedChange(seq=i, action="create", key=f"k{i}", before=None, after={"i": i})

    for plan_id, job_id in (("p1", "j1"), ("p2", "j1"), ("p3", "j2")):
        stored_plan = StoredPlan(
            plan_id=plan_id,
            job_id=job_id,
            index=0,
            attempt=1,
            counts=PlanCounts(create=1500, update=0, delete=0, unchanged=0, target_size=0),
            created_at=datetime.now(UTC),
            digest=plan_digest(stream(1500)),
        )
        await plans.save(stored_plan, stream(1500))
    assert [c.seq for b in [b async for b in plans.changes("p2", 1000)] for c in b] == list(
        range(1500)
    )
    assert await plans.delete_job_plans("j1") == 2
    database = mongo_client[unique_name]
    assert await database["plan_chunks"].distinct("plan_id") == ["p3"]
    assert await database["plans"].distinct("_id") == ["p3"]
    assert [c.seq for b in [b async for b in plans.changes("p3", 1000)] for c in b] == list(
        range(1500)
    )


async def test_applying_a_plan_twice_gives_the_same_target(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> None:
    collection = mongo_client[unique_name]["people"]
    await collection.insert_many(
        [
            {"_id": "u1", "uid": "u1", "mail": "old", "kept": True},
            {"_id": "u2", "uid": "u2"},
            # Written by other means: found by its key attribute, not doubled.
            {"_id": "foreign-id", "uid": "u3", "mail": "x"},
        ]
    )
    target = MongoTargetConnector(collection, "uid", RetryPolicy(attempts=1))
    await target.prepare()
    batch = [
        PlannedChange(0, "create", "u4", None, {"uid": "u4", "mail": "new"}),
        PlannedChange(1, "update", "u1", {"mail": "old"}, {"uid": "u1", "mail": "fresh"}),
        PlannedChange(2, "update", "u3", {"mail": "x"}, {"uid": "u3", "mail": "y"}),
        PlannedChange(3, "delete", "u2", {"uid": "u2"}, None),
    ]
    await target.apply(batch)
    once = [doc async for doc in collection.find({}).sort("uid", 1)]
    await target.apply(batch)
    twice = [doc async for doc in collection.find({}).sort("uid", 1)]
    assert (
        once
        == twice
        == [
            {"_id": "u1", "uid": "u1", "mail": "fresh", "kept": True},
            {"_id": "foreign-id", "uid": "u3", "mail": "y"},
            {"_id": "u4", "uid": "u4", "mail": "new"},
        ]
    )
    assert [r["uid"] async for r in target.read_all()] == ["u1", "u3", "u4"]


async def test_records_the_planner_knows_by_their_id_are_written_as_planned(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> None:
    """A record without its key attribute is known by its `_id` when planning; the apply must
    find it the same way, or an update collides with its `_id` and a delete removes nothing."""
    collection = mongo_client[unique_name]["people"]
    await collection.insert_many(
        [
            {"_id": "u1", "mail": "old"},
            {"_id": "u9", "mail": "gone"},
            {"_id": "u8", "uid": None, "mail": "null key"},
            {"_id": "keep", "uid": "u2", "mail": "b"},
        ]
    )
    target = MongoTargetConnector(collection, "uid", RetryPolicy(attempts=1))
    await target.prepare()
    planned = plan(
        [
            SourceEntry(2, {"uid": "u1", "mail": "new"}),
            SourceEntry(3, {"uid": "u2", "mail": "b"}),
        ],
        [record async for record in target.read_all()],
        "uid",
        None,
        delete_missing=True,
    )
    assert [(c.action, c.key) for c in planned.changes] == [
        ("update", "u1"),
        ("delete", "u9"),
        ("delete", "u8"),
    ]
    # Stored and read back as the apply reads it.
    plans = MongoPlanRepository(mongo_client[unique_name])
    stored = StoredPlan(
        "p1", "j1", 0, 1, planned.counts, datetime.now(UTC), plan_digest(planned.changes)
    )
    await plans.save(stored, planned.changes)
    (read_back,) = [batch async for batch in plans.changes("p1", 100)]
    assert read_back == list(planned.changes)
    await target.apply(read_back)
    await target.apply(read_back)
    assert [doc async for doc in collection.find({}).sort("_id", 1)] == [
        {"_id": "keep", "uid": "u2", "mail": "b"},
        {"_id": "u1", "uid": "u1", "mail": "new"},
    ]


async def test_a_target_is_claimed_by_one_job_at_a_time(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> None:
    claims = MongoTargetClaims(mongo_client[unique_name])
    assert await claims.claim("people", "job-a") is None
    assert await claims.claim("people", "job-a") is None  # its own claim, again
    assert await claims.claim("people", "job-b") == "job-a"
    await claims.release("people", "job-b")  # not the holder: changes nothing
    assert await claims.claim("people", "job-b") == "job-a"
    await claims.release("people", "job-a")
    assert await claims.claim("people", "job-b") is None
