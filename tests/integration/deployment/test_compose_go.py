"""docker-compose.yml loaded by compose-go, the parser Docker Compose itself uses, built from
tools/compose-check with `go build` (modules from the Go module proxy): not a unit test, since
its first build takes minutes."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_compose_file import REPO, SERVICES

COMPOSE_CHECK = REPO / "tools" / "compose-check"
SCALABLE = ("sequence-runner", "threshold-guard", "job-api-projector")


def go_binary() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    assert Path(found).exists(), "Go is needed to build tools/compose-check (see README)"
    return found


@pytest.fixture(scope="module")
def compose_check() -> Path:
    """tools/compose-check built with `go build` (modules from the Go module proxy, cached)."""
    binary = REPO / ".tools" / "compose-check"
    subprocess.run(
        [go_binary(), "build", "-o", str(binary), "."],
        cwd=COMPOSE_CHECK,
        check=True,
        timeout=600,
    )
    return binary


def load_with_compose_go(binary: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), str(path)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def project(compose_check: Path) -> dict[str, Any]:
    loaded = load_with_compose_go(compose_check, REPO / "docker-compose.yml")
    assert loaded.returncode == 0, loaded.stderr
    parsed: dict[str, Any] = json.loads(loaded.stdout)
    return parsed


def test_compose_go_loads_the_file_with_every_service(project: dict[str, Any]) -> None:
    assert set(project["services"]) == set(SERVICES)


def test_compose_go_refuses_a_file_against_the_specification(
    compose_check: Path, tmp_path: Path
) -> None:
    """The check above can fail: compose-go validates against the Compose specification."""
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  runner:\n    image: x\n    ports: {http: 8000}\n")
    assert load_with_compose_go(compose_check, broken).returncode != 0
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("services:\n  runner:\n    image: x\n    replicaz: 3\n")
    refused = load_with_compose_go(compose_check, unknown)
    assert refused.returncode != 0
    assert "replicaz" in refused.stderr


@pytest.mark.parametrize("service", SCALABLE)
def test_consumers_can_be_scaled(project: dict[str, Any], service: str) -> None:
    """`docker compose up --scale sequence-runner=3`: no fixed name, no fixed host port."""
    loaded = project["services"][service]
    assert not loaded.get("container_name"), service
    assert not [p for p in loaded.get("ports") or [] if p.get("published")], service


@pytest.mark.parametrize(
    ("service", "port"),
    [("sequence-runner", 8081), ("threshold-guard", 8082), ("job-api-projector", 8083)],
)
def test_consumer_health_checks_ask_readiness(
    project: dict[str, Any], service: str, port: int
) -> None:
    (command,) = [p for p in project["services"][service]["healthcheck"]["test"] if "readyz" in p]
    assert f"http://127.0.0.1:{port}/readyz" in command
