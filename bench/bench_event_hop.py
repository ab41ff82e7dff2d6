"""One hop of an event through the path the services use: `publish_envelope` on a broker from
`build_broker` to a `subscribe_envelopes` subscriber parsing job events (consumer group, offset
committed after the handler, a JSON log line per handled event), against a raw aiokafka
producer and consumer with the same settings (idempotence, acks=all, commit after each
message) and the same payloads. A bare FastStream publisher and subscriber (the same broker
settings and commit policy, no wrapper of ours) runs beside them, so what is FastStream's own
per-event cost and what is ours can be told apart.

Each side publishes one event at a time and awaits its acknowledgement, as the services do; the
clock runs from the first timed publish to the last event handled, after a warm-up that lets
the consumer join its group. The rounds alternate which side goes first; the figures are the
medians, printed with the spread of the per-round ratios and this process's CPU per event.

Run alone: `KAFKA_BOOTSTRAP_SERVERS=… python -m bench.bench_event_hop [count]`."""

import asyncio
import io
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, TestKafkaBroker
from provisioning_common.consuming import subscribe_envelopes
from provisioning_common.events import (
    JobEvent,
    SequenceProgress,
    SequenceProgressData,
    parse_job_event,
)
from provisioning_common.kafka import CLOUDEVENTS_JSON, build_broker, publish_envelope
from provisioning_common.logs import JsonFormatter
from provisioning_common.settings import KafkaSettings

from bench.timing import report_goal

COUNT = 2_000
ROUNDS = int(os.environ.get("BENCH_HOP_ROUNDS", "5"))
# Enough for the consumer to have joined its group and fetched before the clock starts.
WARM_UP = 200
JOBS = 50
GOAL = 0.5
TIMEOUT_SECONDS = 300.0
# The in-memory figure: CPU only, no broker, so it holds on a loaded machine.
IN_MEMORY_EVENTS = 300
IN_MEMORY_RUNS = 25

ABOUT = [
    f"{COUNT:,} `SequenceProgress` events (about 340 bytes of CloudEvents JSON each, keyed by "
    f"{JOBS} job ids) through one hop, one event at a time as the services publish them "
    "(each publish awaits its acknowledgement), on a topic of 3 partitions. *Ours* is the "
    "path every service uses: `publish_envelope` on a broker from `build_broker` (idempotent "
    "producer, acks=all), and `subscribe_envelopes` parsing each message with "
    "`parse_job_event` (pydantic), committing its offset after the handler (at-least-once), "
    "dead-lettering what does not parse, counting it in the Prometheus metrics and writing the "
    "JSON log line a service writes for each event it acted on. *Raw* is an aiokafka producer "
    "(idempotence, acks=all) and consumer in a group committing after each message, sending "
    "the same bytes with the same key and header. *Bare FastStream* is the same broker "
    "settings and commit policy with a plain `async def` handler and no wrapper of ours. "
    f"Warm-up {WARM_UP} events per side; {ROUNDS} rounds (`BENCH_HOP_ROUNDS`) alternating "
    "which side goes first; the medians make the line, the per-round ratios give the spread. "
    f"Goal: ours ≥ {GOAL:g} of raw's events/s.",
    "",
    "Where the time goes: each hop is one produce round trip and one commit round trip to "
    "the broker, which shares the 2 cores. Until 2026-12-06 every message through our "
    "subscriber also went to a worker thread and back: its handler took the `KafkaMessage` as "
    "a parameter, which FastStream resolves with a synchronous function that fast_depends runs "
    "in anyio's thread pool, and the GIL handoffs held up the event loop: 0.37 and 0.33 of "
    "raw's speed in two runs on the loaded machine (bare FastStream 0.48 and 0.58), and 410 to "
    "490 µs of CPU per event in memory against 140 for bare FastStream. The subscriber now "
    "takes the Kafka record from its decoder (220 to 260 µs in memory), and "
    "`tests/unit/common/test_consuming.py` checks that no message goes through a thread.",
    "",
    "The in-memory line (FastStream's test broker, CPU of one publish and one handled event, "
    f"best of {IN_MEMORY_RUNS} interleaved runs of {IN_MEMORY_EVENTS}; it holds where the "
    "broker figures spread with the neighbours' load) tells what remains ours: the JSON log "
    "line written for each event a handler acted on (`handled … (offset …)`, which operators "
    "and the scale test read; kept), and the envelope's serialisation, its pydantic parse, the "
    "Prometheus counter and the wrapper. Bare FastStream is FastStream's own cost on that "
    "broker (its publish command and middlewares, context scopes, the acknowledgement "
    "middleware, the test broker's fake record, and fast_depends validating the handler's "
    "argument: about 30 µs, which `apply_types=False` on the broker would save, at the price "
    "of every plain FastStream handler on a service's broker silently getting other "
    "arguments, so it is left on). The rest of the gap to raw, on the broker, is FastStream's: "
    "the bare FastStream line shows it.",
]


