"""Kafka wiring shared by the services: the broker factory, keyed publishing, dead letters."""

import logging
from typing import Any

from aiokafka.structs import RecordMetadata
from faststream.kafka import KafkaBroker

from provisioning_common.envelope import Envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import dead_letter_topic

logger = logging.getLogger(__name__)

# The Kafka binding of CloudEvents, structured mode: the content type is the event format's.
CLOUDEVENTS_JSON = "application/cloudevents+json; charset=UTF-8"
# A dead letter keeps at most this much of the message: the dead-letter topic has the same
# size limit as the topic the message came from, and an oversized one must still be kept.
MAX_DEAD_LETTER_BYTES = 900_000
MAX_DEAD_LETTER_REASON = 4000


def build_broker(settings: KafkaSettings, **extra: Any) -> KafkaBroker:
    """One broker per service; nothing connects until the app starts it."""
    return KafkaBroker(**settings.to_faststream_params(), **extra)


async def publish_envelope(broker: KafkaBroker, topic: str, message: Envelope) -> RecordMetadata:
    """Publish keyed by the subject (the job id), so one job's messages stay in order.

    Returns the broker's acknowledgement: the partition and offset the message was written at.
    """
    return await broker.publish(
        message.model_dump_json().encode(),
        topic=topic,
        key=message.subject.encode(),
        # The content type alone: no ce_* headers, which the binding allows in structured mode
        # but which the CloudEvents SDK's from_kafka() takes as the sign of binary mode.
        headers={"content-type": CLOUDEVENTS_JSON},
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
    """Keep the message the consumer could not handle and say why, so it can move on and lose
    nothing."""
    if len(raw) > MAX_DEAD_LETTER_BYTES:
        raw = raw[:MAX_DEAD_LETTER_BYTES]
        reason = f"{reason} (kept its first {MAX_DEAD_LETTER_BYTES} bytes)"
    if len(reason) > MAX_DEAD_LETTER_REASON:
        reason = f"{reason[: MAX_DEAD_LETTER_REASON - 1]}…"
    logger.warning(
        "message on %s partition=%s offset=%s sent to %s: %s",
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
            "dlq_reason": reason,
            "dlq_topic": topic,
            "dlq_partition": str(partition),
            "dlq_offset": str(offset),
        },
    )
