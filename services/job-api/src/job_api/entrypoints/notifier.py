"""The job-api-notifier process: tells a definition's recipients when its jobs stop.

A process of its own, beside the projector, because sending waits on other people's servers
(an SMTP relay, a webhook that answers slowly or not at all, retried with back-off): inside the
projector that would hold up the read model, inside the HTTP API it would die with a request.
It reads provisioning.job-events in its own consumer group; replicas and restarts are safe
because each delivery is claimed in MongoDB (`notifications`) before it is sent.
"""

import asyncio
import logging
import os
import socket
import uuid
from datetime import timedelta

from faststream import FastStream
from faststream.kafka import KafkaBroker
from provisioning_common.consuming import subscribe_envelopes
from provisioning_common.events import parse_job_event
from provisioning_common.kafka import build_broker
from provisioning_common.logs import configure_logging
from provisioning_common.redaction import redacted_uri
from provisioning_common.retrying import RetryPolicy
from provisioning_common.topics import JOB_EVENTS, ensure_topics

from job_api.adapters.notification_senders import EmailSender, WebhookSender
from job_api.adapters.notification_store import NotificationStore
from job_api.entrypoints.background import run_every
from job_api.handlers.notifications import Notifier
from job_api.settings import JobApiSettings

SERVICE = "job-api-notifier"
NOTIFIER_GROUP = "job-api-notifier"
# How often a notifier looks for deliveries a dead notifier left half done.
ABANDONED_SWEEP_SECONDS = 30.0

logger = logging.getLogger(__name__)


def broker_factory(settings: JobApiSettings) -> KafkaBroker:
    return build_broker(
        settings.kafka, logger=logging.getLogger(f"{SERVICE}.kafka"), log_level=logging.DEBUG
    )


def app_factory(settings: JobApiSettings) -> FastStream:
    """The notifier app; it connects when it starts, never before."""
    broker = broker_factory(settings)
    mongo = settings.mongo.client()
    store = NotificationStore(mongo[settings.mongo.database])
    notifier = Notifier(
        store=store,
        webhooks=WebhookSender(settings.webhook_secrets),
        emails=EmailSender(settings.smtp_host, settings.smtp_port),
        owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        console_base_url=settings.console_base_url,
        smtp_from=settings.smtp_from,
        policy=RetryPolicy(
            first_delay_seconds=settings.notify_first_delay_seconds,
            give_up_after=settings.notify_attempts,
            transient_give_up_after=settings.notify_attempts,
        ),
        max_age=timedelta(hours=settings.notify_max_age_hours),
    )
    topic = settings.kafka.topic(JOB_EVENTS)
    app = FastStream(broker, logger=logger)
    run_every(
        app,
        notifier.resume_abandoned,
        ABANDONED_SWEEP_SECONDS,
        "looking for abandoned notifications failed",
    )

    @app.on_startup
    async def subscribe() -> None:
        await ensure_topics(settings.kafka)
        await store.ensure_indexes()
        group = settings.kafka.group_id(NOTIFIER_GROUP)
        subscribe_envelopes(
            broker,
            topic=topic,
            group_id=group,
            parse=parse_job_event,
            handle=notifier.handle,
            title=f"{SERVICE}:{topic}",
            description="Tells a definition's recipients when one of its jobs stops.",
            policy=settings.kafka.consumer_retry_policy(),
            **settings.kafka.consumer_params(),
        )
        logger.info(
            "%s started: kafka %s, topic %s, group %s; mongo %s, database %s; smtp %s",
            SERVICE,
            settings.kafka.bootstrap_servers,
            topic,
            group,
            redacted_uri(settings.mongo.uri),
            settings.mongo.database,
            f"{settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host else "none",
        )

    @app.after_shutdown
    async def close_mongo() -> None:
        await mongo.close()
        logger.info("%s stopped", SERVICE)

    return app


def main() -> None:
    settings = JobApiSettings()
    configure_logging(SERVICE, settings.log_level)
    asyncio.run(app_factory(settings).run())


if __name__ == "__main__":
    main()
