"""Kafka adapter of the guard: publishes decisions on the job-events topic, keyed by job id."""

from faststream.kafka import KafkaBroker
from provisioning_common.envelope import Envelope
from provisioning_common.kafka import publish_envelope


class KafkaEventPublisher:
    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self._broker = broker
        self._topic = topic

    async def publish(self, event: Envelope) -> None:
        await publish_envelope(self._broker, self._topic, event)
