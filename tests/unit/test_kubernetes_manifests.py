"""deploy/kubernetes, validated by a real schema validator (kubernetes-validate ships the
Kubernetes JSON schemas, strict: unknown fields are errors), and checked against the code: every
file applied, probes on the ports the services serve them on, resources set."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from job_api.entrypoints import projector
from sequence_runner import bootstrap as runner_bootstrap
from threshold_guard.entrypoints import main as guard_main

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "deploy" / "kubernetes"
# Oldest and newest Kubernetes versions the manifests are checked against.
VERSIONS = ("1.30.0", "1.37.0")
KUSTOMIZATION: dict[str, Any] = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in KUSTOMIZATION["resources"]:
        for document in yaml.safe_load_all((FOLDER / name).read_text()):
            if document:
                found.append(
                    (f"{name}:{document['kind']}/{document['metadata']['name']}", document)
                )
    return found


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == "Deployment"}


def test_the_kustomization_applies_every_manifest_of_the_folder() -> None:
    on_disk = {p.name for p in FOLDER.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == on_disk


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("where", "document"), documents(), ids=[w for w, _ in documents()])
def test_every_manifest_is_valid_kubernetes(
    where: str, document: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_what_is_wrong() -> None:
    """The check above can fail: an unknown field and a wrong type are both refused."""
    bad = deployments()["sequence-runner"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**bad, "spec": {**bad["spec"], "replica": 3}}, "1.37.0", True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**bad, "spec": {**bad["spec"], "replicas": "3"}}, "1.37.0")


@pytest.mark.parametrize(
    ("service", "port"),
    [
        ("sequence-runner", runner_bootstrap.HEALTH_PORT),
        ("threshold-guard", guard_main.HEALTH_PORT),
        ("job-api-projector", projector.HEALTH_PORT),
    ],
)
def test_consumer_probes_use_the_health_port_the_service_serves(service: str, port: int) -> None:
    (container,) = deployments()[service]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HEALTH_PORT"] == str(port)
    assert container["ports"] == [{"name": "health", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}


def test_every_container_has_probes_and_resources() -> None:
    for name, deployment in deployments().items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container), name
            resources = container["resources"]
            assert resources["requests"]["memory"], name
            assert resources["limits"]["memory"], name
            assert resources["requests"]["cpu"], name


def test_no_secret_is_written_in_the_manifests() -> None:
    for where, document in documents():
        assert document["kind"] != "Secret", f"{where}: secrets come from the cluster"
        for container in (
            document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            for variable in container.get("env", []):
                if variable["name"] in ("MONGO_URI", "PROVISIONING_ADMIN_API_KEY"):
                    assert "valueFrom" in variable, f"{where}: {variable['name']}"
