"""How long one small job takes, request to COMPLETED as the API shows it, through the running
system (job-api, projector, runner, guard as processes), against the least any Kafka-borne flow
of the same shape must take: one raw aiokafka produce→consume round trip per hop of the flow.

Jobs: BENCH_LATENCY_JOBS (default 200). Run alone:
`KAFKA_BOOTSTRAP_SERVERS=… MONGO_URI=… python -m bench.bench_latency`."""

import asyncio
import itertools
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from provisioning_common.events import JobEvent
from provisioning_common.settings import KafkaSettings
from pymongo import AsyncMongoClient

from bench.bench_event_hop import new_topic
from bench.system import kafka_bootstrap, mongo_uri, system
from bench.timing import percentile, report_goal

GOAL = 3.0
RECORDS = 10
WARM_UP = 3
POLL_SECONDS = 0.01
# The hops of the flow's critical path (docs/architecture.md, "Follow one job"): JobCreated
# job-api → runner (#2→#3), SequencePlanned runner → guard (#6→#7), SequenceReleased guard →
# runner (#7→#8), JobCompleted runner → projector (#9→#10). The runner's own JobStarted,
# SequenceStarted and SequenceCompleted travel alongside, not in sequence.
HOPS = 4
# About the size of a JobCreated envelope with its definition snapshot.
PAYLOAD = b'{"specversion":"1.0","type":"provisioning.JobCreated","data":' + b"x" * 1200 + b"}"

ABOUT = [
    f"A one-sequence job of {RECORDS} inline records into a MongoDB collection (each job "
    f"updates the same {RECORDS} records, so every job writes {RECORDS} and the target does not "
    "grow), from `POST /api/v1/jobs` until `GET /api/v1/jobs/{id}` shows `COMPLETED` (polled "
    f"every {POLL_SECONDS * 1000:.0f} ms), one job at a time, job-api, its projector, the "
    "runner and the guard running as processes. Baseline: one raw aiokafka produce → consume "
    "round trip (idempotent producer, acks=all, a consumer group committing after each "
    f"message) on the same broker, times the {HOPS} hops of the flow's critical path "
    "([architecture.md](architecture.md#follow-one-job)): `JobCreated` job-api → runner, "
    "`SequencePlanned` runner → guard, `SequenceReleased` guard → runner, `JobCompleted` "
    f"runner → projector. Goal: p50 and p99 each ≤ {GOAL:g} x the baseline's. Jobs: "
    "`BENCH_LATENCY_JOBS` (default 200).",
    "",
    "What dominates: waiting on MongoDB, not Kafka and not our CPU. py-spy (`--idle`, 30 s "
    "during a run, 2026-12-06) found the runner's event loop idle 68% of the time and the "
    "projector's 83%; their busy part is spread over pymongo, aiokafka and faststream, the "
    "largest of ours being the run store's `load`/`save`/`mark_sent` (5%, 2%, 1%). A job's "
    "critical path is a chain of sequential MongoDB round trips — per runner step a load, a "
    "version-checked save and the outbox's `mark_sent`; the target claim and its release; the "
    "plan's save and read-back; the target's read, index check and write; per event the "
    "projector folds a `get` and a `replace_one` into a document with fourteen indexes — each "
    "at SecantusDB's round trip (noted below; it grows with the machine's load) where a raw "
    "Kafka round trip costs a few ms. The breakdown by the events' timestamps shows which "
    "stretch of the flow holds the time. Fewer round trips (the outbox marked sent in the "
    "next step's write, the projector folding a job's queued events in one write) would be "
    "design changes to crash safety and ordering, not a small fix: not made here.",
]


def jobs() -> int:
    return int(os.environ.get("BENCH_LATENCY_JOBS", "200"))


def definition() -> dict[str, Any]:
    return {
        "id": "latency",
        "name": "Latency",
        "sequences": [
            {
                "name": "people",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": "latency_people"},
                "key": "uid",
                "thresholds": {"create": {"count": 1_000}, "update": {"count": 1_000}},
            }
        ],
    }


def records(job: int) -> list[dict[str, Any]]:
    return [
        {"uid": f"u{i}", "cn": f"User {i}", "mail": f"u{i}.{job}@example.org"}
        for i in range(RECORDS)
    ]


# The milestones of one job on job-events, in the order the flow reaches them.
MILESTONES = (
    "JobCreated",
    "JobStarted",
    "SequencePlanned",
    "SequenceReleased",
    "SequenceCompleted",
    "JobCompleted",
)


def breakdown(events: list[JobEvent], visible: dict[str, datetime]) -> list[str]:
    """Median time between consecutive milestones of the measured jobs, by their events'
    `time` (each stamped by its producer), and from JobCompleted to the API showing it."""
    stamped: dict[str, dict[str, datetime]] = {}
    for event in events:
        stamped.setdefault(event.subject, {})[event.type.removeprefix("provisioning.")] = event.time
    gaps: dict[str, list[float]] = {}
    for job_id, seen in visible.items():
        times = stamped.get(job_id, {})
        if not all(m in times for m in MILESTONES):
            continue
        for before, after in itertools.pairwise(MILESTONES):
            gaps.setdefault(f"{before} → {after}", []).append(
                (times[after] - times[before]).total_seconds()
            )
        gaps.setdefault("JobCompleted → shown by the API", []).append(
            (seen - times["JobCompleted"]).total_seconds()
        )
    return [f"  - {name}: p50 {percentile(took, 0.5) * 1000:.0f} ms" for name, took in gaps.items()]


