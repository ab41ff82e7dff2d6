"""A Kafka outage does not freeze an apply in progress (issue 8, defect 7): the broker is
stopped while the runner's engine applies a plan, and every target write still lands; the
job's events go out once the broker is back.

The test starts a broker of its own (scripts/infra.sh, in .infra/test-outage, on
TEST_OUTAGE_KAFKA_PORT / TEST_OUTAGE_KAFKA_CONTROLLER_PORT, by default the suite's test ports
+ 100), since it stops it: the suite's broker, and any other, are never touched."""

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    JobCompleted,
    JobCreated,
    JobCreatedData,
    SequencePlanned,
    SequenceProgress,
)
from provisioning_common.kafka import build_broker
from provisioning_common.settings import KafkaSettings, MongoSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics
from sequence_runner.adapters.connectors.base import TargetConnector
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy as TargetRetry
from sequence_runner.adapters.connectors.registry import ConnectorRegistry
from sequence_runner.adapters.kafka import KafkaEventPublisher
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.adapters.mongo_runs import MongoRunRepository
from sequence_runner.domain.records import PlannedChange
from sequence_runner.handlers.engine import Engine, EngineOptions
from sequence_runner.handlers.messages import EVENT_HANDLERS, handle
from threshold_guard.handlers.decisions import decide

from tests.conftest import TEST_KAFKA_CONTROLLER_PORT, TEST_KAFKA_PORT, Infra
from tests.support.processes import REPO
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

RECORDS = 6000
OUTAGE_PORT = int(os.environ.get("TEST_OUTAGE_KAFKA_PORT", str(TEST_KAFKA_PORT + 100)))
OUTAGE_CONTROLLER_PORT = int(
    os.environ.get("TEST_OUTAGE_KAFKA_CONTROLLER_PORT", str(TEST_KAFKA_CONTROLLER_PORT + 100))
)


def _infra(command: str) -> None:
    env = {
        **os.environ,
        "INFRA_DIR": str(REPO / ".infra" / "test-outage"),
        "KAFKA_PORT": str(OUTAGE_PORT),
        "KAFKA_CONTROLLER_PORT": str(OUTAGE_CONTROLLER_PORT),
    }
    subprocess.run([str(REPO / "scripts" / "infra.sh"), command, "kafka"], env=env, check=True)


@pytest.fixture(scope="module")
def own_broker() -> Iterator[str]:
    _infra("up")
    try:
        yield f"127.0.0.1:{OUTAGE_PORT}"
    finally:
        _infra("down")


class SlowTarget:
    """The real MongoDB target, a little slower per batch, so the outage starts mid-apply."""

    def __init__(self, target: TargetConnector) -> None:
        self._target = target
        self.prepare = target.prepare
        self.read_all = target.read_all
        self.rules = target.rules

    async def apply(self, changes: Sequence[PlannedChange]) -> None:
        await self._target.apply(changes)
        await asyncio.sleep(0.05)


class Connectors(ConnectorRegistry):
    def target(self, sequence: Any) -> TargetConnector:
        return SlowTarget(super().target(sequence))


class Recording(KafkaEventPublisher):
    """The runner's real publisher, remembering what it was asked to publish."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        super().__init__(broker, topic)
        self.asked: list[Envelope] = []

    async def publish(self, event: Envelope) -> None:
        self.asked.append(event)
        await super().publish(event)


async def test_an_apply_finishes_its_target_writes_while_the_broker_is_down(
    own_broker: str, infra: Infra, unique_name: str, tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=own_broker, topic_prefix=f"{unique_name}.")
    await ensure_topics(kafka)
    mongo = MongoSettings(uri=infra.mongo_uri, database=unique_name).client()
    database, target = mongo[unique_name], mongo[f"{unique_name}_t"]
    broker = build_broker(kafka)
    publisher = Recording(broker, kafka.topic(JOB_EVENTS))
    engine = Engine(
        MongoRunRepository(database),
        MongoPlanRepository(database),
        publisher,
        Connectors(data_dir=tmp_path, target_database=target, retry=TargetRetry()),
        EngineOptions(progress_interval_seconds=0.1, apply_batch_size=100),
    )
    job_id = str(uuid.uuid4())
    definition = {
        "id": "accounts",
        "name": "Accounts",
        "version": 1,
        "sequences": [
            {
                "name": "accounts",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": "accounts"},
                "key": "uid",
                "thresholds": {"create": {"count": RECORDS + 1}},
            }
        ],
    }
    created = JobCreated(
        source="/provisioning/tests",
        subject=job_id,
        data=JobCreatedData(
            request_id=f"req-{job_id}",
            definition=JobDefinition.model_validate(definition),
            inputs={"accounts": [{"uid": f"u{i}"} for i in range(RECORDS)]},
            origin="api",
            requested_by="tests",
        ),
    )
    await broker.start()
    try:
        await handle(EVENT_HANDLERS, created, engine)
        await engine.idle()
        (planned,) = [e for e in publisher.asked if isinstance(e, SequencePlanned)]
        await handle(EVENT_HANDLERS, decide(planned), engine)

        async def applying() -> bool:
            return any(
                isinstance(e, SequenceProgress) and e.data.phase == "applying"
                for e in publisher.asked
            )

        await eventually(applying, timeout=60, what="the apply under way")
        await asyncio.to_thread(_infra, "down")
        written_at_stop = await target["accounts"].count_documents({})
        assert written_at_stop < RECORDS, "the apply ended before the broker was stopped"

        async def all_written() -> bool:
            return await target["accounts"].count_documents({}) == RECORDS

        # Before the fix, each progress event waited for the absent broker (request timeout,
        # 30 s) and the apply crawled; now the writes finish while the broker is down.
        await eventually(all_written, timeout=60, what=f"{RECORDS} records with the broker down")

        async def completed() -> bool:
            run = await database["runs"].find_one({"_id": job_id})
            return run is not None and run["status"] == "COMPLETED"

        await eventually(completed, timeout=60, what="the run COMPLETED with the broker down")
        await asyncio.to_thread(_infra, "up")

        async def announced() -> bool:
            run = await database["runs"].find_one({"_id": job_id})
            return any(isinstance(e, JobCompleted) for e in publisher.asked) and (
                run is not None and not run.get("outbox")
            )

        # The events the outage held in the run's outbox go out once the broker is back.
        await eventually(announced, timeout=120, what="JobCompleted published after the outage")
    finally:
        await engine.close()
        await broker.stop()
        await mongo.close()
