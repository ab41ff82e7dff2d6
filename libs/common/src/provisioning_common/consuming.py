"""The one way our services consume a topic of envelopes: raw bytes in, our own parser, the
malformed to the dead-letter topic, the offset committed only after the handler succeeded."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import ValidationError

from provisioning_common.envelope import Envelope
from provisioning_common.kafka import send_to_dead_letter
from provisioning_common.logs import current_job_id

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)

# A failed handler is retried by redelivery; the pause keeps an outage from spinning.
RETRY_PAUSE_SECONDS = 1.0


async def raw_body(message: StreamMessage[Any]) -> Any:
    """Hand the handler the bytes as they came, so a malformed message reaches our own parser."""
    return message.body


def subscribe_envelopes(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    parse: Callable[[bytes], E],
    handle: Callable[[E], Awaitable[bool]],
    title: str,
    description: str,
    expected_waits: tuple[type[Exception], ...] = (),
) -> None:
    """Subscribe `handle` to `topic`; it returns whether the message meant something to it.

    `expected_waits` are errors that mean "not yet" rather than "broken": the message is
    redelivered after the pause like any failure, but logged without a stack trace.
    """

    @broker.subscriber(
        topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        # NACK_ON_ERROR, not ACK: ACK commits even when the handler raised, losing the message.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_body,
        title=title,
        description=description,
    )
    async def on_message(body: bytes, message: KafkaMessage) -> None:
        record = message.raw_message
        if isinstance(record, tuple):  # pragma: no cover - the subscriber is not a batch one
            raise TypeError("batch messages are not expected")
        try:
            parsed = parse(body)
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
        token = current_job_id.set(parsed.subject)
        try:
            if await handle(parsed):
                logger.info("handled %s (offset %s)", parsed.type, record.offset)
        except expected_waits as waiting:
            logger.info("%s; redelivered in %ss", waiting, RETRY_PAUSE_SECONDS)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        except Exception:
            logger.exception("handling %s failed; it will be redelivered", parsed.type)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        finally:
            current_job_id.reset(token)
