"""Plans stored in chunks on the real MongoDB wire server: read back in plan order across chunk
and action edges, paged per action and in plan order by point reads however deep, the plan
document written last, and plans of the first layout still read."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from job_api.views import list_planned_changes
from provisioning_common.events import PlanCounts
from provisioning_common.plan_chunks import chunk_id, stored_changes
from provisioning_common.settings import MongoSettings
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from sequence_runner.adapters import mongo_plans
from sequence_runner.adapters.mongo_plans import MongoPlanRepository, PlanOrderError
from sequence_runner.domain.plan_digest import PlanDigester, plan_digest
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.ports import StoredPlan

pytestmark = pytest.mark.mongo

# Creates, updates, deletes: each action ends inside a chunk, and the updates start at a seq
# that is no multiple of the chunk size.
SHAPE = (("create", 2500), ("update", 1001), ("delete", 999))
TOTAL = sum(count for _, count in SHAPE)


def planned(shape: tuple[tuple[str, int], ...] = SHAPE) -> Iterator[PlannedChange]:
    seq = 0
    for action, count in shape:
        for _ in range(count):
            before = None if action == "create" else {"mail": f"old{seq}@x", "n": seq}
            after = None if action == "delete" else {"uid": f"k{seq}", "n": seq, "ok": True}
            # A few records the target holds without a key attribute, and integer keys.
            key: str | int = seq if seq % 7 == 0 else f"k{seq}"
            yield PlannedChange(seq, action, key, before, after, by_id=seq % 500 == 3)  # type: ignore[arg-type]
            seq += 1


def stored_plan(plan_id: str, job_id: str = "j1", digest: str = "d") -> StoredPlan:
    counts = dict(SHAPE)
    return StoredPlan(
        plan_id=plan_id,
        job_id=job_id,
        index=0,
        attempt=1,
        counts=PlanCounts(
            create=counts["create"],
            update=counts["update"],
            delete=counts["delete"],
            unchanged=0,
            target_size=5000,
        ),
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
        digest=digest,
    )


@pytest.fixture
async def database(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    database = mongo_client[unique_name]
    yield database
    await mongo_client.drop_database(unique_name)


async def read_all(plans: MongoPlanRepository, plan_id: str, batch: int, start: int = 0) -> Any:
    return [change async for part in plans.changes(plan_id, batch, start) for change in part]


async def test_a_plan_is_read_back_in_order_across_chunk_and_action_edges(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    await plans.ensure_indexes()
    digest = plan_digest(planned())
    await plans.save(stored_plan("p1", digest=digest), planned())

    # 1,000 changes of one action per chunk: 3 chunks of creates, 2 of updates, 1 of deletes.
    chunks = database["plan_chunks"]
    assert await chunks.count_documents({"plan_id": "p1"}) == 6
    second = await chunks.find_one({"_id": chunk_id("p1", "update", 1)})
    assert second is not None
    assert [c["seq"] for c in stored_changes(second, chunks.codec_options)] == [3500]
    document = await database["plans"].find_one({"_id": "p1"})
    assert document is not None
    assert document["changes"] == TOTAL
    assert document["actions"] == [
        {"action": "create", "first_seq": 0, "count": 2500},
        {"action": "update", "first_seq": 2500, "count": 1001},
        {"action": "delete", "first_seq": 3501, "count": 999},
    ]

    for batch in (1, 333, 500, 1000, 5000):
        back = await read_all(plans, "p1", batch)
        assert back == list(planned()), batch
    # The apply reads batches of its own size, and sees exactly what was digested.
    batches = [len(b) async for b in plans.changes("p1", 700)]
    assert batches == [700] * 6 + [TOTAL - 4200]
    assert plan_digest(await read_all(plans, "p1", 500)) == digest
    # Taken up again after a crash, from any seq: inside a chunk, at an action's edge.
    for start in (1, 999, 1000, 2499, 2500, 3500, 3501, TOTAL - 1):
        assert await read_all(plans, "p1", 500, start) == list(planned())[start:], start
    assert await read_all(plans, "p1", 500, TOTAL) == []


async def test_pages_per_action_and_in_plan_order_cross_chunk_edges(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    await plans.save(stored_plan("p1"), planned())
    everything = list(planned())
    by_action = {
        action: [c for c in everything if c.action == action] for action in ("create", "update")
    }

    def shown(change: PlannedChange) -> dict[str, Any]:
        return {
            "seq": change.seq,
            "action": change.action,
            "key": change.key,
            "before": change.before,
            "after": change.after,
            **({"by_id": True} if change.by_id else {}),
        }

    cases: list[tuple[str | None, int, int]] = [
        ("create", 1, 10),
        ("create", 34, 30),  # creates 990-1019: the end of chunk 0 and the start of chunk 1
        ("create", 25, 100),  # the last page, deep
        ("update", 11, 100),  # updates 1000-1000: the one change of the second update chunk
        ("update", 1, 100),
        (None, 84, 30),  # seqs 2490-2519: the last creates, then the first updates
        (None, 45, 100),  # the last page of the plan: deletes 4400-4499
    ]
    for action, page, size in cases:
        found = await list_planned_changes(database, "p1", action, page, size)  # type: ignore[arg-type]
        source = everything if action is None else by_action[action]
        assert found.total == len(source)
        assert found.items == [shown(c) for c in source[(page - 1) * size : page * size]], (
            action,
            page,
            size,
        )
    beyond = await list_planned_changes(database, "p1", "update", 12, 100)
    assert (beyond.items, beyond.total) == ([], 1001)
    none = await list_planned_changes(database, "p1", "delete", 1, 10)
    assert [c["action"] for c in none.items] == ["delete"] * 10


class _Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate", "count"):
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_deep_page_is_two_reads_by_id_and_no_skip(
    database: AsyncDatabase[dict[str, Any]], mongo_settings: MongoSettings
) -> None:
    await MongoPlanRepository(database).save(stored_plan("p1"), planned())
    finds = _Finds()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_settings.uri, event_listeners=[finds]
    )
    try:
        page = await list_planned_changes(client[database.name], "p1", "create", 67, 30)
    finally:
        await client.close()
    assert [c["seq"] for c in page.items] == list(range(1980, 2010))
    # The plan document, then chunks 1 and 2 of the creates by `_id`: nothing counted, skipped
    # or sorted over the plan.
    assert [c["find"] for c in finds.commands] == ["plans", "plan_chunks"]
    chunk_read = finds.commands[1]
    assert chunk_read["filter"] == {
        "_id": {"$in": [chunk_id("p1", "create", 1), chunk_id("p1", "create", 2)]}
    }
    assert "skip" not in chunk_read
    assert "sort" not in chunk_read


async def test_the_plan_document_is_written_after_all_its_chunks(
    database: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One chunk per insert, so chunks are stored before the stream breaks.
    monkeypatch.setattr(mongo_plans, "CHUNKS_PER_INSERT", 1)
    plans = MongoPlanRepository(database)

    def failing() -> Iterator[PlannedChange]:
        for change in planned():
            if change.seq == 3000:
                raise OSError("the planner's disk went away")
            yield change

    with pytest.raises(OSError, match="disk went away"):
        await plans.save(stored_plan("broken"), failing())
    assert await database["plan_chunks"].count_documents({"plan_id": "broken"}) >= 2
    # Chunks without their plan document are no plan: not read, not paged.
    assert await database["plans"].find_one({"_id": "broken"}) is None
    assert await read_all(plans, "broken", 500) == []
    page = await list_planned_changes(database, "broken", None, 1, 10)
    assert (page.items, page.total) == ([], 0)
    # What it had written goes with the plan (or its job).
    await plans.delete("broken")
    assert await database["plan_chunks"].count_documents({"plan_id": "broken"}) == 0


async def test_a_plan_out_of_order_is_refused_before_it_is_stored(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    shuffled = list(planned((("create", 3),)))[::-1]
    with pytest.raises(PlanOrderError, match="seq 2 where 0 was due"):
        await plans.save(stored_plan("p1"), shuffled)
    mixed = [
        PlannedChange(0, "create", "a", None, {"uid": "a"}),
        PlannedChange(1, "update", "b", {}, {"uid": "b"}),
        PlannedChange(2, "create", "c", None, {"uid": "c"}),
    ]
    with pytest.raises(PlanOrderError, match="create changes are not grouped"):
        await plans.save(stored_plan("p2"), mixed)
    assert await database["plans"].count_documents({}) == 0


async def test_a_chunk_too_large_for_one_document_is_stored_in_parts(
    database: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records with photos: a thousand changes over what one document may hold. The part size
    # is lowered so the test stores kilobytes, not megabytes.
    monkeypatch.setattr(mongo_plans, "PART_BYTES", 40_000)
    photo = "x" * 1000
    changes = [
        PlannedChange(i, "create", f"k{i}", None, {"uid": f"k{i}", "photo": photo})
        for i in range(1200)
    ]
    plans = MongoPlanRepository(database)
    await plans.save(stored_plan("p1"), changes)
    first = await database["plan_chunks"].find_one({"_id": chunk_id("p1", "create", 0)})
    assert first is not None
    assert first["parts"] > 1
    assert await read_all(plans, "p1", 333) == changes
    page = await list_planned_changes(database, "p1", "create", 10, 100)
    assert [c["seq"] for c in page.items] == list(range(900, 1000))
    await plans.delete("p1")
    assert await database["plan_chunks"].count_documents({}) == 0


async def test_a_chunk_holds_its_changes_as_one_compressed_value_read_back_with_their_types(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    # Dates, bytes, nested lists and integers as an SQL or directory target hands them over:
    # the apply and the pages must see them as they were planned (a date time-zone aware, as
    # the services' codec options read every other date).
    hired = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    changes = [
        PlannedChange(
            i,
            "update",
            f"k{i}",
            {"uid": f"k{i}", "hired": hired, "photo": b"\x00\xff" * 3, "groups": ["a"]},
            {"uid": f"k{i}", "hired": hired, "photo": b"\x01", "groups": ["a", "b"], "n": i},
        )
        for i in range(1500)
    ]
    plans = MongoPlanRepository(database)
    await plans.save(stored_plan("p1"), changes)

    chunks = database["plan_chunks"]
    first = await chunks.find_one({"_id": chunk_id("p1", "update", 0)})
    assert first is not None
    assert (first["encoding"], "changes" in first) == ("bson+zlib", False)
    # Smaller than its changes as plain BSON: what the server stores for a million changes.
    plain = bson.encode({"changes": stored_changes(first, chunks.codec_options)})
    assert len(first["encoded"]) * 4 < len(plain)
    back = await read_all(plans, "p1", 700)
    # Equal only with the date aware: Python never finds a naive datetime equal to an aware one.
    assert back == changes
    page = await list_planned_changes(database, "p1", "update", 10, 100)
    assert [(c["seq"], c["after"]["hired"]) for c in page.items][:1] == [(900, hired)]


async def test_a_plan_digested_as_it_is_stored_records_the_digest_of_what_it_stored(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    # A directory's plan: its changes placed (a DN each) only as they are stored, and digested
    # in that same pass; the plan document records that digest, and the apply reads the same.
    placed = (replace(c, dn=f"uid={c.key},ou=people") for c in planned())
    plans = MongoPlanRepository(database)
    recorded = await plans.save(replace(stored_plan("p1"), digest=None), placed, PlanDigester())
    document = await database["plans"].find_one({"_id": "p1"})
    assert document is not None
    back = await read_all(plans, "p1", 1000)
    assert recorded == document["digest"] == plan_digest(back)
    assert recorded != plan_digest(planned())
    assert back[0].dn == "uid=0,ou=people"

    with pytest.raises(ValueError, match="plan p2: no digest, and no digester"):
        await plans.save(replace(stored_plan("p2"), digest=None), planned())
    assert await database["plan_chunks"].count_documents({"plan_id": "p2"}) == 0


async def test_chunks_stored_as_plain_arrays_are_still_read(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Plans stored before chunks were compressed: applied and paged as they are."""
    plans = MongoPlanRepository(database)
    await plans.save(stored_plan("p1"), planned())
    chunks = database["plan_chunks"]
    async for document in chunks.find({"plan_id": "p1"}):
        changes = stored_changes(document, chunks.codec_options)
        del document["encoding"], document["encoded"]
        await chunks.replace_one({"_id": document["_id"]}, {**document, "changes": changes})
    assert await chunks.count_documents({"encoding": {"$exists": True}}) == 0

    assert await read_all(plans, "p1", 333) == list(planned())
    page = await list_planned_changes(database, "p1", "create", 25, 100)
    assert [c["seq"] for c in page.items] == list(range(2400, 2500))