async def one_job(
    http: httpx.AsyncClient, job: int, run: str, visible: dict[str, datetime]
) -> float:
    started = time.perf_counter()
    answer = await http.post(
        "/jobs",
        json={
            "request_id": f"latency-{run}-{job}",
            "definition_id": "latency",
            "inputs": {"people": records(job)},
        },
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    while True:
        shown = await http.get(f"/jobs/{job_id}")
        status = shown.json()["status"] if shown.status_code == 200 else None
        if status == "COMPLETED":
            visible[job_id] = datetime.now(UTC)
            return time.perf_counter() - started
        assert status not in ("FAILED", "THRESHOLD", "CANCELED"), shown.text
        assert time.perf_counter() - started < 120, f"job {job_id} still {status}"
        await asyncio.sleep(POLL_SECONDS)


async def ours(count: int) -> tuple[list[float], list[str]]:
    async with (
        system() as stack,
        httpx.AsyncClient(
            base_url=f"{stack.api_url}/api/v1",
            headers={"Authorization": f"Bearer {stack.admin_key}"},
            timeout=30,
        ) as http,
    ):
        answer = await http.post("/job-definitions", json=definition())
        assert answer.status_code == 201, answer.text
        run = uuid.uuid4().hex[:8]
        warm: dict[str, datetime] = {}
        for job in range(WARM_UP):
            await one_job(http, -1 - job, run, warm)
        visible: dict[str, datetime] = {}
        took = [await one_job(http, job, run, visible) for job in range(count)]
        return took, breakdown(await asyncio.to_thread(stack.events), visible)


async def raw_round_trips(count: int) -> list[float]:
    """Produce one message, wait until the consumer has it (and has committed it), again."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap())
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
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def consume() -> None:
        async for _ in consumer:
            await consumer.commit()
            arrived.put_nowait(time.perf_counter())

    reading = asyncio.create_task(consume())
    try:
        took = []
        for i in range(WARM_UP + count):
            started = time.perf_counter()
            await producer.send_and_wait(topic, PAYLOAD, key=f"job-{i}".encode())
            done = await asyncio.wait_for(arrived.get(), 60)
            if i >= WARM_UP:
                took.append(done - started)
        return took
    finally:
        reading.cancel()
        await consumer.stop()
        await producer.stop()


async def database_round_trips(count: int) -> list[float]:
    """One small `replace_one` by `_id` on the bench's MongoDB server: the unit of the runner's
    and the projector's sequential writes, measured for the notes (not part of the ratio)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri())
    collection = client[f"bench_rt_{uuid.uuid4().hex[:8]}"]["runs"]
    try:
        took = []
        for i in range(count):
            started = time.perf_counter()
            await collection.replace_one({"_id": "job"}, {"_id": "job", "n": i}, upsert=True)
            took.append(time.perf_counter() - started)
        return took
    finally:
        await client.drop_database(collection.database.name)
        await client.close()


async def main() -> tuple[list[str], list[str]]:
    count = jobs()
    started = time.perf_counter()
    mine, steps = await ours(count)
    ours_wall = time.perf_counter() - started
    raw = await raw_round_trips(count)
    writes = await database_round_trips(count)
    lines = [
        report_goal(
            f"job latency, {RECORDS} records, {count} jobs {name}",
            percentile(mine, fraction),
            HOPS * percentile(raw, fraction),
            f"{HOPS} x raw round trip",
            goal=GOAL,
        )
        for name, fraction in (("p50", 0.5), ("p99", 0.99))
    ]
    notes = [
        f"- {count} jobs in {ours_wall:.0f} s (with starting and stopping the services); ours: "
        f"min {min(mine) * 1000:.0f} ms, p50 {percentile(mine, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(mine, 0.99) * 1000:.0f} ms, max {max(mine) * 1000:.0f} ms",
        f"- raw aiokafka round trip: min {min(raw) * 1000:.1f} ms, p50 "
        f"{percentile(raw, 0.5) * 1000:.1f} ms, p99 {percentile(raw, 0.99) * 1000:.1f} ms, max "
        f"{max(raw) * 1000:.1f} ms",
        f"- one `replace_one` round trip to the same MongoDB server: p50 "
        f"{percentile(writes, 0.5) * 1000:.1f} ms, p99 {percentile(writes, 0.99) * 1000:.1f} ms",
        "- where a job's time goes, between the events' timestamps:",
        *steps,
    ]
    return lines, notes


if __name__ == "__main__":
    print("\n".join(asyncio.run(main())[1]))
