"""Kafka wiring shared by the services: the broker factory, keyed publishing, dead letters."""

import asyncio
import logging
import weakref
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
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
    generation = _producer_generation(broker)
    try:
        return await broker.publish(
            message.model_dump_json().encode(),
            topic=topic,
            key=message.subject.encode(),
            # The content type alone: no ce_* headers, which the binding allows in structured
            # mode but which the CloudEvents SDK's from_kafka() takes as the sign of binary mode.
            headers={"content-type": CLOUDEVENTS_JSON},
        )
    except BROKEN_PRODUCER_ERRORS:
        await renew_producer(broker, generation)
        raise


# After one of these, aiokafka's idempotent producer never sends again: its sequence numbers no
# longer match the broker's (a batch expired while the broker was away, and the next one left a
# gap). The Java client bumps its epoch; aiokafka does not, so we start a new producer, with a
# new producer id. The caller's retry then publishes through it.
BROKEN_PRODUCER_ERRORS = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)
_generations: "weakref.WeakKeyDictionary[KafkaBroker, int]" = weakref.WeakKeyDictionary()
_renewing: "weakref.WeakKeyDictionary[KafkaBroker, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _producer_generation(broker: KafkaBroker) -> int:
    return _generations.get(broker, 0)


async def renew_producer(broker: KafkaBroker, generation: int) -> None:
    """Replace `broker`'s Kafka producer, once for every publish that failed on the same one."""
    lock = _renewing.setdefault(broker, asyncio.Lock())
    async with lock:
        if _producer_generation(broker) != generation:
            return  # another publish renewed it already
        config = broker.config.broker_config
        # faststream builds its producer from these when the broker connects; it has no public
        # call to build a new one, so this reaches into its configuration (faststream 0.7).
        kwargs = getattr(broker, "_connection_kwargs", None)
        if kwargs is None:
            return
        producer = config.producer
        logger.warning("the Kafka producer lost its sequence with the broker; starting a new one")
        try:
            await producer.disconnect()
        except Exception:  # the old producer is broken already; nothing more to lose
            logger.debug("closing the broken producer failed", exc_info=True)
        await producer.connect(
            AIOKafkaProducer(**kwargs),
            serializer=config.fd_config._serializer,
            codec=producer.codec,
        )
        _generations[broker] = generation + 1


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
