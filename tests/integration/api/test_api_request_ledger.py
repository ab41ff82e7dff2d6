"""A request id sent again is answered from the request ledger, never run twice (issue 8, defect 1).

Before the ledger, duplicates were decided from the read model only: after a job was deleted
(or while the read model was rebuilt) the same request published a JobCreated that the runner
ignored, and the API showed a job QUEUED for ever.
"""

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.topics import JOB_EVENTS, JOB_REQUESTS

from tests.integration.api.harness import (
    T0,
    ApiHarness,
    definition_body,
    insert_jobs,
    job_doc,
    job_request,
    messages_about,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def a_completed_then_deleted_job(api: ApiHarness) -> tuple[dict[str, Any], str]:
    definition_id = f"ledger-{uuid.uuid4().hex[:8]}"
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body(definition_id), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    body = job_request(definition_id)
    submitted = await api.client.post("/api/v1/jobs", json=body, headers=api.auth("operator"))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    # The runner completed it, as the projector would show.
    await api.db["job_instances"].update_one({"_id": job_id}, {"$set": {"status": "COMPLETED"}})
    deleted = await api.client.delete(f"/api/v1/jobs/{job_id}", headers=api.auth("admin"))
    assert deleted.status_code == 204, deleted.text
    return body, job_id


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("provisioning.") for e in events]


async def test_a_request_of_a_deleted_job_sent_again_over_http_is_refused_naming_both(
    api: ApiHarness,
) -> None:
    body, job_id = await a_completed_then_deleted_job(api)

    again = await api.client.post("/api/v1/jobs", json=body, headers=api.auth("operator"))

    assert again.status_code == 409, again.text
    detail = again.json()["detail"]
    assert repr(body["request_id"]) in detail
    assert f"job {job_id}" in detail
    assert "deleted by admin" in detail
    assert "send a new request_id" in detail
    # Nothing is left QUEUED for a runner that will never run it.
    missing = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))
    assert missing.status_code == 404
    events = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 3
    )
    assert types(events) == ["JobCreated", "JobDeleted", "JobRejected"]
    assert events[-1]["data"]["reason"] == detail


async def test_a_request_of_a_deleted_job_sent_again_on_kafka_is_rejected_naming_both(
    api: ApiHarness,
) -> None:
    body, job_id = await a_completed_then_deleted_job(api)

    producer = AIOKafkaProducer(**api.kafka.to_aiokafka_params())
    await producer.start()
    try:
        await producer.send_and_wait(
            api.kafka.topic(JOB_REQUESTS), json.dumps(body).encode(), key=job_id.encode()
        )
    finally:
        await producer.stop()

    events = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 3
    )
    assert types(events) == ["JobCreated", "JobDeleted", "JobRejected"]
    reason = events[-1]["data"]["reason"]
    assert repr(body["request_id"]) in reason
    assert f"job {job_id}" in reason
    assert events[-1]["data"]["origin"] == "kafka"
    missing = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))
    assert missing.status_code == 404


async def test_a_request_sent_again_while_the_read_model_is_rebuilt_is_the_same_job(
    api: ApiHarness,
) -> None:
    definition_id = f"ledger-{uuid.uuid4().hex[:8]}"
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body(definition_id), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    body = job_request(definition_id)
    job_id = job_id_for_request(body["request_id"])
    first = await api.client.post("/api/v1/jobs", json=body, headers=api.auth("operator"))
    assert first.status_code == 202, first.text
    # A rebuild dropped the read model and has not folded this job again yet.
    await api.db["job_instances"].delete_one({"_id": job_id})

    again = await api.client.post("/api/v1/jobs", json=body, headers=api.auth("operator"))

    assert again.status_code == 202, again.text
    assert again.json() == {"id": job_id, "status": None}
    # No second JobCreated (which the runner would ignore) and no QUEUED copy of the job.
    assert await api.db["job_instances"].find_one({"_id": job_id}) is None
    events = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 1
    )
    assert types(events) == ["JobCreated"]


async def test_jobs_older_than_the_ledger_are_found_by_their_instance_or_tombstone(
    api: ApiHarness,
) -> None:
    """A database from before the ledger: the request ids it handled are still answered."""
    definition_id = f"ledger-{uuid.uuid4().hex[:8]}"
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body(definition_id), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    living, deleted = job_request(definition_id), job_request(definition_id)
    living_id = job_id_for_request(living["request_id"])
    deleted_id = job_id_for_request(deleted["request_id"])
    await insert_jobs(
        api, {**job_doc(status="RUNNING", job_id=living_id), "request_id": living["request_id"]}
    )
    await api.db["job_tombstones"].insert_one(
        {"_id": deleted_id, "deleted_by": "ops-0", "deleted_at": T0, "projection": None}
    )

    same = await api.client.post("/api/v1/jobs", json=living, headers=api.auth("operator"))
    assert same.json() == {"id": living_id, "status": "RUNNING"}
    refused = await api.client.post("/api/v1/jobs", json=deleted, headers=api.auth("operator"))
    assert refused.status_code == 409, refused.text
    assert f"job {deleted_id}, since deleted by ops-0" in refused.json()["detail"]
    # Both are in the ledger from now on.
    entries = {e["_id"]: e async for e in api.db["request_ledger"].find({})}
    assert entries[living["request_id"]]["deleted_at"] is None
    assert entries[deleted["request_id"]]["deleted_by"] == "ops-0"
