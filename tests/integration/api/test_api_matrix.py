"""Every call of the REST contract against every caller: none, bad key, viewer, operator, admin."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from job_api.auth.permissions import Permission, Role, role_allows

from tests.integration.api.harness import (
    ApiHarness,
    definition_body,
    insert_jobs,
    job_doc,
    job_request,
    sequence_doc,
    threshold_sequence,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

DEFINITION = "matrix-def"


@dataclass(frozen=True)
class Seeds:
    completed: str
    threshold: str
    # A completed sequence with its applied plan and the job's definition snapshot: revertible.
    revertible: str


@dataclass(frozen=True)
class Call:
    method: str
    # Builds the path (and any state the call consumes, such as a fresh job to delete).
    path: Callable[[ApiHarness, Seeds], Awaitable[str]]
    permission: Permission | None  # None: any valid key
    allowed: int
    body: Callable[[], Any] | None = None


def fixed(template: str) -> Callable[[ApiHarness, Seeds], Awaitable[str]]:
    async def path(harness: ApiHarness, seeds: Seeds) -> str:
        return template.format(
            completed=seeds.completed, threshold=seeds.threshold, revertible=seeds.revertible
        )

    return path


async def fresh_finished_job(harness: ApiHarness, seeds: Seeds) -> str:
    (job_id,) = await insert_jobs(harness, job_doc(status="COMPLETED"))
    return f"/api/v1/jobs/{job_id}"


async def fresh_definition(harness: ApiHarness, seeds: Seeds) -> str:
    definition_id = f"def-{uuid.uuid4().hex[:8]}"
    created = await harness.client.post(
        "/api/v1/job-definitions",
        json=definition_body(definition_id),
        headers=harness.auth("admin"),
    )
    assert created.status_code == 201, created.text
    return f"/api/v1/job-definitions/{definition_id}"


async def fresh_api_key(harness: ApiHarness, seeds: Seeds) -> str:
    created = await harness.client.post(
        "/api/v1/api-keys",
        json={"name": f"k-{uuid.uuid4().hex[:8]}", "role": "viewer"},
        headers=harness.auth("admin"),
    )
    assert created.status_code == 201, created.text
    return f"/api/v1/api-keys/{created.json()['id']}"


CALLS: dict[str, Call] = {
    "list jobs": Call("GET", fixed("/api/v1/jobs"), Permission.VIEW, 200),
    "get job": Call("GET", fixed("/api/v1/jobs/{completed}"), Permission.VIEW, 200),
    "planned changes": Call(
        "GET", fixed("/api/v1/jobs/{threshold}/sequences/0/changes"), Permission.VIEW, 200
    ),
    "notifications": Call(
        "GET", fixed("/api/v1/jobs/{completed}/notifications"), Permission.VIEW, 200
    ),
    "schedule firings": Call(
        "GET", fixed(f"/api/v1/job-definitions/{DEFINITION}/firings"), Permission.VIEW, 200
    ),
    "submit job": Call(
        "POST", fixed("/api/v1/jobs"), Permission.SUBMIT, 202, lambda: job_request(DEFINITION)
    ),
    "validate": Call(
        "POST", fixed("/api/v1/jobs/{threshold}/threshold/validate"), Permission.VALIDATE, 202
    ),
    "cancel": Call(
        "POST", fixed("/api/v1/jobs/{threshold}/threshold/cancel"), Permission.CANCEL, 202
    ),
    "restart": Call("POST", fixed("/api/v1/jobs/{threshold}/restart"), Permission.RESTART, 202),
    "archive": Call("POST", fixed("/api/v1/jobs/{completed}/archive"), Permission.ARCHIVE, 200),
    "unarchive": Call("POST", fixed("/api/v1/jobs/{completed}/unarchive"), Permission.ARCHIVE, 200),
    "delete job": Call("DELETE", fresh_finished_job, Permission.DELETE, 204),
    "revert": Call(
        "POST", fixed("/api/v1/jobs/{revertible}/sequences/0/revert"), Permission.REVERT, 202
    ),
    "revert conflicts": Call(
        "GET", fixed("/api/v1/jobs/{revertible}/sequences/0/conflicts"), Permission.VIEW, 200
    ),
    "list definitions": Call("GET", fixed("/api/v1/job-definitions"), Permission.VIEW, 200),
    "get definition": Call(
        "GET", fixed(f"/api/v1/job-definitions/{DEFINITION}"), Permission.VIEW, 200
    ),
    "create definition": Call(
        "POST",
        fixed("/api/v1/job-definitions"),
        Permission.MANAGE_DEFINITIONS,
        201,
        lambda: definition_body(f"def-{uuid.uuid4().hex[:8]}"),
    ),
    "replace definition": Call(
        "PUT",
        fixed(f"/api/v1/job-definitions/{DEFINITION}"),
        Permission.MANAGE_DEFINITIONS,
        200,
        lambda: definition_body(DEFINITION),
    ),
    "delete definition": Call("DELETE", fresh_definition, Permission.MANAGE_DEFINITIONS, 204),
    "create api key": Call(
        "POST",
        fixed("/api/v1/api-keys"),
        Permission.MANAGE_API_KEYS,
        201,
        lambda: {"name": f"k-{uuid.uuid4().hex[:8]}", "role": "operator"},
    ),
    "list api keys": Call("GET", fixed("/api/v1/api-keys"), Permission.MANAGE_API_KEYS, 200),
    "delete api key": Call("DELETE", fresh_api_key, Permission.MANAGE_API_KEYS, 204),
    "audit": Call("GET", fixed("/api/v1/audit"), Permission.VIEW_AUDIT, 200),
    "me": Call("GET", fixed("/api/v1/me"), None, 200),
}
CALLERS = ("none", "bad", "viewer", "operator", "admin")


def expected_status(call: Call, caller: str) -> int:
    if caller in ("none", "bad"):
        return 401
    if call.permission is not None and not role_allows(Role(caller), call.permission):
        return 403
    return call.allowed


@pytest.fixture(scope="module")
async def seeds(api: ApiHarness) -> Seeds:
    created = await api.client.post(
        "/api/v1/job-definitions", json=definition_body(DEFINITION), headers=api.auth("admin")
    )
    assert created.status_code == 201, created.text
    applied = job_doc(
        status="COMPLETED",
        definition_id=DEFINITION,
        sequences=[sequence_doc(0, "employees", "COMPLETED", plan_id="plan-applied")],
    )
    applied["definition"] = definition_body(DEFINITION)
    completed, threshold, revertible = await insert_jobs(
        api,
        job_doc(status="COMPLETED"),
        job_doc(status="THRESHOLD", sequences=[threshold_sequence()]),
        applied,
    )
    return Seeds(completed=completed, threshold=threshold, revertible=revertible)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", list(CALLS))
async def test_each_call_is_allowed_or_refused_by_role(
    api: ApiHarness, seeds: Seeds, name: str, caller: str
) -> None:
    call = CALLS[name]
    path = await call.path(api, seeds)
    kwargs: dict[str, Any] = {"headers": api.auth(caller)}
    if call.body is not None:
        kwargs["json"] = call.body()
    response = await api.client.request(call.method, path, **kwargs)
    want = expected_status(call, caller)
    assert response.status_code == want, f"{call.method} {path} as {caller}: {response.text}"
    if want in (401, 403):
        detail = response.json()["detail"]
        assert isinstance(detail, str)
        assert detail
    if want == 403:
        assert f"'{caller}-1' has {caller}" in response.json()["detail"] or caller == "admin"
    if want == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_every_route_of_the_api_is_in_the_matrix(api: ApiHarness) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in api.app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    }
    covered = {
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs/{job_id}"),
        ("GET", "/api/v1/jobs/{job_id}/sequences/{index}/changes"),
        ("GET", "/api/v1/jobs/{job_id}/notifications"),
        ("GET", "/api/v1/job-definitions/{definition_id}/firings"),
        ("POST", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs/{job_id}/threshold/validate"),
        ("POST", "/api/v1/jobs/{job_id}/threshold/cancel"),
        ("POST", "/api/v1/jobs/{job_id}/restart"),
        ("POST", "/api/v1/jobs/{job_id}/archive"),
        ("POST", "/api/v1/jobs/{job_id}/unarchive"),
        ("DELETE", "/api/v1/jobs/{job_id}"),
        ("POST", "/api/v1/jobs/{job_id}/sequences/{index}/revert"),
        ("GET", "/api/v1/jobs/{job_id}/sequences/{index}/conflicts"),
        ("GET", "/api/v1/job-definitions"),
        ("GET", "/api/v1/job-definitions/{definition_id}"),
        ("POST", "/api/v1/job-definitions"),
        ("PUT", "/api/v1/job-definitions/{definition_id}"),
        ("DELETE", "/api/v1/job-definitions/{definition_id}"),
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/api-keys"),
        ("DELETE", "/api/v1/api-keys/{key_id}"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/me"),
    }
    assert len(covered) == len(CALLS)
    # The event streams are readable by every role; their 401s are in
    # test_api_event_streams.py (an in-process client would wait a minute for a stream's end).
    streams = {("GET", "/api/v1/jobs/events"), ("GET", "/api/v1/jobs/{job_id}/events")}
    assert routes == covered | streams


async def test_refusals_are_in_the_audit_trail(api: ApiHarness, seeds: Seeds) -> None:
    refused = await api.client.post(
        f"/api/v1/jobs/{seeds.threshold}/threshold/cancel", headers=api.auth("viewer")
    )
    assert refused.status_code == 403
    page = await api.client.get(
        "/api/v1/audit", params={"job_id": seeds.threshold}, headers=api.auth("admin")
    )
    entries = page.json()["items"]
    newest = entries[0]
    assert newest["actor"] == "viewer-1"
    assert newest["action"] == "cancel"
    assert newest["outcome"] == "rejected"
    assert newest["status_code"] == 403
    assert "needs the operator role" in newest["reason"]
