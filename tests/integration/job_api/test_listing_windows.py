"""Job instance pages read range by range down the date indexes, against the real MongoDB wire
server: dates on every window's edges, ties, nulls, and jobs older than every window."""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from job_api.adapters.job_instances import JobInstanceStore
from job_api.views import (
    Cursor,
    JobInstanceQuery,
    Sort,
    list_job_instances,
    window_filters,
)
from provisioning_common.statuses import JobStatus
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.integration.api.harness import job_doc

pytestmark = [pytest.mark.mongo]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
STATUSES = ("COMPLETED", "FAILED", "QUEUED", "RUNNING")


def edges() -> list[datetime]:
    """Each window's lowest date, from the walk itself."""
    ranges = window_filters(JobInstanceQuery(), NOW)
    assert ranges is not None
    return [r["created_at"]["$gt"] + MS for r in ranges if "$gt" in (r["created_at"] or {})]


def jobs() -> list[dict[str, Any]]:
    """Jobs on, just above and just below every window edge (two on each: ties), one ahead of
    the clock, some older than the last window, and an archived one on an edge."""
    dates = [NOW + timedelta(days=1), NOW, NOW - timedelta(days=5000)]
    for edge in edges():
        dates += [edge + MS, edge, edge, edge - MS]
    docs = []
    for i, created in enumerate(dates):
        status = STATUSES[i % len(STATUSES)]
        # A started date shifted by whole hours, so the started_at walk meets other edges;
        # queued jobs have none (null, listed last newest-first).
        started = None if status == "QUEUED" else created + timedelta(hours=i % 3)
        docs.append(
            job_doc(
                status=status,
                created_at=created,
                started_at=started,
                job_id=f"job-{i:03d}",
            )
        )
    docs.append(job_doc(created_at=edges()[0], archived=True, job_id="job-archived"))
    return docs


@pytest.fixture
async def db(
    mongo_client: AsyncMongoClient[dict[str, Any]], unique_name: str
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    database = mongo_client[unique_name]
    await JobInstanceStore(database).ensure_indexes()
    await database["job_instances"].insert_many(jobs())
    yield database
    await mongo_client.drop_database(unique_name)


def expected(sort: Sort, keep: Any = lambda doc: True) -> list[str]:
    """MongoDB's order: null below every value, ties broken by _id in the sort's direction."""
    docs = [d for d in jobs() if not d["archived"] and keep(d)]

    def key(doc: dict[str, Any]) -> tuple[Any, ...]:
        value = doc[sort.field]
        return (0, NOW, doc["_id"]) if value is None else (1, value, doc["_id"])

    return [d["_id"] for d in sorted(docs, key=key, reverse=sort.descending)]


async def walk(db: AsyncDatabase[dict[str, Any]], query: JobInstanceQuery) -> list[str]:
    """Every page by cursor, from the first."""
    page = await list_job_instances(db, query, now=NOW)
    assert page.total is not None
    seen = [item.id for item in page.items]
    while page.next_cursor is not None:
        following = replace(query, cursor=Cursor.decode(page.next_cursor))
        page = await list_job_instances(db, following, now=NOW)
        assert page.total is None
        seen += [item.id for item in page.items]
        assert len(seen) <= 200, "the cursor does not move on"
    return seen


@pytest.mark.parametrize("page_size", [1, 3, 7])
@pytest.mark.parametrize("sort", ["-created_at", "-started_at", "started_at", "created_at"])
async def test_cursor_pages_list_every_job_once_in_order(
    db: AsyncDatabase[dict[str, Any]], sort: str, page_size: int
) -> None:
    query = JobInstanceQuery(sort=Sort.parse(sort), page_size=page_size)
    assert await walk(db, query) == expected(query.sort)


@pytest.mark.parametrize("page_size", [2, 5])
async def test_one_status_is_walked_on_its_own_index(
    db: AsyncDatabase[dict[str, Any]], page_size: int
) -> None:
    query = JobInstanceQuery(statuses=(JobStatus.FAILED,), page_size=page_size)
    assert await walk(db, query) == expected(query.sort, lambda d: d["status"] == "FAILED")


async def test_creation_dates_asked_for_bound_the_walk(db: AsyncDatabase[dict[str, Any]]) -> None:
    first, second = edges()[1], edges()[3]
    query = JobInstanceQuery(created_from=second, created_to=first, page_size=3)
    inside = expected(query.sort, lambda d: second <= d["created_at"] <= first)
    assert await walk(db, query) == inside
    # Both dates are inclusive: on the newer edge the two ties and the one below it, all four
    # around the edge between, on the older edge the one above and the two ties.
    assert len(inside) == 3 + 4 + 3


async def test_the_first_page_by_number_is_the_newest_with_the_total(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    page = await list_job_instances(db, JobInstanceQuery(page_size=4), now=NOW)
    assert [item.id for item in page.items] == expected(Sort.parse("-created_at"))[:4]
    assert page.total == len(expected(Sort.parse("-created_at")))
    assert page.next_cursor is not None
