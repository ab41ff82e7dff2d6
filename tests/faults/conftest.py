"""The fault suite's system and its record: the four services as processes a test kills, on the
session's broker and database, and the figures each scenario leaves in
test-results/reliability.json (scripts/reliability_report.py turns them into
docs/reliability.md)."""

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Infra
from tests.support.processes import REPO
from tests.support.stack import Stack

LOGS = REPO / "test-results" / "faults-logs"
RESULTS = REPO / "test-results" / "reliability.json"
# Short enough that a sequence outlasts it (tests/faults/test_long_sequences.py); the services
# read it as KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS.
MAX_POLL_INTERVAL_MS = 6000


# Package scope: its processes stop when the fault suite ends, not with the whole session.
@pytest.fixture(scope="package")
def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One system for the scenarios that kill services or feed it bad input; each scenario
    uses its own definitions, collections and jobs."""
    system = Stack.create(
        infra.kafka_bootstrap,
        infra.mongo_uri,
        tmp_path_factory.mktemp("faults-data"),
        LOGS,
        extra_env={
            "KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS": str(MAX_POLL_INTERVAL_MS),
            "PROVISIONING_APPLY_BATCH_SIZE": "500",
        },
    )
    system.start()
    try:
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="package")
def own_stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second system (own topics, groups and databases on the same broker and database)
    for hostile input that may leave a consumer stuck: until the defect is fixed, a stuck
    partition must fail those scenarios only, not the crash scenarios after them."""
    system = Stack.create(
        infra.kafka_bootstrap,
        infra.mongo_uri,
        tmp_path_factory.mktemp("faults-own-data"),
        LOGS,
        extra_env={"KAFKA_CONSUMER_MAX_POLL_INTERVAL_MS": str(MAX_POLL_INTERVAL_MS)},
    )
    system.start()
    try:
        yield system
    finally:
        system.stop()


@dataclass
class Figures:
    """What one fault or bad input did to the system: all but jobs and records must be 0."""

    scenario: str
    fault: str
    jobs: int = 0
    records: int = 0
    jobs_lost: int = 0
    applied_twice: int = 0
    writes_while_blocked: int = 0
    partitions_stalled: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    result: str = "not run"
    command: str = ""


OUTCOME = pytest.StashKey[str]()
FAILURE = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[OUTCOME] = report.outcome
        crash = getattr(report.longrepr, "reprcrash", None)
        if report.failed and crash is not None:
            item.stash[FAILURE] = str(crash.message)
    return report


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """The figures of this test's scenario, written to the results file whatever its outcome
    (a failed scenario is recorded as failed, with what it saw)."""
    node = request.node
    # The docstring's first paragraph names the fault in the report's table.
    doc = " ".join((node.function.__doc__ or node.name).split("\n\n")[0].split())
    path = Path(str(node.fspath)).relative_to(REPO)
    found = Figures(
        scenario=node.name,
        fault=doc,
        command=f"make test-faults ARGS='{path}::{node.name}'",
    )
    started = time.monotonic()
    yield found
    found.seconds = round(time.monotonic() - started, 1)
    found.result = node.stash.get(OUTCOME, "error")
    if FAILURE in node.stash:
        found.notes.append(f"failed: {node.stash[FAILURE][:300]}")
    record(found)


def record(figures: Figures) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows: dict[str, Any] = json.loads(RESULTS.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        rows = {}
    rows[figures.scenario] = asdict(figures)
    RESULTS.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
