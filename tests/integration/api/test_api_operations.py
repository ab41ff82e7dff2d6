"""The routes that show what the system did by itself: a job's notifications with every attempt,
and a schedule's firings (requested or skipped), read by any role, on the real database."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from job_api.adapters.notification_store import NotificationStore
from job_api.adapters.schedule_store import ScheduleStore
from job_api.bootstrap import JobApiServices
from job_api.handlers.retention import SYSTEM_ACTOR, RetentionSweep
from provisioning_common.definition_options import Retention
from provisioning_common.topics import JOB_EVENTS

from tests.integration.api.harness import ApiHarness, insert_jobs, job_doc, messages_about

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

AT = datetime(2026, 12, 6, 5, 30, tzinfo=UTC)


async def test_a_jobs_notifications_show_each_attempt(api: ApiHarness) -> None:
    (job_id,) = await insert_jobs(api, job_doc(status="FAILED"))
    store = NotificationStore(api.db)
    delivery_id = "ev-1:ops:webhook"
    delivery: dict[str, Any] = {
        "_id": delivery_id,
        "event_id": "ev-1",
        "job_id": job_id,
        "kind": "failed",
        "recipient": "ops",
        "channel": "webhook",
        "address": "https://hooks.example.com/x",
        "body": {"status": "FAILED"},
    }
    assert await store.claim(delivery, "n1", AT, timedelta(minutes=5))
    await store.record_attempt(delivery_id, AT, False, "DeliveryRefusedError: 503", AT)
    await store.record_attempt(delivery_id, AT + timedelta(seconds=1), True, "204", AT)
    await store.finish(delivery_id, "sent", AT + timedelta(seconds=1))

    answer = await api.client.get(
        f"/api/v1/jobs/{job_id}/notifications", headers=api.auth("viewer")
    )
    assert answer.status_code == 200, answer.text
    (shown,) = answer.json()["items"]
    assert shown["id"] == "ev-1:ops:webhook"
    assert (shown["status"], shown["channel"], shown["recipient"]) == ("sent", "webhook", "ops")
    assert [(a["ok"], a["detail"]) for a in shown["attempts"]] == [
        (False, "DeliveryRefusedError: 503"),
        (True, "204"),
    ]
    assert "body" not in shown
    assert "claimed_by" not in shown

    unknown = await api.client.get(
        "/api/v1/jobs/00000000-0000-0000-0000-000000000000/notifications",
        headers=api.auth("viewer"),
    )
    assert unknown.status_code == 404
    nobody = await api.client.get(f"/api/v1/jobs/{job_id}/notifications", headers=api.auth(None))
    assert nobody.status_code == 401


async def test_a_definitions_firings_say_what_each_started_or_why_not(api: ApiHarness) -> None:
    body = {
        "id": "hr-sync-firings",
        "name": "HR sync",
        "schedule": {"cron": "*/30 * * * *", "timezone": "Europe/Paris"},
        "recipients": [{"name": "ops", "email": "iam@example.com"}],
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": "people"},
                "key": "uid",
                "thresholds": {"create": {"count": 10}},
            }
        ],
    }
    created = await api.client.post("/api/v1/job-definitions", json=body, headers=api.auth("admin"))
    assert created.status_code == 201, created.text
    assert created.json()["schedule"]["cron"] == "*/30 * * * *"
    store = ScheduleStore(api.db)
    for at, status, extra in (
        (AT, "requested", {"job_id": "job-1"}),
        (
            AT + timedelta(minutes=30),
            "skipped",
            {"reason": "job job-1 of this definition is RUNNING"},
        ),
    ):
        await store.record_firing(
            {
                "_id": f"schedule:hr-sync-firings:{at:%Y-%m-%dT%H:%M:%SZ}",
                "definition_id": "hr-sync-firings",
                "at": at,
                "missed": 0,
                "status": status,
                "claimed_at": at,
                **extra,
            }
        )
    answer = await api.client.get(
        "/api/v1/job-definitions/hr-sync-firings/firings", headers=api.auth("viewer")
    )
    assert answer.status_code == 200, answer.text
    assert [(f["status"], f["job_id"], f["reason"]) for f in answer.json()["items"]] == [
        ("skipped", None, "job job-1 of this definition is RUNNING"),
        ("requested", "job-1", None),
    ]
    # The next firing, for the definition page: a :00 or :30 of the coming half hour.
    next_at = datetime.fromisoformat(answer.json()["next_at"])
    assert timedelta(0) < next_at - datetime.now(UTC) <= timedelta(minutes=30)
    assert (next_at.minute, next_at.second) in ((0, 0), (30, 0))

    wrong = await api.client.post(
        "/api/v1/job-definitions",
        json={**body, "id": "bad-schedule", "schedule": {"cron": "*/30 * * *"}},
        headers=api.auth("admin"),
    )
    assert wrong.status_code == 422
    assert "schedule" in wrong.text
    assert "cron" in wrong.text


async def test_retention_archives_then_deletes_as_the_system_and_audits_it(
    api: ApiHarness,
) -> None:
    services: JobApiServices = api.app.state.services
    # The real time: archiving stamps archived_at with it, as an operator's archive does.
    now = datetime.now(UTC)
    await api.db["job_instances"].delete_many({})  # this module's other jobs are not about this
    body = {
        "id": "keep-short",
        "name": "Kept a short time",
        "retention": {"archive_after_days": 2, "delete_after_days": 5},
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": "people"},
                "key": "uid",
                "thresholds": {"create": {"count": 10}},
            }
        ],
    }
    created = await api.client.post("/api/v1/job-definitions", json=body, headers=api.auth("admin"))
    assert created.status_code == 201, created.text
    ended = now - timedelta(days=3)
    short, default_kept, unfinished = await insert_jobs(
        api,
        job_doc(definition_id="keep-short", created_at=ended, ended_at=ended),
        # The system default (30 days) keeps a job of a definition without its own retention.
        job_doc(definition_id="hr-import", created_at=ended, ended_at=ended),
        job_doc(status="THRESHOLD", definition_id="keep-short", created_at=now - timedelta(days=9)),
    )
    old_archived = job_doc(
        definition_id="keep-short", created_at=now - timedelta(days=20), archived=True
    )
    old_archived["archived_at"] = now - timedelta(days=6)
    (gone,) = await insert_jobs(api, old_archived)

    sweep = RetentionSweep(
        db=services.db,
        actions=services.job_actions,
        audit=services.audit,
        default=Retention(archive_after_days=30, delete_after_days=90),
        clock=lambda: now,
    )
    assert await sweep.run() == (1, 1)
    assert await sweep.run() == (0, 0)  # done once: a second pass (or replica) finds nothing

    jobs = api.db["job_instances"]
    archived = await jobs.find_one({"_id": short})
    assert archived is not None
    assert (archived["archived"], archived["archived_by"]) == (True, SYSTEM_ACTOR)
    for kept in (default_kept, unfinished):
        doc = await jobs.find_one({"_id": kept})
        assert doc is not None
        assert doc["archived"] is False
    assert await jobs.find_one({"_id": gone}) is None

    events = await messages_about(
        api.kafka,
        api.kafka.topic(JOB_EVENTS),
        gone,
        until=lambda found: any(m["type"] == "provisioning.JobDeleted" for m in found),
    )
    assert events[-1]["data"]["deleted_by"] == SYSTEM_ACTOR
    audit = await api.client.get(
        "/api/v1/audit", params={"page_size": 100}, headers=api.auth("admin")
    )
    assert audit.status_code == 200, audit.text
    by_system = {
        (e["action"], e["job_id"], e["reason"])
        for e in audit.json()["items"]
        if e["actor"] == SYSTEM_ACTOR
    }
    assert by_system == {
        ("archive", short, "retention: ended more than 2 days ago"),
        ("delete", gone, "retention: archived more than 5 days ago"),
    }
