"""Listing job instances against raw PyMongo queries of the same page, shallow and deep."""

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from job_api.adapters.job_instances import JobInstanceStore
from job_api.views import Cursor, JobInstanceQuery, list_job_instances
from provisioning_common.settings import MongoSettings

from bench.timing import best_of, report


def job_instance(i: int, start: datetime) -> dict[str, Any]:
    created = start + timedelta(seconds=i)
    job_id = str(uuid.UUID(int=i))
    return {
        "_id": job_id,
        "id": job_id,
        "request_id": f"r{i}",
        "definition_id": "hr-import" if i % 2 else "contractors-import",
        "definition_name": "HR import",
        "status": "COMPLETED",
        "archived": i % 50 == 0,
        "origin": "kafka",
        "requested_by": "hr-feed",
        "created_at": created,
        "started_at": created,
        "ended_at": created + timedelta(seconds=3),
        "sequences": [{"index": 0, "name": "employees", "status": "COMPLETED"}],
    }


async def main(count: int = 5_000) -> list[str]:
    settings = MongoSettings(uri=os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017"))
    client = settings.client()
    db = client[f"bench_{uuid.uuid4().hex[:8]}"]
    try:
        await JobInstanceStore(db).ensure_indexes()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        await db["job_instances"].insert_many([job_instance(i, start) for i in range(count)])
        raw_filter = {"archived": False}
        raw_sort = [("created_at", -1), ("_id", -1)]

        async def ours_first() -> None:
            await list_job_instances(db, JobInstanceQuery())

        async def raw_first() -> None:
            await db["job_instances"].count_documents(raw_filter)
            _ = [d async for d in db["job_instances"].find(raw_filter).sort(raw_sort).limit(10)]

        deep_page = (count // 10) * 9 // 10
        skip = (deep_page - 1) * 10

        async def ours_deep_offset() -> None:
            await list_job_instances(db, JobInstanceQuery(page=deep_page))

        deep_docs = db["job_instances"].find(raw_filter).sort(raw_sort).skip(skip - 1).limit(1)
        deep_doc = await deep_docs.next()
        cursor = Cursor.after(JobInstanceQuery().sort, deep_doc)

        async def ours_deep_cursor() -> None:
            await list_job_instances(db, JobInstanceQuery(cursor=cursor))

        async def raw_deep_skip() -> None:
            await db["job_instances"].count_documents(raw_filter)
            _ = [
                d
                async for d in db["job_instances"]
                .find(raw_filter)
                .sort(raw_sort)
                .skip(skip)
                .limit(10)
            ]

        return [
            report(
                f"first page of {count:,} job instances",
                await best_of(5, ours_first),
                await best_of(5, raw_first),
                "raw find+count",
            ),
            report(
                f"page {deep_page} by number (skip)",
                await best_of(5, ours_deep_offset),
                await best_of(5, raw_deep_skip),
                "raw skip    ",
            ),
            report(
                f"page {deep_page} by cursor (keyset)",
                await best_of(5, ours_deep_cursor),
                await best_of(5, raw_deep_skip),
                "raw skip    ",
            ),
        ]
    finally:
        await client.drop_database(db.name)
        await client.close()
