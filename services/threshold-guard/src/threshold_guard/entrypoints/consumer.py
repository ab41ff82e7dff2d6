"""The guard's Kafka subscriber: every job event in, a decision out for each planned sequence."""

from faststream.kafka import KafkaBroker
from provisioning_common.consuming import subscribe_envelopes
from provisioning_common.events import JobEvent, parse_job_event
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS

from threshold_guard.handlers.decisions import handle_event
from threshold_guard.handlers.ports import EventPublisher

GROUP = "threshold-guard"


def subscribe_to_job_events(
    broker: KafkaBroker, kafka: KafkaSettings, publisher: EventPublisher
) -> None:
    async def on_event(event: JobEvent) -> bool:
        return await handle_event(event, publisher)

    subscribe_envelopes(
        broker,
        topic=kafka.topic(JOB_EVENTS),
        group_id=kafka.group_id(GROUP),
        parse=parse_job_event,
        handle=on_event,
        title="threshold-guard:job-events",
        description="Releases or blocks every planned sequence.",
        policy=kafka.consumer_retry_policy(),
        **kafka.consumer_params(),
    )
