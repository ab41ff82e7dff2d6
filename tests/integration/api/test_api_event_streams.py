"""The event streams' answers before any event: authorized, validated and routed like the rest.

(What they stream is shown against a running job-api over real HTTP, in
tests/e2e/test_console_pages.py: an in-process ASGI client waits for a body's end.)
"""

import uuid

import pytest

from tests.integration.api.harness import ApiHarness, insert_jobs, job_doc

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def test_streams_need_a_key(api: ApiHarness) -> None:
    for path in ("/api/v1/jobs/events", f"/api/v1/jobs/{uuid.uuid4()}/events"):
        for who in ("none", "bad"):
            answer = await api.client.get(path, headers=api.auth(who))
            assert answer.status_code == 401, (path, who, answer.text)


async def test_an_unknown_job_is_a_404(api: ApiHarness) -> None:
    job_id = uuid.uuid4()
    answer = await api.client.get(f"/api/v1/jobs/{job_id}/events", headers=api.auth("viewer"))
    assert answer.status_code == 404
    assert str(job_id) in answer.json()["detail"]


async def test_the_list_stream_refuses_what_the_list_refuses(api: ApiHarness) -> None:
    for query, said in (
        ({"stauts": "FAILED"}, "unknown query parameter(s): stauts"),
        ({"status": "DONE"}, "'DONE' is not a job status"),
        ({"page_size": "500"}, "page_size"),
    ):
        answer = await api.client.get(
            "/api/v1/jobs/events", params=query, headers=api.auth("viewer")
        )
        assert answer.status_code == 422, answer.text
        assert said in answer.text


async def test_events_is_not_read_as_a_job_id(api: ApiHarness) -> None:
    # /api/v1/jobs/{id} is still a job, and /api/v1/jobs/events is not one of them.
    [job_id] = await insert_jobs(api, job_doc(status="COMPLETED"))
    found = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))
    assert found.status_code == 200
    assert found.json()["id"] == job_id
    openapi = (await api.client.get("/openapi.json")).json()
    assert (
        "text/event-stream"
        in openapi["paths"]["/api/v1/jobs/events"]["get"]["responses"]["200"]["content"]
    )
    assert "/api/v1/jobs/{job_id}/events" in openapi["paths"]
