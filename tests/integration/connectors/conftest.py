"""The real directory for connector tests: slapd from scripts/infra.sh, or LDAP_URI's.

With LDAP_URI set (scripts/test.sh sets it) that server is used, bound as LDAP_BIND_DN with
LDAP_ADMIN_PASSWORD; otherwise a slapd is started on TEST_LDAP_PORT (13389) in .infra/test.
Tests that stop the server mid-apply need one whose infra folder they know: the one started
here, or TEST_LDAP_INFRA_DIR's. Every test works in an organizational unit of its own."""

import asyncio
import json
import os
import secrets
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap
import pytest
from provisioning_common.kafka import build_broker
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import ensure_topics
from pymongo import AsyncMongoClient

from tests.conftest import Infra
from tests.integration.connectors.scim_engine import scim_engine as scim_engine
from tests.integration.connectors.scim_engine import (
    scim_engine_processes as scim_engine_processes,
)
from tests.integration.connectors.scim_rig import scim as scim  # one scim2-server a session
from tests.integration.connectors.scim_rig import scim_app as scim_app
from tests.integration.engine.conftest import (
    ConnectorRig,
    EventLog,
    RunnerProcess,
    guarded_runner,
)
from tests.support.processes import REPO

TEST_LDAP_PORT = int(os.environ.get("TEST_LDAP_PORT", "13389"))
SUFFIX = "dc=example,dc=org"
ADMIN_DN = os.environ.get("LDAP_BIND_DN", f"cn=admin,{SUFFIX}")
ADMIN_PASSWORD = os.environ.get("LDAP_ADMIN_PASSWORD", "admin-password")
READER_DN = f"cn=limited-reader,{SUFFIX}"
READER_PASSWORD = os.environ.get("LDAP_READER_PASSWORD", "reader-password")


@dataclass(frozen=True)
class Directory:
    url: str
    bind_dn: str
    password: str
    infra_dir: Path | None  # where infra.sh keeps this slapd, when the tests may restart it
    port: int

    def admin(self) -> "ldap.ldapobject.LDAPObject":
        conn = ldap.initialize(self.url)
        conn.simple_bind_s(self.bind_dn, self.password)
        return conn

    def infra(self, command: str) -> None:
        assert self.infra_dir is not None, "this slapd was not started by the tests"
        env = {**os.environ, "INFRA_DIR": str(self.infra_dir), "LDAP_PORT": str(self.port)}
        subprocess.run([str(REPO / "scripts" / "infra.sh"), command, "ldap"], env=env, check=True)

    def ldapsearch(self, base: str, filterstr: str = "(objectClass=*)", *attrs: str) -> str:
        """What the server's own client sees: the check that does not trust our code."""
        done = subprocess.run(
            [
                "ldapsearch",
                "-x",
                "-LLL",
                "-H",
                self.url,
                "-D",
                self.bind_dn,
                "-w",
                self.password,
                "-b",
                base,
                filterstr,
                *attrs,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "LDAPNOINIT": "1"},
            check=False,
        )
        if done.returncode not in (0, 32):  # 32: no such object (the base is gone)
            raise AssertionError(f"ldapsearch failed ({done.returncode}): {done.stderr}")
        return done.stdout


def _port_of(url: str) -> int:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return int(host.rsplit(":", 1)[1]) if ":" in host else 389


@pytest.fixture(scope="session")
def directory() -> Iterator[Directory]:
    url = os.environ.get("LDAP_URI")
    if url:
        infra_dir = os.environ.get("TEST_LDAP_INFRA_DIR")
        yield Directory(
            url,
            ADMIN_DN,
            ADMIN_PASSWORD,
            Path(infra_dir) if infra_dir else None,
            _port_of(url),
        )
        return
    found = Directory(
        f"ldap://127.0.0.1:{TEST_LDAP_PORT}",
        ADMIN_DN,
        ADMIN_PASSWORD,
        REPO / ".infra" / "test",
        TEST_LDAP_PORT,
    )
    found.infra("up")
    try:
        yield found
    finally:
        found.infra("down")


