"""Events on Kafka are CloudEvents to the letter (issue 7): structured content mode with the
event format's media type, read back by the CloudEvents SDK's own Kafka binding."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings import kafka as binding
from provisioning_common.events import JobCompleted
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics

pytestmark = [pytest.mark.kafka]


async def test_a_published_event_reads_as_a_cloudevent_with_the_sdks_kafka_binding(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    settings = kafka_settings.model_copy(update={"topic_prefix": f"{unique_name}."})
    await ensure_topics(settings)
    topic = settings.topic(JOB_EVENTS)
    sent = JobCompleted(source="/provisioning/sequence-runner", subject=str(uuid.uuid4()))
    broker = build_broker(settings)
    await broker.start()
    try:
        await publish_envelope(broker, topic, sent)
    finally:
        await broker.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    headers = {name: value for name, value in record.headers}
    # Kafka binding 3.3: the content-type of structured mode is the event format's media type.
    assert headers["content-type"] == b"application/cloudevents+json; charset=UTF-8", headers
    message = binding.KafkaMessage(headers=headers, key=record.key, value=record.value)

    # from_kafka_event tells the content mode by itself: it must see structured mode.
    for event in (binding.from_kafka_event(message), binding.from_structured_event(message)):
        assert event.get_attributes()["specversion"] == "1.0"
        assert event.get_id() == sent.id
        assert event.get_type() == "provisioning.JobCompleted"
        assert event.get_source() == "/provisioning/sequence-runner"
        assert event.get_subject() == sent.subject
        assert event.get_time() == sent.time
        assert event.get_datacontenttype() == "application/json"
        assert event.get_data() == sent.model_dump(mode="json")["data"]
        # The Kafka key (the job id) surfaces as the binding's partitionkey extension.
        assert event.get_extension("partitionkey") == sent.subject
