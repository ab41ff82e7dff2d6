"""An operator's day over HTTP against the running system: submit, watch, stop at a threshold,
look at the planned deletions, validate, restart, cancel, archive and delete, all audited."""

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, JOB_REQUESTS
from pymongo import AsyncMongoClient

from tests.e2e.conftest import System
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]


def auth(keys: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[role]}"}


def write_csv(path: Path, uids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["uid,mail"] + [f"{uid},{uid}@example.org" for uid in uids]
    path.write_text("\n".join(lines) + "\n")


async def wait_for_status(
    http: httpx.AsyncClient, keys: dict[str, str], job_id: str, status: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await http.get(f"/api/v1/jobs/{job_id}", headers=auth(keys, "viewer"))
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        assert job["status"] != "FAILED" or status == "FAILED", job
        return job if job["status"] == status else None

    return await eventually(reached, timeout=60, what=f"job {job_id} to be {status}")


async def decide(
    http: httpx.AsyncClient,
    keys: dict[str, str],
    job_id: str,
    command: str,
    reached: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Post a decision and wait for its effect, as an API client must: 202 means the command
    is on its way, and the sequence runner, the arbiter, may still refuse it (the job shows
    why in last_rejected_command). It refuses one that overtakes the runner's own view of
    the threshold (the projection can be a moment ahead of it); such a command is sent again.
    """
    for _ in range(5):
        response = await http.post(
            f"/api/v1/jobs/{job_id}/{command}", json=body, headers=auth(keys, "operator")
        )
        assert response.status_code == 202, response.text
        command_id = response.json()["command_id"]

        async def outcome(command_id: str = command_id) -> dict[str, Any] | None:
            read = await http.get(f"/api/v1/jobs/{job_id}", headers=auth(keys, "viewer"))
            job: dict[str, Any] = read.json()
            rejected = job.get("last_rejected_command") or {}
            if job["status"] == reached or rejected.get("command_id") == command_id:
                return job
            return None

        job = await eventually(outcome, timeout=60, what=f"{command} of job {job_id}")
        if job["status"] == reached:
            return job
        assert "RUNNING" in job["last_rejected_command"]["reason"], job
    raise AssertionError(f"{command} of job {job_id} kept being refused")


async def submit(http: httpx.AsyncClient, keys: dict[str, str], definition_id: str) -> str:
    submitted = await http.post(
        "/api/v1/jobs",
        json={"request_id": f"e2e-{uuid.uuid4().hex}", "definition_id": definition_id},
        headers=auth(keys, "operator"),
    )
    assert submitted.status_code == 202, submitted.text
    job_id: str = submitted.json()["id"]
    # Readable at once: the API stored the QUEUED job instance before answering.
    read = await http.get(f"/api/v1/jobs/{job_id}", headers=auth(keys, "viewer"))
    assert read.status_code == 200
    return job_id


async def test_threshold_validate_restart_cancel_archive_delete(
    system: System, http: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:8]
    definition_id, collection = f"e2e-api-{run}", f"people_{run}"
    source = system.data_dir / "api" / f"{run}.csv"
    created = await http.post(
        "/api/v1/job-definitions",
        json={
            "id": definition_id,
            "name": "People",
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "csv", "path": f"api/{run}.csv"},
                    "target": {"type": "mongo", "collection": collection},
                    "key": "uid",
                    "delete_missing": True,
                    "thresholds": {"delete": {"count": 2}},
                }
            ],
        },
        headers=auth(keys, "admin"),
    )
    assert created.status_code == 201, created.text

    # A first load: 4 creations, no threshold reached.
    write_csv(source, ["u1", "u2", "u3", "u4"])
    first = await submit(http, keys, definition_id)
    done = await wait_for_status(http, keys, first, "COMPLETED")
    assert done["sequences"][0]["applied"] == {"create": 4, "update": 0, "delete": 0, "disable": 0}
    assert done["started_at"]
    assert done["ended_at"]

    # Two deletions reach the threshold: nothing is written, the operator decides.
    write_csv(source, ["u1", "u2"])
    blocked_id = await submit(http, keys, definition_id)
    blocked = await wait_for_status(http, keys, blocked_id, "THRESHOLD")
    sequence = blocked["sequences"][0]
    assert sequence["threshold"]["action"] == "delete"
    assert sequence["threshold"]["actual"] == 2
    changes = await http.get(
        f"/api/v1/jobs/{blocked_id}/sequences/0/changes",
        params={"action": "delete"},
        headers=auth(keys, "viewer"),
    )
    assert changes.status_code == 200, changes.text
    assert changes.json()["total"] == 2
    assert {c["key"] for c in changes.json()["items"]} == {"u3", "u4"}

    refused = await http.post(
        f"/api/v1/jobs/{blocked_id}/threshold/validate", headers=auth(keys, "viewer")
    )
    assert refused.status_code == 403
    too_early = await http.post(
        f"/api/v1/jobs/{first}/threshold/validate", headers=auth(keys, "operator")
    )
    assert too_early.status_code == 409

    after = await decide(
        http, keys, blocked_id, "threshold/validate", "VALIDATED", {"plan_id": sequence["plan_id"]}
    )
    assert after["sequences"][0]["validated_by"].startswith("e2e-operator-")
    restarted = await http.post(
        f"/api/v1/jobs/{blocked_id}/restart", headers=auth(keys, "operator")
    )
    assert restarted.status_code == 202
    finished = await wait_for_status(http, keys, blocked_id, "COMPLETED")
    assert finished["sequences"][0]["applied"]["delete"] == 2

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri)
    try:
        target = client[system.target_db][collection]
        assert sorted([d["uid"] async for d in target.find({})]) == ["u1", "u2"]
    finally:
        await client.close()

    # Another stop, canceled this time; then archived and deleted.
    write_csv(source, [])
    canceled_id = await submit(http, keys, definition_id)
    await wait_for_status(http, keys, canceled_id, "THRESHOLD")
    ended = await decide(http, keys, canceled_id, "threshold/cancel", "CANCELED")
    assert ended["sequences"][0]["status"] == "CANCELED"

    archived = await http.post(f"/api/v1/jobs/{canceled_id}/archive", headers=auth(keys, "admin"))
    assert archived.status_code == 200
    listing = await http.get(
        "/api/v1/jobs",
        params={"definition_id": definition_id, "page_size": 100},
        headers=auth(keys, "viewer"),
    )
    assert {i["id"] for i in listing.json()["items"]} == {first, blocked_id}
    deleted = await http.delete(f"/api/v1/jobs/{first}", headers=auth(keys, "admin"))
    assert deleted.status_code == 204

    async def projected_gone() -> bool:
        response = await http.get(f"/api/v1/jobs/{first}", headers=auth(keys, "viewer"))
        return response.status_code == 404

    # The projector folds JobDeleted too: the job stays gone.
    await eventually(projected_gone, timeout=30, what="the deleted job to stay deleted")

    audit = await http.get("/api/v1/audit", params={"page_size": 100}, headers=auth(keys, "admin"))
    assert audit.status_code == 200
    actions = {
        (e["action"], e["job_id"], e["outcome"])
        for e in audit.json()["items"]
        if e["job_id"] in (first, blocked_id, canceled_id)
    }
    assert {
        ("submit", first, "accepted"),
        ("validate", blocked_id, "rejected"),
        ("validate", blocked_id, "accepted"),
        ("restart", blocked_id, "accepted"),
        ("cancel", canceled_id, "accepted"),
        ("archive", canceled_id, "accepted"),
        ("delete", first, "accepted"),
    } <= actions


async def test_the_running_api_serves_health_docs_and_metrics(
    system: System, http: httpx.AsyncClient
) -> None:
    health = await http.get("/healthz")
    assert health.json() == {"status": "ok", "mongo": True, "kafka": True}
    assert (await http.get("/openapi.json")).status_code == 200
    asyncapi = (await http.get("/asyncapi.json")).json()
    assert {c["address"] for c in asyncapi["channels"].values()} == {
        system.topic(t) for t in (JOB_REQUESTS, JOB_COMMANDS, JOB_EVENTS)
    }
    metrics = await http.get("/metrics")
    assert 'route="/healthz"' in metrics.text


async def test_a_request_of_a_completed_then_deleted_job_is_refused_not_left_queued(
    system: System, http: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """Issue 8, defect 1, with the runner, the guard and the projector running: the same
    request id after a delete was answered 202 QUEUED, and the job then stayed QUEUED for
    ever (the runner ignores a JobCreated for a job it already ran)."""
    run = uuid.uuid4().hex[:8]
    definition_id = f"e2e-again-{run}"
    write_csv(system.data_dir / "again" / f"{run}.csv", ["a1", "a2"])
    created = await http.post(
        "/api/v1/job-definitions",
        json={
            "id": definition_id,
            "name": "Again",
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "csv", "path": f"again/{run}.csv"},
                    "target": {"type": "mongo", "collection": f"again_{run}"},
                    "key": "uid",
                    "thresholds": {"create": {"count": 100}},
                }
            ],
        },
        headers=auth(keys, "admin"),
    )
    assert created.status_code == 201, created.text
    body = {"request_id": f"e2e-again-{run}", "definition_id": definition_id}
    first = await http.post("/api/v1/jobs", json=body, headers=auth(keys, "operator"))
    assert first.status_code == 202, first.text
    job_id = first.json()["id"]
    await wait_for_status(http, keys, job_id, "COMPLETED")
    deleted = await http.delete(f"/api/v1/jobs/{job_id}", headers=auth(keys, "admin"))
    assert deleted.status_code == 204, deleted.text

    again = await http.post("/api/v1/jobs", json=body, headers=auth(keys, "operator"))

    assert again.status_code == 409, again.text
    assert f"job {job_id}, since deleted by admin" in again.json()["detail"]
    # Nothing comes back, neither from the API nor from the projector folding what followed.
    for _ in range(3):
        gone = await http.get(f"/api/v1/jobs/{job_id}", headers=auth(keys, "viewer"))
        assert gone.status_code == 404, gone.text
    # The definition is not held by a job stuck QUEUED.
    removed = await http.delete(
        f"/api/v1/job-definitions/{definition_id}", headers=auth(keys, "admin")
    )
    assert removed.status_code == 204, removed.text
