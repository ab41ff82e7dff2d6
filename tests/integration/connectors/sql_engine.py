"""The runner and the guard as processes, with a connections file naming the test PostgreSQL
(`app-db`, its password by ${TEST_PG_PASSWORD}) and the same server with a wrong password
(`wrong-password`): the SQL sequences through the whole system."""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from provisioning_common.kafka import build_broker
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.integration.connectors.sql_rig import Postgres
from tests.integration.engine.conftest import (
    ConnectorRig,
    EventLog,
    RunnerProcess,
    guarded_runner,
)

WRONG_PG_PASSWORD = "wrong-Pg-pa55word-never-logged"


@dataclass
class SqlEngineRig(ConnectorRig):
    """The rig with a connections file naming the test PostgreSQL (`app-db`) and the same
    server with a wrong password (`wrong-password`)."""


@pytest.fixture(scope="session")
def sql_engine_processes(
    infra: Infra, postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[KafkaSettings, dict[str, str], RunnerProcess]]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"sql-{run_id}.",
        consumer_group_suffix=f"-sql-{run_id}",
    )
    asyncio.run(ensure_topics(kafka))
    folder = tmp_path_factory.mktemp("sql-engine")
    connections = folder / "connections.json"
    connections.write_text(
        json.dumps(
            {
                "app-db": {"type": "sql", "url": postgres.url, "password": "${TEST_PG_PASSWORD}"},
                "wrong-password": {
                    "type": "sql",
                    "url": postgres.url,
                    "password": "${TEST_WRONG_PG_PASSWORD}",
                },
            }
        ),
        encoding="utf-8",
    )
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": f"sql_{run_id}",
        "PROVISIONING_DATA_DIR": str(folder),
        "PROVISIONING_CONNECTIONS_FILE": str(connections),
        "TEST_PG_PASSWORD": postgres.password,
        "TEST_WRONG_PG_PASSWORD": WRONG_PG_PASSWORD,
        "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "0.2",
        "PROVISIONING_TARGET_RETRY_ATTEMPTS": "2",
        "PROVISIONING_TARGET_RETRY_BACKOFF_SECONDS": "0.1",
        "PROVISIONING_LOG_LEVEL": "INFO",
    }
    with guarded_runner(kafka, env, "sql", run_id) as runner:
        yield kafka, env, runner


@pytest.fixture(scope="session")
async def sql_engine(
    sql_engine_processes: tuple[KafkaSettings, dict[str, str], RunnerProcess],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[SqlEngineRig]:
    kafka, env, runner = sql_engine_processes
    broker = build_broker(kafka)
    await broker.start()
    events = EventLog(kafka)
    await events.start()
    try:
        yield SqlEngineRig(
            kafka=kafka,
            broker=broker,
            events=events,
            database=mongo_client[env["MONGO_DATABASE"]],
            runner=runner,
        )
    finally:
        await events.stop()
        await broker.stop()
