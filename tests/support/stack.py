"""The whole system as real processes a test can kill -9 and start again, with the probes a
fault test needs: the API as a client sees it, the runner's runs and the target as MongoDB
holds them, the topics as Kafka holds them."""

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from provisioning_common.events import JobEvent, parse_job_event
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, JOB_REQUESTS, ensure_topics
from pymongo import MongoClient

from tests.support.kafka_groups import group_has_members
from tests.support.processes import REPO, ServiceProcess, free_port, service_argv, spawn
from tests.support.waiting import wait_until

# Where a job instance stops and waits for nobody but an operator (or nothing at all).
SETTLED = frozenset({"COMPLETED", "FAILED", "CANCELED", "THRESHOLD"})
# Each consumer group and the topics it reads: a partition it has not read to the end, once
# everything settled, is a stalled partition.
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "job-api-intake": (JOB_REQUESTS,),
    "job-api-projector": (JOB_EVENTS,),
    "sequence-runner": (JOB_EVENTS, JOB_COMMANDS),
    "threshold-guard": (JOB_EVENTS,),
}
# Started in this order: the consumers first, the API (which answers /healthz) last.
SERVICE_NAMES = ("threshold-guard", "sequence-runner", "job-api-projector", "job-api")


@dataclass
class Service:
    """One service of the stack: started, killed -9 like a crash, started again."""

    name: str
    env: dict[str, str]
    log_path: Path
    ready: Callable[[], bool]
    current: ServiceProcess | None = None
    crashed: list[ServiceProcess] = field(default_factory=list)

    def start(self, *, wait: bool = True, timeout: float = 90.0) -> None:
        self.current = spawn(self.name, service_argv(self.name), self.env, self.log_path)
        process = self.current

        def up() -> bool:
            if not process.alive():
                raise AssertionError(f"{self.name} exited:\n{process.log_tail()}")
            return self.ready()

        # After a kill -9 the dead member stays in its consumer group until its session times
        # out, so a restarted consumer's readiness cannot be told from the group: not waited.
        if wait:
            wait_until(up, timeout=timeout, what=f"{self.name} ready (log {self.log_path})")

    def suspend(self) -> None:
        assert self.current is not None, f"{self.name} is not running"
        self.current.suspend()

    def kill_hard(self) -> None:
        assert self.current is not None, f"{self.name} is not running"
        self.current.kill_hard()
        self.crashed.append(self.current)
        self.current = None

    def stop(self) -> int | None:
        if self.current is None:
            return None
        code = self.current.stop()
        self.current = None
        return code


