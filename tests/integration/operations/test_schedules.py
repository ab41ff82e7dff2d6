"""Schedules on the real broker and database: two schedulers (in-process with a clock the test
moves, then two real job-api-scheduler processes with a restart) send one job request per
firing; missed firings run once; a firing while the previous job runs is recorded as skipped."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from job_api.adapters.definitions import DefinitionRepository
from job_api.adapters.schedule_store import ScheduleStore
from job_api.handlers.schedules import Scheduler
from provisioning_common.definition_options import Schedule
from provisioning_common.definitions import JobDefinitionBody
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.kafka import build_broker
from provisioning_common.requests import JobRequest
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_REQUESTS, ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.support.processes import REPO, ServiceProcess, service_argv, spawn
from tests.support.waiting import eventually
from tests.unit.job_api.test_projection import two_sequence_definition

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

LOGS = REPO / "test-results" / "integration-logs"


def scheduled(schedule: Schedule, definition_id: str = "hr-sync") -> JobDefinitionBody:
    base = two_sequence_definition(definition_id)
    fields = base.model_dump(exclude={"version"})
    return JobDefinitionBody.model_validate({**fields, "schedule": schedule.model_dump()})


@pytest.fixture
async def isolated(infra: Infra, unique_name: str) -> KafkaSettings:
    settings = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap, topic_prefix=f"{unique_name}."
    )
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def broker(isolated: KafkaSettings) -> AsyncIterator[KafkaBroker]:
    broker = build_broker(isolated)
    await broker.start()
    yield broker
    await broker.stop()


async def requests_sent(settings: KafkaSettings) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        settings.topic(JOB_REQUESTS),
        **settings.to_aiokafka_params(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
    finally:
        await consumer.stop()
    return [json.loads(r.value) for records in batches.values() for r in records]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_two_schedulers_and_a_restart_send_each_firing_once(
    isolated: KafkaSettings,
    broker: KafkaBroker,
    mongo_client: AsyncMongoClient[Any],
    unique_name: str,
) -> None:
    db = mongo_client[unique_name]
    await DefinitionRepository(db).create(scheduled(Schedule(interval_minutes=30)))
    topic = isolated.topic(JOB_REQUESTS)

    async def request_job(request: JobRequest) -> None:
        key = job_id_for_request(request.request_id).encode()
        await broker.publish(request.model_dump_json().encode(), topic=topic, key=key)

    clock = Clock(datetime(2026, 12, 6, 5, 10, tzinfo=UTC))

    def replica() -> Scheduler:
        return Scheduler(store=ScheduleStore(db), request_job=request_job, clock=clock)

    first, second = replica(), replica()
    assert list(await asyncio.gather(first.tick(), second.tick())) == [
        0,
        0,
    ]  # a new schedule: no backlog

    clock.now = datetime(2026, 12, 6, 5, 30, 2, tzinfo=UTC)
    assert sorted(await asyncio.gather(first.tick(), second.tick())) == [0, 1]
    assert await replica().tick() == 0  # a restarted scheduler: the firing is already run

    # Down for two hours: four firings missed, run once as the latest.
    clock.now = datetime(2026, 12, 6, 7, 45, tzinfo=UTC)
    assert sorted(await asyncio.gather(first.tick(), second.tick(), replica().tick())) == [0, 0, 1]

    # The 07:30 job is still running at 08:00: that firing is skipped, and says why.
    running_id = job_id_for_request("schedule:hr-sync:2026-12-06T07:30:00Z")
    await db["job_instances"].insert_one(
        {"_id": running_id, "definition_id": "hr-sync", "status": "RUNNING"}
    )
    clock.now = datetime(2026, 12, 6, 8, 0, 1, tzinfo=UTC)
    assert sorted(await asyncio.gather(first.tick(), second.tick())) == [0, 1]

    sent = await requests_sent(isolated)
    assert sorted(r["request_id"] for r in sent) == [
        "schedule:hr-sync:2026-12-06T05:30:00Z",
        "schedule:hr-sync:2026-12-06T07:30:00Z",
    ]
    assert {(r["definition_id"], r["requested_by"]) for r in sent} == {("hr-sync", "scheduler")}
    firings = {f["_id"]: f for f in await ScheduleStore(db).firings("hr-sync")}
    assert firings["schedule:hr-sync:2026-12-06T07:30:00Z"]["missed"] == 3  # 06:00 … 07:00
    skipped = firings["schedule:hr-sync:2026-12-06T08:00:00Z"]
    assert skipped["status"] == "skipped"
    assert skipped["reason"] == f"job {running_id} of this definition is RUNNING"
    assert firings["schedule:hr-sync:2026-12-06T05:30:00Z"]["status"] == "requested"


async def test_scheduler_processes_fire_on_time_once_across_a_restart(
    infra: Infra,
    isolated: KafkaSettings,
    mongo_client: AsyncMongoClient[Any],
    unique_name: str,
) -> None:
    db = mongo_client[unique_name]
    await DefinitionRepository(db).create(scheduled(Schedule(cron="* * * * *")))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": isolated.topic_prefix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": unique_name,
        "PROVISIONING_SCHEDULE_TICK_SECONDS": "0.5",
    }

    def start(name: str) -> ServiceProcess:
        log = LOGS / f"{unique_name}-{name}.log"
        return spawn(name, service_argv("job-api-scheduler"), env, log)

    async def requested() -> list[dict[str, Any]]:
        cursor = db["schedule_firings"].find({"status": "requested"})
        return [doc async for doc in cursor]

    one, two = start("scheduler-1"), start("scheduler-2")
    try:

        async def first_firing() -> list[dict[str, Any]] | None:
            return await requested() or None

        (firing,) = await eventually(first_firing, timeout=90, what="the next minute's firing")
        # On time: requested within a few seconds of the minute (ticks of 0.5 s, a busy CPU).
        assert firing["settled_at"] - firing["at"] < timedelta(seconds=10)
        one.kill_hard()
        one = start("scheduler-1-restarted")
        await asyncio.sleep(5)  # the restarted one ticks ten times over the same minute
        assert one.alive(), one.log_tail()
    finally:
        for service in (one, two):
            code = await asyncio.to_thread(service.stop)
            assert code in (0, -15), service.log_tail()
    requests = [r["request_id"] for r in await requests_sent(isolated)]
    firings = [f["_id"] for f in await requested()]
    # Each firing run is one request (a new minute may have begun meanwhile: its own firing).
    assert sorted(requests) == sorted(firings)
    assert len(set(requests)) == len(requests)
