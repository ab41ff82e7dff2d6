"""One contract every target connector passes against its real server: what is planned and
applied is what the server then holds (read with the server's own client), applying a batch
again changes nothing, and planning again finds nothing to do. MongoDB, LDAP, SCIM,
PostgreSQL and SQLite pass it; another target joins by adding a harness here."""

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ldap
import pytest
from provisioning_common.definitions import SqlTarget
from pymongo import AsyncMongoClient
from sequence_runner.adapters.connectors.base import TargetConnector
from sequence_runner.adapters.connectors.mongo_target import MongoTargetConnector, RetryPolicy
from sequence_runner.adapters.connectors.sql_target import SqlTargetConnector
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import Plan, SourceEntry

from tests.integration.connectors.conftest import Directory
from tests.integration.connectors.ldap_rig import ldap_target
from tests.integration.connectors.scim_rig import held_people, scim_target
from tests.integration.connectors.sql_rig import Postgres, sqlite_database
from tests.support.scim_server import ScimApp

pytestmark = [pytest.mark.mongo]

MAPPING = {"uid": "id", "cn": "name", "sn": "last", "mail": "mail"}


class Harness(Protocol):
    target: TargetConnector

    async def held(self) -> dict[str, dict[str, Any]]:
        """What the server holds, by key, read with its own client (not the connector)."""
        ...


@dataclass
class MongoHarness:
    target: TargetConnector
    client: AsyncMongoClient[dict[str, Any]]
    database: str
    collection: str

    async def held(self) -> dict[str, dict[str, Any]]:
        found = self.client[self.database][self.collection].find({}, {"_id": 0})
        return {doc["uid"]: _plain(doc) async for doc in found}


@dataclass
class LdapHarness:
    target: TargetConnector
    directory: Directory
    base_dn: str

    async def held(self) -> dict[str, dict[str, Any]]:
        conn = self.directory.admin()
        found = conn.search_s(self.base_dn, ldap.SCOPE_ONELEVEL, "(uid=*)", list(MAPPING))
        return {
            attrs["uid"][0].decode(): _plain(
                {k: [v.decode() for v in vs] for k, vs in attrs.items()}
            )
            for _, attrs in found
        }


@dataclass
class ScimHarness:
    target: TargetConnector
    app: ScimApp

    async def held(self) -> dict[str, dict[str, Any]]:
        return held_people(self.app)


# ---- SQL
SQL_COLUMNS = ", ".join(MAPPING)


@dataclass
class PostgresHarness:
    target: TargetConnector
    postgres: Postgres
    table: str

    async def held(self) -> dict[str, dict[str, Any]]:
        rows = self.postgres.psql(f"select {SQL_COLUMNS} from {self.table}")
        return {row[0]: _plain(dict(zip(MAPPING, row, strict=True))) for row in rows}


@dataclass
class SqliteHarness:
    target: TargetConnector
    path: Path

    async def held(self) -> dict[str, dict[str, Any]]:
        connection = sqlite3.connect(self.path)
        try:
            rows = connection.execute(f"select {SQL_COLUMNS} from people").fetchall()
        finally:
            connection.close()
        return {row[0]: _plain(dict(zip(MAPPING, row, strict=True))) for row in rows}


def sql_target(database: Any, table: str) -> SqlTargetConnector:
    definition = SqlTarget(connection="app-db", table=table, key_column="uid")
    return SqlTargetConnector("app-db", database, definition, list(MAPPING), RetryPolicy(2, 0.05))


