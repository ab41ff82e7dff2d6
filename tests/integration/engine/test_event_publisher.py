"""The runner's Kafka publisher on the real broker: an event the broker cannot take is told
apart from a broker that is away, and can be set aside on the dead-letter topic."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from provisioning_common.events import SequenceStarted, SequenceStartedData
from provisioning_common.topics import JOB_EVENTS, dead_letter_topic
from sequence_runner.adapters.kafka import KafkaEventPublisher
from sequence_runner.handlers.ports import UnpublishableEventError

from tests.integration.engine.conftest import EngineRig

pytestmark = [pytest.mark.kafka]


async def test_an_event_larger_than_the_broker_takes_is_refused_as_such_and_set_aside(
    engine: EngineRig, unique_name: str
) -> None:
    publisher = KafkaEventPublisher(engine.broker, engine.kafka.topic(JOB_EVENTS))
    huge = SequenceStarted(
        source="/provisioning/sequence-runner",
        subject=unique_name,
        data=SequenceStartedData(index=0, name="n" * 1_500_000, attempt=1),
    )
    with pytest.raises(UnpublishableEventError, match="MessageSizeTooLarge"):
        await publisher.publish(huge)
    await publisher.set_aside(huge, "refused: too large")

    consumer = AIOKafkaConsumer(
        dead_letter_topic(engine.kafka.topic(JOB_EVENTS)),
        bootstrap_servers=engine.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                if record.key == unique_name.encode():
                    break
    finally:
        await consumer.stop()
    assert dict(record.headers)["dlq_reason"] == b"refused: too large"
    assert record.value is not None
    assert record.value.startswith(b'{"specversion":"1.0","id":"' + huge.id.encode())
    assert len(record.value) == 64 * 1024
