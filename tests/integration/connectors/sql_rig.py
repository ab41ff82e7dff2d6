"""The real SQL databases for connector tests: PostgreSQL from scripts/infra.sh (or
TEST_PG_URL's, with PGPASSWORD), and SQLite files in a data folder; every test gets a table of
its own. `psql` is the server's own client, the check that does not trust our code."""

import os
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sequence_runner.adapters.connectors.sql_database import PostgresDatabase, SqliteDatabase

from tests.support.processes import REPO

TEST_PG_PORT = int(os.environ.get("TEST_PG_PORT", "15433"))
PG_PASSWORD = os.environ.get("PGPASSWORD") or os.environ.get("PG_PASSWORD", "pg-password")

PEOPLE_TABLE = (
    "create table {name} (uid text primary key, cn text, sn text, mail text, age integer, "
    "active boolean not null default true)"
)


@dataclass(frozen=True)
class Postgres:
    url: str
    password: str

    def psql(self, query: str) -> list[list[str]]:
        done = subprocess.run(
            ["psql", self.url, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": self.password},
            check=False,
        )
        if done.returncode:
            raise AssertionError(f"psql failed ({done.returncode}): {done.stderr}")
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def database(self) -> PostgresDatabase:
        return PostgresDatabase(self.url, self.password, pool_size=4, timeout=10)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    url = os.environ.get("TEST_PG_URL")
    if url:
        yield Postgres(url, PG_PASSWORD)
        return
    env = {
        **os.environ,
        "INFRA_DIR": str(REPO / ".infra" / "test"),
        "PG_PORT": str(TEST_PG_PORT),
        "PG_PASSWORD": PG_PASSWORD,
    }
    infra = str(REPO / "scripts" / "infra.sh")
    subprocess.run([infra, "up", "postgres"], env=env, check=True)
    try:
        yield Postgres(
            f"postgresql://provisioning@127.0.0.1:{TEST_PG_PORT}/provisioning", PG_PASSWORD
        )
    finally:
        subprocess.run([infra, "down", "postgres"], env=env, check=True)


@pytest.fixture
def pg_table(postgres: Postgres) -> Iterator[str]:
    """An empty people table of this test's own, dropped afterwards."""
    name = f"people_{uuid.uuid4().hex[:10]}"
    postgres.psql(PEOPLE_TABLE.format(name=name))
    yield name
    postgres.psql(f"drop table if exists {name}")


@pytest.fixture
async def pg_database(postgres: Postgres) -> AsyncIterator[PostgresDatabase]:
    database = postgres.database()
    yield database
    await database.close()


@pytest.fixture
def sqlite_people(tmp_path: Path) -> tuple[Path, str]:
    """A SQLite file in a data folder, with an empty people table: (the file, the table)."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as connection:
        connection.execute(PEOPLE_TABLE.format(name="people"))
    connection.close()
    return path, "people"


def sqlite_database(path: Path) -> SqliteDatabase:
    return SqliteDatabase(path, path.name, timeout=10)
