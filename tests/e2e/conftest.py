"""The whole system as real processes: job-api, its projector, the runner and the guard; and
what every console test drives it with (a headless browser, a page on the console, a seeder)."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page
from provisioning_common.settings import KafkaSettings
from provisioning_common.topics import ensure_topics

from tests.conftest import Infra
from tests.e2e.browser import console_page, launch_chromium
from tests.e2e.seeding import Seeder
from tests.support.kafka_groups import group_has_members
from tests.support.processes import REPO, ServiceProcess, free_port, service_argv, start_service


@dataclass(frozen=True)
class System:
    api_url: str
    admin_key: str
    data_dir: Path
    mongo_database: str
    target_db: str
    kafka_bootstrap: str
    mongo_uri: str
    kafka_settings: KafkaSettings
    processes: dict[str, ServiceProcess]

    def topic(self, name: str) -> str:
        return self.kafka_settings.topic(name)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _group_ready(settings: KafkaSettings, service: str) -> bool:
    return asyncio.run(group_has_members(settings, settings.group_id(service)))


@pytest.fixture(scope="session")
def system(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_id = secrets.token_hex(4)
    data_dir = tmp_path_factory.mktemp("data")
    # One folder per session, so parallel or repeated sessions keep each other's logs.
    logs = REPO / "test-results" / "logs" / f"e2e-{run_id}"
    port = free_port()
    # Own topics and groups per session: a persistent or shared cluster (KAFKA_BOOTSTRAP_SERVERS)
    # holds earlier sessions' jobs, which a fresh group would otherwise read and run again.
    kafka = KafkaSettings(
        bootstrap_servers=infra.kafka_bootstrap,
        topic_prefix=f"e2e-{run_id}.",
        consumer_group_suffix=f".e2e-{run_id}",
    )
    asyncio.run(ensure_topics(kafka))
    admin_key = f"e2e-admin-{secrets.token_urlsafe(16)}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_CONSUMER_GROUP_SUFFIX": kafka.consumer_group_suffix,
        "MONGO_URI": infra.mongo_uri,
        "MONGO_DATABASE": f"e2e_{run_id}",
        "PROVISIONING_TARGET_DB": f"e2e_identity_{run_id}",
        "PROVISIONING_DATA_DIR": str(data_dir),
        "PROVISIONING_ADMIN_API_KEY": admin_key,
        "JOB_API_HOST": "127.0.0.1",
        "JOB_API_PORT": str(port),
        # Progress is published at most once per interval; short here so tests can watch it.
        "PROVISIONING_PROGRESS_INTERVAL_SECONDS": "0.5",
    }
    api_url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        procs: dict[str, ServiceProcess] = {}
        for name, ready in (
            ("threshold-guard", lambda: _group_ready(kafka, "threshold-guard")),
            ("sequence-runner", lambda: _group_ready(kafka, "sequence-runner")),
            ("job-api-projector", lambda: _group_ready(kafka, "job-api-projector")),
            ("job-api", lambda: _healthy(api_url)),
        ):
            procs[name] = stack.enter_context(
                start_service(
                    name, service_argv(name), env, ready, logs / f"{name}.log", timeout=90
                )
            )
        yield System(
            api_url=api_url,
            admin_key=admin_key,
            data_dir=data_dir,
            mongo_database=env["MONGO_DATABASE"],
            target_db=env["PROVISIONING_TARGET_DB"],
            kafka_bootstrap=infra.kafka_bootstrap,
            mongo_uri=infra.mongo_uri,
            kafka_settings=kafka,
            processes=procs,
        )


@pytest.fixture(scope="module")
async def http(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """The running job-api over HTTP, as curl or an upstream system calls it."""
    async with httpx.AsyncClient(base_url=system.api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def keys(system: System, http: httpx.AsyncClient) -> dict[str, str]:
    """An operator and a viewer key, created by the bootstrap admin, and the admin's own."""
    found = {"admin": system.admin_key}
    for role in ("operator", "viewer"):
        created = await http.post(
            "/api/v1/api-keys",
            json={"name": f"e2e-{role}-{uuid.uuid4().hex[:6]}", "role": role},
            headers=system.auth(),
        )
        assert created.status_code == 201, created.text
        found[role] = created.json()["key"]
    return found


# ---- the console tests' browser, page and seeder ------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium per test module; each test opens its own page (its own cookies)."""
    async with launch_chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser, system: System) -> AsyncIterator[Page]:
    """A fresh browser profile on the console, signed in as nobody yet."""
    async with console_page(browser, system.api_url) as opened:
        yield opened


@pytest.fixture(scope="module")
async def seeder(system: System) -> AsyncIterator[Seeder]:
    """What a console test needs, created through the REST API as the bootstrap admin."""
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.auth(), timeout=30
    ) as client:
        yield Seeder(system, client)


@pytest.fixture(scope="module")
async def console_keys(seeder: Seeder) -> dict[str, str]:
    """A viewer and an operator key named console-<role>-…, as the console shows who acted,
    and the admin's own."""
    return {
        "viewer": await seeder.api_key("viewer"),
        "operator": await seeder.api_key("operator"),
        "admin": seeder.system.admin_key,
    }
