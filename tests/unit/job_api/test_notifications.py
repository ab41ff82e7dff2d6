"""The notifier's rules with hand-written fakes: what is told, once per claim, and a delivery
that cannot be made (no secret configured) recorded as one failed attempt, not retried."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from job_api.adapters.notification_senders import NotConfiguredError
from job_api.domain.notifications import JobContext, canonical_json, signature
from job_api.handlers.notifications import Notifier
from provisioning_common.events import JobCompleted, JobCompletedData
from provisioning_common.retrying import RetryPolicy

from tests.unit.job_api.test_projection import blocked

JOB = "job-1"


class FakeStore:
    def __init__(self, job: JobContext) -> None:
        self.jobs = {job.job_id: job}
        self.deliveries: dict[str, dict[str, Any]] = {}

    async def remember_job(self, job: JobContext) -> None:
        self.jobs[job.job_id] = job

    async def job(self, job_id: str) -> JobContext | None:
        return self.jobs.get(job_id)

    async def claim(
        self, delivery: dict[str, Any], owner: str, now: datetime, lease: timedelta
    ) -> bool:
        if delivery["_id"] in self.deliveries:
            return False
        self.deliveries[delivery["_id"]] = {**delivery, "attempts": [], "status": "sending"}
        return True

    async def take_over(
        self, delivery_id: str, owner: str, now: datetime, lease: timedelta
    ) -> dict[str, Any] | None:
        return None

    async def abandoned(self, now: datetime, limit: int = 50) -> list[str]:
        return []

    async def record_attempt(
        self, delivery_id: str, at: datetime, ok: bool, detail: str, lease_until: datetime
    ) -> None:
        self.deliveries[delivery_id]["attempts"].append((ok, detail))

    async def finish(self, delivery_id: str, status: str, at: datetime) -> None:
        self.deliveries[delivery_id]["status"] = status


class FakeWebhooks:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[bytes] = []
        self.error = error

    async def send(
        self, url: str, recipient: str, payload: bytes, *, event_id: str, delivery_id: str
    ) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append(payload)
        return "204"


class FakeEmails:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, message: Any) -> str:
        self.sent.append(message)
        return "250"


def context(**changes: Any) -> JobContext:
    fields: dict[str, Any] = {
        "job_id": JOB,
        "definition_id": "hr-import",
        "definition_name": "HR import",
        "sequence_names": ["employees"],
        "recipients": [{"name": "ops", "webhook_url": "http://hooks/x", "email": None}],
        "notify_on": ["threshold", "failed"],
        **changes,
    }
    return JobContext(**fields)


def notifier(store: FakeStore, webhooks: FakeWebhooks) -> Notifier:
    return Notifier(
        store=store,
        webhooks=webhooks,
        emails=FakeEmails(),
        owner="test",
        console_base_url="https://console.example.com/",
        smtp_from="p@example.com",
        policy=RetryPolicy(first_delay_seconds=0.001, give_up_after=3),
        clock=lambda: datetime(2026, 12, 6, tzinfo=UTC),
    )


async def test_a_threshold_is_told_once_however_often_the_event_comes() -> None:
    store, webhooks = FakeStore(context()), FakeWebhooks()
    event = blocked(JOB, 5)
    assert await notifier(store, webhooks).handle(event)
    await notifier(store, webhooks).handle(event)  # a replica, or a redelivery
    assert len(webhooks.sent) == 1
    assert b'"link":"https://console.example.com/#/jobs/job-1"' in webhooks.sent[0]


async def test_what_the_definition_does_not_ask_for_is_not_told() -> None:
    store, webhooks = FakeStore(context()), FakeWebhooks()
    completed = JobCompleted(source="/t", subject=JOB, time=datetime(2026, 12, 6, tzinfo=UTC))
    assert not await notifier(store, webhooks).handle(completed)
    assert webhooks.sent == []


async def test_a_dry_run_is_told_when_it_ends_not_at_a_threshold_it_only_foresaw() -> None:
    store = FakeStore(context(dry_run=True, notify_on=["threshold", "completed"]))
    webhooks = FakeWebhooks()
    assert not await notifier(store, webhooks).handle(blocked(JOB, 5))
    ended = JobCompleted(
        source="/t",
        subject=JOB,
        time=datetime(2026, 12, 6, tzinfo=UTC),
        data=JobCompletedData(dry_run=True),
    )
    assert await notifier(store, webhooks).handle(ended)
    assert len(webhooks.sent) == 1
    assert b'"dry_run":true' in webhooks.sent[0]


async def test_a_missing_secret_is_one_failed_attempt_saying_so() -> None:
    store = FakeStore(context())
    webhooks = FakeWebhooks(NotConfiguredError("no webhook secret for recipient 'ops'"))
    await notifier(store, webhooks).handle(blocked(JOB, 5))
    (delivery,) = store.deliveries.values()
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == [(False, "no webhook secret for recipient 'ops'")]


async def test_a_refusing_receiver_is_retried_then_given_up_with_every_attempt_kept() -> None:
    store, webhooks = FakeStore(context()), FakeWebhooks(RuntimeError("answered 500"))
    await notifier(store, webhooks).handle(blocked(JOB, 5))
    (delivery,) = store.deliveries.values()
    assert delivery["status"] == "failed"
    assert [ok for ok, _ in delivery["attempts"]] == [False, False, False]


async def test_a_stop_older_than_the_max_age_is_not_told() -> None:
    store, webhooks = FakeStore(context()), FakeWebhooks()
    catching_up = notifier(store, webhooks)
    catching_up.max_age = timedelta(hours=24)
    assert not await catching_up.handle(blocked(JOB, 5))  # stamped five days before the clock
    assert webhooks.sent == []


def test_the_signature_is_hmac_sha256_over_the_exact_body() -> None:
    body = canonical_json({"b": 1, "a": "é"})
    expected = hmac.new(b"s3", body, hashlib.sha256).hexdigest()
    assert signature("s3", body) == f"sha256={expected}"
    assert body == b'{"a":"\\u00e9","b":1}'
