"""Jobs through the real runner and guard: a job that completes, and every threshold at its
boundary (limit - 1 passes, the limit stops and nothing is written)."""

from typing import Any

import pytest
from provisioning_common.events import (
    JobCompleted,
    JobFailed,
    JobStarted,
    SequenceBlocked,
    SequenceCompleted,
    SequencePlanned,
    SequenceProgress,
)
from pymongo.asynchronous.collection import AsyncCollection
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.domain.records import PlannedChange

from tests.integration.engine.conftest import (
    EngineRig,
    created_event,
    csv_text,
    definition,
    jsonl_text,
    sequence,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def preload(collection: AsyncCollection[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    await collection.insert_many([{"_id": doc["uid"], **doc} for doc in docs])


async def status_of(engine: EngineRig, job_id: str, status: str) -> None:
    async def reached() -> bool:
        run = await engine.database["runs"].find_one({"_id": job_id})
        return run is not None and run["status"] == status

    await eventually(reached, what=f"job {job_id} at {status}")


async def test_a_two_sequence_job_completes_with_exactly_the_expected_records(
    engine: EngineRig, unique_name: str
) -> None:
    people, groups = f"{unique_name}_people", f"{unique_name}_groups"
    await preload(
        engine.target[people],
        [
            {"uid": "u1", "mail": "old@x", "sn": "One"},
            {"uid": "u2", "mail": "u2@x", "sn": "Two"},
            {"uid": "gone", "mail": "gone@x", "sn": "Gone"},
        ],
    )
    engine.write(
        f"{unique_name}/people.csv",
        csv_text(
            "employee_id,email,last_name,unused",
            ["u1,u1@x,One,a", "u2,u2@x,Two,b", "u3,u3@x,Three,c"],
        ),
    )
    engine.write(
        f"{unique_name}/groups.jsonl",
        jsonl_text([{"cn": "admins", "members": ["u1"]}, {"cn": "staff", "members": ["u2", "u3"]}]),
    )
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}/people.csv"},
                collection=people,
                mapping={"uid": "employee_id", "mail": "email", "sn": "last_name"},
                delete_missing=True,
                thresholds={"create": {"count": 10}, "delete": {"count": 2}},
            ),
            sequence(
                "groups",
                {"type": "jsonl", "path": f"{unique_name}/groups.jsonl"},
                collection=groups,
                key="cn",
                thresholds={"create": {"count": 10}},
            ),
        )
    )
    await engine.events.wait_for(job_id, JobCompleted)
    assert engine.events.types(job_id) == [
        "JobCreated",
        "JobStarted",
        "SequenceStarted",
        "SequencePlanned",
        "SequenceReleased",
        "SequenceCompleted",
        "SequenceStarted",
        "SequencePlanned",
        "SequenceReleased",
        "SequenceCompleted",
        "JobCompleted",
    ]
    first_plan = engine.events.events(job_id, SequencePlanned)[0].data.counts
    assert (first_plan.create, first_plan.update, first_plan.delete) == (1, 1, 1)
    assert (first_plan.unchanged, first_plan.target_size) == (1, 3)
    assert await engine.records(people) == {
        "u1": {"_id": "u1", "uid": "u1", "mail": "u1@x", "sn": "One"},
        "u2": {"_id": "u2", "uid": "u2", "mail": "u2@x", "sn": "Two"},
        "u3": {"_id": "u3", "uid": "u3", "mail": "u3@x", "sn": "Three"},
    }
    assert await engine.records(groups) == {
        "admins": {"_id": "admins", "cn": "admins", "members": ["u1"]},
        "staff": {"_id": "staff", "cn": "staff", "members": ["u2", "u3"]},
    }
    completed = engine.events.events(job_id, SequenceCompleted)
    assert [c.data.applied.model_dump() for c in completed] == [
        {"create": 1, "update": 1, "delete": 1, "disable": 0},
        {"create": 2, "update": 0, "delete": 0, "disable": 0},
    ]
    run = await engine.run(job_id)
    assert run["status"] == "COMPLETED"
    assert run["outbox"] == []
    stored = MongoPlanRepository(engine.database).changes(first_plan_id(engine, job_id), 100)
    assert [change async for batch in stored for change in batch] == [
        PlannedChange(
            seq=0,
            action="create",
            key="u3",
            before=None,
            after={"uid": "u3", "mail": "u3@x", "sn": "Three"},
        ),
        PlannedChange(
            seq=1,
            action="update",
            key="u1",
            before={"mail": "old@x"},
            after={"uid": "u1", "mail": "u1@x", "sn": "One"},
        ),
        PlannedChange(
            seq=2,
            action="delete",
            key="gone",
            before={"uid": "gone", "mail": "gone@x", "sn": "Gone"},
            after=None,
        ),
    ]


