"""Job definitions CRUD with its 409s and readable 422s, and job submission through POST /jobs."""

import uuid
from typing import Any

import pytest
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.topics import JOB_EVENTS

from tests.integration.api.harness import ApiHarness, definition_body, job_request, messages_about

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


def new_id() -> str:
    return f"def-{uuid.uuid4().hex[:8]}"


async def create(api: ApiHarness, body: dict[str, Any]) -> Any:
    return await api.client.post("/api/v1/job-definitions", json=body, headers=api.auth("admin"))


async def test_create_read_list_replace_delete(api: ApiHarness) -> None:
    definition_id = new_id()
    created = await create(api, definition_body(definition_id))
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1

    read = await api.client.get(
        f"/api/v1/job-definitions/{definition_id}", headers=api.auth("viewer")
    )
    assert read.status_code == 200
    assert read.json()["sequences"][0]["thresholds"]["delete"]["count"] == 10

    listed = await api.client.get(
        "/api/v1/job-definitions", params={"page_size": 100}, headers=api.auth("viewer")
    )
    assert definition_id in {d["id"] for d in listed.json()["items"]}

    replaced = await api.client.put(
        f"/api/v1/job-definitions/{definition_id}",
        json=definition_body(definition_id, name="HR import, v2"),
        headers=api.auth("admin"),
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["name"]) == (2, "HR import, v2")

    deleted = await api.client.delete(
        f"/api/v1/job-definitions/{definition_id}", headers=api.auth("admin")
    )
    assert deleted.status_code == 204
    gone = await api.client.get(
        f"/api/v1/job-definitions/{definition_id}", headers=api.auth("viewer")
    )
    assert gone.status_code == 404
    assert definition_id in gone.json()["detail"]


async def test_a_duplicate_id_is_409(api: ApiHarness) -> None:
    definition_id = new_id()
    assert (await create(api, definition_body(definition_id))).status_code == 201
    again = await create(api, definition_body(definition_id))
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


async def test_replace_refuses_another_id_an_unknown_id_and_a_stale_version(
    api: ApiHarness,
) -> None:
    definition_id = new_id()
    assert (await create(api, definition_body(definition_id))).status_code == 201
    mismatch = await api.client.put(
        f"/api/v1/job-definitions/{definition_id}",
        json=definition_body("other-id"),
        headers=api.auth("admin"),
    )
    assert mismatch.status_code == 422
    assert "other-id" in mismatch.json()["detail"]
    unknown = new_id()
    missing = await api.client.put(
        f"/api/v1/job-definitions/{unknown}",
        json=definition_body(unknown),
        headers=api.auth("admin"),
    )
    assert missing.status_code == 404
    stale = await api.client.put(
        f"/api/v1/job-definitions/{definition_id}",
        params={"expected_version": 7},
        json=definition_body(definition_id),
        headers=api.auth("admin"),
    )
    assert stale.status_code == 409
    assert "version 1" in stale.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"thresholds": {}}, "thresholds", "at least one threshold"),
        ({"source": {"type": "csv", "path": "../etc/passwd"}}, "path", "inside the data folder"),
        ({"source": {"type": "scim"}}, "source", "csv"),
        ({"thresholds": {"delete": {}}}, "delete", "count, a percent"),
    ],
)
async def test_an_invalid_definition_is_422_naming_the_field(
    api: ApiHarness, change: dict[str, Any], field: str, words: str
) -> None:
    body = definition_body(new_id())
    body["sequences"][0].update(change)
    response = await create(api, body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(field in map(str, e["loc"]) or field in e["msg"] for e in errors), errors
    assert any(words in e["msg"] for e in errors), errors


async def test_a_definition_used_by_an_unfinished_job_cannot_be_deleted(api: ApiHarness) -> None:
    definition_id = new_id()
    assert (await create(api, definition_body(definition_id))).status_code == 201
    submitted = await api.client.post(
        "/api/v1/jobs", json=job_request(definition_id), headers=api.auth("operator")
    )
    assert submitted.status_code == 202, submitted.text
    refused = await api.client.delete(
        f"/api/v1/job-definitions/{definition_id}", headers=api.auth("admin")
    )
    assert refused.status_code == 409
    assert "unfinished job" in refused.json()["detail"]
    # Once the job is over the definition may go; the job keeps its snapshot.
    await api.db["job_instances"].update_one(
        {"_id": submitted.json()["id"]}, {"$set": {"status": "COMPLETED"}}
    )
    allowed = await api.client.delete(
        f"/api/v1/job-definitions/{definition_id}", headers=api.auth("admin")
    )
    assert allowed.status_code == 204


async def test_a_submitted_job_is_readable_at_once_and_announced(api: ApiHarness) -> None:
    definition_id = new_id()
    assert (await create(api, definition_body(definition_id))).status_code == 201
    request = job_request(definition_id)
    submitted = await api.client.post("/api/v1/jobs", json=request, headers=api.auth("operator"))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json() == {"id": job_id_for_request(request["request_id"]), "status": "QUEUED"}

    read = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))
    assert read.status_code == 200
    job = read.json()
    assert (job["status"], job["origin"], job["definition_id"]) == ("QUEUED", "api", definition_id)
    assert job["requested_by"] == "operator-1"
    assert job["sequences"][0]["status"] == "PENDING"
    assert job["definition"]["id"] == definition_id

    (event,) = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 1
    )
    assert event["type"] == "provisioning.JobCreated"

    again = await api.client.post("/api/v1/jobs", json=request, headers=api.auth("operator"))
    assert again.status_code == 202
    assert again.json()["id"] == job_id
    total = await api.db["job_instances"].count_documents({"request_id": request["request_id"]})
    assert total == 1


