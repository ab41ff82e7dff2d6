"""The engine as real processes (runner and guard) on the real broker and database, with its
own topic prefix, consumer groups and databases so no other test session reads its messages."""

import asyncio
import contextlib
import json
import secrets
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from provisioning_common.definitions import JobDefinition
from provisioning_common.envelope import Envelope
from provisioning_common.events import (
    JobCreated,
    JobCreatedData,
    JobEvent,
    parse_job_event,
)
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, ensure_topics
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.conftest import Infra
from tests.support.kafka_groups import group_has_members
from tests.support.processes import REPO, ServiceProcess, service_argv, spawn, start_service
from tests.support.waiting import eventually, wait_until

LOGS = REPO / "test-results" / "engine-logs"


class EventLog:
    """Every event on the engine's job-events topic, by job id, read by a plain consumer."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self.by_job: dict[str, list[JobEvent]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self._kafka.topic(JOB_EVENTS),
            bootstrap_servers=self._kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            try:
                event = parse_job_event(record.value)
            except ValueError:
                # Tests publish malformed messages on purpose; they are not job events.
                continue
            self.by_job[event.subject].append(event)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def events(self, job_id: str, kind: type[Envelope] | None = None) -> list[Any]:
        found = self.by_job.get(job_id, [])
        return [e for e in found if kind is None or isinstance(e, kind)]

    def types(self, job_id: str) -> list[str]:
        return [e.type.removeprefix("provisioning.") for e in self.by_job.get(job_id, [])]

    async def wait_for(
        self,
        job_id: str,
        kind: type[Envelope],
        count: int = 1,
        timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for polling, as in `eventually`
    ) -> list[Any]:
        async def enough() -> list[Any] | None:
            found = self.events(job_id, kind)
            return found if len(found) >= count else None

        return await eventually(
            enough,
            timeout=timeout,
            what=f"{count} {kind.__name__} for job {job_id}; saw {self.types(job_id)}",
        )


@dataclass
class RunnerProcess:
    """The runner as a process a test may kill -9 and start again."""

    env: dict[str, str]
    kafka: KafkaSettings
    log_path: Path
    current: ServiceProcess | None = None
    crashed: list[ServiceProcess] = field(default_factory=list)

    def start(self, timeout: float = 90.0) -> None:
        self.current = spawn(
            "sequence-runner", service_argv("sequence-runner"), self.env, self.log_path
        )
        process = self.current

        def ready() -> bool:
            if not process.alive():
                raise AssertionError(f"sequence-runner exited:\n{process.log_tail()}")
            return asyncio.run(
                group_has_members(self.kafka, self.kafka.group_id("sequence-runner"))
            )

        wait_until(ready, timeout=timeout, what=f"sequence-runner ready (log {self.log_path})")

    def start_again(self) -> None:
        """Spawn a fresh runner without waiting for its group: after a kill -9 the dead member
        still counts in the group until its session times out, so readiness cannot be told."""
        self.current = spawn(
            "sequence-runner", service_argv("sequence-runner"), self.env, self.log_path
        )

    def kill_hard(self) -> None:
        assert self.current is not None
        self.current.kill_hard()
        self.crashed.append(self.current)
        self.current = None

    def stop(self) -> None:
        if self.current is not None:
            code = self.current.stop()
            assert code == 0, f"sequence-runner exited with {code}:\n{self.current.log_tail()}"


@contextlib.contextmanager
def guarded_runner(
    kafka: KafkaSettings, env: dict[str, str], label: str, run_id: str
) -> Iterator[RunnerProcess]:
    """A threshold guard and a sequence runner as real processes on `env`, logs under LOGS with
    `label` (one rig each: engine, ldap, sql, scim); both stopped at the end."""
    LOGS.mkdir(parents=True, exist_ok=True)
    runner = RunnerProcess(env=env, kafka=kafka, log_path=LOGS / f"{label}-runner-{run_id}.log")

    def guard_ready() -> bool:
        return asyncio.run(group_has_members(kafka, kafka.group_id("threshold-guard")))

    with start_service(
        "threshold-guard",
        service_argv("threshold-guard"),
        env,
        guard_ready,
        LOGS / f"{label}-guard-{run_id}.log",
        timeout=90,
    ):
        runner.start()
        try:
            yield runner
        finally:
            runner.stop()


@dataclass
class EngineRig:
    kafka: KafkaSettings
    broker: KafkaBroker
    events: EventLog
    database: AsyncDatabase[dict[str, Any]]
    target: AsyncDatabase[dict[str, Any]]
    data_dir: Path
    runner: RunnerProcess

    async def publish_event(self, event: Envelope) -> None:
        await publish_envelope(self.broker, self.kafka.topic(JOB_EVENTS), event)

    async def publish_command(self, command: Envelope) -> None:
        await publish_envelope(self.broker, self.kafka.topic(JOB_COMMANDS), command)

    async def submit(
        self, definition: dict[str, Any], inputs: dict[str, list[dict[str, Any]]] | None = None
    ) -> str:
        """Publish a JobCreated as job-api would; returns the job id."""
        job_id = str(uuid.uuid4())
        await self.publish_event(created_event(job_id, definition, inputs))
        return job_id

    def write(self, name: str, text: str) -> str:
        path = self.data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return name

    async def records(self, collection: str) -> dict[Any, dict[str, Any]]:
        return {doc["_id"]: doc async for doc in self.target[collection].find({})}

    async def run(self, job_id: str) -> dict[str, Any]:
        document = await self.database["runs"].find_one({"_id": job_id})
        assert document is not None, f"no run for job {job_id}"
        return document


@dataclass
class ConnectorRig:
    """The runner and the guard as processes against one connector's real server, as the LDAP,
    SQL and SCIM tests use them: submit a job, send a command, read the job's run."""

    kafka: KafkaSettings
    broker: KafkaBroker
    events: EventLog
    database: AsyncDatabase[dict[str, Any]]
    runner: RunnerProcess

    async def submit(self, definition: dict[str, Any], inputs: dict[str, Any]) -> str:
        job_id = str(uuid.uuid4())
        await publish_envelope(
            self.broker, self.kafka.topic(JOB_EVENTS), created_event(job_id, definition, inputs)
        )
        return job_id

    async def command(self, command: Envelope) -> None:
        await publish_envelope(self.broker, self.kafka.topic(JOB_COMMANDS), command)

    async def run(self, job_id: str) -> dict[str, Any]:
        document = await self.database["runs"].find_one({"_id": job_id})
        assert document is not None
        return document


