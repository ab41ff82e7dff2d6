"""The guard's Kafka subscriber: raw job events in, malformed ones to the dead-letter topic."""

import asyncio
import logging
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from provisioning_common.events import parse_job_event
from provisioning_common.kafka import send_to_dead_letter
from provisioning_common.logs import current_job_id
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS
from pydantic import ValidationError

from threshold_guard.handlers.decisions import handle_event
from threshold_guard.handlers.ports import EventPublisher

logger = logging.getLogger(__name__)

GROUP = "threshold-guard"
# A failed publish is retried by redelivery; the pause keeps a broker outage from spinning.
RETRY_PAUSE_SECONDS = 1.0


async def raw_body(message: StreamMessage[Any]) -> Any:
    """Hand the handler the bytes as they came, so a malformed message reaches our own parser."""
    return message.body


def subscribe_to_job_events(
    broker: KafkaBroker, kafka: KafkaSettings, publisher: EventPublisher
) -> None:
    topic = kafka.topic(JOB_EVENTS)

    @broker.subscriber(
        topic,
        group_id=kafka.group_id(GROUP),
        auto_offset_reset="earliest",
        # Committed only after the decision is published; an error rewinds to the message.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_body,
        title="threshold-guard:job-events",
        description="Releases or blocks every planned sequence.",
    )
    async def on_job_event(body: bytes, message: KafkaMessage) -> None:
        record = message.raw_message
        if isinstance(record, tuple):  # pragma: no cover - the subscriber is not a batch one
            raise TypeError("batch messages are not expected")
        try:
            event = parse_job_event(body)
        except (ValidationError, ValueError) as error:
            await send_to_dead_letter(
                broker,
                topic=topic,
                raw=body,
                key=record.key,
                partition=record.partition,
                offset=record.offset,
                reason=str(error),
            )
            return
        token = current_job_id.set(event.subject)
        try:
            handled = await handle_event(event, publisher)
            if handled:
                logger.info("decided on %s at offset %s", event.type, record.offset)
        except Exception:
            logger.exception("handling %s failed; it will be redelivered", event.type)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        finally:
            current_job_id.reset(token)
