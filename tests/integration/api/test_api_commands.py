"""Validate, cancel, restart, archive, unarchive and delete: 202/200/204 when the status allows
it, 409 naming the status when it does not, and the message on Kafka keyed by the job id."""

import uuid
from typing import Any

import pytest
from provisioning_common.statuses import JobStatus
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS
from pymongo.errors import AutoReconnect

from tests.integration.api.harness import (
    ApiHarness,
    insert_jobs,
    job_doc,
    messages_about,
    threshold_sequence,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

COMMANDS = {
    # path suffix: (statuses that allow it, command type)
    "threshold/validate": ({"THRESHOLD"}, "provisioning.ValidateThreshold"),
    "threshold/cancel": ({"THRESHOLD", "VALIDATED"}, "provisioning.CancelJob"),
    "restart": ({"THRESHOLD", "VALIDATED", "FAILED"}, "provisioning.RestartJob"),
}
FINISHED = {"COMPLETED", "FAILED", "CANCELED"}


def a_job(status: str) -> dict[str, Any]:
    sequences = [threshold_sequence()] if status in ("THRESHOLD", "VALIDATED") else None
    return job_doc(status=status, sequences=sequences)


@pytest.mark.parametrize("status", [s.value for s in JobStatus])
@pytest.mark.parametrize("command", list(COMMANDS))
async def test_a_command_is_accepted_only_in_the_statuses_that_allow_it(
    api: ApiHarness, command: str, status: str
) -> None:
    (job_id,) = await insert_jobs(api, a_job(status))
    allowed, command_type = COMMANDS[command]
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/{command}", headers=api.auth("operator")
    )
    if status not in allowed:
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert f"is {status}" in detail
        for name in allowed:
            assert name in detail
        return
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "ACCEPTED"
    assert body["job_id"] == job_id
    uuid.UUID(body["command_id"])
    (published,) = await messages_about(
        api.kafka, api.kafka.topic(JOB_COMMANDS), job_id, until=lambda found: len(found) >= 1
    )
    assert published["type"] == command_type
    assert published["subject"] == job_id
    assert published["data"]["command_id"] == body["command_id"]
    assert published["data"]["requested_by"] == "operator-1"


async def test_validate_passes_on_the_plan_the_operator_looked_at(api: ApiHarness) -> None:
    (job_id,) = await insert_jobs(api, a_job("THRESHOLD"))
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate",
        json={"plan_id": "plan-1"},
        headers=api.auth("operator"),
    )
    assert response.status_code == 202, response.text
    (published,) = await messages_about(
        api.kafka, api.kafka.topic(JOB_COMMANDS), job_id, until=lambda found: len(found) >= 1
    )
    assert published["data"]["plan_id"] == "plan-1"
    wrong = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate",
        json={"plan": "plan-1"},
        headers=api.auth("operator"),
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"][-1] == "plan"


async def test_validate_without_a_plan_id_names_the_plan_the_job_instance_is_blocked_on(
    api: ApiHarness,
) -> None:
    # Without a plan id the runner would approve whatever plan the job is blocked on when the
    # command arrives: a re-plan after someone else's restart that this operator never saw.
    (job_id,) = await insert_jobs(
        api, job_doc(status="THRESHOLD", sequences=[threshold_sequence(plan_id="plan-seen")])
    )
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate", headers=api.auth("operator")
    )
    assert response.status_code == 202, response.text
    (published,) = await messages_about(
        api.kafka, api.kafka.topic(JOB_COMMANDS), job_id, until=lambda found: len(found) >= 1
    )
    assert published["type"] == "provisioning.ValidateThreshold"
    assert published["data"]["plan_id"] == "plan-seen"


async def test_validate_is_refused_when_the_job_instance_names_no_blocked_plan(
    api: ApiHarness,
) -> None:
    (job_id,) = await insert_jobs(
        api, job_doc(status="THRESHOLD", sequences=[threshold_sequence(plan_id=None)])
    )
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate", headers=api.auth("operator")
    )
    assert response.status_code == 409, response.text
    assert "no blocked plan" in response.json()["detail"]
    await assert_only_a_cancel_follows(api, job_id)


async def test_validate_of_another_plan_than_the_blocked_one_is_refused_naming_it(
    api: ApiHarness,
) -> None:
    (job_id,) = await insert_jobs(api, a_job("THRESHOLD"))
    response = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate",
        json={"plan_id": "plan-0"},
        headers=api.auth("operator"),
    )
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        f"job {job_id} is blocked on plan plan-1, not on plan plan-0; "
        "look at the current plan and validate again"
    )
    await assert_only_a_cancel_follows(api, job_id)


