"""Delivery claims on the real database: a notifier that died while sending leaves its delivery
to be finished once by another, never twice, and a live claim is left alone."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from job_api.adapters.notification_store import NotificationStore
from job_api.handlers.notifications import DELIVERY_LEASE, Notifier
from provisioning_common.retrying import RetryPolicy
from pymongo import AsyncMongoClient

from tests.unit.job_api.test_notifications import FakeEmails, FakeWebhooks

pytestmark = [pytest.mark.mongo]

T0 = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)


def delivery(event_id: str) -> dict[str, Any]:
    return {
        "_id": f"{event_id}:ops:webhook",
        "event_id": event_id,
        "job_id": "job-1",
        "kind": "failed",
        "recipient": "ops",
        "channel": "webhook",
        "address": "http://hooks.example.com/x",
        "body": {"event_id": event_id, "status": "FAILED"},
    }


async def test_an_abandoned_delivery_is_finished_once_by_another_notifier(
    mongo_client: AsyncMongoClient[Any], unique_name: str
) -> None:
    store = NotificationStore(mongo_client[unique_name])
    await store.ensure_indexes()
    # A notifier claimed two deliveries and died: one claim long ago, one a moment ago.
    assert await store.claim(delivery("ev-dead"), "dead", T0, DELIVERY_LEASE)
    now = T0 + DELIVERY_LEASE + timedelta(seconds=1)
    assert await store.claim(delivery("ev-live"), "busy", now, DELIVERY_LEASE)
    # The event read again by a replica: the claims stand, nothing is sent from the event.
    assert not await store.claim(delivery("ev-live"), "replica", now, DELIVERY_LEASE)

    webhooks = [FakeWebhooks(), FakeWebhooks()]
    notifiers = [
        Notifier(
            store=store,
            webhooks=w,
            emails=FakeEmails(),
            owner=f"n{i}",
            console_base_url="http://console",
            smtp_from="p@example.com",
            policy=RetryPolicy(first_delay_seconds=0.01, give_up_after=2),
            clock=lambda: now,
        )
        for i, w in enumerate(webhooks)
    ]
    assert await notifiers[0].resume_abandoned() == 1
    assert await notifiers[1].resume_abandoned() == 0
    assert [len(w.sent) for w in webhooks] == [1, 0]
    finished = await mongo_client[unique_name]["notifications"].find_one(
        {"_id": "ev-dead:ops:webhook"}
    )
    assert finished is not None
    assert (finished["status"], finished["claimed_by"]) == ("sent", "n0")
    live = await mongo_client[unique_name]["notifications"].find_one({"_id": "ev-live:ops:webhook"})
    assert live is not None
    assert (live["status"], live["claimed_by"]) == ("sending", "busy")
