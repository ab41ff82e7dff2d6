"""The runner, the guard and the projector as real processes answer their probes and serve
Prometheus metrics that count what they did: messages handled and dead-lettered, plans and
applies, the consumer's lag, and faststream's own middleware metrics."""

import asyncio
import re
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from provisioning_common.events import JobCompleted
from provisioning_common.kafka import build_broker, publish_envelope
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import JOB_EVENTS, ensure_topics

from tests.conftest import Infra
from tests.integration.engine.conftest import EventLog, created_event, definition, sequence
from tests.support.processes import REPO, ServiceProcess, free_port, service_argv, spawn
from tests.support.waiting import eventually, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

LOGS = REPO / "test-results" / "health-logs"
SERVICES = ("sequence-runner", "threshold-guard", "job-api-projector")


def answer(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text, 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def services(
    infra: Infra, tmp_path: Path
) -> Iterator[tuple[KafkaSettings, dict[str, tuple[ServiceProcess, int]]]]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"health-{run_id}.",
        consumer_group_suffix=f"-health-{run_id}",
    )
    asyncio.run(ensure_topics(kafka))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": f"health_{run_id}",
        "PROVISIONING_TARGET_DB": f"health_identity_{run_id}",
        "PROVISIONING_DATA_DIR": str(tmp_path),
    }
    started: dict[str, tuple[ServiceProcess, int]] = {}
    try:
        for name in SERVICES:
            port = free_port()
            process = spawn(
                name,
                service_argv(name),
                {**env, "HEALTH_PORT": str(port)},
                LOGS / f"{name}-{run_id}.log",
            )
            started[name] = (process, port)
        for name, (process, port) in started.items():

            def ready(process: ServiceProcess = process, port: int = port) -> bool:
                assert process.alive(), process.log_tail()
                try:
                    return answer(port, "/readyz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(ready, timeout=90, what=f"{name} ready on /readyz")
        yield kafka, started
    finally:
        for name, (process, _) in started.items():
            assert process.stop() == 0, f"{name}:\n{process.log_tail()}"


async def test_probes_and_metrics_of_every_consumer_process(
    services: tuple[KafkaSettings, dict[str, tuple[ServiceProcess, int]]],
) -> None:
    kafka, started = services
    for name, (_, port) in started.items():
        assert answer(port, "/livez").status_code == 200, name
        assert answer(port, "/readyz").json() == {"status": "ok"}, name
        assert answer(port, "/nowhere").status_code == 404, name

    events = EventLog(kafka)
    await events.start()
    broker = build_broker(kafka)
    await broker.start()
    try:
        job_id = str(uuid.uuid4())
        limits = {"create": {"count": 5}}
        people = sequence("people", {"type": "inline"}, collection="people", thresholds=limits)
        job = definition(people)
        inputs = {"people": [{"uid": "u1"}, {"uid": "u2"}]}
        await publish_envelope(broker, kafka.topic(JOB_EVENTS), created_event(job_id, job, inputs))
        await broker.publish(b"not json", topic=kafka.topic(JOB_EVENTS), key=b"garbage")
        await events.wait_for(job_id, JobCompleted, timeout=60)
    finally:
        await broker.stop()
        await events.stop()

    topic = kafka.topic(JOB_EVENTS)

    async def counted() -> dict[str, str] | None:
        texts = {name: answer(port, "/metrics").text for name, (_, port) in started.items()}
        done = all(
            metric(text, "provisioning_messages_dead_lettered_total", topic=topic) == 1
            for text in texts.values()
        )
        # The projector folds the job's events after the runner published them: wait for it
        # too, not only for JobCompleted on the topic.
        projector = texts[SERVICES[2]]
        folded = metric(projector, "provisioning_messages_handled_total", topic=topic) >= 5
        return texts if done and folded else None

    texts = await eventually(counted, timeout=30, what="each process counting its dead letter")
    runner, guard, projector = (texts[name] for name in SERVICES)
    for phase in ("planning", "applying"):
        labels = {"phase": phase, "outcome": "done"}
        assert metric(runner, "provisioning_sequence_work_total", **labels) == 1, phase
        assert metric(runner, "provisioning_sequence_work_seconds_count", phase=phase) == 1
    # The runner acted on JobCreated and SequenceReleased; the guard on SequencePlanned.
    assert metric(runner, "provisioning_messages_handled_total", outcome="acted") >= 2
    assert metric(guard, "provisioning_messages_handled_total", outcome="acted") == 1
    assert metric(projector, "provisioning_messages_handled_total", topic=topic) >= 5
    for text in texts.values():
        # faststream's middleware, and the lag of each assigned partition (all read: 0).
        assert metric(text, "faststream_received_messages_total") >= 5
        assert "provisioning_consumer_lag{" in text
        assert metric(text, "provisioning_consumer_lag") == 0
