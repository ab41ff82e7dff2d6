"""The job-requests subscriber that the job-api HTTP process runs on its broker."""

import logging

from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from provisioning_common.consuming import Received, subscribe_topic
from provisioning_common.retrying import RetryPolicy
from provisioning_common.topics import JOB_REQUESTS

from job_api.adapters.job_events import KafkaJobEvents, KafkaPosition
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
    policy: RetryPolicy | None = None,
) -> DefaultSubscriber:
    """Subscribe `broker` to provisioning.job-requests (group job-api-intake); call before start.

    Each request is committed once its JobCreated or JobRejected is on job-events and its job
    instance stored. A request that is not a valid JobRequest is rejected by the handler itself
    (JobRejected and a dead letter); one whose handling fails is retried, for as long as
    MongoDB or Kafka is away, and otherwise dead-lettered after a few failures.
    """
    topic = settings.kafka.topic(JOB_REQUESTS)
    events = publisher or KafkaJobEvents(broker, settings.kafka)

    async def take_in(raw: bytes, at: Received) -> bool:
        source = KafkaPosition(topic=at.topic, partition=at.partition, offset=at.offset, key=at.key)
        await intake_raw_request(
            raw,
            definitions=definitions,
            job_instances=job_instances,
            publisher=events,
            source=source,
            max_bytes=settings.max_request_bytes,
        )
        return False  # the handler logs each request's outcome itself

    subscriber = subscribe_topic(
        broker,
        topic=topic,
        group_id=settings.kafka.group_id(INTAKE_GROUP),
        # Plain JSON, not an envelope: the handler parses it, to reject it with its reasons.
        parse=bytes,
        handle=take_in,
        title=f"job-api-intake:{topic}",
        description="Job requests (plain JSON JobRequest) become JobCreated or JobRejected.",
        policy=policy or settings.kafka.consumer_retry_policy(),
        **settings.kafka.consumer_params(),
        # A request just over the limit must still reach us, to be rejected with its reason.
        max_partition_fetch_bytes=max(settings.max_request_bytes * 2, 1024 * 1024),
    )
    logger.info(
        "job requests consumed from %s with group %s",
        topic,
        settings.kafka.group_id(INTAKE_GROUP),
    )
    return subscriber
