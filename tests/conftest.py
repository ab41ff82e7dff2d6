"""Session fixtures: a real Kafka broker and MongoDB server for every test tier that needs them.

Where they come from, in order: KAFKA_BOOTSTRAP_SERVERS / MONGO_URI when set; testcontainers
when a Docker engine answers; otherwise scripts/infra.sh on the test ports. Nothing is ever
skipped for a missing service: a broker that cannot be had fails the run.

Every fixture here is lazy: nothing starts until a test asks for it, so `make test-unit` runs
tests/unit with no broker and no database. It sets PROVISIONING_TESTS_WITHOUT_INFRA=1, and a
unit test that asks for infrastructure then fails at once, saying which, instead of starting it.
"""

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from provisioning_common.settings import KafkaSettings, MongoSettings
from provisioning_common.topics import ensure_topics
from pymongo import AsyncMongoClient

from tests.support.processes import REPO

# Test ports differ from `make run`'s, so the suite can run while the demo system is up.
TEST_KAFKA_PORT = int(os.environ.get("TEST_KAFKA_PORT", "19092"))
TEST_KAFKA_CONTROLLER_PORT = int(os.environ.get("TEST_KAFKA_CONTROLLER_PORT", "19093"))
TEST_MONGO_PORT = int(os.environ.get("TEST_MONGO_PORT", "27018"))
# infra.sh's `up` starts the directory too: on the port the connector tests look for it.
TEST_LDAP_PORT = int(os.environ.get("TEST_LDAP_PORT", "13389"))
TEST_PG_PORT = int(os.environ.get("TEST_PG_PORT", "15433"))  # and PostgreSQL
TEST_INFRA_DIR = REPO / ".infra" / "test"
# The services' health ports have fixed defaults (8081-8083); the suite runs many processes at
# once, so they serve none unless a test gives them a free port.
os.environ.setdefault("HEALTH_PORT", "0")


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    mongo_uri: str
    origin: str  # "environment", "testcontainers" or "local scripts"


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _infra_env() -> dict[str, str]:
    return {
        **os.environ,
        "INFRA_DIR": str(TEST_INFRA_DIR),
        "KAFKA_PORT": str(TEST_KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(TEST_KAFKA_CONTROLLER_PORT),
        "MONGO_PORT": str(TEST_MONGO_PORT),
        "LDAP_PORT": str(TEST_LDAP_PORT),
        "PG_PORT": str(TEST_PG_PORT),
    }


def _from_containers(stack: ExitStack) -> Infra:  # pragma: no cover - needs a Docker engine
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
    mongo = stack.enter_context(MongoDbContainer("mongo:8.0"))
    return Infra(
        kafka_bootstrap=kafka.get_bootstrap_server(),
        mongo_uri=mongo.get_connection_url(),
        origin="testcontainers",
    )


def _from_local_scripts(stack: ExitStack) -> Infra:
    script = str(REPO / "scripts" / "infra.sh")
    subprocess.run([script, "up"], env=_infra_env(), check=True)
    stack.callback(subprocess.run, [script, "down"], env=_infra_env(), check=False)
    return Infra(
        kafka_bootstrap=f"127.0.0.1:{TEST_KAFKA_PORT}",
        mongo_uri=f"mongodb://127.0.0.1:{TEST_MONGO_PORT}",
        origin="local scripts",
    )


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    if os.environ.get("PROVISIONING_TESTS_WITHOUT_INFRA") == "1":
        pytest.fail(
            "this test needs the broker or the database, and this run has none (make "
            "test-unit): move it to tests/integration, or fake the port it uses",
            pytrace=False,
        )
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGO_URI")
    with ExitStack() as stack:
        if kafka and mongo:
            yield Infra(kafka_bootstrap=kafka, mongo_uri=mongo, origin="environment")
            return
        found = _from_containers(stack) if _docker_engine_answers() else _from_local_scripts(stack)
        yield Infra(
            kafka_bootstrap=kafka or found.kafka_bootstrap,
            mongo_uri=mongo or found.mongo_uri,
            origin=found.origin,
        )


@pytest.fixture(scope="session")
def kafka_settings(infra: Infra) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=infra.kafka_bootstrap)


@pytest.fixture(scope="session")
def mongo_settings(infra: Infra) -> MongoSettings:
    return MongoSettings(uri=infra.mongo_uri)


@pytest.fixture(scope="session")
async def topics_ready(kafka_settings: KafkaSettings) -> KafkaSettings:
    """The unprefixed topics exist (the e2e system and plain-client tests use them)."""
    await ensure_topics(kafka_settings)
    return kafka_settings


@pytest.fixture(scope="session")
async def mongo_client(mongo_settings: MongoSettings) -> AsyncIterator[AsyncMongoClient[Any]]:
    client = mongo_settings.client()
    yield client
    await client.close()


@pytest.fixture
def unique_name() -> str:
    """A fresh short name for databases, ids, topic prefixes: tests never share state."""
    return f"t{uuid.uuid4().hex[:10]}"