@dataclass(frozen=True)
class Hop:
    """One timed run of one side: wall-clock seconds and this process's CPU seconds."""

    seconds: float
    cpu_seconds: float


class Arrivals:
    """Events handled so far, and a wait for a number of them."""

    def __init__(self) -> None:
        self.count = 0
        self._target = 0
        self._reached = asyncio.Event()

    def arrived(self) -> None:
        self.count += 1
        if self.count >= self._target:
            self._reached.set()

    async def reach(self, target: int) -> None:
        self._target = target
        self._reached.clear()
        if self.count < target:
            await asyncio.wait_for(self._reached.wait(), TIMEOUT_SECONDS)


def settings() -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )


def progress_events(count: int) -> list[SequenceProgress]:
    """What a running sequence reports, as the runner builds it, for `JOBS` jobs in turn."""
    return [
        SequenceProgress(
            source="/provisioning/sequence-runner",
            subject=f"job-{i % JOBS:04d}-{uuid.UUID(int=i % JOBS)}",
            data=SequenceProgressData(index=0, phase="applying", done=i, total=count),
        )
        for i in range(count)
    ]


async def new_topic(kafka: KafkaSettings) -> str:
    name = f"bench-hop-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka.to_aiokafka_params())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def timed_hop(
    count: int, publish: Callable[[int], Awaitable[object]], arrivals: Arrivals
) -> Hop:
    """Warm up with `WARM_UP` events, then time `count` more, published one by one."""
    for i in range(WARM_UP):
        await publish(i)
    await arrivals.reach(WARM_UP)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(WARM_UP, WARM_UP + count):
        await publish(i)
    await arrivals.reach(WARM_UP + count)
    return Hop(time.perf_counter() - started, time.process_time() - cpu)


class _Discard(io.TextIOBase):
    """A stream that takes every line and keeps none."""

    def write(self, text: str) -> int:
        return len(text)


