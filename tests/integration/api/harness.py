"""A real job-api app (lifespan run) on the real broker and database, with a key per role."""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from job_api.domain.job_instance import JobInstance, SequenceInstance
from job_api.entrypoints.main import app_factory
from job_api.settings import JobApiSettings
from provisioning_common.settings import KafkaSettings, MongoSettings
from provisioning_common.statuses import JobStatus
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.conftest import Infra
from tests.support.waiting import eventually

ROLES = ("viewer", "operator", "admin")
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass
class ApiHarness:
    app: FastAPI
    client: httpx.AsyncClient
    settings: JobApiSettings
    db: AsyncDatabase[dict[str, Any]]
    admin_key: str
    keys: dict[str, str] = field(default_factory=dict)

    def new_client(self) -> httpx.AsyncClient:
        """Another client of the same app, with its own cookie jar (another browser)."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://job-api.test"
        )

    def auth(self, who: str | None) -> dict[str, str]:
        """Headers of a role ("viewer", "operator", "admin"), a bad key ("bad"), or none."""
        if who is None or who == "none":
            return {}
        if who == "bad":
            return {"Authorization": "Bearer pj_not-a-key-anyone-was-given"}
        return {"Authorization": f"Bearer {self.keys[who]}"}

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka


def harness_settings(infra: Infra, name: str, **overrides: Any) -> JobApiSettings:
    return JobApiSettings(
        kafka=KafkaSettings(
            bootstrap_servers=infra.kafka_bootstrap,
            topic_prefix=f"{name}.",
            consumer_group_suffix=f".{name}",
        ),
        mongo=MongoSettings(uri=infra.mongo_uri, database=name),
        admin_api_key=f"admin-{uuid.uuid4().hex}",
        **overrides,
    )


@asynccontextmanager
async def running_api(settings: JobApiSettings) -> AsyncIterator[ApiHarness]:
    app = app_factory(settings)
    assert settings.admin_api_key is not None
    admin_key = settings.admin_api_key.get_secret_value()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://job-api.test") as client:
            harness = ApiHarness(
                app=app,
                client=client,
                settings=settings,
                db=app.state.services.db,
                admin_key=admin_key,
                keys={"admin": admin_key},
            )
            for role in ("viewer", "operator"):
                created = await client.post(
                    "/api/v1/api-keys",
                    json={"name": f"{role}-1", "role": role},
                    headers=harness.auth("admin"),
                )
                assert created.status_code == 201, created.text
                harness.keys[role] = created.json()["key"]
            yield harness
    client_: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.uri)
    try:
        await client_.drop_database(settings.mongo.database)
    finally:
        await client_.close()


def job_doc(
    *,
    status: str = "COMPLETED",
    created_at: datetime = T0,
    definition_id: str = "hr-import",
    archived: bool = False,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    sequences: list[dict[str, Any]] | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """A job instance document as the projector writes it (the read model the API queries)."""
    job_id = job_id or str(uuid.uuid4())
    finished = status in ("COMPLETED", "FAILED", "CANCELED")
    started = (
        started_at
        if started_at is not None
        else (None if status == "QUEUED" else created_at + timedelta(seconds=1))
    )
    ended = (
        ended_at
        if ended_at is not None
        else (created_at + timedelta(minutes=1) if finished else None)
    )
    if sequences is None:
        sequences = [sequence_doc(0, "employees", "COMPLETED" if finished else "PENDING")]
    return JobInstance(
        mongo_id=job_id,
        id=job_id,
        request_id=f"req-{job_id}",
        definition_id=definition_id,
        definition_name="HR import",
        definition_version=1,
        status=JobStatus(status),
        archived=archived,
        origin="api",
        requested_by="tests",
        created_at=created_at,
        started_at=started,
        ended_at=ended,
        updated_at=created_at,
        attempt=0 if status == "QUEUED" else 1,
        sequences=[SequenceInstance.model_validate(s) for s in sequences],
    ).to_document()


def sequence_doc(index: int, name: str, status: str, **fields: Any) -> dict[str, Any]:
    """A sequence instance of the read model's own shape, at `status`, as the projector makes."""
    pending = SequenceInstance.pending(index, name)
    return SequenceInstance.model_validate(
        {**pending.model_dump(), "status": status, "attempt": 1, **fields}
    ).model_dump()


def threshold_sequence(index: int = 0, plan_id: str | None = "plan-1") -> dict[str, Any]:
    return sequence_doc(
        index,
        "employees",
        "THRESHOLD",
        started_at=T0,
        plan_id=plan_id,
        planned={"create": 0, "update": 1, "delete": 12, "unchanged": 80, "target_size": 93},
        threshold={
            "action": "delete",
            "limit": "count",
            "limit_value": 10,
            "actual": 12,
            "limit_records": None,
        },
    )


async def insert_jobs(harness: ApiHarness, *docs: dict[str, Any]) -> list[str]:
    await harness.db["job_instances"].insert_many(list(docs))
    return [d["_id"] for d in docs]


async def messages_about(
    kafka: KafkaSettings,
    topic: str,
    job_id: str,
    *,
    until: Callable[[list[dict[str, Any]]], bool],
    within: float = 30.0,
) -> list[dict[str, Any]]:
    """The JSON messages keyed by `job_id` on `topic`, read from the start by a plain consumer."""
    consumer = AIOKafkaConsumer(**kafka.to_aiokafka_params(), enable_auto_commit=False)
    await consumer.start()
    try:
        # The harness's topics are fresh, created by the app with the configured partition count.
        assigned = [TopicPartition(topic, p) for p in range(kafka.topic_partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[dict[str, Any]] = []

        async def read() -> list[dict[str, Any]] | None:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key == job_id.encode() and record.value is not None:
                        found.append(json.loads(record.value))
            return found if until(found) else None

        return await eventually(read, timeout=within, interval=0.05, what=f"messages on {topic}")
    finally:
        await consumer.stop()


def definition_body(definition_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid job definition with one inline sequence guarded by a delete threshold."""
    body: dict[str, Any] = {
        "id": definition_id,
        "name": "HR import",
        "sequences": [
            {
                "name": "employees",
                "source": {"type": "inline"},
                "target": {"type": "mongo", "collection": "identities"},
                "key": "uid",
                "delete_missing": True,
                "thresholds": {"delete": {"count": 10}},
            }
        ],
    }
    body.update(overrides)
    return body


def job_request(definition_id: str, request_id: str | None = None) -> dict[str, Any]:
    return {
        "request_id": request_id or f"req-{uuid.uuid4().hex}",
        "definition_id": definition_id,
        "inputs": {"employees": [{"uid": "u1", "mail": "u1@example.org"}]},
    }
