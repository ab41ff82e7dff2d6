"""Two runner replicas in one consumer group: each job is planned and applied by the replica
that owns its partition, and only by it; a sequence longer than the consumer's poll interval
triggers no rebalance (the work runs in background tasks, the consumer keeps polling)."""

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from provisioning_common.events import JobCompleted, SequenceCompleted, SequenceStarted
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.partitions import partition_of
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.integration.engine.conftest import (
    EventLog,
    created_event,
    csv_text,
    definition,
    sequence,
)
from tests.support.kafka_groups import group_has_members
from tests.support.processes import REPO, ServiceProcess, service_argv, spawn, start_service
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

LOGS = REPO / "test-results" / "replica-logs"
PARTITIONS = 6
POLL_INTERVAL_MS = 3000
RECORDS = 1500


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


def ownership_lines(path: Path) -> list[str]:
    return [
        line["message"]
        for line in log_lines(path)
        if line["message"].startswith(("owning partitions", "partitions "))
    ]


def owned_partitions(path: Path) -> set[int]:
    """The partitions the replica's last assignment gave it, from its log."""
    owning = [m for m in ownership_lines(path) if m.startswith("owning partitions")]
    if not owning:
        return set()
    listed = owning[-1].removeprefix("owning partitions [").split("]", 1)[0]
    return {int(p) for p in listed.split(",") if p.strip()}


def jobs_worked(path: Path) -> set[str]:
    """Jobs this replica planned or applied a sequence of (its 'sequence N planned' lines)."""
    return {
        line["job_id"]
        for line in log_lines(path)
        if "job_id" in line and line["message"].startswith("sequence ")
    }


def job_ids_covering(partitions: int, per_partition: int) -> list[str]:
    """Job ids spread evenly over the partitions, so both replicas are sure to get work."""
    wanted = {p: per_partition for p in range(partitions)}
    found: list[str] = []
    while any(wanted.values()):
        job_id = str(uuid.uuid4())
        p = partition_of(job_id, partitions)
        if wanted[p]:
            wanted[p] -= 1
            found.append(job_id)
    return found


@pytest.fixture
def replicas(
    infra: Infra, tmp_path: Path
) -> Iterator[tuple[KafkaSettings, dict[str, str], list[ServiceProcess]]]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"replicas-{run_id}.",
        consumer_group_suffix=f"-replicas-{run_id}",
        topic_partitions=PARTITIONS,
    )
    asyncio.run(ensure_topics(kafka))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS": str(POLL_INTERVAL_MS),
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": f"replicas_{run_id}",
        "PROVISIONING_TARGET_DB": f"replicas_identity_{run_id}",
        "PROVISIONING_DATA_DIR": str(tmp_path),
        "PROVISIONING_APPLY_BATCH_SIZE": "25",
        "PROVISIONING_MAX_PARALLEL_JOBS": "4",
    }
    LOGS.mkdir(parents=True, exist_ok=True)

    def guard_ready() -> bool:
        return asyncio.run(group_has_members(kafka, kafka.group_id("threshold-guard")))

    with start_service(
        "threshold-guard",
        service_argv("threshold-guard"),
        env,
        guard_ready,
        LOGS / f"threshold-guard-{run_id}.log",
        timeout=90,
    ):
        runners = [
            spawn(
                "sequence-runner",
                service_argv("sequence-runner"),
                env,
                LOGS / f"sequence-runner-{run_id}-{n}.log",
            )
            for n in (1, 2)
        ]
        try:

            def split() -> bool:
                for runner in runners:
                    assert runner.alive(), runner.log_tail()
                owned = [owned_partitions(r.log_path) for r in runners]
                return all(owned) and sorted(owned[0] | owned[1]) == list(range(PARTITIONS))

            wait_until(split, timeout=90, what="the two runners sharing the six partitions")
            yield kafka, env, runners
        finally:
            for runner in runners:
                assert runner.stop() == 0, runner.log_tail()


async def test_each_job_is_worked_by_the_replica_owning_its_partition_and_none_rebalances(
    replicas: tuple[KafkaSettings, dict[str, str], list[ServiceProcess]],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    kafka, env, runners = replicas
    data_dir = Path(env["PROVISIONING_DATA_DIR"])
    (data_dir / "people.csv").write_text(
        csv_text("uid,mail", [f"u{i},u{i}@x" for i in range(RECORDS)]), encoding="utf-8"
    )
    before = [ownership_lines(r.log_path) for r in runners]
    owned = [owned_partitions(r.log_path) for r in runners]
    job_ids = job_ids_covering(PARTITIONS, per_partition=1)

    events = EventLog(kafka)
    await events.start()
    broker = build_broker(kafka)
    await broker.start()
    try:
        for n, job_id in enumerate(job_ids):
            job = definition(
                sequence(
                    "people",
                    {"type": "csv", "path": "people.csv"},
                    collection=f"people_{n}",
                    thresholds={"create": {"count": RECORDS + 1}},
                )
            )
            await publish_envelope(
                broker, kafka.topic(JOB_EVENTS), created_event(job_id, job, None)
            )
        for job_id in job_ids:
            await events.wait_for(job_id, JobCompleted, timeout=150)
    finally:
        await broker.stop()
        await events.stop()

    target = mongo_client[env["PROVISIONING_TARGET_DB"]]
    for n in range(len(job_ids)):
        assert await target[f"people_{n}"].count_documents({}) == RECORDS
    worked = [jobs_worked(r.log_path) for r in runners]
    for job_id in job_ids:
        owner = 0 if partition_of(job_id, PARTITIONS) in owned[0] else 1
        assert job_id in worked[owner], f"job {job_id} not worked by its partition's owner"
        assert job_id not in worked[1 - owner], f"job {job_id} worked by both replicas"
        # One plan, one apply: never taken up a second time.
        assert len(events.events(job_id, SequenceStarted)) == 1
        assert len(events.events(job_id, SequenceCompleted)) == 1
    assert all(worked), "one replica did all the work"

    # The sequences outlasted the poll interval, and no replica lost or gained a partition.
    longest = max(
        (
            events.events(job_id, SequenceCompleted)[0].time
            - events.events(job_id, SequenceStarted)[0].time
        ).total_seconds()
        for job_id in job_ids
    )
    assert longest > POLL_INTERVAL_MS / 1000, f"the longest sequence took only {longest:.1f}s"
    assert [ownership_lines(r.log_path) for r in runners] == before
