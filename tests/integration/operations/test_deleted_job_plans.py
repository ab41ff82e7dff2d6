"""The runner's plans on the real database: deleting a job's plans removes them and their
planned changes, and nothing of another job."""

from datetime import UTC, datetime
from typing import Any

import pytest
from provisioning_common.events import PlanCounts
from pymongo import AsyncMongoClient
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.ports import StoredPlan

pytestmark = [pytest.mark.mongo]


async def test_a_deleted_jobs_plans_and_changes_are_gone_and_no_others(
    mongo_client: AsyncMongoClient[Any], unique_name: str
) -> None:
    db = mongo_client[unique_name]
    plans = MongoPlanRepository(db)
    await plans.ensure_indexes()
    for plan_id, job_id in (("p1", "gone"), ("p2", "gone"), ("p3", "kept")):
        await plans.save(
            StoredPlan(
                plan_id=plan_id,
                job_id=job_id,
                index=0,
                attempt=1,
                counts=PlanCounts(create=2, update=0, delete=0, unchanged=0, target_size=0),
                created_at=datetime(2026, 12, 6, tzinfo=UTC),
                digest="d",
            ),
            [PlannedChange(i, "create", f"k{i}", None, {"uid": f"k{i}"}) for i in range(2)],
        )
    assert await plans.delete_job_plans("gone") == 2
    assert await plans.delete_job_plans("gone") == 0
    left = {doc["job_id"] async for doc in db["plans"].find({})}
    assert left == {"kept"}
    assert {doc["plan_id"] async for doc in db["plan_chunks"].find({})} == {"p3"}
