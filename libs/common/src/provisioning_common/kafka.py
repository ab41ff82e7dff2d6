"""Kafka wiring shared by the services: the broker factory, keyed publishing, dead letters."""

import logging
from typing import Any

from aiokafka.structs import RecordMetadata
from faststream.kafka import KafkaBroker

from provisioning_common.envelope import Envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import dead_letter_topic

logger = logging.getLogger(__name__)


def build_broker(settings: KafkaSettings, **extra: Any) -> KafkaBroker:
    """One broker per service; nothing connects until the app starts it."""
    return KafkaBroker(**settings.to_faststream_params(), **extra)


async def publish_envelope(broker: KafkaBroker, topic: str, message: Envelope) -> RecordMetadata:
    """Publish keyed by the subject (the job id), so one job's messages stay in order.

    Returns the broker's acknowledgement: the partition and offset the message was written at.
    """
    return await broker.publish(
        message.model_dump(mode="json"),
        topic=topic,
        key=message.subject.encode(),
        headers={"ce_type": message.type, "ce_id": message.id, "content-type": "application/json"},
    )


async def send_to_dead_letter(
    broker: KafkaBroker,
    *,
    topic: str,
    raw: bytes,
    key: bytes | None,
    partition: int | None,
    offset: int | None,
    reason: str,
) -> None:
    """Keep the malformed message and say why, so the consumer can move on and lose nothing."""
    logger.warning(
        "malformed message on %s partition=%s offset=%s sent to %s: %s",
        topic,
        partition,
        offset,
        dead_letter_topic(topic),
        reason,
    )
    await broker.publish(
        raw,
        topic=dead_letter_topic(topic),
        key=key,
        headers={
            "dlq_reason": reason[:4000],
            "dlq_topic": topic,
            "dlq_partition": str(partition),
            "dlq_offset": str(offset),
        },
    )
