"""The running system for the benchmarks that go through it: the services as real processes
(`tests.support.stack.Stack`: job-api, its projector, the runner and the guard) on the bench's
broker and database, with topics, groups and databases of their own, and the API on
BENCH_API_PORT."""

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from tests.support.stack import SERVICE_NAMES, Stack

REPO = Path(__file__).resolve().parents[1]
LOGS = REPO / ".infra" / "bench" / "logs"


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def mongo_uri() -> str:
    return os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017")


def listing_mongo_uri() -> str:
    """The server holding the listing's read models: one of their own when `make bench` started
    the servers (scripts/bench.sh), else MONGO_URI's."""
    return os.environ.get("BENCH_LISTING_MONGO_URI") or mongo_uri()


def api_port() -> int:
    return int(os.environ.get("BENCH_API_PORT", "27482"))


@contextmanager
def running_system(
    services: tuple[str, ...] = SERVICE_NAMES,
    extra_env: dict[str, str] | None = None,
    keep_database: bool = False,
    mongo: str | None = None,
) -> Iterator[Stack]:
    """`services` started (in the stack's order) and ready, stopped at the end; the data
    folder is a fresh temporary one (a benchmark writes its CSV sources there). Its databases
    are dropped after, the services' one unless `keep_database` (data seeded for the next run).
    `mongo`: the MongoDB server's URI, when not MONGO_URI's."""
    with tempfile.TemporaryDirectory(prefix="bench-data-") as data:
        env = {
            # The runner's defaults, not the fault suite's quicker ones.
            "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "1.0",
            **(extra_env or {}),
        }
        server = mongo or mongo_uri()
        stack = Stack.create(
            kafka_bootstrap(), server, Path(data), LOGS, extra_env=env, api_port=api_port()
        )
        try:
            for name in SERVICE_NAMES:
                if name in services:
                    stack.services[name].start()
            yield stack
        finally:
            stack.stop()
            client: MongoClient[dict[str, Any]]
            with MongoClient(server) as client:
                if not keep_database:
                    client.drop_database(stack.env["MONGO_DATABASE"])
                client.drop_database(stack.env["PROVISIONING_TARGET_DB"])


def token() -> str:
    return secrets.token_hex(4)


@asynccontextmanager
async def system(
    services: tuple[str, ...] = SERVICE_NAMES,
    extra_env: dict[str, str] | None = None,
    keep_database: bool = False,
    mongo: str | None = None,
) -> AsyncIterator[Stack]:
    """`running_system` for a coroutine: the stack starts and stops in a worker thread (it
    runs event loops of its own to create topics and probe consumer groups)."""
    manager = running_system(services, extra_env, keep_database, mongo)
    stack = await asyncio.to_thread(manager.__enter__)
    try:
        yield stack
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
