"""The SQL target against the real PostgreSQL (checked with psql) and a SQLite file: column
types respected, only changed columns written, disable as an active column, a refused row
named by its key with nothing of its batch written, and a missing unique key refused."""

import sqlite3
from pathlib import Path
from typing import Any, Literal

import pytest
from provisioning_common.definitions import SqlTarget
from sequence_runner.adapters.connectors.base import TargetError
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.sql_database import SqlDatabase
from sequence_runner.adapters.connectors.sql_target import SqlTargetConnector
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import Plan, SourceEntry

from tests.integration.connectors.sql_rig import Postgres, sqlite_database

MAPPING = {"uid": "id", "cn": "name", "mail": "mail", "age": "age"}


def target(
    database: SqlDatabase, table: str, deprovision: Literal["delete", "disable"] = "delete"
) -> SqlTargetConnector:
    definition = SqlTarget(
        connection="app-db", table=table, key_column="uid", deprovision=deprovision
    )
    return SqlTargetConnector("app-db", database, definition, list(MAPPING), RetryPolicy(2, 0.05))


def rows(*people: dict[str, Any]) -> list[SourceEntry]:
    return [SourceEntry(line=i, fields=p) for i, p in enumerate(people, start=2)]


async def plan_and_apply(connector: SqlTargetConnector, source: list[SourceEntry]) -> Plan:
    await connector.prepare()
    current = [record async for record in connector.read_all()]
    result = plan(source, current, "uid", MAPPING, True, "test source", connector.rules)
    await connector.apply(result.changes)
    return result


ANN = {"id": "ann", "name": "Ann", "mail": "", "age": "42"}  # as a CSV gives them: text


async def test_a_number_stays_a_number_and_empty_text_is_not_null(
    pg_database: SqlDatabase, pg_table: str, postgres: Postgres
) -> None:
    connector = target(pg_database, pg_table)
    await plan_and_apply(
        connector, rows(ANN, {"id": "bob", "name": None, "mail": "b@x", "age": ""})
    )
    held = postgres.psql(
        f"select uid, coalesce(cn, '<null>'), mail, pg_typeof(age), coalesce(age::text, '<null>') "
        f"from {pg_table} order by uid"
    )
    assert held == [
        ["ann", "Ann", "", "integer", "42"],
        ["bob", "<null>", "b@x", "integer", "<null>"],
    ]
    again = await plan_and_apply(
        connector, rows(ANN, {"id": "bob", "name": None, "mail": "b@x", "age": ""})
    )
    assert again.changes == ()  # "42" is the 42 the column holds: nothing to update


async def test_an_update_writes_only_the_changed_columns(
    pg_database: SqlDatabase, pg_table: str, postgres: Postgres
) -> None:
    connector = target(pg_database, pg_table)
    await plan_and_apply(connector, rows(ANN))
    # Written by someone else meanwhile, in a column the update does not change.
    postgres.psql(f"update {pg_table} set cn = 'Ann (HR)'")
    result = await plan_and_apply(connector, rows({**ANN, "name": "Ann (HR)", "age": 43}))
    assert [(c.action, c.before) for c in result.changes] == [("update", {"age": 42})]
    assert postgres.psql(f"select cn, age from {pg_table}") == [["Ann (HR)", "43"]]


async def test_disable_sets_active_false_and_a_returning_record_is_enabled(
    pg_database: SqlDatabase, pg_table: str, postgres: Postgres
) -> None:
    connector = target(pg_database, pg_table, "disable")
    bob = {"id": "bob", "name": "Bob", "mail": "", "age": 7}
    await plan_and_apply(connector, rows(ANN, bob))
    result = await plan_and_apply(connector, rows(bob))
    assert [(c.action, c.key) for c in result.changes] == [("disable", "ann")]
    assert postgres.psql(f"select uid, active from {pg_table} order by uid") == [
        ["ann", "f"],
        ["bob", "t"],
    ]
    assert (await plan_and_apply(connector, rows(bob))).changes == ()  # disabled already
    back = await plan_and_apply(connector, rows(ANN, bob))
    assert [(c.action, c.key) for c in back.changes] == [("update", "ann")]
    assert postgres.psql(f"select active from {pg_table} where uid = 'ann'") == [["t"]]


async def test_a_refused_row_names_its_key_and_nothing_of_the_batch_is_written(
    pg_database: SqlDatabase, pg_table: str, postgres: Postgres
) -> None:
    connector = target(pg_database, pg_table)
    bad = {"id": "bob", "name": "Bob", "mail": "", "age": "forty"}
    with pytest.raises(TargetError) as failed:
        await plan_and_apply(connector, rows(ANN, bad))
    reason = str(failed.value)
    assert "the create of uid='bob'" in reason
    assert 'invalid input syntax for type integer: "forty"' in reason
    assert "none written" in reason
    assert postgres.psql(f"select count(*) from {pg_table}") == [["0"]]


async def test_applying_a_create_again_converges(
    pg_database: SqlDatabase, pg_table: str, postgres: Postgres
) -> None:
    connector = target(pg_database, pg_table)
    await connector.prepare()
    result = plan(rows(ANN), [], "uid", MAPPING, True, "test source", connector.rules)
    await connector.apply(result.changes)
    await connector.apply(result.changes)  # a runner restarted mid-apply
    assert postgres.psql(f"select uid, age from {pg_table}") == [["ann", "42"]]


async def test_a_key_without_a_unique_index_is_refused_before_anything_is_written(
    pg_database: SqlDatabase, postgres: Postgres
) -> None:
    postgres.psql(
        "drop table if exists loose; create table loose (uid text, cn text, mail text, age int)"
    )
    with pytest.raises(TargetError, match="needs a primary key or unique index"):
        await target(pg_database, "loose").prepare()
    with pytest.raises(TargetError, match="no such table"):
        await target(pg_database, "nowhere").prepare()


async def test_sqlite_keeps_types_and_disables_with_zero(sqlite_people: tuple[Path, str]) -> None:
    path, table = sqlite_people
    connector = target(sqlite_database(path), table, "disable")
    await plan_and_apply(connector, rows(ANN, {"id": "bob", "name": "Bob", "mail": "", "age": "7"}))
    await plan_and_apply(connector, rows(ANN))
    connection = sqlite3.connect(path)
    try:
        held = connection.execute(
            "select uid, typeof(age), age, active from people order by uid"
        ).fetchall()
    finally:
        connection.close()
    assert held == [("ann", "integer", 42, 1), ("bob", "integer", 7, 0)]
