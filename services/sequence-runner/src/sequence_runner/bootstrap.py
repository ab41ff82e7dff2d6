"""Composition root of the sequence runner: every client and repository, built from settings."""

import logging
from dataclasses import dataclass
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from provisioning_common.health import serve_health
from provisioning_common.kafka import build_broker
from provisioning_common.redaction import redacted_uri
from provisioning_common.topics import JOB_COMMANDS, JOB_EVENTS, ensure_topics
from pymongo import AsyncMongoClient

from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.registry import ConnectorRegistry
from sequence_runner.adapters.kafka import KafkaEventPublisher
from sequence_runner.adapters.mongo_plans import MongoPlanRepository
from sequence_runner.adapters.mongo_revert_conflicts import MongoRevertConflicts
from sequence_runner.adapters.mongo_runs import MongoRunRepository
from sequence_runner.adapters.mongo_target_claims import MongoTargetClaims
from sequence_runner.connections import load_connections
from sequence_runner.entrypoints.consumers import GROUP, subscribe_runner
from sequence_runner.handlers.engine import Engine, EngineOptions
from sequence_runner.settings import RunnerSettings

logger = logging.getLogger("sequence_runner")

# /livez, /readyz and /metrics, unless HEALTH_PORT says otherwise (0: none).
HEALTH_PORT = 8081


@dataclass(frozen=True)
class RunnerComponents:
    broker: KafkaBroker
    mongo: AsyncMongoClient[dict[str, Any]]
    runs: MongoRunRepository
    plans: MongoPlanRepository
    engine: Engine


def broker_factory(settings: RunnerSettings) -> KafkaBroker:
    return build_broker(
        settings.kafka,
        # Our JSON log lines; faststream's per-message lines only at DEBUG.
        logger=logging.getLogger("sequence_runner.broker"),
        log_level=logging.DEBUG,
    )


def build_components(settings: RunnerSettings) -> RunnerComponents:
    broker = broker_factory(settings)
    mongo = settings.mongo.client()
    database = mongo[settings.mongo.database]
    runs = MongoRunRepository(database)
    plans = MongoPlanRepository(database)
    conflicts = MongoRevertConflicts(database)
    connectors = ConnectorRegistry(
        data_dir=settings.data_dir,
        target_database=mongo[settings.target_db],
        retry=RetryPolicy(
            attempts=settings.target_retry_attempts,
            backoff_seconds=settings.target_retry_backoff_seconds,
        ),
        connections=load_connections(settings.connections_file),
    )
    engine = Engine(
        runs,
        plans,
        KafkaEventPublisher(broker, settings.kafka.topic(JOB_EVENTS)),
        connectors,
        EngineOptions(
            progress_interval_seconds=settings.progress_interval_seconds,
            apply_batch_size=settings.apply_batch_size,
            max_parallel_jobs=settings.max_parallel_jobs,
        ),
        claims=MongoTargetClaims(database),
        conflicts=conflicts,
    )
    subscribe_runner(broker, settings.kafka, engine)
    return RunnerComponents(broker=broker, mongo=mongo, runs=runs, plans=plans, engine=engine)


def app_factory(settings: RunnerSettings) -> FastStream:
    parts = build_components(settings)

    async def prepare() -> None:
        logger.info(
            "sequence-runner connecting to kafka %s (topics %s, %s; group %s), mongo %s "
            "(database %s, target repository database %s), data folder %s",
            settings.kafka.bootstrap_servers,
            settings.kafka.topic(JOB_EVENTS),
            settings.kafka.topic(JOB_COMMANDS),
            settings.kafka.group_id(GROUP),
            redacted_uri(settings.mongo.uri),
            settings.mongo.database,
            settings.target_db,
            settings.data_dir.resolve(),
        )
        await ensure_topics(settings.kafka)
        await parts.runs.ensure_indexes()
        await parts.plans.ensure_indexes()
        await MongoRevertConflicts(parts.mongo[settings.mongo.database]).ensure_indexes()

    async def stop_work() -> None:
        await parts.engine.close()

    async def close_mongo() -> None:
        await parts.mongo.close()

    app = FastStream(
        parts.broker,
        logger=logger,
        on_startup=[prepare],
        on_shutdown=[stop_work],
        after_shutdown=[close_mongo],
    )
    serve_health(app, parts.broker, "sequence-runner", HEALTH_PORT)
    return app