@asynccontextmanager
async def service_logging() -> AsyncIterator[None]:
    """Log as a service does (JSON lines at INFO), into nothing, for the length of a run."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    handler = logging.StreamHandler(_Discard())
    handler.setFormatter(JsonFormatter("bench"))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


async def ours(count: int) -> Hop:
    """Through `publish_envelope` and `subscribe_envelopes`, as the services do."""
    kafka = settings()
    topic = await new_topic(kafka)
    events = progress_events(WARM_UP + count)
    # As the services build it: faststream's per-message lines at DEBUG, to a logger of ours.
    broker = build_broker(kafka, logger=logging.getLogger("bench.broker"), log_level=logging.DEBUG)
    arrivals = Arrivals()

    async def handle(_: JobEvent) -> bool:
        arrivals.arrived()
        return True  # acted on: counted and logged as a service's handler does

    subscribe_envelopes(
        broker,
        topic=topic,
        group_id=f"{topic}-group",
        parse=parse_job_event,
        handle=handle,
        title="bench",
        description="event hop benchmark",
        policy=kafka.consumer_retry_policy(),
        **kafka.consumer_params(),
    )
    async with service_logging():
        await broker.start()
        try:
            return await timed_hop(
                count, lambda i: publish_envelope(broker, topic, events[i]), arrivals
            )
        finally:
            await broker.stop()


def payloads(count: int) -> list[tuple[bytes, bytes]]:
    """The same bytes and keys `publish_envelope` sends for `progress_events`."""
    return [
        (event.model_dump_json().encode(), event.subject.encode())
        for event in progress_events(count)
    ]


HEADERS = [("content-type", CLOUDEVENTS_JSON.encode())]


async def bare_faststream(count: int) -> Hop:
    """FastStream alone: the same broker settings and commit policy, a plain handler."""
    kafka = settings()
    topic = await new_topic(kafka)
    sent = payloads(WARM_UP + count)
    broker = KafkaBroker(
        **kafka.to_faststream_params(),
        logger=logging.getLogger("bench.broker"),
        log_level=logging.DEBUG,
    )
    arrivals = Arrivals()
    params = kafka.consumer_params()

    @broker.subscriber(
        topic,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=params["max_poll_interval_ms"],
        session_timeout_ms=params["session_timeout_ms"],
        heartbeat_interval_ms=params["heartbeat_interval_ms"],
    )
    async def handle(body: bytes) -> None:
        arrivals.arrived()

    async def publish(i: int) -> object:
        value, key = sent[i]
        return await broker.publish(
            value, topic=topic, key=key, headers={"content-type": CLOUDEVENTS_JSON}
        )

    await broker.start()
    try:
        return await timed_hop(count, publish, arrivals)
    finally:
        await broker.stop()


async def raw(count: int) -> Hop:
    """The same hop with aiokafka alone."""
    kafka = settings()
    topic = await new_topic(kafka)
    sent = payloads(WARM_UP + count)
    producer = AIOKafkaProducer(**kafka.to_aiokafka_params(), enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.to_aiokafka_params(),
        **kafka.consumer_params(),
        group_id=f"{topic}-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    arrivals = Arrivals()

    async def consume() -> None:
        async for _ in consumer:
            arrivals.arrived()
            await consumer.commit()  # after the handler, as ours

    async def publish(i: int) -> object:
        value, key = sent[i]
        return await producer.send_and_wait(topic, value, key=key, headers=HEADERS)

    reading = asyncio.create_task(consume())
    try:
        return await timed_hop(count, publish, arrivals)
    finally:
        reading.cancel()
        await consumer.stop()
        await producer.stop()


async def _in_memory_side(
    side: str, stack: AsyncExitStack, events: list[SequenceProgress]
) -> Callable[[int], Awaitable[object]]:
    """A publish into FastStream's test broker that runs `side`'s subscriber to its end."""
    broker = KafkaBroker(logger=logging.getLogger("bench.broker"), log_level=logging.DEBUG)
    if side == "bare":
        sent = [(event.model_dump_json().encode(), event.subject.encode()) for event in events]

        @broker.subscriber("hop", group_id="g", ack_policy=AckPolicy.NACK_ON_ERROR)
        async def plain(body: bytes) -> None:
            pass

        test_broker = await stack.enter_async_context(TestKafkaBroker(broker, connect_only=False))
        headers = {"content-type": CLOUDEVENTS_JSON}
        return lambda i: test_broker.publish(
            sent[i][0], topic="hop", key=sent[i][1], headers=headers
        )

    acted = side == "ours"  # "ours, no log line": the handler acted on nothing

    async def handle(_: JobEvent) -> bool:
        return acted

    subscribe_envelopes(
        broker,
        topic="hop",
        group_id="g",
        parse=parse_job_event,
        handle=handle,
        title="bench",
        description="event hop benchmark, in memory",
    )
    test_broker = await stack.enter_async_context(TestKafkaBroker(broker, connect_only=False))
    return lambda i: publish_envelope(test_broker, "hop", events[i])


async def in_memory_cpu() -> dict[str, float]:
    """CPU µs per event, publish and handle, on FastStream's in-memory test broker: the best of
    `IN_MEMORY_RUNS` runs of each side, interleaved, so what is ours is told from FastStream's
    without the broker's and the neighbours' noise."""
    events = progress_events(IN_MEMORY_EVENTS)
    sides = ("bare", "ours, no log line", "ours")
    best = dict.fromkeys(sides, float("inf"))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(service_logging())
        publishers = {side: await _in_memory_side(side, stack, events) for side in sides}
        for _ in range(IN_MEMORY_RUNS):
            for side in sides:
                cpu = time.process_time()
                for i in range(IN_MEMORY_EVENTS):
                    await publishers[side](i)
                best[side] = min(best[side], time.process_time() - cpu)
    return {side: seconds / IN_MEMORY_EVENTS * 1e6 for side, seconds in best.items()}


SIDES: dict[str, Callable[[int], Awaitable[Hop]]] = {
    "ours": ours,
    "bare": bare_faststream,
    "raw": raw,
}


def _spread(ratios: list[float]) -> str:
    return f"{min(ratios):.2f} to {max(ratios):.2f}"


async def main(count: int = COUNT, rounds: int = ROUNDS) -> tuple[list[str], list[str]]:
    """The benchmark's lines and its notes for docs/performance.md."""
    hops: dict[str, list[Hop]] = {name: [] for name in SIDES}
    order = list(SIDES)
    for _ in range(rounds):
        for name in order:
            hops[name].append(await SIDES[name](count))
        order.reverse()  # neither side always meets the broker first

    def median(name: str) -> float:
        return statistics.median(hop.seconds for hop in hops[name])

    def cpu_per_event(name: str) -> float:
        return statistics.median(hop.cpu_seconds for hop in hops[name]) / count * 1e6

    def speeds(name: str) -> list[float]:
        return [r.seconds / o.seconds for o, r in zip(hops[name], hops["raw"], strict=True)]

    ours_s, bare_s, raw_s = median("ours"), median("bare"), median("raw")
    lines = [
        report_goal(
            f"event hop: {count} events ({count / ours_s:.0f}/s)",
            ours_s,
            raw_s,
            f"raw aiokafka ({count / raw_s:.0f}/s)",
            goal=GOAL,
            speed=True,
        ),
        _continued(
            f"median of {rounds} runs; speed per run {_spread(speeds('ours'))}; CPU per event "
            f"ours {cpu_per_event('ours'):.0f} µs, raw {cpu_per_event('raw'):.0f} µs"
        ),
        # FastStream's own share, beside ours: no goal of its own.
        _continued(
            f"bare FastStream {count / bare_s:.0f}/s, speed {raw_s / bare_s:.2f}x of raw, per "
            f"run {_spread(speeds('bare'))}; CPU per event {cpu_per_event('bare'):.0f} µs"
        ),
    ]
    notes = [
        "| side | events/s (median) | slowest to fastest run | CPU µs per event | speed of raw |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("ours", "ours"), ("bare", "bare FastStream"), ("raw", "raw aiokafka")):
        rates = [count / hop.seconds for hop in hops[name]]
        notes.append(
            f"| {label} | {count / median(name):.0f} | {min(rates):.0f} to {max(rates):.0f} | "
            f"{cpu_per_event(name):.0f} | {raw_s / median(name):.2f} |"
        )
    cpu = await in_memory_cpu()
    lines.append(
        _continued(
            f"in memory, CPU per event (best of {IN_MEMORY_RUNS}): bare FastStream "
            f"{cpu['bare']:.0f} µs, ours {cpu['ours']:.0f} µs "
            f"({cpu['ours, no log line']:.0f} µs without the log line)"
        )
    )
    notes += [
        "",
        f"In memory (FastStream's test broker, CPU of one publish and one handled event, best "
        f"of {IN_MEMORY_RUNS} runs of {IN_MEMORY_EVENTS}): bare FastStream {cpu['bare']:.0f} µs, "
        f"ours {cpu['ours']:.0f} µs, of which the JSON log line "
        f"{cpu['ours'] - cpu['ours, no log line']:.0f} µs and the rest of our wrapper "
        f"(serialisation, parse, metric) {cpu['ours, no log line'] - cpu['bare']:.0f} µs.",
    ]
    return lines, notes


def _continued(text: str) -> str:
    """A line under the benchmark's line, indented to its figures."""
    line = f"{'':<45}{text}"
    print(line, flush=True)
    return line


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else COUNT))