async def assert_only_a_cancel_follows(api: ApiHarness, job_id: str) -> None:
    """Nothing was published before: a cancel sent now is the first command about the job."""
    cancel = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/cancel", headers=api.auth("operator")
    )
    assert cancel.status_code == 202, cancel.text
    commands = await messages_about(
        api.kafka, api.kafka.topic(JOB_COMMANDS), job_id, until=lambda found: len(found) >= 1
    )
    assert [c["type"] for c in commands] == ["provisioning.CancelJob"]


@pytest.mark.parametrize("command", [*COMMANDS, "archive", "unarchive"])
async def test_unknown_and_malformed_job_ids(api: ApiHarness, command: str) -> None:
    missing = await api.client.post(
        f"/api/v1/jobs/{uuid.uuid4()}/{command}", headers=api.auth("admin")
    )
    assert missing.status_code == 404
    assert "no job instance" in missing.json()["detail"]
    malformed = await api.client.post(f"/api/v1/jobs/job-42/{command}", headers=api.auth("admin"))
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "job_id"]


async def test_get_job_404_and_422(api: ApiHarness) -> None:
    missing = await api.client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=api.auth("viewer"))
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("no job instance with id")
    malformed = await api.client.get("/api/v1/jobs/not-a-uuid", headers=api.auth("viewer"))
    assert malformed.status_code == 422


@pytest.mark.parametrize("status", [s.value for s in JobStatus])
async def test_archive_unarchive_and_delete_only_finished_jobs(
    api: ApiHarness, status: str
) -> None:
    (job_id,) = await insert_jobs(api, a_job(status))
    archive = await api.client.post(f"/api/v1/jobs/{job_id}/archive", headers=api.auth("admin"))
    unarchive = await api.client.post(f"/api/v1/jobs/{job_id}/unarchive", headers=api.auth("admin"))
    delete = await api.client.delete(f"/api/v1/jobs/{job_id}", headers=api.auth("admin"))
    if status in FINISHED:
        assert archive.status_code == 200, archive.text
        assert unarchive.status_code == 200, unarchive.text
        assert delete.status_code == 204, delete.text
        return
    for refused in (archive, unarchive, delete):
        assert refused.status_code == 409, refused.text
        assert f"is {status}" in refused.json()["detail"]
    stored = await api.db["job_instances"].find_one({"_id": job_id})
    assert stored is not None
    assert stored["archived"] is False


async def listed_ids(api: ApiHarness, **params: Any) -> set[str]:
    response = await api.client.get(
        "/api/v1/jobs", params={"page_size": 100, **params}, headers=api.auth("viewer")
    )
    assert response.status_code == 200
    return {item["id"] for item in response.json()["items"]}


async def test_archive_leaves_the_listing_at_once_and_publishes_job_archived(
    api: ApiHarness,
) -> None:
    (job_id,) = await insert_jobs(api, a_job("COMPLETED"))
    assert job_id in await listed_ids(api)

    archived = await api.client.post(f"/api/v1/jobs/{job_id}/archive", headers=api.auth("admin"))
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    assert archived.json()["archived_by"] == "admin"
    assert job_id not in await listed_ids(api)
    assert job_id in await listed_ids(api, archived="true")

    unarchived = await api.client.post(
        f"/api/v1/jobs/{job_id}/unarchive", headers=api.auth("admin")
    )
    assert unarchived.status_code == 200
    assert unarchived.json()["archived"] is False
    assert job_id in await listed_ids(api)

    events = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 2
    )
    assert [(e["type"], e["data"]["archived"]) for e in events] == [
        ("provisioning.JobArchived", True),
        ("provisioning.JobArchived", False),
    ]
    assert events[0]["data"]["archived_by"] == "admin"


async def test_delete_removes_the_job_and_publishes_job_deleted(api: ApiHarness) -> None:
    (job_id,) = await insert_jobs(api, a_job("FAILED"))
    deleted = await api.client.delete(f"/api/v1/jobs/{job_id}", headers=api.auth("admin"))
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("viewer"))
    assert gone.status_code == 404
    (event,) = await messages_about(
        api.kafka, api.kafka.topic(JOB_EVENTS), job_id, until=lambda found: len(found) >= 1
    )
    assert event["type"] == "provisioning.JobDeleted"
    assert event["data"]["deleted_by"] == "admin"
    again = await api.client.delete(f"/api/v1/jobs/{job_id}", headers=api.auth("admin"))
    assert again.status_code == 404


