"""What a hostile or careless client sends: a clear 4xx (or the right answer), never a 500.

Each test here is a request that once broke job-api (found by reading the code, or by the
fuzzing of test_api_fuzz.py) and stays here so that it does not again.
"""

import base64
import json
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from tests.integration.api.harness import (
    ApiHarness,
    definition_body,
    insert_jobs,
    job_doc,
    job_request,
    threshold_sequence,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

INT64_MAX = 2**63 - 1


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs",
        "/api/v1/job-definitions",
        "/api/v1/audit",
        "/api/v1/jobs/00000000-0000-4000-8000-000000000000/sequences/0/changes",
    ],
)
async def test_a_page_number_past_what_the_database_can_skip_is_422(
    api: ApiHarness, path: str
) -> None:
    # (page - 1) * page_size beyond a 64-bit integer: MongoDB's driver refused the skip (500).
    response = await api.client.get(
        path, params={"page": INT64_MAX, "page_size": 100}, headers=api.auth("admin")
    )
    assert response.status_code == 422, response.text
    assert "page" in response.text


async def test_a_deeply_nested_cursor_is_422(api: ApiHarness) -> None:
    # 1,500 nested arrays fit the cursor's 2,000 characters and overflowed the JSON parser's
    # recursion limit: RecursionError, a 500.
    response = await api.client.get(
        "/api/v1/jobs", params={"cursor": _cursor(b"[" * 1500)}, headers=api.auth("viewer")
    )
    assert response.status_code == 422, response.text
    assert "cursor" in response.json()["detail"]


async def test_a_cursor_with_a_date_before_year_one_in_utc_is_422(api: ApiHarness) -> None:
    raw = json.dumps({"s": "-created_at", "id": "x", "t": "d", "v": "0001-01-01T00:00:00+05:00"})
    response = await api.client.get(
        "/api/v1/jobs", params={"cursor": _cursor(raw.encode())}, headers=api.auth("viewer")
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # The first and last instants a date holds: the bounds, widened by a millisecond for
        # the query, overflowed (500). Every job is inside them.
        ({"created_from": "0001-01-01T00:00:00"}, 200),
        ({"created_to": "9999-12-31T23:59:59.999999"}, 200),
        ({"created_from": "0001-01-01", "created_to": "9999-12-31T23:59:59.9999"}, 200),
        # A date that is before year 1 once in UTC cannot be compared with anything stored.
        ({"created_from": "0001-01-01T00:00:00+05:00"}, 422),
        ({"created_to": "9999-12-31T23:00:00-05:00"}, 422),
    ],
)
async def test_dates_at_the_ends_of_the_calendar(
    api: ApiHarness, params: dict[str, str], expected: int
) -> None:
    await insert_jobs(api, job_doc())
    response = await api.client.get("/api/v1/jobs", params=params, headers=api.auth("viewer"))
    assert response.status_code == expected, response.text
    if expected == 200:
        assert response.json()["total"] >= 1
    else:
        assert "out of range" in response.json()["detail"]


async def test_the_contract_url_with_its_empty_filters_lists_the_jobs(api: ApiHarness) -> None:
    """Clients fill the listing's URL template with the filters they do not use left empty:
    empty is no filter.

    `definition_id=` filtered on the empty id (no job) and `created_from=` was a 422.
    """
    await insert_jobs(api, job_doc(definition_id="template-def"))
    response = await api.client.get(
        "/api/v1/jobs?page=1&page_size=10&status=&definition_id=&created_from=&created_to="
        "&archived=false&sort=-created_at",
        headers=api.auth("viewer"),
    )
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed["total"] >= 1
    everything = await api.client.get(
        "/api/v1/jobs", params={"page_size": 100}, headers=api.auth("viewer")
    )
    assert listed["total"] == everything.json()["total"]


@pytest.mark.parametrize("value", ["2026", "1767225600", "0.0", "-1"])
async def test_a_date_filter_given_as_a_number_is_422(api: ApiHarness, value: str) -> None:
    # pydantic reads a number as seconds since 1970: created_from=2026, meant as the year,
    # listed every job (found by the negative fuzzing: the schema says an ISO 8601 string).
    for name in ("created_from", "created_to"):
        response = await api.client.get(
            "/api/v1/jobs", params={name: value}, headers=api.auth("viewer")
        )
        assert response.status_code == 422, response.text
        assert name in response.text
        assert "ISO 8601" in response.text


async def test_an_expected_version_past_64_bits_is_422(api: ApiHarness) -> None:
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body("ver-def"), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    response = await api.client.put(
        "/api/v1/job-definitions/ver-def",
        params={"expected_version": 2**64},
        json=definition_body("ver-def"),
        headers=api.auth("admin"),
    )
    assert response.status_code == 422, response.text
    assert "expected_version" in response.text


