"""The SQL source against the real PostgreSQL and a SQLite file: rows streamed through a
server-side cursor with flat memory, errors that name the row's key, a file outside the data
folder refused."""

import sqlite3
import tracemalloc
from pathlib import Path

import pytest
from provisioning_common.definitions import SqlSource
from sequence_runner.adapters.connectors.base import ConnectorError, SourceError
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.sql_database import SqlDatabase
from sequence_runner.adapters.connectors.sql_source import SqlSourceConnector
from sequence_runner.domain.planner import plan
from sequence_runner.domain.records import PlanError, SourceEntry

from tests.integration.connectors.sql_rig import Postgres, sqlite_database


def source(database: SqlDatabase, query: str, key: str = "login") -> SqlSourceConnector:
    definition = SqlSource(connection="hr-db", query=query, key_column=key)
    return SqlSourceConnector("hr-db", database, definition, RetryPolicy(2, 0.05), 500)


async def test_100000_rows_are_read_with_flat_memory(pg_database: SqlDatabase) -> None:
    query = (
        "select 'u' || lpad(i::text, 6, '0') as login, 'Person ' || i as name, i as number, "
        "repeat('x', 200) as notes from generate_series(1, {n}) as i"
    )

    async def peak(count: int) -> tuple[int, int]:
        connector = source(pg_database, query.format(n=count))
        seen = 0
        tracemalloc.start()
        try:
            async for entry in connector.read():
                seen += 1
                assert isinstance(entry.fields["number"], int)
            return seen, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small = await peak(10_000)
    large = await peak(100_000)
    assert (small[0], large[0]) == (10_000, 100_000)
    # Ten times the rows, about the same peak: the rows were never held at once. Held whole,
    # 100,000 rows of ~300 bytes would be > 30 MB.
    assert large[1] < small[1] * 1.5 + 1_000_000, (small, large)
    assert large[1] < 10_000_000


async def test_an_error_names_the_row_by_its_key(pg_database: SqlDatabase) -> None:
    connector = source(
        pg_database,
        "select * from (values ('ann', 'Ann'), ('bob', null), ('ann', 'Ann 2')) as t(login, name)",
    )
    entries: list[SourceEntry] = [entry async for entry in connector.read()]
    assert entries[1].fields == {"login": "bob", "name": None}
    with pytest.raises(PlanError, match="row login='ann'"):
        plan(entries, [], "uid", {"uid": "login", "cn": "name"}, False, connector.shown_as)


async def test_a_query_the_server_refuses_fails_with_its_message(
    pg_database: SqlDatabase,
) -> None:
    with pytest.raises(SourceError, match='relation "no_such_table" does not exist'):
        [entry async for entry in source(pg_database, "select * from no_such_table").read()]
    with pytest.raises(SourceError, match="the result has no column 'login'"):
        [entry async for entry in source(pg_database, "select 1 as id").read()]


async def test_a_wrong_password_is_reported_without_the_password(postgres: Postgres) -> None:
    from sequence_runner.adapters.connectors.sql_database import PostgresDatabase

    wrong = "Wr0ng-pa55-never-shown"
    database = PostgresDatabase(postgres.url, wrong, pool_size=1, timeout=5)
    try:
        with pytest.raises(SourceError) as failed:
            [entry async for entry in source(database, "select 1 as login").read()]
    finally:
        await database.close()
    assert "password authentication failed" in str(failed.value)
    assert wrong not in str(failed.value)


async def test_a_sqlite_file_is_a_source_too(tmp_path: Path) -> None:
    path = tmp_path / "hr.db"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("create table employees (login text, name text, grade integer)")
        connection.executemany(
            "insert into employees values (?, ?, ?)", [(f"e{i}", f"E {i}", i) for i in range(1200)]
        )
    connection.close()
    connector = source(sqlite_database(path), "select * from employees order by login")
    entries = [entry async for entry in connector.read()]
    assert len(entries) == 1200
    assert entries[0].fields == {"login": "e0", "name": "E 0", "grade": 0}
    assert entries[0].at == "row login='e0'"


def test_a_sqlite_file_outside_the_data_folder_is_refused(tmp_path: Path) -> None:
    from sequence_runner.adapters.connectors.registry import ConnectorRegistry
    from sequence_runner.connections import SqlConnection

    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "secret.db").write_bytes(b"")
    (data / "link.db").symlink_to(tmp_path / "secret.db")
    for url in ("sqlite:///../secret.db", "sqlite:///link.db"):
        registry = ConnectorRegistry(
            data_dir=data,
            target_database=None,  # type: ignore[arg-type]  # not used by a sql source
            retry=RetryPolicy(),
            connections={"hr-file": SqlConnection(type="sql", url=url)},
        )
        with pytest.raises(ConnectorError, match="outside the data folder"):
            registry._sql_database("hr-file")