@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        ({"request_id": "r-unknown", "definition_id": "no-such-definition"}, "unknown job def"),
        ({"request_id": "r-noinputs", "definition_id": "{known}"}, "inputs.employees"),
        (
            {
                "request_id": "r-extra",
                "definition_id": "{known}",
                "inputs": {"x": [], "employees": []},
            },
            "no sequence named 'x'",
        ),
    ],
)
async def test_a_request_that_cannot_run_is_422_with_the_reason(
    api: ApiHarness, request_body: dict[str, Any], words: str
) -> None:
    definition_id = new_id()
    assert (await create(api, definition_body(definition_id))).status_code == 201
    body = {
        **request_body,
        "request_id": f"{request_body['request_id']}-{uuid.uuid4().hex}",
        "definition_id": request_body["definition_id"].replace("{known}", definition_id),
    }
    response = await api.client.post("/api/v1/jobs", json=body, headers=api.auth("operator"))
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


async def test_a_malformed_request_body_is_422(api: ApiHarness) -> None:
    response = await api.client.post(
        "/api/v1/jobs", json={"definition_id": "x", "colour": "red"}, headers=api.auth("operator")
    )
    assert response.status_code == 422
    locations = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert ("body", "request_id") in locations
    assert ("body", "colour") in locations
    not_json = await api.client.post(
        "/api/v1/jobs",
        content=b"{not json",
        headers={**api.auth("operator"), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422


async def test_over_http_the_requester_is_the_caller_and_no_one_else(api: ApiHarness) -> None:
    """A body naming another requester would put a false name on the job and in its audit."""
    definition_id = new_id()
    assert (await create(api, definition_body(definition_id))).status_code == 201
    spoofed = {**job_request(definition_id), "requested_by": "hr-feed"}
    submitted = await api.client.post("/api/v1/jobs", json=spoofed, headers=api.auth("operator"))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    job = (await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))).json()
    assert job["requested_by"] == "operator-1"
    (event,) = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 1
    )
    assert event["data"]["requested_by"] == "operator-1"