# ---- end SQL


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A record without empty values, one-element lists as their value: both servers alike."""
    plain: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value not in ("", None, []):
            plain[name] = value
    return plain


@pytest.fixture(params=["mongo", "ldap", "scim", "postgres", "sqlite"])
async def harness(
    request: pytest.FixtureRequest,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    unique_name: str,
    closing: list[object],
) -> AsyncIterator[Harness]:
    if request.param == "mongo":
        collection = mongo_client[f"contract_{unique_name}"]["people"]
        yield MongoHarness(
            MongoTargetConnector(collection, "uid", RetryPolicy(2, 0.05)),
            mongo_client,
            f"contract_{unique_name}",
            "people",
        )
        await mongo_client.drop_database(f"contract_{unique_name}")
        return
    if request.param == "scim":
        scim_server = request.getfixturevalue("scim")
        app = scim_server.tenant(f"contract{unique_name}"[:60])
        yield ScimHarness(scim_target(app, closing), app)
        return
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        table: str = request.getfixturevalue("pg_table")
        database = pg.database()
        closing.append(database)
        yield PostgresHarness(sql_target(database, table), pg, table)
        return
    if request.param == "sqlite":
        path, table = request.getfixturevalue("sqlite_people")
        yield SqliteHarness(sql_target(sqlite_database(path), table), path)
        return
    directory: Directory = request.getfixturevalue("directory")
    base_dn: str = request.getfixturevalue("base_dn")
    yield LdapHarness(ldap_target(directory, base_dn, closing), directory, base_dn)


def rows(*people: tuple[str, str, str, str]) -> list[SourceEntry]:
    return [
        SourceEntry(line=i, fields={"id": p[0], "name": p[1], "last": p[2], "mail": p[3]})
        for i, p in enumerate(people, start=2)
    ]


async def planned(harness: Harness, source: list[SourceEntry]) -> Plan:
    target = harness.target
    await target.prepare()
    current = [record async for record in target.read_all()]
    return plan(source, current, "uid", MAPPING, True, "contract source", target.rules)


async def apply(harness: Harness, source: list[SourceEntry]) -> Plan:
    result = await planned(harness, source)
    await harness.target.apply(result.changes)
    return result


ANN = ("ann", "Ann Lee", "Lee", "ann@example.org")
BOB = ("bob", "Bob Ray", "Ray", "bob@example.org")


async def test_created_records_are_held_as_planned(harness: Harness) -> None:
    result = await apply(harness, rows(ANN, BOB))
    assert (result.counts.create, result.counts.target_size) == (2, 0)
    assert await harness.held() == {
        "ann": {"uid": "ann", "cn": "Ann Lee", "sn": "Lee", "mail": "ann@example.org"},
        "bob": {"uid": "bob", "cn": "Bob Ray", "sn": "Ray", "mail": "bob@example.org"},
    }


async def test_updates_change_only_what_changed(harness: Harness) -> None:
    await apply(harness, rows(ANN, BOB))
    result = await apply(harness, rows(("ann", "Ann Lee", "Lee-Smith", "ann@example.org"), BOB))
    assert (result.counts.update, result.counts.unchanged) == (1, 1)
    assert result.changes[0].before == {"sn": "Lee"}
    held = await harness.held()
    assert held["ann"]["sn"] == "Lee-Smith"
    assert held["bob"]["sn"] == "Ray"


async def test_records_that_left_the_source_are_deleted(harness: Harness) -> None:
    await apply(harness, rows(ANN, BOB))
    result = await apply(harness, rows(BOB))
    assert [(c.action, c.key) for c in result.changes] == [("delete", "ann")]
    assert list(await harness.held()) == ["bob"]


async def test_applying_a_batch_again_gives_the_same_target(harness: Harness) -> None:
    await apply(harness, rows(ANN))
    result = await planned(harness, rows(("ann", "Ann", "Lee", "a@example.org"), BOB))
    await harness.target.apply(result.changes)
    once = await harness.held()
    await harness.target.apply(result.changes)
    assert await harness.held() == once


async def test_planning_again_after_applying_finds_nothing_to_do(harness: Harness) -> None:
    await apply(harness, rows(ANN, BOB))
    again = await planned(harness, rows(ANN, BOB))
    assert again.changes == ()
    assert again.counts.unchanged == 2
