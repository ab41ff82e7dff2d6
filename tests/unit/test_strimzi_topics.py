"""deploy/strimzi/kafka-topics.yaml, the topics as Strimzi KafkaTopic resources, checked against
the code: one resource per topic the services create, the runner's equal partition counts, the
cluster that config.yaml points at, and a read model that can be rebuilt from job-events.

The KafkaTopic schema is Strimzi's CRD, which kubernetes-validate does not ship and which no
test downloads: the spec is checked here against the fields the CRD documents
(docs/deployment.md)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from provisioning_common.topics import ALL_TOPICS, JOB_COMMANDS, JOB_EVENTS, dead_letter_topic

REPO = Path(__file__).resolve().parents[2]
TOPICS: list[dict[str, Any]] = [
    d for d in yaml.safe_load_all((REPO / "deploy/strimzi/kafka-topics.yaml").read_text()) if d
]
CONFIG: dict[str, Any] = yaml.safe_load((REPO / "deploy/kubernetes/config.yaml").read_text())
RUNNER: dict[str, Any] = yaml.safe_load(
    (REPO / "deploy/kubernetes/sequence-runner.yaml").read_text()
)
# The fields of KafkaTopic's spec in Strimzi's CRD (kafka.strimzi.io/v1 and v1beta2): name,
# type, and bounds of the integers.
SPEC_FIELDS: dict[str, type] = {
    "topicName": str,
    "partitions": int,
    "replicas": int,
    "config": dict,
}
BOUNDS: dict[str, tuple[int, int | None]] = {"partitions": (1, None), "replicas": (1, 32767)}


def spec_problems(spec: dict[str, Any]) -> list[str]:
    """What in a KafkaTopic spec the CRD would refuse: an unknown field, a wrong type, a bound."""
    problems = [f"unknown field {name}" for name in spec if name not in SPEC_FIELDS]
    for name, kind in SPEC_FIELDS.items():
        value = spec.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{name} is not {kind.__name__}")
        elif isinstance(value, int) and name in BOUNDS:
            low, high = BOUNDS[name]
            if value < low or (high is not None and value > high):
                problems.append(f"{name} {value} out of bounds")
    return problems


# A Kubernetes object name (DNS-1123 subdomain): a topic name with dots fits as it is.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def by_name() -> dict[str, dict[str, Any]]:
    return {t["metadata"]["name"]: t for t in TOPICS}


def test_one_kafka_topic_per_topic_the_services_create() -> None:
    wanted = [*ALL_TOPICS, *(dead_letter_topic(t) for t in ALL_TOPICS)]
    assert sorted(by_name()) == sorted(wanted)


@pytest.mark.parametrize("topic", TOPICS, ids=[t["metadata"]["name"] for t in TOPICS])
def test_each_is_a_kafka_topic_of_the_configured_cluster(topic: dict[str, Any]) -> None:
    assert topic["apiVersion"] == "kafka.strimzi.io/v1"
    assert topic["kind"] == "KafkaTopic"
    assert set(topic) == {"apiVersion", "kind", "metadata", "spec"}
    assert NAME.match(topic["metadata"]["name"])
    assert len(topic["metadata"]["name"]) <= 253
    assert not spec_problems(topic["spec"])
    assert {"partitions", "replicas", "config"} <= set(topic["spec"])
    # config.yaml's bootstrap Service is <cluster>-kafka-bootstrap.<namespace>.svc.
    bootstrap = CONFIG["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap.startswith(f"{topic['metadata']['labels']['strimzi.io/cluster']}-kafka-")
    # acks=all with two in-sync replicas at least: an acknowledged event survives a broker.
    assert topic["spec"]["replicas"] == int(CONFIG["data"]["KAFKA_REPLICATION_FACTOR"])
    assert topic["spec"]["config"]["min.insync.replicas"] == 2


def test_partitions_as_the_services_are_configured_and_equal_for_the_runner() -> None:
    topics = by_name()
    counts = {t["spec"]["partitions"] for t in topics.values()}
    assert counts == {int(CONFIG["data"]["KAFKA_TOPIC_PARTITIONS"])}
    # The runner replica owning partition p of job-events owns p of job-commands.
    assert topics[JOB_EVENTS]["spec"]["partitions"] == topics[JOB_COMMANDS]["spec"]["partitions"]
    assert RUNNER["spec"]["replicas"] <= topics[JOB_EVENTS]["spec"]["partitions"]


def test_job_events_are_kept_for_a_rebuild_of_the_read_model() -> None:
    config = by_name()[JOB_EVENTS]["spec"]["config"]
    assert config["retention.ms"] == -1
    assert config["cleanup.policy"] == "delete"


def test_the_spec_check_refuses_what_is_wrong() -> None:
    spec = by_name()[JOB_EVENTS]["spec"]
    assert spec_problems({**spec, "partition": 6}) == ["unknown field partition"]
    assert spec_problems({**spec, "partitions": "6"}) == ["partitions is not int"]
    assert spec_problems({**spec, "replicas": 0}) == ["replicas 0 out of bounds"]
