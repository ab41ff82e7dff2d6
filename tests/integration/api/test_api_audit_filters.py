"""The audit trail's filters: by job, actor, action and date, paged, refused when unknown."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.api.harness import ApiHarness, definition_body, job_request

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


async def audit(api: ApiHarness, who: str = "admin", **query: Any) -> dict[str, Any]:
    answer = await api.client.get("/api/v1/audit", params=query, headers=api.auth(who))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


@pytest.fixture(scope="module")
async def acted(api: ApiHarness) -> dict[str, str]:
    """A definition created by the admin and a job submitted by the operator."""
    definition_id = f"audit-{uuid.uuid4().hex[:6]}"
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body(definition_id), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    submitted = await api.client.post(
        "/api/v1/jobs", json=job_request(definition_id), headers=api.auth("operator")
    )
    assert submitted.status_code == 202, submitted.text
    return {"definition_id": definition_id, "job_id": submitted.json()["id"]}


async def test_filter_by_actor_and_action(api: ApiHarness, acted: dict[str, str]) -> None:
    by_operator = await audit(api, actor="operator-1")
    assert [(e["actor"], e["action"]) for e in by_operator["items"]] == [("operator-1", "submit")]
    keys = await audit(api, action="api_key.create")
    assert keys["total"] == 2
    assert {e["target"] for e in keys["items"]} == {"viewer-1", "operator-1"}
    # The bootstrap admin key is named "admin".
    both = await audit(api, actor="admin", action="definition.create")
    assert [e["target"] for e in both["items"]] == [acted["definition_id"]]


async def test_filter_by_job(api: ApiHarness, acted: dict[str, str]) -> None:
    found = await audit(api, job_id=acted["job_id"])
    assert [(e["action"], e["job_id"]) for e in found["items"]] == [("submit", acted["job_id"])]
    # An empty filter, as the console's form sends it, is no filter.
    everything = await audit(api, job_id="", actor="", action="", at_from="", at_to="")
    assert everything["total"] >= 4


async def test_filter_by_date(api: ApiHarness, acted: dict[str, str]) -> None:
    now = datetime.now(UTC)
    recent = await audit(api, at_from=(now - timedelta(minutes=10)).isoformat())
    assert recent["total"] >= 4
    future = await audit(api, at_from=(now + timedelta(hours=1)).isoformat())
    assert future["total"] == 0
    assert future["items"] == []
    past = await audit(api, at_to="2000-01-01")
    assert past["total"] == 0


async def test_pages_like_the_jobs(api: ApiHarness, acted: dict[str, str]) -> None:
    first = await audit(api, page_size=1)
    second = await audit(api, page_size=1, page=2)
    assert first["pages"] == first["total"] >= 4
    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert first["items"][0]["at"] >= second["items"][0]["at"]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"actr": "x"}, "unknown query parameter(s): actr"),
        ({"job_id": "not-a-uuid"}, "job_id"),
        ({"at_from": "2026"}, "ISO 8601"),
        ({"at_from": "2026-02-01", "at_to": "2026-01-01"}, "at_from: is after at_to"),
    ],
)
async def test_a_bad_filter_is_refused_by_name(
    api: ApiHarness, query: dict[str, str], said: str
) -> None:
    answer = await api.client.get("/api/v1/audit", params=query, headers=api.auth("admin"))
    assert answer.status_code == 422
    assert said in answer.text


@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/jobs"])
async def test_a_filter_given_twice_is_refused_not_half_applied(
    api: ApiHarness, acted: dict[str, str], path: str
) -> None:
    """`actor=a&actor=b` once answered the entries of b alone: the operator asking for two
    actors was shown one, without a word."""
    name = "actor" if "audit" in path else "definition_id"
    answer = await api.client.get(path, params={name: ["a", "b"]}, headers=api.auth("admin"))
    assert answer.status_code == 422
    assert "given more than once: " in answer.json()["detail"]


@pytest.mark.parametrize("who", ["viewer", "operator"])
async def test_only_admins_read_the_audit(api: ApiHarness, who: str) -> None:
    answer = await api.client.get("/api/v1/audit", params={"actor": "x"}, headers=api.auth(who))
    assert answer.status_code == 403
