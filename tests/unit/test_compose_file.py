"""docker-compose.yml cannot run here (no Docker engine), so it is checked against the code:
images, ports, dependencies, healthchecks and every variable a service is given. The same file
loaded by compose-go, the parser Docker Compose uses, is tests/integration/deployment."""

import re
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
    "job-api-notifier": JobApiSettings,
    "job-api-scheduler": JobApiSettings,
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


def referenced_by_mounted_connections(service: str) -> set[str]:
    """The variables a service's mounted connections file refers to (`${LDAP_ADMIN_PASSWORD}`)."""
    file = SERVICES[service]["environment"].get("PROVISIONING_CONNECTIONS_FILE")
    if file is None:
        return set()
    (mount,) = [v for v in SERVICES[service]["volumes"] if v.split(":")[1] == file]
    text = (REPO / mount.split(":")[0]).read_text()
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def test_the_directory_is_built_from_the_projects_own_config() -> None:
    ldap = SERVICES["ldap"]
    assert ldap["build"]["dockerfile"] == "infra/ldap/Dockerfile"
    assert "127.0.0.1:3389:389" in ldap["ports"]
    assert SERVICES["sequence-runner"]["depends_on"]["ldap"]["condition"] == "service_healthy"
    assert referenced_by_mounted_connections("sequence-runner") == {
        "LDAP_ADMIN_PASSWORD",
        "PG_PASSWORD",
        "APP_SCIM_TOKEN",
    }


@pytest.mark.parametrize("service", sorted(SETTINGS_OF))
def test_every_variable_given_is_one_the_service_reads(service: str) -> None:
    given = set(SERVICES[service]["environment"])
    read = variables_read_by(SETTINGS_OF[service]) | referenced_by_mounted_connections(service)
    unknown = given - read
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


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "topics"])
def test_every_long_running_service_is_restarted_unless_stopped(service: str) -> None:
    # As `make run` supervises its services: one that dies comes back, the others run on.
    assert SERVICES[service]["restart"] == "unless-stopped"


def test_the_one_shot_topic_creation_is_not_restarted() -> None:
    assert SERVICES["topics"]["restart"] == "no"
