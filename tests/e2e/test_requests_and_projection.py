"""Job requests from plain Kafka clients become projected job instances, once per request id.

Everything on the wire here is written and read with plain aiokafka and raw JSON, as an
upstream system or a downstream subscriber would; the project's code only runs in the services.
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from tests.e2e.conftest import System
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.mongo]

REQUESTS = "provisioning.job-requests"
EVENTS = "provisioning.job-events"


class Tap:
    """A plain consumer that keeps every JSON message of one topic, with its headers."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.messages: list[tuple[dict[str, Any] | None, bytes, dict[str, bytes]]] = []
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"e2e-tap-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Tap":
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        async for record in self._consumer:
            try:
                body = json.loads(record.value)
            except ValueError:
                body = None
            self.messages.append((body, record.value, dict(record.headers)))

    def events(self, *, subject: str | None = None, request_id: str | None = None) -> list[Any]:
        found = []
        for body, _, _ in self.messages:
            if not isinstance(body, dict):
                continue
            if subject is not None and body.get("subject") != subject:
                continue
            data = body.get("data")
            if request_id is not None and (
                not isinstance(data, dict) or data.get("request_id") != request_id
            ):
                continue
            found.append(body)
        return found


@pytest.fixture(scope="module")
async def events_tap(system: System) -> AsyncIterator[Tap]:
    async with Tap(system.kafka_bootstrap, system.topic(EVENTS)) as tap:
        yield tap


@pytest.fixture(scope="module")
async def producer(system: System) -> AsyncIterator[AIOKafkaProducer]:
    plain = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap, acks="all")
    await plain.start()
    yield plain
    await plain.stop()


@pytest.fixture(scope="module")
async def mongo(system: System) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.mongo_uri, tz_aware=True)
    yield client
    await client.close()


async def create_definition(system: System, definition_id: str, collection: str) -> None:
    """Two sequences: records sent with the request, then a CSV file of the data folder."""
    (system.data_dir / f"{definition_id}.csv").write_text(
        "employee_id,email\nE1,e1@example.org\nE2,e2@example.org\nE3,e3@example.org\n"
    )
    body = {
        "id": definition_id,
        "name": f"E2E {definition_id}",
        "sequences": [
            {
                "name": "contractors",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": collection},
                "key": "uid",
                "thresholds": {"create": {"count": 100}, "delete": {"count": 1}},
            },
            {
                "name": "employees",
                "source": {"type": "csv", "path": f"{definition_id}.csv"},
                "target": {"type": "mongo", "collection": collection},
                "key": "uid",
                "mapping": {"uid": "employee_id", "mail": "email"},
                "thresholds": {"create": {"count": 100}},
            },
        ],
    }
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.auth()) as api:
        answer = await api.post("/api/v1/job-definitions", json=body)
    assert answer.status_code == 201, answer.text


async def publish_raw(producer: AIOKafkaProducer, system: System, key: str, body: bytes) -> None:
    await producer.send_and_wait(system.topic(REQUESTS), body, key=key.encode())


def request_body(request_id: str, definition_id: str, **extra: Any) -> bytes:
    body = {
        "request_id": request_id,
        "definition_id": definition_id,
        "inputs": {"contractors": [{"uid": "C1", "mail": "c1@example.org"}, {"uid": "C2"}]},
        "requested_by": "hr-feed",
        **extra,
    }
    return json.dumps(body).encode()


def as_time(value: Any) -> datetime:
    assert isinstance(value, datetime), value
    return value


