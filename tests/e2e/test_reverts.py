"""Reverting an applied sequence over the API of the running system: admin only (403 for an
operator and a viewer, audited), a preview that writes nothing and lists the conflicts, the
revert that restores the target, marked as a revert of its job, and clear 404/409/422 for what
cannot be reverted."""

import uuid
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.e2e.conftest import System
from tests.e2e.test_api_operator_flow import auth, wait_for_status, write_csv

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]


async def records(client: AsyncMongoClient[dict[str, Any]], db: str, name: str) -> list[Any]:
    return [doc async for doc in client[db][name].find({}).sort("_id", 1)]


async def test_an_admin_previews_and_reverts_a_sequence_others_may_not(
    system: System, http: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:8]
    definition_id, people = f"e2e-revert-{run}", f"revert_people_{run}"
    path = system.data_dir / "revert" / f"{run}.csv"
    created = await http.post(
        "/api/v1/job-definitions",
        json={
            "id": definition_id,
            "name": "People to revert",
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "csv", "path": f"revert/{run}.csv"},
                    "target": {"type": "mongo", "collection": people},
                    "key": "uid",
                    "delete_missing": True,
                    "thresholds": {"create": {"count": 100}, "delete": {"count": 100}},
                }
            ],
        },
        headers=auth(keys, "admin"),
    )
    assert created.status_code == 201, created.text

    async def run_job(uids: list[str], **extra: Any) -> dict[str, Any]:
        write_csv(path, uids)
        submitted = await http.post(
            "/api/v1/jobs",
            json={"request_id": f"{run}-{uuid.uuid4().hex[:6]}", "definition_id": definition_id}
            | extra,
            headers=auth(keys, "operator"),
        )
        assert submitted.status_code == 202, submitted.text
        return await wait_for_status(http, keys, submitted.json()["id"], "COMPLETED")

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri)
    try:
        await run_job(["u1", "u2", "u3"])
        before = await records(client, system.target_db, people)
        applied = await run_job(["u2", "u3", "u4", "u5"])
        job_id = applied["id"]
        url = f"/api/v1/jobs/{job_id}/sequences/0/revert"
        admin_view = await http.get(f"/api/v1/jobs/{job_id}", headers=auth(keys, "admin"))
        assert "revert" in admin_view.json()["allowed_actions"]
        operator_view = await http.get(f"/api/v1/jobs/{job_id}", headers=auth(keys, "operator"))
        assert "revert" not in operator_view.json()["allowed_actions"]

        for role in ("operator", "viewer"):
            refused = await http.post(url, json={}, headers=auth(keys, role))
            assert refused.status_code == 403, refused.text
            assert "needs the admin role (permission 'revert')" in refused.json()["detail"]

        # Someone deletes u4 by hand: the revert would delete it, it is gone, a conflict.
        await client[system.target_db][people].delete_one({"_id": "u4"})
        preview = await http.post(url, json={"dry_run": True}, headers=auth(keys, "admin"))
        assert preview.status_code == 202, preview.text
        previewed = await wait_for_status(http, keys, preview.json()["id"], "COMPLETED")
        assert previewed["dry_run"] is True
        assert previewed["reverts"]["job_id"] == job_id
        assert previewed["reverts"]["sequence_index"] == 0
        planned = previewed["sequences"][0]["planned"]
        assert (planned["create"], planned["delete"], planned["conflicts"]) == (1, 1, 1)
        changes = await http.get(
            f"/api/v1/jobs/{previewed['id']}/sequences/0/changes", headers=auth(keys, "viewer")
        )
        assert {(c["action"], c["key"]) for c in changes.json()["items"]} == {
            ("create", "u1"),
            ("delete", "u5"),
        }
        conflicts = await http.get(
            f"/api/v1/jobs/{previewed['id']}/sequences/0/conflicts", headers=auth(keys, "viewer")
        )
        assert conflicts.status_code == 200, conflicts.text
        (conflict,) = conflicts.json()["items"]
        assert (conflict["key"], conflict["reason"], conflict["current"]) == ("u4", "gone", None)
        assert "revert" not in previewed["allowed_actions"]  # a dry run applied nothing

        # A dry run's sequence cannot be reverted, nor can an unknown sequence.
        dry = await http.post(
            f"/api/v1/jobs/{previewed['id']}/sequences/0/revert",
            json={},
            headers=auth(keys, "admin"),
        )
        assert dry.status_code == 422, dry.text
        assert "is a dry run" in dry.json()["detail"]
        missing = await http.post(
            f"/api/v1/jobs/{job_id}/sequences/4/revert", json={}, headers=auth(keys, "admin")
        )
        assert missing.status_code == 404, missing.text

        reverted = await http.post(url, json={}, headers=auth(keys, "admin"))
        assert reverted.status_code == 202, reverted.text
        done = await wait_for_status(http, keys, reverted.json()["id"], "COMPLETED")
        assert done["dry_run"] is False
        assert done["reverts"] == {
            "job_id": job_id,
            "sequence_index": 0,
            "plan_id": applied["sequences"][0]["plan_id"],
            "include_conflicts": False,
        }
        assert done["sequences"][0]["applied"] == {
            "create": 1,
            "update": 0,
            "delete": 1,
            "disable": 0,
        }
        # u4 was gone before the revert and stays gone; the rest is as before the sequence.
        assert await records(client, system.target_db, people) == before
        listed = await http.get(
            "/api/v1/jobs", params={"definition_id": definition_id}, headers=auth(keys, "viewer")
        )
        marks = {item["id"]: item.get("reverts") for item in listed.json()["items"]}
        assert marks[done["id"]]["job_id"] == job_id
        assert marks[job_id] is None
    finally:
        await client.close()

    audit = await http.get(
        "/api/v1/audit", params={"job_id": job_id, "action": "revert"}, headers=auth(keys, "admin")
    )
    outcomes = sorted((e["outcome"], e["status_code"]) for e in audit.json()["items"])
    assert outcomes == [
        ("accepted", 202),  # the preview
        ("accepted", 202),  # the revert
        ("rejected", 403),  # the operator
        ("rejected", 403),  # the viewer
        ("rejected", 404),  # sequence 4
    ]


