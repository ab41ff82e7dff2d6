"""The runner and the guard as processes, with a connections file naming tenants of the test
scim2-server: `app-1` … `app-3` (one per test that writes), and `wrong-token` (the server
with a token it does not accept)."""

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
from tests.integration.engine.conftest import (
    ConnectorRig,
    EventLog,
    RunnerProcess,
    guarded_runner,
)
from tests.support.scim_server import ScimApp, ScimServer

WRONG_TOKEN = "wrong-Sc1m-token-never-logged"
APPS = ("app-1", "app-2", "app-3")


@dataclass
class ScimEngineRig(ConnectorRig):
    apps: dict[str, ScimApp]  # connection name -> its tenant, for plain GETs


@pytest.fixture(scope="session")
def scim_engine_processes(
    infra: Infra, scim: ScimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[KafkaSettings, dict[str, str], RunnerProcess, dict[str, ScimApp]]]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"scim-{run_id}.",
        consumer_group_suffix=f"-scim-{run_id}",
    )
    asyncio.run(ensure_topics(kafka))
    folder = tmp_path_factory.mktemp("scim-engine")
    apps = {name: scim.tenant(f"{name}-{run_id}") for name in APPS}
    connections: dict[str, Any] = {
        name: {"type": "scim", "base_url": app.base_url, "token": "${TEST_SCIM_TOKEN}"}
        for name, app in apps.items()
    }
    connections["wrong-token"] = {
        "type": "scim",
        "base_url": apps["app-1"].base_url,
        "token": "${TEST_WRONG_SCIM_TOKEN}",
    }
    connections_file = folder / "connections.json"
    connections_file.write_text(json.dumps(connections), encoding="utf-8")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": f"scim_{run_id}",
        "PROVISIONING_DATA_DIR": str(folder),
        "PROVISIONING_CONNECTIONS_FILE": str(connections_file),
        "TEST_SCIM_TOKEN": scim.token,
        "TEST_WRONG_SCIM_TOKEN": WRONG_TOKEN,
        "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "0.2",
        "PROVISIONING_TARGET_RETRY_BACKOFF_SECONDS": "0.1",
        "PROVISIONING_LOG_LEVEL": "INFO",
    }
    with guarded_runner(kafka, env, "scim", run_id) as runner:
        yield kafka, env, runner, apps


@pytest.fixture(scope="session")
async def scim_engine(
    scim_engine_processes: tuple[KafkaSettings, dict[str, str], RunnerProcess, dict[str, ScimApp]],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[ScimEngineRig]:
    kafka, env, runner, apps = scim_engine_processes
    broker = build_broker(kafka)
    await broker.start()
    events = EventLog(kafka)
    await events.start()
    try:
        yield ScimEngineRig(
            kafka=kafka,
            broker=broker,
            events=events,
            database=mongo_client[env["MONGO_DATABASE"]],
            runner=runner,
            apps=apps,
        )
    finally:
        await events.stop()
        await broker.stop()