async def test_a_plain_kafka_request_becomes_a_completed_job_instance(
    system: System,
    events_tap: Tap,
    producer: AIOKafkaProducer,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    tag = uuid.uuid4().hex[:8]
    definition_id, collection, request_id = f"e2e-{tag}", f"people_{tag}", f"hr-feed-{tag}"
    await create_definition(system, definition_id, collection)

    await publish_raw(producer, system, request_id, request_body(request_id, definition_id))

    async def job_created() -> dict[str, Any] | None:
        found = events_tap.events(request_id=request_id)
        return found[0] if found else None

    first = await eventually(job_created, timeout=60, what="JobCreated read by a plain consumer")
    assert first["type"] == "provisioning.JobCreated", first
    assert first["data"]["origin"] == "kafka"
    assert first["data"]["definition"]["id"] == definition_id
    job_id = first["subject"]

    async def finished() -> list[Any] | None:
        types = [e["type"] for e in events_tap.events(subject=job_id)]
        done = {"provisioning.JobCompleted", "provisioning.JobFailed"} & set(types)
        return types if done else None

    types = await eventually(finished, timeout=120, what=f"job {job_id} to finish")
    assert types[0] == "provisioning.JobCreated"
    assert types[-1] == "provisioning.JobCompleted", types
    for expected in (
        "provisioning.JobStarted",
        "provisioning.SequenceStarted",
        "provisioning.SequencePlanned",
        "provisioning.SequenceReleased",
        "provisioning.SequenceCompleted",
    ):
        assert expected in types
    assert types.count("provisioning.SequenceCompleted") == 2

    instances = mongo[system.mongo_database]["job_instances"]

    async def projected() -> dict[str, Any] | None:
        doc = await instances.find_one({"_id": job_id})
        return doc if doc is not None and doc["status"] == "COMPLETED" else None

    doc = await eventually(projected, timeout=60, what="the job instance to be COMPLETED")
    assert (doc["origin"], doc["requested_by"], doc["request_id"]) == (
        "kafka",
        "hr-feed",
        request_id,
    )
    assert (doc["definition_id"], doc["definition_version"]) == (definition_id, 1)
    created, started, ended = (as_time(doc[k]) for k in ("created_at", "started_at", "ended_at"))
    assert created <= started <= ended
    contractors, employees = doc["sequences"]
    assert (contractors["name"], employees["name"]) == ("contractors", "employees")
    for sequence in (contractors, employees):
        assert sequence["status"] == "COMPLETED"
        assert started <= as_time(sequence["started_at"]) <= as_time(sequence["ended_at"]) <= ended
    assert as_time(contractors["ended_at"]) <= as_time(employees["started_at"])
    assert contractors["planned"] == {
        "create": 2,
        "update": 0,
        "delete": 0,
        "unchanged": 0,
        "target_size": 0,
        "disable": 0,
    }
    assert contractors["applied"] == {"create": 2, "update": 0, "delete": 0, "disable": 0}
    assert employees["planned"]["create"] == 3
    assert employees["planned"]["target_size"] == 2
    assert employees["applied"] == {"create": 3, "update": 0, "delete": 0, "disable": 0}
    # The projection is the fold of the topic: its position is that of the last event.
    assert doc["projection"] is not None

    target = mongo[system.target_db][collection]
    assert await target.count_documents({}) == 5

    async with httpx.AsyncClient(base_url=system.api_url, headers=system.auth()) as api:
        answer = await api.get(f"/api/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "COMPLETED"


async def test_the_same_request_id_twice_is_one_job_instance(
    system: System,
    events_tap: Tap,
    producer: AIOKafkaProducer,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    tag = uuid.uuid4().hex[:8]
    definition_id, collection, request_id = f"e2e-dup-{tag}", f"dup_{tag}", f"dup-{tag}"
    await create_definition(system, definition_id, collection)

    body = request_body(request_id, definition_id)
    await publish_raw(producer, system, request_id, body)
    await publish_raw(producer, system, request_id, body)

    instances = mongo[system.mongo_database]["job_instances"]

    async def completed() -> dict[str, Any] | None:
        doc = await instances.find_one({"request_id": request_id})
        return doc if doc is not None and doc["status"] == "COMPLETED" else None

    doc = await eventually(completed, timeout=120, what="the requested job to complete")
    job_id = doc["_id"]

    # The API is a third way to send it: the answer names the same job.
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.auth()) as api:
        answer = await api.post(
            "/api/v1/jobs", json=json.loads(request_body(request_id, definition_id))
        )
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == job_id

    # A marker on the same partition, after the duplicate: once it is taken in, so was the
    # duplicate, and whatever the duplicate caused is on job-events before the marker's answer.
    marker = f"marker-{tag}"
    await publish_raw(producer, system, request_id, request_body(marker, f"nope-{tag}"))

    async def marker_answered() -> list[Any] | None:
        return events_tap.events(request_id=marker) or None

    await eventually(marker_answered, timeout=60, what="the marker's JobRejected")
    assert await instances.count_documents({"request_id": request_id}) == 1
    types = [e["type"] for e in events_tap.events(subject=job_id)]
    assert types.count("provisioning.JobCreated") == 1, types
    assert types.count("provisioning.JobStarted") == 1, types
    assert types.count("provisioning.JobCompleted") == 1, types
    assert await mongo[system.target_db][collection].count_documents({}) == 5


async def test_an_unknown_definition_or_a_malformed_request_is_rejected_with_the_reason(
    system: System,
    events_tap: Tap,
    producer: AIOKafkaProducer,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    tag = uuid.uuid4().hex[:8]
    request_id = f"unknown-{tag}"
    await publish_raw(producer, system, request_id, request_body(request_id, f"no-such-{tag}"))
    malformed = json.dumps({"definition_id": f"def-{tag}", "requested_by": f"feed-{tag}"})
    async with Tap(system.kafka_bootstrap, system.topic(REQUESTS) + ".dlq") as dead_letters:
        await publish_raw(producer, system, f"bad-{tag}", malformed.encode())

        async def rejected() -> list[Any] | None:
            return events_tap.events(request_id=request_id) or None

        (event,) = await eventually(rejected, timeout=60, what="the JobRejected event")
        assert event["type"] == "provisioning.JobRejected"
        assert event["data"]["reason"] == f"definition_id: unknown job definition 'no-such-{tag}'"
        assert (event["data"]["origin"], event["data"]["requested_by"]) == ("kafka", "hr-feed")

        async def malformed_rejected() -> list[Any] | None:
            return [
                e
                for e in events_tap.events()
                if e["type"] == "provisioning.JobRejected"
                and e["data"].get("requested_by") == f"feed-{tag}"
            ] or None

        (bad,) = await eventually(malformed_rejected, timeout=60, what="the malformed rejection")
        assert bad["data"]["reason"] == "request_id: field required"
        assert bad["data"]["definition_id"] == f"def-{tag}"

        async def kept() -> list[Any] | None:
            return [
                (raw, headers)
                for _, raw, headers in dead_letters.messages
                if raw == malformed.encode()
            ] or None

        ((_, headers),) = await eventually(kept, timeout=60, what="the request's dead letter")
        assert headers["dlq_reason"] == b"request_id: field required"

    # Neither became a job; operators find both, and why, in job_rejections.
    db = mongo[system.mongo_database]
    assert await db["job_instances"].count_documents({"request_id": request_id}) == 0

    async def recorded() -> list[Any] | None:
        found = [
            r
            async for r in db["job_rejections"].find(
                {"$or": [{"request_id": request_id}, {"requested_by": f"feed-{tag}"}]}
            )
        ]
        return found if len(found) == 2 else None

    records = await eventually(recorded, timeout=60, what="the rejections in job_rejections")
    reasons = sorted(r["reason"] for r in records)
    assert reasons == [
        f"definition_id: unknown job definition 'no-such-{tag}'",
        "request_id: field required",
    ]
