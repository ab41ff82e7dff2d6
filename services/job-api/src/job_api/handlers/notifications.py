"""Tells a definition's recipients when one of its jobs stops: once per event, recipient and
channel, however many notifiers read the event and however often."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from provisioning_common.events import JobCreated, JobEvent
from provisioning_common.retrying import GaveUpError, RetryPolicy, describe, retrying

from job_api.adapters.notification_senders import NotConfiguredError
from job_api.domain.notifications import (
    JobContext,
    canonical_json,
    email_message,
    notice_body,
    notice_kind,
)

logger = logging.getLogger(__name__)

# Longer than every try of one delivery together: a live notifier never loses its claim.
DELIVERY_LEASE = timedelta(minutes=5)


class DeliveryStore(Protocol):
    async def remember_job(self, job: JobContext) -> None: ...
    async def job(self, job_id: str) -> JobContext | None: ...
    async def claim(
        self, delivery: dict[str, Any], owner: str, now: datetime, lease: timedelta
    ) -> bool: ...
    async def take_over(
        self, delivery_id: str, owner: str, now: datetime, lease: timedelta
    ) -> dict[str, Any] | None: ...
    async def abandoned(self, now: datetime, limit: int = 50) -> list[str]: ...
    async def record_attempt(
        self, delivery_id: str, at: datetime, ok: bool, detail: str, lease_until: datetime
    ) -> None: ...
    async def finish(self, delivery_id: str, status: str, at: datetime) -> None: ...


class Webhooks(Protocol):
    async def send(
        self, url: str, recipient: str, payload: bytes, *, event_id: str, delivery_id: str
    ) -> str: ...


class Emails(Protocol):
    async def send(self, message: Any) -> str: ...


@dataclass
class Notifier:
    store: DeliveryStore
    webhooks: Webhooks
    emails: Emails
    owner: str
    console_base_url: str
    smtp_from: str
    policy: RetryPolicy
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Events older than this are not told: a notifier deployed (or given a new consumer group)
    # on a system with months of history must not mail every stop of those months.
    max_age: timedelta | None = None

    async def handle(self, event: JobEvent) -> bool:
        """The subscriber's handler: True when the event was acted on (it is then logged)."""
        if isinstance(event, JobCreated):
            await self.store.remember_job(_context(event))
            return False
        kind = notice_kind(event)
        if kind is None:
            return False
        job = await self.store.job(event.subject)
        if job is None or kind not in job.notify_on or not job.recipients:
            return False
        if job.dry_run and kind == "threshold":
            return False  # a dry run's blocked plan waits for nobody: it is told as it ends
        if self.max_age is not None and event.time < self.clock() - self.max_age:
            logger.info("%s of %s not told: older than %s", kind, event.subject, self.max_age)
            return False
        body = notice_body(event, kind, job, self.console_base_url)
        for recipient in job.recipients:
            for channel in ("webhook", "email"):
                address = recipient.get("webhook_url" if channel == "webhook" else "email")
                if address is None:
                    continue
                delivery = {
                    "_id": f"{event.id}:{recipient['name']}:{channel}",
                    "event_id": event.id,
                    "job_id": job.job_id,
                    "kind": kind,
                    "recipient": recipient["name"],
                    "channel": channel,
                    "address": address,
                    "body": body,
                }
                if await self.store.claim(delivery, self.owner, self.clock(), DELIVERY_LEASE):
                    await self.deliver(delivery)
        return True

    async def resume_abandoned(self) -> int:
        """Finish deliveries whose notifier died while sending them (its lease ran out)."""
        resumed = 0
        for delivery_id in await self.store.abandoned(self.clock()):
            delivery = await self.store.take_over(
                delivery_id, self.owner, self.clock(), DELIVERY_LEASE
            )
            if delivery is not None:
                logger.warning("resuming delivery %s, abandoned by its notifier", delivery_id)
                await self.deliver(delivery)
                resumed += 1
        return resumed

    async def deliver(self, delivery: dict[str, Any]) -> None:
        delivery_id: str = delivery["_id"]
        not_configured: list[str] = []

        async def attempt() -> None:
            at = self.clock()
            try:
                detail = await self._send(delivery)
            except NotConfiguredError as error:
                # Retrying cannot help until the system is configured: one attempt, recorded.
                not_configured.append(str(error))
                return
            except Exception as error:
                await self.store.record_attempt(
                    delivery_id, at, False, describe(error), at + DELIVERY_LEASE
                )
                raise
            await self.store.record_attempt(delivery_id, at, True, detail, at + DELIVERY_LEASE)

        status = "sent"
        try:
            await retrying(attempt, what=f"notification {delivery_id}", policy=self.policy)
        except GaveUpError as error:
            logger.error("notification %s not sent: %s", delivery_id, error)
            status = "failed"
        if not_configured:
            now = self.clock()
            await self.store.record_attempt(delivery_id, now, False, not_configured[0], now)
            logger.error("notification %s not sent: %s", delivery_id, not_configured[0])
            status = "failed"
        if status == "sent":
            logger.info("notification %s sent", delivery_id)
        await self.store.finish(delivery_id, status, self.clock())

    async def _send(self, delivery: dict[str, Any]) -> str:
        body = delivery["body"]
        if delivery["channel"] == "webhook":
            return await self.webhooks.send(
                delivery["address"],
                delivery["recipient"],
                canonical_json(body),
                event_id=delivery["event_id"],
                delivery_id=delivery["_id"],
            )
        message = email_message(body, sender=self.smtp_from, to=delivery["address"])
        return await self.emails.send(message)


def _context(event: JobCreated) -> JobContext:
    definition = event.data.definition
    return JobContext(
        job_id=event.subject,
        definition_id=definition.id,
        definition_name=definition.name,
        sequence_names=[s.name for s in definition.sequences],
        recipients=[r.model_dump(mode="json") for r in definition.recipients],
        notify_on=list(definition.notify_on),
        dry_run=bool(getattr(event.data, "dry_run", False)),
    )
