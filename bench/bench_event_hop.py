"""One hop of an event: our FastStream publisher to our subscriber (`subscribe_topic`: consumer
group, offset committed after the handler) against a raw aiokafka producer and consumer with
the same settings (idempotence, acks=all, commit after the handler), same payloads.

Run alone: `KAFKA_BOOTSTRAP_SERVERS=… python -m bench.bench_event_hop [count]`."""

import asyncio
import logging
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from provisioning_common.consuming import Received, subscribe_topic
from provisioning_common.kafka import build_broker
from provisioning_common.settings import KafkaSettings

from bench.timing import report

# About the size of a SequenceProgress envelope.
PAYLOAD = b'{"specversion":"1.0","type":"provisioning.SequenceProgress","data":' + b"x" * 400 + b"}"
TIMEOUT_SECONDS = 300.0


def settings() -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )


async def new_topic(kafka: KafkaSettings) -> str:
    name = f"bench-hop-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka.to_aiokafka_params())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def ours(count: int) -> float:
    """Events/s through our publisher and subscriber."""
    kafka = settings()
    topic = await new_topic(kafka)
    # As the services build it: faststream's per-message lines at DEBUG, to a logger of ours.
    broker = build_broker(kafka, logger=logging.getLogger("bench.broker"), log_level=logging.DEBUG)
    received = 0
    done = asyncio.Event()

    async def handle(body: bytes, _: Received) -> bool:
        nonlocal received
        received += 1
        if received >= count:
            done.set()
        return True

    subscribe_topic(
        broker,
        topic=topic,
        group_id=f"{topic}-group",
        parse=lambda body: body,
        handle=handle,
        title="bench",
        description="event hop benchmark",
    )
    await broker.start()
    try:
        started = time.perf_counter()
        for i in range(count):
            await broker.publish(PAYLOAD, topic=topic, key=f"job-{i % 50}".encode())
        await asyncio.wait_for(done.wait(), TIMEOUT_SECONDS)
        return time.perf_counter() - started
    finally:
        await broker.stop()


async def raw(count: int) -> float:
    """The same hop with aiokafka alone."""
    kafka = settings()
    topic = await new_topic(kafka)
    producer = AIOKafkaProducer(**kafka.to_aiokafka_params(), enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.to_aiokafka_params(),
        group_id=f"{topic}-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    received = 0

    async def consume() -> None:
        nonlocal received
        async for _ in consumer:
            received += 1
            await consumer.commit()  # after the handler, as ours
            if received >= count:
                return

    try:
        reading = asyncio.create_task(consume())
        started = time.perf_counter()
        for i in range(count):
            await producer.send_and_wait(topic, PAYLOAD, key=f"job-{i % 50}".encode())
        await asyncio.wait_for(reading, TIMEOUT_SECONDS)
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


async def main(count: int = 2_000) -> list[str]:
    ours_seconds = await ours(count)
    raw_seconds = await raw(count)
    return [
        report(
            f"event hop: {count} events (rate {count / ours_seconds:.0f}/s)",
            ours_seconds,
            raw_seconds,
            f"raw aiokafka ({count / raw_seconds:.0f}/s)",
        )
    ]


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000))