def first_plan_id(engine: EngineRig, job_id: str) -> str:
    plan_id: str = engine.events.events(job_id, SequencePlanned)[0].data.plan_id
    return plan_id


async def test_inline_records_come_with_the_request(engine: EngineRig, unique_name: str) -> None:
    job_id = await engine.submit(
        definition(sequence("accounts", {"type": "inline"}, collection=unique_name)),
        inputs={"accounts": [{"uid": "a1", "role": "x"}, {"uid": "a2", "role": "y"}]},
    )
    await engine.events.wait_for(job_id, JobCompleted)
    assert set(await engine.records(unique_name)) == {"a1", "a2"}


async def test_a_duplicate_job_created_makes_one_run(engine: EngineRig, unique_name: str) -> None:
    job_id = f"{unique_name}-job"
    definition_body = definition(sequence("accounts", {"type": "inline"}, collection=unique_name))
    inputs = {"accounts": [{"uid": "a1"}]}
    first = created_event(job_id, definition_body, inputs)
    await engine.publish_event(first)
    await engine.publish_event(first)
    # A second JobCreated for the same job (say, a replayed request) is the same job too.
    await engine.publish_event(created_event(job_id, definition_body, inputs))
    await engine.events.wait_for(job_id, JobCompleted)
    await engine.events.wait_for(job_id, type(first), count=3)
    assert await engine.database["runs"].count_documents({"_id": job_id}) == 1
    assert len(engine.events.events(job_id, JobStarted)) == 1
    assert len(engine.events.events(job_id, JobCompleted)) == 1


async def test_a_long_sequence_publishes_progress(engine: EngineRig, unique_name: str) -> None:
    rows = [f"u{i},u{i}@x" for i in range(2000)]
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", rows))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}.csv"},
                collection=unique_name,
                thresholds={"create": {"count": 5000}},
            )
        )
    )
    await engine.events.wait_for(job_id, JobCompleted, timeout=60)
    applying = [
        p.data for p in engine.events.events(job_id, SequenceProgress) if p.data.phase == "applying"
    ]
    assert applying, engine.events.types(job_id)
    assert all(p.total == 2000 for p in applying)
    assert applying[-1].done == 2000
    assert await engine.target[unique_name].count_documents({}) == 2000


# ---- thresholds at their boundaries -----------------------------------------------------------

TARGET = [{"uid": f"u{i}", "mail": f"u{i}@x"} for i in range(10)]


def source_rows(action: str, planned: int) -> list[str]:
    """The CSV rows that plan exactly `planned` changes of `action` against TARGET."""
    rows = [f"{r['uid']},{r['mail']}" for r in TARGET]
    if action == "create":
        return rows + [f"new{i},new{i}@x" for i in range(planned)]
    if action == "update":
        return [f"u{i},changed{i}@x" if i < planned else row for i, row in enumerate(rows)]
    return rows[planned:]


CASES = [
    pytest.param(action, kind, planned, id=f"{action}-{kind}-{planned}-{outcome}")
    for action in ("create", "update", "delete")
    for kind in ("count", "percent")
    for planned, outcome in ((2, "passes"), (3, "stops"))
]


@pytest.mark.parametrize(("action", "kind", "planned"), CASES)
async def test_a_threshold_stops_at_its_limit_and_lets_one_less_through(
    engine: EngineRig, unique_name: str, action: str, kind: str, planned: int
) -> None:
    await preload(engine.target[unique_name], [dict(r) for r in TARGET])
    before = await engine.records(unique_name)
    # 3 records, or 30 % of the 10 in the target: the limit is 3 either way.
    limit = {"count": 3} if kind == "count" else {"percent": 30}
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", source_rows(action, planned)))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}.csv"},
                collection=unique_name,
                # Deletions only when they are the action under test (a sequence that may
                # delete needs a delete threshold).
                delete_missing=action == "delete",
                thresholds={action: limit},
            )
        )
    )
    if planned < 3:
        await engine.events.wait_for(job_id, JobCompleted)
        (done,) = engine.events.events(job_id, SequenceCompleted)
        assert getattr(done.data.applied, action) == planned
        assert await engine.records(unique_name) != before
        return
    (blocked,) = await engine.events.wait_for(job_id, SequenceBlocked)
    hit = blocked.data.threshold
    assert (hit.action, hit.limit, hit.actual) == (action, kind, 3)
    assert hit.limit_value == (3 if kind == "count" else 30)
    assert hit.limit_records == (None if kind == "count" else 3)
    await status_of(engine, job_id, "THRESHOLD")
    assert await engine.records(unique_name) == before
    assert "SequenceCompleted" not in engine.events.types(job_id)