async def test_a_sequence_that_did_not_complete_cannot_be_reverted(
    system: System, http: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:8]
    definition_id = f"e2e-revert-blocked-{run}"
    write_csv(system.data_dir / "revert" / f"{run}-blocked.csv", ["a", "b", "c"])
    created = await http.post(
        "/api/v1/job-definitions",
        json={
            "id": definition_id,
            "name": "Blocked",
            "sequences": [
                {
                    "name": "people",
                    "source": {"type": "csv", "path": f"revert/{run}-blocked.csv"},
                    "target": {"type": "mongo", "collection": f"blocked_{run}"},
                    "key": "uid",
                    "thresholds": {"create": {"count": 2}},
                }
            ],
        },
        headers=auth(keys, "admin"),
    )
    assert created.status_code == 201, created.text
    submitted = await http.post(
        "/api/v1/jobs",
        json={"request_id": f"blocked-{run}", "definition_id": definition_id},
        headers=auth(keys, "operator"),
    )
    job_id = submitted.json()["id"]
    await wait_for_status(http, keys, job_id, "THRESHOLD")
    refused = await http.post(
        f"/api/v1/jobs/{job_id}/sequences/0/revert", json={}, headers=auth(keys, "admin")
    )
    assert refused.status_code == 409, refused.text
    assert "is THRESHOLD; only a COMPLETED sequence" in refused.json()["detail"]
    unknown = await http.post(
        f"/api/v1/jobs/{uuid.uuid4()}/sequences/0/revert", json={}, headers=auth(keys, "admin")
    )
    assert unknown.status_code == 404, unknown.text
