"""One bad message never stops a consumer (issue 8, defects 2 and 3), for each consumer of the
system on the real broker and database: the job-requests intake, the projector, the runner's
job-events subscriber and the guard's. A message whose handling fails the same way every time
is dead-lettered with the reason after a few tries with back-off, with one traceback in the
log, and the next message on the same partition is handled. (The runner's commands: in
tests/integration/engine/test_poison_messages.py, with the real runner process.)"""

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream.kafka import KafkaBroker
from job_api.adapters.definitions import DEFINITIONS_COLLECTION
from job_api.bootstrap import build_services
from job_api.domain.job_instance import JobInstance
from job_api.entrypoints.job_requests import build_intake_subscriber
from job_api.settings import JobApiSettings
from provisioning_common.definitions import JobDefinition, JobDefinitionBody
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    JobCreated,
    JobCreatedData,
    JobRejected,
    JobRejectedData,
    PlanCounts,
    SequencePlanned,
    SequencePlannedData,
    parse_job_event,
)
from provisioning_common.identifiers import job_id_for_request
from provisioning_common.kafka import build_broker
from provisioning_common.settings import KafkaSettings, MongoSettings
from provisioning_common.topics import JOB_EVENTS, JOB_REQUESTS, dead_letter_topic, ensure_topics
from pymongo import AsyncMongoClient
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy as TargetRetry
from sequence_runner.adapters.connectors.registry import ConnectorRegistry
from sequence_runner.adapters.kafka import KafkaEventPublisher as RunnerPublisher
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.adapters.mongo_runs import MongoRunRepository
from sequence_runner.domain.run import Run
from sequence_runner.entrypoints.consumers import subscribe_runner
from sequence_runner.handlers.engine import Engine
from threshold_guard.adapters.kafka import KafkaEventPublisher as GuardPublisher
from threshold_guard.entrypoints.consumer import subscribe_to_job_events

from tests.conftest import Infra
from tests.integration.job_api.test_projector_process import projector
from tests.support.processes import REPO
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

LOGS = REPO / "test-results" / "integration-logs"
SOURCE = "/provisioning/tests"
ACCOUNTS = {
    "name": "accounts",
    "source": {"type": "inline"},
    "target": {"type": "mongo", "collection": "accounts"},
    "key": "uid",
    "thresholds": {"create": {"count": 100}},
}


@pytest.fixture
async def isolated(infra: Infra, unique_name: str) -> KafkaSettings:
    settings = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"{unique_name}.",
        consumer_group_suffix=f".{unique_name}",
    )
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def producer(isolated: KafkaSettings) -> AsyncIterator[KafkaBroker]:
    broker = build_broker(isolated)
    await broker.start()
    yield broker
    await broker.stop()


async def publish(broker: KafkaBroker, topic: str, body: bytes, key: bytes) -> None:
    """Raw bytes under an explicit key: the poison and the next message share one partition."""
    await broker.publish(body, topic=topic, key=key)


