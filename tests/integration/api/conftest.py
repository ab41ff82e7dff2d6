"""One real job-api app per test module: its own database, topic prefix and consumer groups."""

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Infra
from tests.integration.api.harness import ApiHarness, harness_settings, running_api


@pytest.fixture(scope="module")
async def api(infra: Infra, request: pytest.FixtureRequest) -> AsyncIterator[ApiHarness]:
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_api_")[:20]
    async with running_api(harness_settings(infra, f"api_{module}_{uuid.uuid4().hex[:6]}")) as h:
        yield h
