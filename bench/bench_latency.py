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

# The MongoDB round trips a job waits on one after the other, from the request to the API
# showing COMPLETED (counted with a command listener in every process, 2026-12-06):
# job-api before publishing JobCreated: the API key, the audit insert, the request ledger, the
# job instance, its tombstone, the definition, the ledger insert (2 writes, 5 reads); the
# runner to SequencePlanned: the run's insert, the outbox marked sent, the run read by the
# work, the target claim, the target read, the plan's chunks and document, the run's load and
# version-checked save (6 writes, 3 reads); the runner from SequenceReleased to JobCompleted:
# the run's load and save, the run read by the work, the target's index looked up, the plan
# and its chunk read back, the run's fence before the write, the target's write, the run's
# load and its save with the completion (3 writes, 7 reads); the projector's SequenceCompleted
# and JobCompleted, which come together (2 writes); the API's poll (2 reads).
WRITES_ON_PATH = 13
READS_ON_PATH = 17

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
    "What dominates: waiting on MongoDB, not Kafka and not our CPU (py-spy, 2026-12-06: the "
    "runner's event loop idle 68% of a run, the projector's 83%). A job waits on "
    f"{WRITES_ON_PATH} MongoDB writes and {READS_ON_PATH} reads one after the other (counted "
    "with a pymongo command listener in every process; listed in `bench/bench_latency.py`), "
    "down from 15 and 24: the outbox is published from what the step just wrote instead of "
    "read again, the last batch's count is stored with the completion in one write, the "
    "target's unique index is looked up (a read) instead of created again (a write), and the "
    "projector folds an event into the job instance as it last wrote it (its write is "
    "conditional on the document being unchanged since) instead of reading it first. What is "
    "left is what the guarantees need: the run stored before its events go out and marked "
    "sent after, each step's version-checked save, the target claimed before planning, the "
    "plan stored before the guard sees it and read back for the apply, the fence before the "
    "write, and the read model written per event.",
    "",
    "That is the floor on SecantusDB. A small write takes it one to two milliseconds on a "
    "fresh server (a write into `job_instances` more: it deletes and writes again an entry in "
    "each of the fourteen indexes), a read a few tenths of a millisecond. "
    "The round trips alone (the note below multiplies the counts by this run's measured "
    "p50s: about 30 ms on a fresh server) come to more than 3 x the Kafka baseline (about "
    "20 ms) before a single hop, the planning or the poll is added, so the goal is out of reach "
    "on this server. But the round trips are not the whole of a job's time: in the quiet run "
    "of 2026-12-06 they came to 23 ms of a 144 ms p50, and the steps between the events' "
    "timestamps (planning ten records, applying them, projecting and polling: about 40 ms "
    "each) each take several times their round trips. That remainder was timed in the services "
    "(2026-12-06, a loaded machine, p50 262 ms): no timer, poll or thread handoff is in it "
    "(planning ten records takes under 1 ms in its threads, the work starts 0.3 ms after its "
    "event). It is the same round trips costing several times what they cost alone (a write 4-10 "
    "ms in the flow against 1.4-1.8 ms alone: SecantusDB shares the cores with four services and "
    "the broker), the Kafka sends, each awaiting acks=all before the next (3-7 ms each; the runner"
    " sends JobStarted then SequenceStarted, SequenceCompleted then JobCompleted, and marks them "
    "sent before it starts planning), and the projector folding one event after the other (15 ms "
    "each, the job instance replaced across its indexes): JobCompleted waits behind "
    "SequenceCompleted's fold. SecantusDB's writes also slow down the longer the "
    "server process runs (measured once, 2026-12-06, at the same machine load: a small "
    "`update_one` 1-2 ms on a fresh server, 35-50 ms after half an hour of benchmarks and "
    "tests, 1 ms again from a fresh process on a copy of the same data): compare runs made on "
    "freshly started servers.",
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


async def database_round_trips(count: int) -> tuple[list[float], list[float]]:
    """One small `replace_one` and one `find_one` by `_id` on the bench's MongoDB server: the
    units of the flow's sequential writes and reads, measured for the notes (not part of the
    ratio)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri())
    collection = client[f"bench_rt_{uuid.uuid4().hex[:8]}"]["runs"]
    try:
        writes, reads = [], []
        for i in range(count):
            started = time.perf_counter()
            await collection.replace_one({"_id": "job"}, {"_id": "job", "n": i}, upsert=True)
            wrote = time.perf_counter()
            await collection.find_one({"_id": "job"})
            writes.append(wrote - started)
            reads.append(time.perf_counter() - wrote)
        return writes, reads
    finally:
        await client.drop_database(collection.database.name)
        await client.close()


async def main() -> tuple[list[str], list[str]]:
    count = jobs()
    started = time.perf_counter()
    mine, steps = await ours(count)
    ours_wall = time.perf_counter() - started
    raw = await raw_round_trips(count)
    writes, reads = await database_round_trips(count)
    floor = WRITES_ON_PATH * percentile(writes, 0.5) + READS_ON_PATH * percentile(reads, 0.5)
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
        f"{percentile(writes, 0.5) * 1000:.1f} ms, p99 {percentile(writes, 0.99) * 1000:.1f} ms; "
        f"one `find_one`: p50 {percentile(reads, 0.5) * 1000:.1f} ms, p99 "
        f"{percentile(reads, 0.99) * 1000:.1f} ms",
        f"- the sequential MongoDB round trips alone ({WRITES_ON_PATH} writes, {READS_ON_PATH} "
        f"reads at these p50s): {floor * 1000:.0f} ms, "
        f"{floor / (HOPS * percentile(raw, 0.5)):.1f} x the p50 baseline",
        "- where a job's time goes, between the events' timestamps:",
        *steps,
    ]
    return lines, notes


if __name__ == "__main__":
    print("\n".join(asyncio.run(main())[1]))