@pytest.fixture
def base_dn(directory: Directory) -> Iterator[str]:
    """An empty organizational unit of this test's own, removed afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    dn = f"ou={name},{SUFFIX}"
    conn = directory.admin()
    conn.add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [name.encode()])])
    yield dn
    conn = directory.admin()
    children = conn.search_s(dn, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
    for child, _ in sorted(children, key=lambda c: -len(c[0])):
        conn.delete_s(child)
    conn.unbind_s()


@pytest.fixture
async def closing() -> AsyncIterator[list[object]]:
    """Connections a test opened, closed after it."""
    opened: list[object] = []
    yield opened
    for connection in opened:
        await connection.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the whole runner


WRONG_PASSWORD = "wrong-Pa55word-never-logged"


@dataclass
class LdapEngineRig(ConnectorRig):
    """The runner and the guard as processes, with a connections file naming the test slapd
    (`directory`), the same server with a wrong password (`wrong-password`) and its reader
    whose searches are cut at 3 entries (`size-limited`)."""

    data_dir: Path


@pytest.fixture(scope="session")
def ldap_engine_processes(
    infra: Infra, directory: Directory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[KafkaSettings, dict[str, str], RunnerProcess]]:
    run_id = secrets.token_hex(4)
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"ldap-{run_id}.",
        consumer_group_suffix=f"-ldap-{run_id}",
    )
    asyncio.run(ensure_topics(kafka))
    folder = tmp_path_factory.mktemp("ldap-engine")
    connections = folder / "connections.json"
    connections.write_text(
        json.dumps(
            {
                "directory": {
                    "url": directory.url,
                    "bind_dn": directory.bind_dn,
                    "password": "${TEST_DIRECTORY_PASSWORD}",
                    "window": 64,
                },
                "wrong-password": {
                    "url": directory.url,
                    "bind_dn": directory.bind_dn,
                    "password": "${TEST_WRONG_DIRECTORY_PASSWORD}",
                },
                "size-limited": {
                    "url": directory.url,
                    "bind_dn": READER_DN,
                    "password": "${TEST_READER_PASSWORD}",
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
        "MONGO_DATABASE": f"ldap_{run_id}",
        "PROVISIONING_DATA_DIR": str(folder),
        "PROVISIONING_CONNECTIONS_FILE": str(connections),
        "TEST_DIRECTORY_PASSWORD": directory.password,
        "TEST_WRONG_DIRECTORY_PASSWORD": WRONG_PASSWORD,
        "TEST_READER_PASSWORD": READER_PASSWORD,
        "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "0.2",
        "PROVISIONING_TARGET_RETRY_BACKOFF_SECONDS": "0.1",
        "PROVISIONING_LOG_LEVEL": "INFO",
    }
    with guarded_runner(kafka, env, "ldap", run_id) as runner:
        yield kafka, env, runner


@pytest.fixture(scope="session")
async def ldap_engine(
    ldap_engine_processes: tuple[KafkaSettings, dict[str, str], RunnerProcess],
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[LdapEngineRig]:
    kafka, env, runner = ldap_engine_processes
    broker = build_broker(kafka)
    await broker.start()
    events = EventLog(kafka)
    await events.start()
    try:
        yield LdapEngineRig(
            kafka=kafka,
            broker=broker,
            events=events,
            database=mongo_client[env["MONGO_DATABASE"]],
            runner=runner,
            data_dir=Path(env["PROVISIONING_DATA_DIR"]),
        )
    finally:
        await events.stop()
        await broker.stop()


# ---- SQL: the PostgreSQL and SQLite fixtures, and the runner over PostgreSQL
from tests.integration.connectors.sql_engine import sql_engine, sql_engine_processes  # noqa: E402, F401
from tests.integration.connectors.sql_rig import (  # noqa: E402, F401
    pg_database,
    pg_table,
    postgres,
    sqlite_people,
)