async def dead_letters(
    kafka: KafkaSettings, topic: str, key: bytes, count: int = 1
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        dead_letter_topic(kafka.topic(topic)),
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            async for record in consumer:
                if record.key == key:
                    found.append(record)
                    if len(found) >= count:
                        return found
    finally:
        await consumer.stop()
    return found


def reason_of(record: ConsumerRecord[bytes, bytes]) -> str:
    reason: bytes = dict(record.headers)["dlq_reason"]
    return reason.decode()


def job_created(job_id: str, uid: str) -> JobCreated:
    definition = JobDefinition.model_validate(
        {"id": "accounts", "name": "Accounts", "version": 1, "sequences": [ACCOUNTS]}
    )
    return JobCreated(
        source=SOURCE,
        subject=job_id,
        data=JobCreatedData(
            request_id=f"req-{job_id}",
            definition=definition,
            inputs={"accounts": [{"uid": uid}]},
            origin="api",
            requested_by="tests",
        ),
    )


def consumer_failures(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [
        r
        for r in records
        if r.name == "provisioning_common.consuming" and r.levelno >= logging.WARNING
    ]


async def test_the_intake_dead_letters_a_request_it_cannot_handle_and_takes_the_next(
    isolated: KafkaSettings,
    producer: KafkaBroker,
    infra: Infra,
    unique_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = JobApiSettings(
        kafka=isolated, mongo=MongoSettings(uri=infra.mongo_uri, database=unique_name)
    )
    services = build_services(settings)
    await services.ensure_indexes()
    # A definition document that no longer reads as a JobDefinition (written by hand, or by an
    # older version): every request for it fails the same way, schema-valid as it is.
    await services.db[DEFINITIONS_COLLECTION].insert_one(
        {"_id": "broken", "name": "Broken", "version": 1, "sequences": "none"}
    )
    await services.definitions.create(
        JobDefinitionBody.model_validate({"id": "good", "name": "Good", "sequences": [ACCOUNTS]})
    )
    build_intake_subscriber(
        services.broker,
        settings,
        definitions=services.definitions,
        job_instances=services.intake_records,
        publisher=services.job_events,
    )
    caplog.set_level(logging.INFO, logger="provisioning_common")
    await services.broker.start()
    try:
        key, topic = b"hr-feed", isolated.topic(JOB_REQUESTS)
        inputs = {"accounts": [{"uid": "a"}]}
        for request_id, definition_id in [
            (f"{unique_name}-1", "broken"),
            (f"{unique_name}-2", "good"),
        ]:
            body = {"request_id": request_id, "definition_id": definition_id, "inputs": inputs}
            await publish(producer, topic, json.dumps(body).encode(), key)
        taken = job_id_for_request(f"{unique_name}-2")

        async def job_instance() -> JobInstance | None:
            return await services.job_instances.get(taken)

        instance = await eventually(job_instance, timeout=60, what="the next request's job")
        assert instance.status == "QUEUED"
        (dead,) = await dead_letters(isolated, JOB_REQUESTS, key)
    finally:
        await services.broker.stop()
        await services.mongo.close()
    assert json.loads(dead.value)["request_id"] == f"{unique_name}-1"
    reason = reason_of(dead)
    assert reason.startswith("could not be handled: failed 5 times, last with ValidationError")
    assert "sequences" in reason
    # Defect 3: five failures with back-off, one traceback, not one per redelivery.
    failures = consumer_failures(caplog.records)
    assert sum(1 for r in failures if r.exc_info) == 1
    assert len(failures) <= 6, [r.getMessage() for r in failures]


async def test_the_projector_dead_letters_an_event_with_an_overflowing_time_and_folds_the_next(
    isolated: KafkaSettings,
    producer: KafkaBroker,
    infra: Infra,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    unique_name: str,
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": isolated.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": isolated.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": isolated.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": unique_name,
    }
    LOGS.mkdir(parents=True, exist_ok=True)
    # The JobRejected of issue 8: its time, valid ISO 8601, has no UTC equivalent; it raised
    # OverflowError in the projector on every redelivery and froze its partition.
    rejected = JobRejected(
        source=SOURCE,
        subject=job_id_for_request("nope"),
        data=JobRejectedData(request_id="nope", origin="kafka", reason="unknown definition"),
    )
    poison = json.loads(rejected.model_dump_json())
    poison["time"] = "0001-01-01T00:00:00+01:00"
    following = job_created(str(uuid.uuid4()), "b")
    key, topic = rejected.subject.encode(), isolated.topic(JOB_EVENTS)
    await publish(producer, topic, json.dumps(poison).encode(), key)
    await publish(producer, topic, following.model_dump_json().encode(), key)

    async with projector(
        env,
        LOGS / f"projector-poison-{unique_name}.log",
        ready_group=isolated.group_id("job-api-projector"),
    ):

        async def folded() -> dict[str, Any] | None:
            return await mongo_client[unique_name]["job_instances"].find_one(
                {"_id": following.subject}
            )

        instance = await eventually(folded, timeout=60, what="the next event folded")
        (dead,) = await dead_letters(isolated, JOB_EVENTS, key)
    assert instance["status"] == "QUEUED"
    assert json.loads(dead.value)["id"] == rejected.id
    assert "out of range once converted to UTC" in reason_of(dead)


async def test_the_runner_dead_letters_an_event_its_handler_keeps_failing_on_and_takes_the_next(
    isolated: KafkaSettings,
    producer: KafkaBroker,
    infra: Infra,
    unique_name: str,
    tmp_path: Path,
) -> None:
    poison_id, next_id = str(uuid.uuid4()), str(uuid.uuid4())

    class RunsFailingForOneJob(MongoRunRepository):
        """A handler bug for one job: the same TypeError on every delivery."""

        async def insert(self, run: Run, events: Any) -> bool:
            if run.job_id == poison_id:
                raise TypeError("can't compare offset-naive and offset-aware datetimes")
            return await super().insert(run, events)

    mongo = MongoSettings(uri=infra.mongo_uri, database=unique_name).client()
    database = mongo[unique_name]
    broker = build_broker(isolated)
    engine = Engine(
        RunsFailingForOneJob(database),
        MongoPlanRepository(database),
        RunnerPublisher(broker, isolated.topic(JOB_EVENTS)),
        ConnectorRegistry(
            data_dir=tmp_path, target_database=mongo[f"{unique_name}_t"], retry=TargetRetry()
        ),
    )
    subscribe_runner(broker, isolated, engine)
    await broker.start()
    try:
        key, topic = poison_id.encode(), isolated.topic(JOB_EVENTS)
        for event in (job_created(poison_id, "a"), job_created(next_id, "b")):
            await publish(producer, topic, event.model_dump_json().encode(), key)

        async def run_started() -> dict[str, Any] | None:
            return await database["runs"].find_one({"_id": next_id})

        run = await eventually(run_started, timeout=60, what="the next job's run")
        (dead,) = await dead_letters(isolated, JOB_EVENTS, key)
    finally:
        await engine.close()
        await broker.stop()
        await mongo.close()
    assert run["status"] == "RUNNING"
    assert json.loads(dead.value)["subject"] == poison_id
    assert "failed 5 times, last with TypeError: can't compare" in reason_of(dead)


async def test_the_guard_dead_letters_a_plan_it_cannot_decide_on_and_decides_the_next(
    isolated: KafkaSettings, producer: KafkaBroker, unique_name: str
) -> None:
    poison_id, next_id = str(uuid.uuid4()), str(uuid.uuid4())
    topic = isolated.topic(JOB_EVENTS)

    class PublisherFailingForOneJob(GuardPublisher):
        async def publish(self, event: Envelope) -> None:
            if event.subject == poison_id:
                raise OverflowError("date value out of range")
            await super().publish(event)

    broker = build_broker(isolated)
    subscribe_to_job_events(broker, isolated, PublisherFailingForOneJob(broker, topic))
    decisions = AIOKafkaConsumer(
        topic, bootstrap_servers=isolated.bootstrap_servers, auto_offset_reset="earliest"
    )
    await decisions.start()
    await broker.start()
    try:
        key = poison_id.encode()
        for job_id in (poison_id, next_id):
            await publish(producer, topic, planned(job_id).model_dump_json().encode(), key)

        async def decided() -> bool:
            batches = await decisions.getmany(timeout_ms=500)
            return any(
                parse_job_event(r.value).type == "provisioning.SequenceReleased"
                and parse_job_event(r.value).subject == next_id
                for records in batches.values()
                for r in records
            )

        await eventually(decided, timeout=60, what="the next plan's decision")
        (dead,) = await dead_letters(isolated, JOB_EVENTS, key)
    finally:
        await broker.stop()
        await decisions.stop()
    assert json.loads(dead.value)["subject"] == poison_id
    assert "failed 5 times, last with OverflowError" in reason_of(dead)


def planned(job_id: str) -> SequencePlanned:
    return SequencePlanned(
        source="/provisioning/sequence-runner",
        subject=job_id,
        data=SequencePlannedData(
            index=0,
            name="accounts",
            plan_id=f"plan-{job_id}",
            counts=PlanCounts(create=1, update=0, delete=0, unchanged=0, target_size=0),
            thresholds=JobDefinition.model_validate(
                {"id": "a", "name": "A", "version": 1, "sequences": [ACCOUNTS]}
            )
            .sequences[0]
            .thresholds,
        ),
    )
