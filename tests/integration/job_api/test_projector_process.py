"""The job-api-projector process on the real broker and database: exact documents, replays,
rebuilds and dead letters."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from job_api.domain.projection import fold_all
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    JobArchived,
    JobArchivedData,
    JobDeleted,
    JobDeletedData,
    JobEvent,
    JobRejected,
    JobRejectedData,
    JobStarted,
    JobStartedData,
    SequenceStarted,
    SequenceStartedData,
    parse_job_event,
)
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, dead_letter_topic, ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.support.kafka_groups import group_has_members
from tests.support.processes import REPO, ServiceProcess, service_argv, spawn
from tests.support.waiting import eventually
from tests.unit.job_api.test_projection import (
    SOURCE,
    at,
    blocked,
    completed_job_events,
    created,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

LOGS = REPO / "test-results" / "integration-logs"
Positioned = tuple[JobEvent, int | None, int | None]


@contextlib.asynccontextmanager
async def projector(
    env: dict[str, str], log: Path, *args: str, ready_group: str | None = None
) -> AsyncIterator[ServiceProcess]:
    """The real console script as a process; SIGTERM at the end must stop it cleanly."""
    service = spawn("job-api-projector", [*service_argv("job-api-projector"), *args], env, log)
    try:
        if ready_group is not None:
            settings = KafkaSettings(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])

            async def joined() -> bool:
                assert service.alive(), service.log_tail()
                return await group_has_members(settings, ready_group)

            await eventually(joined, timeout=60, what=f"projector in group {ready_group}")
        yield service
    finally:
        code = await asyncio.to_thread(service.stop)
    assert code in (0, -15), f"projector exited with {code}:\n{service.log_tail()}"


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
async def broker(isolated: KafkaSettings) -> AsyncIterator[KafkaBroker]:
    broker = build_broker(isolated)
    await broker.start()
    yield broker
    await broker.stop()


async def publish(broker: KafkaBroker, settings: KafkaSettings, event: Envelope) -> Positioned:
    metadata = await publish_envelope(broker, settings.topic(JOB_EVENTS), event)
    return parse_job_event(event.model_dump_json()), metadata.partition, metadata.offset


async def committed(settings: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**settings.to_aiokafka_params())
    await admin.start()
    try:
        offsets: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def ends_of(published: list[tuple[int, int]]) -> dict[int, int]:
    """The next offset of each partition, from the positions the broker acknowledged."""
    ends: dict[int, int] = {}
    for partition, offset in published:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


async def caught_up(settings: KafkaSettings, group: str, ends: dict[int, int]) -> bool:
    """`group` has committed every partition up to `ends`: it folded all that was published."""
    done = await committed(settings, group, settings.topic(JOB_EVENTS))
    return all(done.get(p, -1) >= o for p, o in ends.items())


async def dead_letters(settings: KafkaSettings) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        dead_letter_topic(settings.topic(JOB_EVENTS)),
        **settings.to_aiokafka_params(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
    finally:
        await consumer.stop()
    return [(r.value, dict(r.headers)) for records in batches.values() for r in records]


def stored_documents(log: Any) -> dict[str, dict[str, Any]]:
    """What the projector must store for `log`: the pure fold, as MongoDB documents."""
    return {job_id: doc.to_document() for job_id, doc in fold_all(log).items()}


async def read_model(
    client: AsyncMongoClient[dict[str, Any]], database: str
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    jobs = {d["_id"]: d async for d in client[database]["job_instances"].find({})}
    rejections = [d async for d in client[database]["job_rejections"].find({}).sort("_id", 1)]
    return jobs, rejections


async def test_projector_folds_replays_rebuilds_and_dead_letters(
    isolated: KafkaSettings,
    broker: KafkaBroker,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    infra: Infra,
    unique_name: str,
) -> None:
    database = unique_name
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": isolated.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": isolated.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": isolated.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": database,
        "PROVISIONING_LOG_LEVEL": "DEBUG",
    }
    log_file = LOGS / f"projector-{unique_name}.log"
    group = isolated.group_id("job-api-projector")

    # Three jobs: one completes, one waits at a threshold, one is deleted; and a rejection.
    done, waiting, gone = created("done-1"), created("waiting-1"), created("gone-1")
    rejected = JobRejected(
        source=SOURCE,
        subject=created("nope-1").subject,
        time=at(1),
        data=JobRejectedData(
            request_id="nope-1",
            definition_id="nope",
            origin="kafka",
            reason="definition_id: unknown job definition 'nope'",
        ),
    )
    script: list[Envelope] = [
        done,
        waiting,
        gone,
        rejected,
        *completed_job_events(done.subject),
        *completed_job_events(waiting.subject)[:4],
        blocked(waiting.subject, 6),
        JobStarted(source=SOURCE, subject=gone.subject, time=at(2), data=JobStartedData(attempt=1)),
        JobDeleted(
            source=SOURCE, subject=gone.subject, time=at(9), data=JobDeletedData(deleted_by="adm")
        ),
        # After its deletion: ignored, the job stays deleted.
        SequenceStarted(
            source=SOURCE,
            subject=gone.subject,
            time=at(10),
            data=SequenceStartedData(index=0, name="employees", attempt=1),
        ),
    ]
    log = [await publish(broker, isolated, event) for event in script]
    expected = stored_documents(log)
    assert set(expected) == {done.subject, waiting.subject}

    async with projector(env, log_file, ready_group=group):

        async def projected() -> bool:
            jobs, rejections = await read_model(mongo_client, database)
            return jobs == expected and len(rejections) == 1

        await eventually(projected, timeout=60, what="the read model to equal the fold")
        jobs, (rejection,) = await read_model(mongo_client, database)
        assert jobs[done.subject]["status"] == "COMPLETED"
        assert jobs[done.subject]["sequences"][1]["applied"] == {
            "create": 2,
            "update": 0,
            "delete": 0,
            "disable": 0,
        }
        assert jobs[waiting.subject]["status"] == "THRESHOLD"
        assert jobs[waiting.subject]["sequences"][0]["threshold"]["actual"] == 12
        assert rejection["reason"] == "definition_id: unknown job definition 'nope'"

        # A malformed message on job-events: dead-lettered with its reason; the next is folded.
        malformed = await broker.publish(
            b'{"type": "provisioning.JobStarted", "subject": "x"',
            topic=isolated.topic(JOB_EVENTS),
            key=done.subject.encode(),
        )
        archive = JobArchived(
            source=SOURCE,
            subject=done.subject,
            time=at(30),
            data=JobArchivedData(archived_by="admin", archived=True),
        )
        log.append(await publish(broker, isolated, archive))
        expected = stored_documents(log)

        async def archived() -> bool:
            return (await read_model(mongo_client, database))[0] == expected

        await eventually(archived, timeout=30, what="the archive after the malformed message")
        assert expected[done.subject]["archived"] is True

        async def dead_lettered() -> list[tuple[bytes, dict[str, bytes]]] | None:
            return await dead_letters(isolated) or None

        ((raw, headers),) = await eventually(dead_lettered, timeout=30, what="the dead letter")
        assert raw == b'{"type": "provisioning.JobStarted", "subject": "x"'
        assert headers["dlq_reason"].decode().startswith("not a job event: message: invalid JSON")
        assert headers["dlq_topic"].decode() == isolated.topic(JOB_EVENTS)
        ends = ends_of(
            [(p, o) for _, p, o in log if p is not None and o is not None]
            + [(malformed.partition, malformed.offset)]
        )
        await eventually(lambda: caught_up(isolated, group, ends), timeout=30, what="commits")

    snapshot = await read_model(mongo_client, database)
    assert snapshot[0] == expected

    # Re-delivery: a fresh group replays the topic from its first offset over the same
    # documents; every event is already folded, so nothing changes.
    replay_env = {**env, "KAFKA_CONSUMER_GROUP_SUFFIX": f"{isolated.consumer_group_suffix}.replay"}
    replay_group = f"job-api-projector{replay_env['KAFKA_CONSUMER_GROUP_SUFFIX']}"
    replay_settings = isolated.model_copy(
        update={"consumer_group_suffix": replay_env["KAFKA_CONSUMER_GROUP_SUFFIX"]}
    )
    async with projector(replay_env, log_file, ready_group=replay_group):
        await eventually(
            lambda: caught_up(replay_settings, replay_group, ends), timeout=60, what="the replay"
        )
    assert await read_model(mongo_client, database) == snapshot

    # Rebuild: the read model is dropped and folded again, under a fresh group, to the same.
    async with projector(env, log_file, "--rebuild"):

        async def rebuilt() -> bool:
            state = await mongo_client[database]["projector_state"].find_one({"_id": group})
            if state is None or state["group_id"] == group:
                return False
            return await caught_up(isolated, state["group_id"], ends)

        await eventually(rebuilt, timeout=60, what="the rebuild to catch up")
    assert await read_model(mongo_client, database) == snapshot
    state = await mongo_client[database]["projector_state"].find_one({"_id": group})
    assert state is not None
    assert state["group_id"].startswith(f"{group}.rebuild-")

    # Later starts keep the rebuild's group: nothing is folded twice, nothing is missed.
    async with projector(env, log_file, ready_group=state["group_id"]):
        late = JobArchived(
            source=SOURCE,
            subject=done.subject,
            time=at(40),
            data=JobArchivedData(archived_by="admin", archived=False),
        )
        log.append(await publish(broker, isolated, late))
        final = stored_documents(log)

        async def unarchived() -> bool:
            return (await read_model(mongo_client, database))[0] == final

        await eventually(unarchived, timeout=30, what="the unarchive after the rebuild")
    await mongo_client.drop_database(database)
