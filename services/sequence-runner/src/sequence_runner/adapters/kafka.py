"""Kafka adapter of the runner: publishes its events on job-events, keyed by job id."""

from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faststream.kafka import KafkaBroker
from provisioning_common.envelope import Envelope
from provisioning_common.kafka import publish_envelope, send_to_dead_letter

from sequence_runner.handlers.ports import UnpublishableEventError

# Errors about the message itself: sending it again can never succeed. (Serialisation errors
# are TypeError or ValueError.) Every other error, the broker away included, is retried.
_REFUSED_MESSAGE = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidMessageError,
    TypeError,
    ValueError,
)
# What is kept of an event set aside on the dead-letter topic: well under the broker's limit.
SET_ASIDE_BYTES = 64 * 1024


class KafkaEventPublisher:
    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self._broker = broker
        self._topic = topic

    async def publish(self, event: Envelope) -> None:
        try:
            await publish_envelope(self._broker, self._topic, event)
        except _REFUSED_MESSAGE as error:
            raise UnpublishableEventError(
                f"{event.type} {event.id} refused: {type(error).__name__}: {error}"
            ) from error

    async def set_aside(self, event: Envelope, reason: str) -> None:
        await send_to_dead_letter(
            self._broker,
            topic=self._topic,
            raw=event.model_dump_json().encode()[:SET_ASIDE_BYTES],
            key=event.subject.encode(),
            partition=None,
            offset=None,
            reason=reason,
        )