def created_event(
    job_id: str, definition: dict[str, Any], inputs: dict[str, list[dict[str, Any]]] | None
) -> JobCreated:
    return JobCreated(
        source="/provisioning/job-api",
        subject=job_id,
        data=JobCreatedData(
            request_id=f"req-{job_id}",
            definition=JobDefinition.model_validate(definition),
            inputs=inputs or {},
            origin="api",
            requested_by="engine-tests",
        ),
    )


@pytest.fixture(scope="session")
def engine_processes(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[KafkaSettings, dict[str, str], RunnerProcess]]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"engine-{run_id}.",
        consumer_group_suffix=f"-engine-{run_id}",
    )
    asyncio.run(ensure_topics(kafka))
    data_dir = tmp_path_factory.mktemp("engine-data")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": f"engine_{run_id}",
        "PROVISIONING_TARGET_DB": f"engine_identity_{run_id}",
        "PROVISIONING_DATA_DIR": str(data_dir),
        "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "0.2",
        "PROVISIONING_APPLY_BATCH_SIZE": "200",
        "PROVISIONING_TARGET_RETRY_BACKOFF_SECONDS": "0.1",
    }
    with guarded_runner(kafka, env, "engine", run_id) as runner:
        yield kafka, env, runner


@pytest.fixture(scope="session")
async def engine(
    engine_processes: tuple[KafkaSettings, dict[str, str], RunnerProcess],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[EngineRig]:
    kafka, env, runner = engine_processes
    broker = build_broker(kafka)
    await broker.start()
    events = EventLog(kafka)
    await events.start()
    try:
        yield EngineRig(
            kafka=kafka,
            broker=broker,
            events=events,
            database=mongo_client[env["MONGO_DATABASE"]],
            target=mongo_client[env["PROVISIONING_TARGET_DB"]],
            data_dir=Path(env["PROVISIONING_DATA_DIR"]),
            runner=runner,
        )
    finally:
        await events.stop()
        await broker.stop()


def sequence(
    name: str,
    source: dict[str, Any],
    *,
    collection: str,
    thresholds: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "source": source,
        "target": {"type": "mongo", "collection": collection},
        "key": extra.pop("key", "uid"),
        "thresholds": thresholds or {"delete": {"count": 1000}},
        **extra,
    }


def definition(*sequences: dict[str, Any]) -> dict[str, Any]:
    return {"id": "engine-test", "name": "Engine test", "sequences": list(sequences)}


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def jsonl_text(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)
