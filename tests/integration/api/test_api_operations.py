"""The routes that show what the system did by itself: a job's notifications with every attempt,
and a schedule's firings (requested or skipped), read by any role, on the real database."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from job_api.adapters.notification_store import NotificationStore
from job_api.adapters.schedule_store import ScheduleStore

from tests.integration.api.harness import ApiHarness, insert_jobs, job_doc

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

    wrong = await api.client.post(
        "/api/v1/job-definitions",
        json={**body, "id": "bad-schedule", "schedule": {"cron": "*/30 * * *"}},
        headers=api.auth("admin"),
    )
    assert wrong.status_code == 422
    assert "schedule" in wrong.text
    assert "cron" in wrong.text