async def test_a_chunk_in_an_unknown_encoding_is_refused_by_name(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    await plans.save(stored_plan("p1"), planned())
    await database["plan_chunks"].update_one(
        {"_id": chunk_id("p1", "create", 1)}, {"$set": {"encoding": "lz4"}}
    )
    with pytest.raises(ValueError, match="plan chunk p1:create:1: unknown encoding 'lz4'"):
        await read_all(plans, "p1", 1000)


async def test_a_plan_stored_one_document_per_change_is_still_read_and_deleted(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """Plans stored before chunks: applied, paged and deleted as they are, until their jobs
    go (no migration)."""
    await database["plan_changes"].insert_many(
        [
            {
                "plan_id": "old",
                "job_id": "j-old",
                "index": 0,
                "seq": seq,
                "action": action,
                "key": f"k{seq}",
                "before": None if action == "create" else {"n": seq},
                "after": None if action == "delete" else {"uid": f"k{seq}"},
            }
            for seq, action in enumerate(["create"] * 3 + ["update"] * 2 + ["delete"])
        ]
    )
    await database["plans"].insert_one(
        {"_id": "old", "plan_id": "old", "job_id": "j-old", "index": 0, "digest": "d"}
    )
    plans = MongoPlanRepository(database)
    back = await read_all(plans, "old", 4, start=1)
    assert [(c.seq, c.action) for c in back] == [
        (1, "create"),
        (2, "create"),
        (3, "update"),
        (4, "update"),
        (5, "delete"),
    ]
    page = await list_planned_changes(database, "old", "update", 1, 10)
    assert ([c["seq"] for c in page.items], page.total) == ([3, 4], 2)
    assert await plans.delete_job_plans("j-old") == 1
    assert await database["plan_changes"].count_documents({}) == 0


async def test_deleting_a_plan_or_a_job_takes_every_chunk(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    await plans.ensure_indexes()
    for plan_id, job_id in (("p1", "gone"), ("p2", "gone"), ("p3", "kept"), ("p4", "kept")):
        await plans.save(stored_plan(plan_id, job_id), planned())
    await plans.delete("p4")
    assert await plans.delete_job_plans("gone") == 2
    assert await database["plans"].distinct("_id") == ["p3"]
    assert await database["plan_chunks"].distinct("plan_id") == ["p3"]
    assert await read_all(plans, "p3", 1000) == list(planned())


async def test_a_sequences_superseded_plans_go_and_its_current_plan_and_others_stay(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    await plans.ensure_indexes()
    small = (("create", 1200),)
    for plan_id, job_id, index in (
        ("attempt-1", "j1", 0),
        ("attempt-2", "j1", 0),
        ("current", "j1", 0),
        ("next-sequence", "j1", 1),
        ("other-job", "j2", 0),
    ):
        await plans.save(replace(stored_plan(plan_id, job_id), index=index), planned(small))
    assert await plans.delete_superseded("j1", 0, "current") == 2
    assert sorted(await database["plans"].distinct("_id")) == [
        "current",
        "next-sequence",
        "other-job",
    ]
    assert sorted(await database["plan_chunks"].distinct("plan_id")) == [
        "current",
        "next-sequence",
        "other-job",
    ]
    assert await read_all(plans, "current", 1000) == list(planned(small))
    assert await plans.delete_superseded("j1", 0, "current") == 0


async def test_disables_are_paged_as_their_own_action_with_their_dn(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A directory that disables rather than deletes: the operator filters the disables apart
    from the deletions (as the counts show them), deep pages included, each with its DN."""
    plans = MongoPlanRepository(database)
    changes = [
        replace(change, dn=f"uid={change.key},ou=people,dc=example,dc=org")
        for change in planned((("create", 5), ("disable", 1005)))
    ]
    await plans.save(stored_plan("p1"), changes)
    page = await list_planned_changes(database, "p1", "disable", 11, 100)
    assert page.total == 1005
    assert [(c["seq"], c["action"]) for c in page.items] == [
        (seq, "disable") for seq in range(1005, 1010)
    ]
    assert page.items[0]["dn"] == f"uid={page.items[0]['key']},ou=people,dc=example,dc=org"
    assert (await list_planned_changes(database, "p1", "delete", 1, 100)).total == 0
    assert (await list_planned_changes(database, "p1", "create", 1, 100)).total == 5
    assert [c.dn for c in await read_all(plans, "p1", 1000)] == [c.dn for c in changes]


async def test_a_plan_without_changes_is_stored_and_read_as_empty(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    plans = MongoPlanRepository(database)
    await plans.save(stored_plan("nothing"), [])
    document = await database["plans"].find_one({"_id": "nothing"})
    assert document is not None
    assert (document["changes"], document["actions"]) == (0, [])
    assert await read_all(plans, "nothing", 500) == []
    page = await list_planned_changes(database, "nothing", None, 1, 10)
    assert (page.items, page.total) == ([], 0)
