"""One service's broker publishes a typed event, another's consumes it in a group, and the
offset is committed only once the handler has run."""

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import OutOfOrderSequenceNumber
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from provisioning_common.events import JobCompleted, parse_job_event
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics

from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]


async def committed_offsets(settings: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**settings.to_aiokafka_params())
    await admin.start()
    try:
        offsets: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


@pytest.fixture
async def isolated(kafka_settings: KafkaSettings, unique_name: str) -> KafkaSettings:
    settings = kafka_settings.model_copy(
        update={"topic_prefix": f"{unique_name}.", "consumer_group_suffix": f".{unique_name}"}
    )
    created = await ensure_topics(settings)
    assert settings.topic(JOB_EVENTS) in created
    return settings


async def test_typed_event_crosses_services_and_commits_after_the_handler(
    isolated: KafkaSettings,
) -> None:
    topic = isolated.topic(JOB_EVENTS)
    group = isolated.group_id("foundation-consumer")
    handler_may_finish = asyncio.Event()
    handled: list[JobCompleted] = []
    entered = asyncio.Event()

    consumer_broker = build_broker(isolated)

    @consumer_broker.subscriber(
        topic, group_id=group, ack_policy=AckPolicy.ACK, auto_offset_reset="earliest"
    )
    async def on_event(message: KafkaMessage) -> None:
        event = parse_job_event(message.body)
        assert isinstance(event, JobCompleted)
        entered.set()
        await handler_may_finish.wait()
        handled.append(event)

    producer_broker: KafkaBroker = build_broker(isolated)
    async with consumer_broker, producer_broker:
        await consumer_broker.start()
        await producer_broker.start()
        sent = JobCompleted(source="/tests/foundation", subject="job-1")
        await publish_envelope(producer_broker, topic, sent)

        await asyncio.wait_for(entered.wait(), timeout=60)
        # The handler is running but has not finished: nothing may be committed yet.
        assert sum((await committed_offsets(isolated, group, topic)).values()) <= 0

        handler_may_finish.set()

        async def committed() -> dict[int, int] | None:
            offsets = await committed_offsets(isolated, group, topic)
            return offsets if sum(o for o in offsets.values() if o > 0) == 1 else None

        offsets = await eventually(committed, timeout=30, what="the offset commit")
        assert handled == [sent]
        assert sorted(o for o in offsets.values() if o > 0) == [1]


async def test_producer_is_idempotent_with_acks_from_all_replicas(
    isolated: KafkaSettings,
) -> None:
    broker = build_broker(isolated)
    async with broker:
        await broker.start()
        await publish_envelope(
            broker, isolated.topic(JOB_EVENTS), JobCompleted(source="/tests", subject="job-2")
        )
        # faststream keeps the aiokafka producer it built from our settings two levels down.
        producer = broker._producer._producer.producer  # type: ignore[attr-defined]
        # The broker granted a producer id: idempotence is negotiated, not merely configured.
        assert producer._txn_manager is not None
        assert producer._txn_manager.has_pid()
        assert producer._txn_manager._pid_and_epoch.pid >= 0
        assert producer._sender._acks == -1  # acks="all"


async def test_a_producer_that_lost_its_sequence_is_replaced_and_the_retry_goes_through(
    isolated: KafkaSettings,
) -> None:
    """After a broker outage aiokafka's idempotent producer can answer every send with
    OutOfOrderSequenceNumber for ever (a batch expired and left a gap); the runner's outbox then
    never emptied. The producer is replaced, with a new producer id, and the retry is written."""
    topic = isolated.topic(JOB_EVENTS)
    broker = build_broker(isolated)
    async with broker:
        await broker.start()
        await publish_envelope(broker, topic, JobCompleted(source="/tests", subject="job-3"))
        broken = broker._producer._producer.producer  # type: ignore[attr-defined]
        first_pid = broken._txn_manager._pid_and_epoch.pid

        async def out_of_order(*args: Any, **kwargs: Any) -> Any:
            raise OutOfOrderSequenceNumber()

        broken.send = out_of_order
        again = JobCompleted(source="/tests", subject="job-4")
        with pytest.raises(OutOfOrderSequenceNumber):
            await publish_envelope(broker, topic, again)
        written = await publish_envelope(broker, topic, again)

        renewed = broker._producer._producer.producer  # type: ignore[attr-defined]
        assert renewed is not broken
        assert renewed._txn_manager._pid_and_epoch.pid != first_pid
        assert written.topic == topic
