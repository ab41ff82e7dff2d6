"""docker-compose.yml cannot run here (no Docker engine), so it is checked against the code:
images, ports, dependencies, healthchecks and every variable a service is given; and loaded by
compose-go, the parser Docker Compose uses, built from tools/compose-check."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from job_api.settings import JobApiSettings
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from sequence_runner.settings import RunnerSettings
from threshold_guard.settings import GuardSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]

SETTINGS_OF: dict[str, type[BaseSettings]] = {
    "job-api": JobApiSettings,
    "job-api-projector": JobApiSettings,
    "topics": JobApiSettings,
    "sequence-runner": RunnerSettings,
    "threshold-guard": GuardSettings,
}


def variables_read_by(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable name a settings class (and its nested sections) reads."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            names |= variables_read_by(nested)
            continue
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names |= {str(choice).upper() for choice in alias.choices}
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def test_infrastructure_uses_the_official_images() -> None:
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")
    assert SERVICES["mongo"]["image"].startswith("mongo:")
    kafka_env = SERVICES["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


@pytest.mark.parametrize(
    ("service", "port"), [("kafka", 9092), ("mongo", 27017), ("job-api", 8000)]
)
def test_default_ports_are_published_on_loopback(service: str, port: int) -> None:
    assert f"127.0.0.1:{port}:{port}" in SERVICES[service]["ports"]


@pytest.mark.parametrize("service", ["job-api", "job-api-projector", "sequence-runner"])
def test_services_wait_for_healthy_infrastructure_and_topics(service: str) -> None:
    depends = SERVICES[service]["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["mongo"]["condition"] == "service_healthy"
    assert depends["topics"]["condition"] == "service_completed_successfully"


def test_the_guard_needs_kafka_only() -> None:
    depends = SERVICES["threshold-guard"]["depends_on"]
    assert set(depends) == {"kafka", "topics"}


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "topics"])
def test_every_long_running_service_has_a_healthcheck(service: str) -> None:
    assert SERVICES[service]["healthcheck"]["test"]


@pytest.mark.parametrize("service", sorted(SETTINGS_OF))
def test_every_variable_given_is_one_the_service_reads(service: str) -> None:
    given = set(SERVICES[service]["environment"])
    unknown = given - variables_read_by(SETTINGS_OF[service])
    assert not unknown, f"{service} is given variables no settings field reads: {unknown}"


@pytest.mark.parametrize("service", sorted(SETTINGS_OF))
def test_services_reach_the_infrastructure_by_its_compose_name(service: str) -> None:
    env = SERVICES[service]["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
    if service != "threshold-guard":
        assert env["MONGO_URI"].startswith("mongodb://mongo:27017")


def test_each_service_is_built_from_its_own_dockerfile_at_the_repo_root() -> None:
    for service, image in (
        ("job-api", "job-api"),
        ("job-api-projector", "job-api"),
        ("sequence-runner", "sequence-runner"),
        ("threshold-guard", "threshold-guard"),
    ):
        build = SERVICES[service]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == f"services/{image}/Dockerfile"
        assert (REPO / build["dockerfile"]).is_file()


def test_the_api_listens_on_all_interfaces_inside_its_container() -> None:
    env = SERVICES["job-api"]["environment"]
    assert env["JOB_API_HOST"] == "0.0.0.0"
    assert env["JOB_API_PORT"] == "8000"


# --- compose-go: the parser Docker Compose itself uses ------------------------------------

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
