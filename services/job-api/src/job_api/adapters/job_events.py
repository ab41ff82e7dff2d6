"""Publishing job-api's events on provisioning.job-events, and dead letters of its consumers."""

from dataclasses import dataclass

from aiokafka.errors import MessageSizeTooLargeError
from faststream.kafka import KafkaBroker
from provisioning_common.envelope import Envelope
from provisioning_common.kafka import publish_envelope, send_to_dead_letter
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, JOB_REQUESTS

_MAX_DEAD_LETTER_BYTES = 900_000


@dataclass(frozen=True)
class Published:
    """Where the broker wrote an event: the projection orders a job's events by this offset."""

    partition: int | None
    offset: int | None


@dataclass(frozen=True)
class KafkaPosition:
    """Where a consumed message came from, for its dead letter."""

    topic: str
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None


class EventTooLargeError(Exception):
    """The event is larger than the broker accepts (a request near the size limit)."""


class KafkaJobEvents:
    """Publishes on the (prefixed) job-events topic through a started broker."""

    def __init__(self, broker: KafkaBroker, settings: KafkaSettings) -> None:
        self._broker = broker
        self.events_topic = settings.topic(JOB_EVENTS)
        self.requests_topic = settings.topic(JOB_REQUESTS)

    async def publish_event(self, event: Envelope) -> Published:
        try:
            metadata = await publish_envelope(self._broker, self.events_topic, event)
        except MessageSizeTooLargeError as error:
            raise EventTooLargeError(str(error)) from error
        return Published(
            partition=getattr(metadata, "partition", None), offset=getattr(metadata, "offset", None)
        )

    async def dead_letter(self, raw: bytes, *, source: KafkaPosition, reason: str) -> None:
        if len(raw) > _MAX_DEAD_LETTER_BYTES:
            # An oversized message would be refused by the dead-letter topic as well.
            raw = raw[:_MAX_DEAD_LETTER_BYTES]
            reason = f"{reason} (kept its first {_MAX_DEAD_LETTER_BYTES} bytes)"
        await send_to_dead_letter(
            self._broker,
            topic=source.topic,
            raw=raw,
            key=source.key,
            partition=source.partition,
            offset=source.offset,
            reason=reason,
        )