async def test_a_threshold_count_past_64_bits_is_422(api: ApiHarness) -> None:
    body = definition_body("big-count")
    body["sequences"][0]["thresholds"] = {"delete": {"count": 2**64}}
    response = await api.client.post(
        "/api/v1/job-definitions", json=body, headers=api.auth("admin")
    )
    assert response.status_code == 422, response.text
    assert "count" in response.text


def _raw_json(text: str, auth: dict[str, str]) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {**auth, "Content-Type": "application/json"}}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # A lone surrogate is valid JSON escaping but no text: it cannot be hashed (a request
        # id, an API key), stored in MongoDB or published, and each of these was a 500.
        ("/api/v1/jobs", '{"request_id": "r-\\ud800", "definition_id": "d"}'),
        ("/api/v1/jobs", '{"request_id": "r-1", "definition_id": "d", "requested_by": "\\udc00"}'),
        (
            "/api/v1/job-definitions",
            json.dumps(definition_body("sur-def", name="HR")).replace('"HR"', '"H\\ud800R"'),
        ),
        ("/console/session", '{"api_key": "pj_\\ud800"}'),
    ],
)
async def test_a_lone_surrogate_in_a_json_body_is_422(
    api: ApiHarness, path: str, body: str
) -> None:
    async with api.new_client() as client:
        response = await client.post(path, **_raw_json(body, api.auth("admin")))
    assert response.status_code == 422, response.text
    assert "JSON" in response.text  # refused as a body that is not JSON text


async def test_a_lone_surrogate_in_a_record_is_422_and_no_job_is_created(
    api: ApiHarness,
) -> None:
    # Records are free-form: nothing but the parser stood between "\ud800" and JobCreated,
    # which then could not be serialized (500).
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body("sur-rec"), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    request = job_request("sur-rec")
    body = json.dumps(request).replace('"u1@example.org"', '"u1\\udc00@example.org"')
    response = await api.client.post("/api/v1/jobs", **_raw_json(body, api.auth("operator")))
    assert response.status_code == 422, response.text
    assert await api.db["job_instances"].count_documents({"request_id": request["request_id"]}) == 0


async def test_a_lone_surrogate_in_a_plan_id_is_422_and_nothing_is_published(
    api: ApiHarness,
) -> None:
    (job_id,) = await insert_jobs(
        api, job_doc(status="THRESHOLD", sequences=[threshold_sequence()])
    )
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate",
        **_raw_json('{"plan_id": "\\ud800"}', api.auth("operator")),
    )
    assert response.status_code == 422, response.text


async def test_a_job_id_spelled_otherwise_is_answered_and_audited_under_its_canonical_form(
    api: ApiHarness,
) -> None:
    """A UUID may be written in capitals or without hyphens; the job id is its canonical form."""
    (job_id,) = await insert_jobs(
        api, job_doc(status="THRESHOLD", sequences=[threshold_sequence()])
    )
    for spelling in (job_id.upper(), job_id.replace("-", "")):
        response = await api.client.post(
            f"/api/v1/jobs/{spelling}/threshold/validate", headers=api.auth("operator")
        )
        assert response.status_code == 202, response.text
        assert response.json()["job_id"] == job_id
    page = await api.client.get(
        "/api/v1/audit", params={"job_id": job_id}, headers=api.auth("admin")
    )
    entries = page.json()["items"]
    assert [(e["action"], e["job_id"]) for e in entries] == [("validate", job_id)] * 2


class KafkaAway:
    """The command publisher while the brokers do not answer."""

    async def job_archived(self, *args: object, **kwargs: object) -> None:
        raise KafkaTimeoutError()


@pytest.mark.parametrize("verb", ["archive", "unarchive"])
@pytest.mark.parametrize("archived", [True, False])
async def test_kafka_away_leaves_the_archive_flag_as_it_was(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch, verb: str, archived: bool
) -> None:
    """The 503 says nothing changed: the undo puts back what was, not the opposite of the call."""
    doc = job_doc(status="COMPLETED", archived=archived)
    if archived:
        doc |= {"archived_by": "ops-0", "archived_at": doc["ended_at"]}
    (job_id,) = await insert_jobs(api, doc)
    before = await api.db["job_instances"].find_one({"_id": job_id})
    monkeypatch.setattr(api.app.state.services, "commands", KafkaAway())
    response = await api.client.post(f"/api/v1/jobs/{job_id}/{verb}", headers=api.auth("admin"))
    assert response.status_code == 503, response.text
    assert await api.db["job_instances"].find_one({"_id": job_id}) == before


async def test_an_unknown_definition_is_still_a_422_with_its_reason(api: ApiHarness) -> None:
    """The surrogate check leaves ordinary bodies alone."""
    response = await api.client.post(
        "/api/v1/jobs", json=job_request("no-such-definition"), headers=api.auth("operator")
    )
    assert response.status_code == 422, response.text
    assert "unknown job definition" in response.json()["detail"]
