"""The job-requests subscriber that the job-api HTTP process runs on its broker."""

import logging
from typing import cast

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from provisioning_common.topics import JOB_REQUESTS

from job_api.adapters.job_events import KafkaJobEvents
from job_api.adapters.job_events import KafkaPosition as SourceRecord
from job_api.entrypoints.projector import retrying
from job_api.handlers.job_requests import (
    DefinitionLookup,
    JobEventPublisher,
    JobInstanceIntake,
    intake_raw_request,
)
from job_api.settings import JobApiSettings

INTAKE_GROUP = "job-api-intake"

logger = logging.getLogger(__name__)


def build_intake_subscriber(
    broker: KafkaBroker,
    settings: JobApiSettings,
    *,
    definitions: DefinitionLookup,
    job_instances: JobInstanceIntake,
    publisher: JobEventPublisher | None = None,
) -> DefaultSubscriber:
    """Subscribe `broker` to provisioning.job-requests (group job-api-intake); call before start.

    Each request is committed once its JobCreated or JobRejected is on job-events and its job
    instance stored; a message that fails for another reason (MongoDB away) is consumed again.
    Returns the faststream subscriber.
    """
    topic = settings.kafka.topic(JOB_REQUESTS)
    events = publisher or KafkaJobEvents(broker, settings.kafka)
    subscriber = broker.subscriber(
        topic,
        group_id=settings.kafka.group_id(INTAKE_GROUP),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # A request just over the limit must still reach us, to be rejected with its reason.
        max_partition_fetch_bytes=max(settings.max_request_bytes * 2, 1024 * 1024),
        title=f"job-api-intake:{topic}",
        description="Job requests (plain JSON JobRequest) become JobCreated or JobRejected.",
    )

    @subscriber
    async def on_job_request(message: KafkaMessage) -> None:
        record = cast("ConsumerRecord[bytes | None, bytes | None]", message.raw_message)
        source = SourceRecord(
            topic=record.topic, partition=record.partition, offset=record.offset, key=record.key
        )
        raw = record.value or b""

        async def take_in() -> None:
            await intake_raw_request(
                raw,
                definitions=definitions,
                job_instances=job_instances,
                publisher=events,
                source=source,
                max_bytes=settings.max_request_bytes,
            )

        await retrying(take_in, what=f"{record.topic}:{record.partition}:{record.offset}")

    logger.info(
        "job requests consumed from %s with group %s",
        topic,
        settings.kafka.group_id(INTAKE_GROUP),
    )
    return subscriber