@dataclass
class Stack:
    """job-api, its projector, the runner and the guard on one broker and one database, with
    their own topics, groups and databases."""

    kafka: KafkaSettings
    mongo_uri: str
    env: dict[str, str]
    api_url: str
    admin_key: str
    data_dir: Path
    services: dict[str, Service]
    mongo: MongoClient[dict[str, Any]]
    http: httpx.Client

    @classmethod
    def create(
        cls,
        kafka_bootstrap: str,
        mongo_uri: str,
        data_dir: Path,
        logs: Path,
        extra_env: dict[str, str] | None = None,
        api_port: int | None = None,
    ) -> "Stack":
        run_id = secrets.token_hex(4)
        kafka = KafkaSettings(
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=f"faults-{run_id}.",
            consumer_group_suffix=f".faults-{run_id}",
        )
        asyncio.run(ensure_topics(kafka))
        port = api_port or free_port()
        admin_key = f"faults-admin-{secrets.token_urlsafe(16)}"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
            "MONGO_URI": mongo_uri,
            "MONGO_DATABASE": f"faults_{run_id}",
            "PROVISIONING_TARGET_DB": f"faults_identity_{run_id}",
            "PROVISIONING_DATA_DIR": str(data_dir),
            "PROVISIONING_ADMIN_API_KEY": admin_key,
            "JOB_API_HOST": "127.0.0.1",
            "JOB_API_PORT": str(port),
            "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "0.5",
            "PROVISIONING_TARGET_RETRY_BACKOFF_SECONDS": "0.2",
            **(extra_env or {}),
        }
        api_url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{api_url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        def group_ready(service: str) -> Callable[[], bool]:
            return lambda: asyncio.run(group_has_members(kafka, kafka.group_id(service)))

        services = {
            name: Service(
                name=name,
                env=env,
                log_path=logs / f"{name}-{run_id}.log",
                ready=healthy if name == "job-api" else group_ready(name),
            )
            for name in SERVICE_NAMES
        }
        return cls(
            kafka=kafka,
            mongo_uri=mongo_uri,
            env=env,
            api_url=api_url,
            admin_key=admin_key,
            data_dir=data_dir,
            services=services,
            mongo=MongoClient(mongo_uri, tz_aware=True),
            http=httpx.Client(
                base_url=f"{api_url}/api/v1",
                headers={"Authorization": f"Bearer {admin_key}"},
                timeout=30,
            ),
        )

    def start(self, timeout: float = 120.0) -> None:
        """Start every service at once (the machine is small: one by one costs their sum),
        then wait until each is ready."""
        for service in self.services.values():
            service.start(wait=False)
        for service in self.services.values():
            process = service.current
            assert process is not None

            def up(service: Service = service, process: ServiceProcess = process) -> bool:
                if not process.alive():
                    raise AssertionError(f"{service.name} exited:\n{process.log_tail()}")
                return service.ready()

            wait_until(up, timeout=timeout, what=f"{service.name} ready ({service.log_path})")

    def stop(self) -> dict[str, int | None]:
        codes = {name: self.services[name].stop() for name in reversed(SERVICE_NAMES)}
        self.http.close()
        self.mongo.close()
        for service in self.services.values():
            trim_log(service.log_path)
        return codes

    # ---- what an API client does ----------------------------------------------------------

    def define(self, definition: dict[str, Any]) -> None:
        answer = self.http.post("/job-definitions", json=definition)
        assert answer.status_code == 201, answer.text

    def submit(
        self,
        definition_id: str,
        inputs: dict[str, list[dict[str, Any]]] | None = None,
        request_id: str | None = None,
    ) -> str:
        """POST /jobs (with a fresh request id unless given); returns the accepted job's id."""
        answer = self.http.post(
            "/jobs",
            json={
                "request_id": request_id or f"faults-{uuid.uuid4().hex}",
                "definition_id": definition_id,
                "inputs": inputs or {},
            },
        )
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any] | None:
        answer = self.http.get(f"/jobs/{job_id}")
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def decide(self, job_id: str, command: str) -> None:
        """An operator's command, e.g. `threshold/cancel` or `restart`, answered 202."""
        answer = self.http.post(f"/jobs/{job_id}/{command}")
        assert answer.status_code == 202, answer.text

    def wait_settled(self, job_ids: list[str], timeout: float = 120.0) -> dict[str, str]:
        """Wait until the runner and the read model agree every job has settled; returns the
        statuses the API shows (a job that never settles fails the wait, naming it)."""
        statuses: dict[str, str] = {}

        def settled() -> bool:
            for job_id in job_ids:
                if statuses.get(job_id) in SETTLED:
                    continue
                run = self.run(job_id)
                job = self.job(job_id)
                shown = job["status"] if job else "MISSING"
                if run is not None and run["status"] == shown and shown in SETTLED:
                    statuses[job_id] = shown
            return len(statuses) == len(job_ids)

        try:
            wait_until(settled, timeout=timeout, interval=0.5, what="every job to settle")
        except AssertionError as error:
            stuck = {j: self.status_pair(j) for j in job_ids if j not in statuses}
            raise AssertionError(f"{error}; not settled (runner, API): {stuck}") from None
        return statuses

    def status_pair(self, job_id: str) -> tuple[str | None, str | None]:
        run, job = self.run(job_id), self.job(job_id)
        return (run["status"] if run else None, job["status"] if job else None)

    # ---- MongoDB, read directly -----------------------------------------------------------

    @property
    def database(self) -> Any:
        return self.mongo[self.env["MONGO_DATABASE"]]

    @property
    def target(self) -> Any:
        return self.mongo[self.env["PROVISIONING_TARGET_DB"]]

    def run(self, job_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.database["runs"].find_one({"_id": job_id})
        return found

    def count(self, collection: str) -> int:
        found: int = self.target[collection].count_documents({})
        return found

    def write_source(self, relative: str, content: str | bytes) -> str:
        path = self.data_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return relative

    # ---- Kafka, read directly -------------------------------------------------------------

    def events(self) -> list[JobEvent]:
        """Every well-formed event on job-events, in the order of each partition."""
        return [
            parse_job_event(raw)
            for raw in asyncio.run(read_topic(self.kafka, self.kafka.topic(JOB_EVENTS)))
            if _parses(raw)
        ]

    def dead_letters(self, topic: str) -> list[bytes]:
        return asyncio.run(read_topic(self.kafka, f"{self.kafka.topic(topic)}.dlq"))

    def publish(self, topic: str, value: bytes, key: str) -> None:
        """One raw message on one of the system's topics, as any Kafka client could send."""
        asyncio.run(publish_raw(self.kafka, self.kafka.topic(topic), value, key))

    def stalled_partitions(self, timeout: float = 30.0) -> dict[str, list[str]]:
        """Partitions some group has not consumed to the end within `timeout`: each group's
        committed offset must reach the end offset of every partition it reads."""
        behind: dict[str, list[str]] = {}

        def caught_up() -> bool:
            behind.clear()
            behind.update(asyncio.run(lagging_partitions(self.kafka)))
            return not behind

        with contextlib.suppress(AssertionError):
            wait_until(caught_up, timeout=timeout, interval=1.0, what="every group caught up")
        return dict(behind)


# A consumer retrying a poison message without a pause logs a traceback per try (issue 8,
# defect 3: 79 MB a minute); what is kept of such a log is its end.
LOG_LIMIT = 50_000_000
LOG_KEPT = 2_000_000


def trim_log(path: Path) -> None:
    """Keep the last LOG_KEPT bytes of a log that grew past LOG_LIMIT, saying so at its top."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size <= LOG_LIMIT:
        return
    with path.open("rb") as log:
        log.seek(size - LOG_KEPT)
        tail = log.read()
    path.write_bytes(
        f"[trimmed by the tests: {size:,} bytes, the last {LOG_KEPT:,} kept]\n".encode() + tail
    )


def _parses(raw: bytes) -> bool:
    try:
        parse_job_event(raw)
    except ValueError:
        return False
    return True


async def publish_raw(kafka: KafkaSettings, topic: str, value: bytes, key: str) -> None:
    producer = AIOKafkaProducer(**kafka.to_aiokafka_params(), max_request_size=2_000_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def read_topic(kafka: KafkaSettings, topic: str) -> list[bytes]:
    """Every message of `topic` from its first offset to its end now."""
    consumer = AIOKafkaConsumer(**kafka.to_aiokafka_params(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        values: list[bytes] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(timeout_ms=1000)
            values.extend(r.value for records in batches.values() for r in records)
        return values
    finally:
        await consumer.stop()


async def lagging_partitions(kafka: KafkaSettings) -> dict[str, list[str]]:
    """The partitions each group has not committed to their end offset, by group."""
    admin = AIOKafkaAdminClient(**kafka.to_aiokafka_params())
    consumer = AIOKafkaConsumer(**kafka.to_aiokafka_params(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        behind: dict[str, list[str]] = {}
        for service, topics in SUBSCRIPTIONS.items():
            group = kafka.group_id(service)
            committed: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(group)
            for name in topics:
                partitions = await _partitions(consumer, kafka.topic(name))
                ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
                for tp, end in ends.items():
                    done = committed.get(tp)
                    if (done.offset if done is not None else 0) < end:
                        behind.setdefault(group, []).append(f"{tp.topic}[{tp.partition}]")
        return behind
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        # A consumer knows the partitions of the topics it subscribed to; ask for the rest.
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    assert found, f"topic {topic} has no partitions"
    return [TopicPartition(topic, p) for p in sorted(found)]


__all__ = ["REPO", "SETTLED", "Service", "Stack"]
