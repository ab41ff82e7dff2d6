"""DefinitionRepository and JobInstanceStore against the real MongoDB wire server."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from job_api.adapters.definitions import (
    DefinitionIdMismatchError,
    DefinitionNotFoundError,
    DefinitionRepository,
    DefinitionVersionConflictError,
    DuplicateDefinitionError,
)
from job_api.adapters.job_instances import JOB_INSTANCE_INDEXES, JobInstanceStore
from job_api.domain.job_instance import JobInstance
from job_api.domain.projection import DELETE, fold, fold_all
from provisioning_common.definitions import JobDefinitionBody
from provisioning_common.events import (
    JobArchived,
    JobArchivedData,
    JobDeleted,
    JobDeletedData,
    JobRejected,
    JobRejectedData,
)
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.unit.job_api.test_projection import (
    SOURCE,
    at,
    completed_job_events,
    created,
    positioned,
    two_sequence_definition,
)

pytestmark = [pytest.mark.mongo]


@pytest.fixture
async def db(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    yield mongo_client[unique_name]
    await mongo_client.drop_database(unique_name)


def body(definition_id: str = "hr-import", name: str = "HR import") -> JobDefinitionBody:
    content = two_sequence_definition(definition_id).model_dump(exclude={"version"})
    content["name"] = name
    return JobDefinitionBody.model_validate(content)


async def test_definitions_are_created_once_and_versioned_on_replace(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    definitions = DefinitionRepository(db)
    await definitions.ensure_indexes()

    created_one = await definitions.create(body())
    assert created_one.version == 1
    assert await definitions.get("hr-import") == created_one
    with pytest.raises(DuplicateDefinitionError, match="'hr-import' already exists"):
        await definitions.create(body(name="another"))

    replaced = await definitions.replace("hr-import", body(name="HR import v2"))
    assert (replaced.version, replaced.name) == (2, "HR import v2")
    assert await definitions.get("hr-import") == replaced
    again = await definitions.replace("hr-import", body(name="v3"), expected_version=2)
    assert again.version == 3

    with pytest.raises(DefinitionVersionConflictError, match="at version 3, not 2"):
        await definitions.replace("hr-import", body(name="stale"), expected_version=2)
    with pytest.raises(DefinitionNotFoundError):
        await definitions.replace("payroll", body("payroll"))
    with pytest.raises(DefinitionIdMismatchError):
        await definitions.replace("hr-import", body("payroll"))
    stored = await definitions.get("hr-import")
    assert stored is not None
    assert (stored.version, stored.name) == (3, "v3")


async def test_definitions_are_listed_page_by_page_and_deleted(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    definitions = DefinitionRepository(db)
    for i in (3, 1, 4, 2, 5):
        await definitions.create(body(f"def-{i}"))

    first, total = await definitions.list(page=1, page_size=2)
    assert total == 5
    assert [d.id for d in first] == ["def-1", "def-2"]
    last, _ = await definitions.list(page=3, page_size=2)
    assert [d.id for d in last] == ["def-5"]
    beyond, total = await definitions.list(page=4, page_size=2)
    assert (beyond, total) == ([], 5)

    assert await definitions.delete("def-3") is True
    assert await definitions.delete("def-3") is False
    assert await definitions.get("def-3") is None
    assert (await definitions.list(1, 10))[1] == 4


async def test_folds_are_stored_exactly_and_replays_change_nothing(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = JobInstanceStore(db)
    await store.ensure_indexes()
    job = created()
    log = positioned([job, *completed_job_events(job.subject)], partition=2, first_offset=50)

    for event, partition, offset in log:
        await store.apply_fold(event, partition, offset)
    expected = fold_all(log)[job.subject]
    assert await store.get(job.subject) == expected

    # Redelivery of the whole stretch: every event is skipped, the document is unchanged.
    for event, partition, offset in log:
        assert await store.apply_fold(event, partition, offset) == expected
    assert await store.get(job.subject) == expected


async def test_a_job_instance_written_by_another_projector_meanwhile_is_read_again(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    mine, other = JobInstanceStore(db), JobInstanceStore(db)
    job = created("handover-1")
    log = positioned([job, *completed_job_events(job.subject)], partition=1, first_offset=10)
    reads = 0
    get = mine.get

    async def counted_get(job_id: str) -> JobInstance | None:
        nonlocal reads
        reads += 1
        return await get(job_id)

    mine.get = counted_get  # type: ignore[method-assign]
    for entry in log[:3]:
        await mine.apply_fold(*entry)
    # Each event after the first folds into the document as this projector wrote it.
    assert reads == 1
    # The partition moves to another projector for one event, then comes back (a rebalance):
    # what this one remembers is stale, and its write must not undo the other's.
    await other.apply_fold(*log[3])
    for entry in log[4:]:
        await mine.apply_fold(*entry)
    assert reads == 2
    assert await mine.get(job.subject) == fold_all(log)[job.subject]


async def test_the_api_insert_and_the_projector_agree(db: AsyncDatabase[dict[str, Any]]) -> None:
    store = JobInstanceStore(db)
    job = created("api-1")
    provisional = fold(None, job, None, None)
    assert isinstance(provisional, JobInstance)
    assert await store.insert_if_absent(provisional) is True
    assert await store.insert_if_absent(provisional) is False

    # The projector folds the same JobCreated at its offset: the document gains its position.
    assert await store.apply_fold(job, 0, 3) == fold(None, job, 0, 3)
    assert await store.get(job.subject) == fold(None, job, 0, 3)


async def test_archive_and_delete_only_finished_jobs(db: AsyncDatabase[dict[str, Any]]) -> None:
    store = JobInstanceStore(db)
    job = created("arch-1")
    log = positioned([job, *completed_job_events(job.subject)], partition=0)
    await store.apply_fold(*log[0])
    assert await store.is_in_use("hr-import") is True
    assert await store.set_archived(job.subject, True, "admin", at(60)) is False
    assert await store.delete(job.subject) is False

    for entry in log[1:]:
        await store.apply_fold(*entry)
    assert await store.is_in_use("hr-import") is False
    archived_at = datetime(2026, 12, 1, 7, 0, 0, 5000, tzinfo=UTC)
    assert await store.set_archived(job.subject, True, "admin", archived_at) is True
    doc = await store.get(job.subject)
    assert doc is not None
    assert (doc.archived, doc.archived_by) == (True, "admin")

    # The JobArchived event the API published folds into the same fields.
    event = JobArchived(
        source=SOURCE,
        subject=job.subject,
        time=archived_at,
        data=JobArchivedData(archived_by="admin", archived=True),
    )
    folded = await store.apply_fold(event, 0, len(log))
    assert isinstance(folded, JobInstance)
    assert (folded.archived, folded.archived_by) == (True, "admin")
    assert folded.archived_at == doc.archived_at

    assert await store.delete(job.subject) is True
    assert await store.get(job.subject) is None
    deleted = JobDeleted(
        source=SOURCE, subject=job.subject, time=at(90), data=JobDeletedData(deleted_by="admin")
    )
    # The JobDeleted that follows finds nothing left to delete, but leaves its tombstone:
    # the job's history read again (a replay, a fresh consumer group) does not revive it.
    assert await store.apply_fold(deleted, 0, len(log) + 1) is DELETE
    for entry in log:
        assert await store.apply_fold(*entry) is None
    assert await store.get(job.subject) is None
    # A new request after the deletion, later on the partition, is a new job instance.
    again = await store.apply_fold(created("arch-1", t=200), 0, len(log) + 2)
    assert isinstance(again, JobInstance)
    assert again.status == "QUEUED"
    # ...which an old JobDeleted read again does not remove.
    assert await store.apply_fold(deleted, 0, len(log) + 1) is not None
    assert await store.get(job.subject) == again


async def test_rejections_are_kept_for_operators(db: AsyncDatabase[dict[str, Any]]) -> None:
    store = JobInstanceStore(db)
    await store.ensure_indexes()
    rejected = JobRejected(
        source=SOURCE,
        subject="0b6c9d52-1e4f-5d5c-9a0e-4c1e3b0b7f10",
        time=at(5),
        data=JobRejectedData(
            request_id="r-9", origin="kafka", reason="definition_id: unknown job definition 'x'"
        ),
    )
    assert await store.apply_fold(rejected, 1, 4) is None
    assert await store.apply_fold(rejected, 1, 4) is None
    (record,) = await store.rejections()
    assert record["request_id"] == "r-9"
    assert record["reason"] == "definition_id: unknown job definition 'x'"
    assert record["projection"] == {"partition": 1, "offset": 4}
    assert await store.get(rejected.subject) is None


async def test_indexes_back_every_listing(db: AsyncDatabase[dict[str, Any]]) -> None:
    store = JobInstanceStore(db)
    await store.ensure_indexes()
    await store.ensure_indexes()  # idempotent: every start of every process runs it
    keys = [list(index["key"].items()) async for index in await db["job_instances"].list_indexes()]
    for wanted in JOB_INSTANCE_INDEXES:
        assert [(k, int(v)) for k, v in wanted] in [[(k, int(v)) for k, v in got] for got in keys]
    assert [("archived", 1), ("status", 1), ("created_at", -1), ("_id", -1)] in [
        [(k, int(v)) for k, v in got] for got in keys
    ]
