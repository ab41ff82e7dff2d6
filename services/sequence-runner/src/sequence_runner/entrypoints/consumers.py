"""The runner's Kafka subscribers: job events and operator commands, raw in, malformed ones to
their dead-letter topic, the rest to the handler tables."""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from provisioning_common.commands import parse_job_command
from provisioning_common.envelope import Envelope
from provisioning_common.events import parse_job_event
from provisioning_common.kafka import send_to_dead_letter
from provisioning_common.logs import current_job_id
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS
from pydantic import ValidationError

from sequence_runner.handlers.engine import DecisionPendingError, Engine
from sequence_runner.handlers.messages import COMMAND_HANDLERS, EVENT_HANDLERS, Handler, handle

logger = logging.getLogger(__name__)

GROUP = "sequence-runner"
# A failed handler is retried by redelivery; the pause keeps an outage from spinning.
RETRY_PAUSE_SECONDS = 1.0


async def raw_body(message: StreamMessage[Any]) -> Any:
    """Hand the handler the bytes as they came, so a malformed message reaches our own parser."""
    return message.body


def _subscribe(
    broker: KafkaBroker,
    kafka: KafkaSettings,
    engine: Engine,
    *,
    topic: str,
    parse: Callable[[bytes], Envelope],
    table: dict[type[Envelope], Handler],
    description: str,
) -> None:
    @broker.subscriber(
        topic,
        group_id=kafka.group_id(GROUP),
        auto_offset_reset="earliest",
        # Committed once the handler's effects are stored; an error rewinds to the message.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_body,
        title=f"sequence-runner:{topic}",
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
            if await handle(table, parsed, engine):
                logger.info("handled %s (offset %s)", parsed.type, record.offset)
        except DecisionPendingError as waiting:
            # Expected while the guard's decision is on its way: no stack trace.
            logger.info("%s; redelivered in %ss", waiting, RETRY_PAUSE_SECONDS)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        except Exception:
            logger.exception("handling %s failed; it will be redelivered", parsed.type)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
            raise
        finally:
            current_job_id.reset(token)


def subscribe_runner(broker: KafkaBroker, kafka: KafkaSettings, engine: Engine) -> None:
    _subscribe(
        broker,
        kafka,
        engine,
        topic=kafka.topic(JOB_EVENTS),
        parse=parse_job_event,
        table=EVENT_HANDLERS,
        description="Starts jobs and applies or stops planned sequences on the guard's word.",
    )
    _subscribe(
        broker,
        kafka,
        engine,
        topic=kafka.topic(JOB_COMMANDS),
        parse=parse_job_command,
        table=COMMAND_HANDLERS,
        description="Validates, cancels and restarts jobs for operators.",
    )