async def test_a_percent_limit_does_not_stop_a_first_load(
    engine: EngineRig, unique_name: str
) -> None:
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", [f"u{i},m" for i in range(20)]))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}.csv"},
                collection=unique_name,
                thresholds={"create": {"percent": 1}},
            )
        )
    )
    await engine.events.wait_for(job_id, JobCompleted)
    assert await engine.target[unique_name].count_documents({}) == 20


async def test_a_blocked_plan_leaves_the_target_repository_untouched(
    engine: EngineRig, unique_name: str
) -> None:
    """Issue 8, suspected: planning created the target collection and its unique index even
    when the plan was then blocked: a write while blocked."""
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", ["u1,a", "u2,b", "u3,c"]))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}.csv"},
                collection=unique_name,
                thresholds={"create": {"count": 3}},
            )
        )
    )
    await engine.events.wait_for(job_id, SequenceBlocked)
    await status_of(engine, job_id, "THRESHOLD")
    assert unique_name not in await engine.target.list_collection_names()


async def test_the_unique_key_index_is_there_once_a_plan_is_written(
    engine: EngineRig, unique_name: str
) -> None:
    job_id = await engine.submit(
        definition(sequence("people", {"type": "inline"}, collection=unique_name)),
        inputs={"people": [{"uid": "u1"}]},
    )
    await engine.events.wait_for(job_id, JobCompleted)
    indexes = await engine.target[unique_name].index_information()
    assert indexes["uid_unique"]["unique"] is True


async def test_a_new_key_that_is_the_id_of_another_record_fails_before_anything_is_written(
    engine: EngineRig, unique_name: str
) -> None:
    """Issue 8, suspected: a source key equal to the `_id` of a target record that has another
    key attribute was planned as a create, and collided with that record halfway through the
    apply (the other records of the batch written, the sequence failed)."""
    await engine.target[unique_name].insert_one({"_id": "u3", "uid": "x9", "mail": "x9@x"})
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", [f"u{i},u{i}@x" for i in range(6)]))
    job_id = await engine.submit(
        definition(
            sequence(
                "people",
                {"type": "csv", "path": f"{unique_name}.csv"},
                collection=unique_name,
                thresholds={"create": {"count": 100}},
            )
        )
    )
    (failed,) = await engine.events.wait_for(job_id, JobFailed)
    assert failed.data.reason == (
        f"{unique_name}.csv: uid='u3' is new, but the target record with uid='x9' has _id "
        "'u3', which the new record would be stored under; give one of them another key"
    )
    assert engine.events.events(job_id, SequencePlanned) == []
    assert await engine.target[unique_name].count_documents({}) == 1


async def test_two_jobs_on_one_target_are_planned_and_written_one_after_the_other(
    engine: EngineRig, unique_name: str
) -> None:
    """Issue 8, suspected: two jobs could plan and write one target collection at once, each
    planned against a target the other was changing. One after the other, the second sees what
    the first wrote: 100 people are created once, and found unchanged by the other job."""
    engine.write(f"{unique_name}.csv", csv_text("uid,mail", [f"u{i},u{i}@x" for i in range(100)]))
    people = sequence(
        "people",
        {"type": "csv", "path": f"{unique_name}.csv"},
        collection=unique_name,
        thresholds={"create": {"count": 1000}},
    )
    first = await engine.submit(definition(people))
    second = await engine.submit(definition(people))
    await engine.events.wait_for(first, JobCompleted)
    await engine.events.wait_for(second, JobCompleted)
    planned = [
        engine.events.events(job_id, SequencePlanned)[0].data.counts for job_id in (first, second)
    ]
    assert sorted((c.create, c.unchanged) for c in planned) == [(0, 100), (100, 0)]
    assert await engine.target[unique_name].count_documents({}) == 100
