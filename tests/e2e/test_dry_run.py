"""A dry run through the running system: every sequence planned against the target as it is,
decided by the guard, shown with its plan and counts, and nothing written."""

import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from provisioning_common.events import parse_job_event
from provisioning_common.topics import JOB_EVENTS
from pymongo import AsyncMongoClient

from tests.e2e.conftest import System
from tests.e2e.test_api_operator_flow import auth, wait_for_status, write_csv

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]


async def snapshot(client: AsyncMongoClient[dict[str, Any]], db: str, name: str) -> list[Any]:
    return [doc async for doc in client[db][name].find({}).sort("_id", 1)]


async def test_a_dry_run_shows_every_plan_and_writes_nothing(
    system: System, http: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:8]
    definition_id, people, groups = f"e2e-dry-{run}", f"people_{run}", f"groups_{run}"
    write_csv(system.data_dir / "dry" / f"{run}-people.csv", ["u1", "u2", "u5"])
    write_csv(system.data_dir / "dry" / f"{run}-groups.csv", ["g1", "g2"])
    created = await http.post(
        "/api/v1/job-definitions",
        json={
            "id": definition_id,
            "name": "People and groups",
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "csv", "path": f"dry/{run}-people.csv"},
                    "target": {"type": "mongo", "collection": people},
                    "key": "uid",
                    "delete_missing": True,
                    "thresholds": {"delete": {"count": 2}},
                },
                {
                    "name": "groups",
                    "source": {"type": "csv", "path": f"dry/{run}-groups.csv"},
                    "target": {"type": "mongo", "collection": groups},
                    "key": "uid",
                    "thresholds": {"create": {"count": 100}},
                },
            ],
        },
        headers=auth(keys, "admin"),
    )
    assert created.status_code == 201, created.text
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri)
    try:
        target = client[system.target_db][people]
        await target.insert_many(
            [{"_id": u, "uid": u, "mail": "old@example.org"} for u in ("u1", "u2", "u3", "u4")]
        )
        before = await snapshot(client, system.target_db, people)

        submitted = await http.post(
            "/api/v1/jobs",
            json={
                "request_id": f"e2e-dry-{run}",
                "definition_id": definition_id,
                "dry_run": True,
            },
            headers=auth(keys, "operator"),
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        job = await wait_for_status(http, keys, job_id, "COMPLETED")

        assert job["dry_run"] is True
        first, second = job["sequences"]
        # The first plan would stop at its threshold (two deletions): shown as for a blocked
        # sequence, and the dry run went on to plan the next sequence instead of waiting.
        assert first["planned"]["create"] == 1
        assert first["planned"]["update"] == 2
        assert first["planned"]["delete"] == 2
        assert first["threshold"]["action"] == "delete"
        assert first["threshold"]["actual"] == 2
        assert second["planned"]["create"] == 2
        for sequence in (first, second):
            assert sequence["status"] == "COMPLETED"
            assert sequence["applied"] == {"create": 0, "update": 0, "delete": 0, "disable": 0}
        changes = await http.get(
            f"/api/v1/jobs/{job_id}/sequences/0/changes",
            params={"action": "delete"},
            headers=auth(keys, "viewer"),
        )
        assert changes.status_code == 200, changes.text
        assert {c["key"] for c in changes.json()["items"]} == {"u3", "u4"}

        # Nothing written: the target exactly as it was, the second collection never made.
        assert await snapshot(client, system.target_db, people) == before
        assert groups not in await client[system.target_db].list_collection_names()
        listed = await http.get(
            "/api/v1/jobs", params={"definition_id": definition_id}, headers=auth(keys, "viewer")
        )
        assert [item["dry_run"] for item in listed.json()["items"]] == [True]
    finally:
        await client.close()

    # Marked in the events too: the request, each sequence's end and the job's end.
    consumer = AIOKafkaConsumer(
        system.topic(JOB_EVENTS),
        bootstrap_servers=system.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000, max_records=100_000)
    finally:
        await consumer.stop()
    events = [parse_job_event(r.value) for rs in batches.values() for r in rs]
    marks = {
        e.type.removeprefix("provisioning."): getattr(e.data, "dry_run", None)
        for e in events
        if e.subject == job_id
    }
    assert marks["JobCreated"] is True
    assert marks["SequenceCompleted"] is True
    assert marks["JobCompleted"] is True