async def test_actions_are_audited_with_who_what_and_outcome(api: ApiHarness) -> None:
    (job_id,) = await insert_jobs(api, a_job("THRESHOLD"))
    accepted = await api.client.post(
        f"/api/v1/jobs/{job_id}/threshold/validate", headers=api.auth("operator")
    )
    refused = await api.client.post(f"/api/v1/jobs/{job_id}/archive", headers=api.auth("admin"))
    assert (accepted.status_code, refused.status_code) == (202, 409)
    page = await api.client.get(
        "/api/v1/audit", params={"job_id": job_id}, headers=api.auth("admin")
    )
    assert page.status_code == 200
    newest, oldest = page.json()["items"]
    assert (newest["action"], newest["actor"], newest["outcome"]) == (
        "archive",
        "admin",
        "rejected",
    )
    assert newest["status_code"] == 409
    assert "is THRESHOLD" in newest["reason"]
    assert (oldest["action"], oldest["actor"], oldest["outcome"]) == (
        "validate",
        "operator-1",
        "accepted",
    )
    assert oldest["status_code"] == 202
    assert oldest["command_id"] == accepted.json()["command_id"]
    assert oldest["at"] <= newest["at"]


@pytest.mark.parametrize(
    ("status", "archived", "role", "offered"),
    [
        ("THRESHOLD", False, "viewer", []),
        ("THRESHOLD", False, "operator", ["validate", "cancel", "restart"]),
        ("THRESHOLD", False, "admin", ["validate", "cancel", "restart"]),
        ("VALIDATED", False, "operator", ["cancel", "restart"]),
        ("FAILED", False, "operator", ["restart"]),
        ("FAILED", False, "admin", ["restart", "archive", "delete"]),
        ("FAILED", True, "admin", ["restart", "unarchive", "delete"]),
        ("COMPLETED", False, "admin", ["archive", "delete"]),
        ("COMPLETED", True, "operator", []),
        ("RUNNING", False, "admin", []),
        ("QUEUED", False, "admin", []),
    ],
)
async def test_each_job_instance_names_the_actions_the_callers_role_may_take_now(
    api: ApiHarness, status: str, archived: bool, role: str, offered: list[str]
) -> None:
    doc = a_job(status)
    doc["archived"] = archived
    (job_id,) = await insert_jobs(api, doc)
    one = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth(role))
    assert one.status_code == 200, one.text
    assert one.json()["allowed_actions"] == offered
    listing = await api.client.get(
        "/api/v1/jobs", params={"archived": "any", "page_size": 100}, headers=api.auth(role)
    )
    (listed,) = [item for item in listing.json()["items"] if item["id"] == job_id]
    assert listed["allowed_actions"] == offered


async def test_every_action_offered_is_accepted(api: ApiHarness) -> None:
    # The console shows exactly these buttons: none of them may answer 409.
    for status in [s.value for s in JobStatus]:
        (job_id,) = await insert_jobs(api, a_job(status))
        offered = (
            await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth("admin"))
        ).json()["allowed_actions"]
        for action in offered:
            (job_id,) = await insert_jobs(api, a_job(status))
            path = {"validate": "threshold/validate", "cancel": "threshold/cancel"}.get(
                action, action
            )
            if action == "delete":
                answer = await api.client.delete(
                    f"/api/v1/jobs/{job_id}", headers=api.auth("admin")
                )
            else:
                answer = await api.client.post(
                    f"/api/v1/jobs/{job_id}/{path}", headers=api.auth("admin")
                )
            assert answer.status_code in (200, 202, 204), (status, action, answer.text)


async def test_an_action_whose_audit_entry_cannot_be_written_does_not_run(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry is written before the action: an action that ran without one was unaudited."""
    (job_id,) = await insert_jobs(api, a_job("THRESHOLD"))
    audit = api.app.state.services.audit

    async def database_away(entry: object) -> None:
        raise AutoReconnect("audit collection unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(audit, "record", database_away)
        refused = await api.client.post(
            f"/api/v1/jobs/{job_id}/threshold/validate", headers=api.auth("operator")
        )
    assert refused.status_code == 503, refused.text
    await assert_only_a_cancel_follows(api, job_id)


async def test_an_action_whose_end_cannot_be_recorded_stays_in_the_trail_as_pending(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job_id,) = await insert_jobs(api, a_job("THRESHOLD"))
    audit = api.app.state.services.audit

    async def database_away(entry: object) -> None:
        raise AutoReconnect("audit collection unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(audit, "settle", database_away)
        accepted = await api.client.post(
            f"/api/v1/jobs/{job_id}/threshold/validate", headers=api.auth("operator")
        )
    assert accepted.status_code == 202, accepted.text
    (entry,) = [e async for e in api.db["audit"].find({"job_id": job_id})]
    assert (entry["action"], entry["actor"], entry["outcome"]) == (
        "validate",
        "operator-1",
        "pending",
    )
    page = await api.client.get(
        "/api/v1/audit", params={"job_id": job_id}, headers=api.auth("admin")
    )
    assert page.json()["items"][0]["outcome"] == "pending"
