"""The SQL target on PostgreSQL against raw psycopg on the same server: applying 100,000
creations, batch by batch, each batch one transaction sent with executemany (pipeline mode) on
one connection, in both."""

import asyncio
import os
import time
import uuid

import psycopg
from provisioning_common.definitions import SqlTarget
from sequence_runner.adapters.connectors.mongo_target import RetryPolicy
from sequence_runner.adapters.connectors.sql_database import PostgresDatabase
from sequence_runner.adapters.connectors.sql_target import SqlTargetConnector
from sequence_runner.domain.records import PlannedChange

from bench.timing import report

URL = os.environ.get("BENCH_PG_URL", "postgresql://provisioning@127.0.0.1:15434/provisioning")
PASSWORD = os.environ.get("PGPASSWORD", "pg-password")
BATCH = 500  # the SQL bench's batch (the runner now applies SQL in batches of 2,000)
MAPPING = ["login", "name", "mail", "grade"]


async def new_table() -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(URL, password=PASSWORD) as connection:
        await connection.execute(
            f"create table {name} (login text primary key, name text, mail text, grade integer, "
            "active boolean not null default true)"
        )
    return name


async def drop(table: str) -> None:
    async with await psycopg.AsyncConnection.connect(URL, password=PASSWORD) as connection:
        await connection.execute(f"drop table {table}")


def person(i: int) -> dict[str, object]:
    return {"login": f"u{i:07d}", "name": f"User {i}", "mail": f"u{i}@example.org", "grade": i % 12}


async def ours(count: int) -> float:
    table = await new_table()
    database = PostgresDatabase(URL, PASSWORD, pool_size=1, timeout=30)
    target = SqlTargetConnector(
        "bench",
        database,
        SqlTarget(connection="bench", table=table, key_column="login"),
        MAPPING,
        RetryPolicy(1, 0),
    )
    await target.prepare()
    creates = [
        PlannedChange(seq=i, action="create", key=f"u{i:07d}", before=None, after=person(i))
        for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        await target.apply(creates[start : start + BATCH])
    took = time.perf_counter() - started
    await database.close()
    await drop(table)
    return took


async def raw(count: int) -> float:
    table = await new_table()
    rows = [tuple(person(i).values()) for i in range(count)]
    query = f"insert into {table} (login, name, mail, grade) values (%s, %s, %s, %s)"
    async with await psycopg.AsyncConnection.connect(URL, password=PASSWORD) as connection:
        started = time.perf_counter()
        for start in range(0, count, BATCH):
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany(query, rows[start : start + BATCH])
        took = time.perf_counter() - started
    await drop(table)
    return took


async def main(
    count: int = int(os.environ.get("BENCH_SQL_WRITES", "100000")), runs: int = 2
) -> list[str]:
    ours_best = raw_best = float("inf")
    for _ in range(runs):
        ours_best = min(ours_best, await ours(count))
        raw_best = min(raw_best, await raw(count))
    return [report(f"sql target: {count} creations", ours_best, raw_best, "raw executemany")]


if __name__ == "__main__":
    asyncio.run(main())
